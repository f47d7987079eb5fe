"""boot against the fake PVE: scenarios, idempotency, config changes, half-made VMs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.errors import HomelabError
from generator.proxmox import core
from generator.proxmox.observe import observe
from tests.fakes.pve import FOREIGN_VMID, TEMPLATE_VMID, FakePVE, Fault, Vm, running_fake
from tests.fakes.pve.harness import (
    assert_converged,
    boot,
    client_for,
    make_cluster,
    seed_texts,
    snapshot,
)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePVE]:
    with running_fake(tmp_path) as running:
        yield running


def _untouched(fake: FakePVE, before: dict[int, object]) -> None:
    for vmid, state in before.items():
        assert snapshot(fake, vmid) == state, f"VM {vmid} was modified"
    for call in fake.state.mutating_calls():
        assert f"/qemu/{FOREIGN_VMID}" not in call.path
        if f"/qemu/{TEMPLATE_VMID}" in call.path:
            assert call.path.endswith("/clone"), call


@pytest.mark.parametrize(("servers", "agents"), [(1, 0), (3, 3), (3, 20)])
def test_scenario_converges_then_is_a_no_op(fake: FakePVE, servers: int, agents: int) -> None:
    cluster = make_cluster(fake, servers, agents)
    before = {v: snapshot(fake, v) for v in (FOREIGN_VMID, TEMPLATE_VMID)}
    first = boot(fake, cluster)
    assert not first.errors
    assert_converged(fake, cluster)
    _untouched(fake, before)
    mutating = len(fake.state.mutating_calls())
    second = boot(fake, cluster)
    assert second.prepared.plan.is_noop
    assert {vm.reason for vm in second.prepared.plan.vms} == {"up to date"}
    assert len(fake.state.mutating_calls()) == mutating, "a finished cluster got changed"


def test_new_node_creates_only_that_vm(fake: FakePVE) -> None:
    boot(fake, make_cluster(fake, 1, 1))
    count = len(fake.state.mutating_calls())
    bigger = make_cluster(fake, 1, 2)
    run = boot(fake, bigger)
    assert not run.errors
    assert_converged(fake, bigger)
    touched = {c.path for c in fake.state.mutating_calls()[count:]}
    assert all("/qemu/302" in p or "/upload" in p or "/qemu/9000/clone" in p for p in touched)
    assert [vm.name for vm in run.prepared.plan.vms if vm.actions] == ["k3s-agent-2"]


def test_cores_change_updates_and_says_restart(fake: FakePVE) -> None:
    boot(fake, make_cluster(fake, 1, 0))
    text = make_cluster(fake, 1, 0)
    changed = type(text)(**{**text.__dict__, "nodes": (
        type(text.nodes[0])(**{**text.nodes[0].__dict__, "cores": 4}),
    )})  # fmt: skip
    run = boot(fake, changed)
    plan = run.prepared.plan.vms[0]
    assert [a.kind for a in plan.actions] == ["configure"]
    assert dict(plan.actions[0].params) == {"cores": "4"}
    assert any("restart" in note for note in plan.notes)
    # A running VM takes cores at its next restart: PVE keeps the value pending.
    vm = fake.state.vms[201]
    assert vm.pending["cores"] == "4" and vm.config["cores"] != "4"
    again = boot(fake, changed)
    assert not any(v.actions for v in again.prepared.plan.vms)


def test_removed_node_is_an_orphan_until_prune(fake: FakePVE) -> None:
    boot(fake, make_cluster(fake, 1, 2))
    smaller = make_cluster(fake, 1, 1)
    count = len(fake.state.mutating_calls())
    run = boot(fake, smaller)
    orphan = [vm for vm in run.prepared.plan.vms if vm.vmid == 302]
    assert orphan and not orphan[0].actions and "orphan" in orphan[0].reason
    assert len(fake.state.mutating_calls()) == count
    pruned = boot(fake, smaller, prune=True)
    assert not pruned.errors
    assert 302 not in fake.state.vms
    assert_converged(fake, smaller)


def test_foreign_vm_on_our_vmid_is_a_preflight_error(fake: FakePVE) -> None:
    fake.state.vms[201] = Vm(
        201, "pve", {"name": "nas", "scsi0": "local-lvm:vm-201-disk-0,size=8G"}
    )
    cluster = make_cluster(fake, 1, 0)
    client = client_for(fake, cluster)
    prepared = core.prepare(client, cluster, seed_texts(cluster))
    assert any("VMID 201" in p and "does not own" in p for p in prepared.plan.problems)
    with pytest.raises(HomelabError, match="nothing was changed"):
        core.boot(client, prepared, 4, lambda e: None)
    assert not fake.state.mutating_calls()


def test_missing_privileges_are_listed_with_pveum_commands(fake: FakePVE) -> None:
    del fake.state.permissions["/sdn/zones/localnetwork"]
    fake.state.permissions["/vms"].pop("VM.Clone")
    cluster = make_cluster(fake, 1, 0)
    prepared = core.prepare(client_for(fake, cluster), cluster, seed_texts(cluster))
    (problem,) = [p for p in prepared.plan.problems if "lacks" in p]
    assert (
        "VM.Clone on /vms/9000" in problem and "SDN.Use on /sdn/zones/localnetwork/vmbr0" in problem
    )
    assert "pveum role add HomelabGen" in problem and "VM.GuestAgent.Audit" in problem
    assert "pveum acl modify /vms --tokens 'homelab@pve!homelab-gen' --roles HomelabGen" in problem


def test_missing_template_suggests_the_template_command(fake: FakePVE) -> None:
    del fake.state.vms[TEMPLATE_VMID]
    fake.state.version = "7.4.3"
    cluster = make_cluster(fake, 1, 0)
    prepared = core.prepare(client_for(fake, cluster), cluster, seed_texts(cluster))
    assert any("homelab-gen template" in p for p in prepared.plan.problems)
    assert any("7.4.3 is too old" in p for p in prepared.plan.problems)


def test_q35_template_gets_a_scsi_seed_cd(fake: FakePVE) -> None:
    fake.state.vms[TEMPLATE_VMID].config["machine"] = "q35"
    cluster = make_cluster(fake, 1, 0)
    assert not boot(fake, cluster).errors
    config = fake.state.vms[201].config
    cds = {k: v for k, v in config.items() if "media=cdrom" in str(v)}
    assert list(cds) == ["scsi1"] and "homelab-gen-home-k3s-server-1-" in cds["scsi1"]
    assert "ide2" not in config  # the clone's own cloud-init drive is gone


def test_changed_seed_is_uploaded_and_waits_for_the_rebuild(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1, 0)
    boot(fake, cluster)
    old = fake.state.vms[201].config["ide2"]
    count = len(fake.state.mutating_calls())
    run = boot(fake, cluster, texts=seed_texts(cluster, version="2"))
    calls = fake.state.mutating_calls()[count:]
    # The VM booted from its seed and keeps it: cloud-init would not apply another.
    assert [c.template.rsplit("/", 1)[-1] for c in calls] == ["upload"]
    assert fake.state.vms[201].config["ide2"] == old
    assert any("boot --replace-stale" in n for vm in run.prepared.plan.vms for n in vm.notes)
    volumes = fake.state.storage("pve", "local").volumes
    assert len(volumes) == 2
    # Rebuilt (its VM gone, as boot --replace leaves it), it gets the new seed, and the old
    # one, which holds the join token, goes once no VM holds it.
    del fake.state.vms[201]
    count = len(fake.state.mutating_calls())
    boot(fake, cluster, texts=seed_texts(cluster, version="2"))
    calls = fake.state.mutating_calls()[count:]
    current = fake.state.vms[201].config["ide2"].split(",")[0]
    assert list(volumes) == [current] and current != old.split(",")[0]
    assert calls[-1].method == "DELETE" and current not in calls[-1].path


def test_half_made_clone_is_waited_for_and_finished(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1, 0)
    texts = seed_texts(cluster)
    fake.state.vms[201] = Vm(201, "pve", {"lock": "clone"})

    def clone_finishes() -> None:
        time.sleep(0.3)
        with fake.lock:
            template = fake.state.vms[TEMPLATE_VMID].config
            config = {k: v for k, v in template.items() if k not in ("template", "tags")}
            config["scsi0"] = "local-lvm:vm-201-disk-0,size=3G"
            config["description"] = "homelab-gen: cluster=home node=k3s-server-1"
            fake.state.vms[201].config = config

    threading.Thread(target=clone_finishes).start()
    run = boot(fake, cluster, texts=texts)
    assert not run.errors
    kinds = [a.kind for a in run.prepared.plan.vms[0].actions]
    assert kinds == ["upload", "configure", "resize", "start"]
    assert_converged(fake, cluster)


def test_owned_vm_without_disk_is_recreated(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1, 0)
    boot(fake, cluster)
    del fake.state.vms[201].config["scsi0"]
    fake.state.vms[201].status = "stopped"
    run = boot(fake, cluster)
    kinds = [a.kind for a in run.prepared.plan.vms[0].actions]
    assert kinds == ["delete", "clone", "configure", "resize", "start"]
    assert_converged(fake, cluster)


def test_destroy_removes_only_this_clusters_vms_and_seeds(fake: FakePVE) -> None:
    ours = make_cluster(fake, 1, 1)
    other = make_cluster(fake, 1, 0, name="other")
    other = type(other)(**{**other.__dict__, "nodes": (
        type(other.nodes[0])(**{**other.nodes[0].__dict__, "vmid": 250}),
    )})  # fmt: skip
    boot(fake, ours)
    boot(fake, other)
    client = client_for(fake, ours)
    observed = observe(client, ours)
    plan = core.destroy_plan(ours, observed)
    outcomes = core.destroy(client, ours, observed, plan, lambda e: None)
    assert not [o for o in outcomes if o.error]
    assert set(fake.state.vms) == {FOREIGN_VMID, TEMPLATE_VMID, 250}
    left = fake.state.storage("pve", "local").volumes
    assert left and all("homelab-gen-other-" in v for v in left)


@pytest.mark.parametrize(
    ("step", "kind"),
    [("stop", "lock"), ("stop", "reset"), ("delete", "relay"), ("delete", "task-lock")],
)
def test_destroy_rides_out_transient_faults(fake: FakePVE, step: str, kind: str) -> None:
    cluster = make_cluster(fake, 1, 1)
    boot(fake, cluster)
    fake.state.faults.append(Fault(step, kind, times=1))
    client = client_for(fake, cluster)
    observed = observe(client, cluster)
    plan = core.destroy_plan(cluster, observed)
    outcomes = core.destroy(client, cluster, observed, plan, lambda e: None)
    fake.wait_idle()
    assert fake.state.faults[0].times == 0, "the fault was never hit"
    assert not [o.error for o in outcomes if o.error]
    assert set(fake.state.vms) == {FOREIGN_VMID, TEMPLATE_VMID}
    assert not fake.state.storage("pve", "local").volumes


@pytest.mark.parametrize("kind", ["relay", "reset", "task-lock"])
def test_a_seed_deletion_rides_out_transient_faults(fake: FakePVE, kind: str) -> None:
    cluster = make_cluster(fake, 1, 0)
    boot(fake, cluster)
    del fake.state.vms[201]  # rebuilt: its old seed is left unused
    fake.state.faults.append(Fault("delete", kind, times=1))
    run = boot(fake, cluster, texts=seed_texts(cluster, version="2"))
    fake.wait_idle()
    assert fake.state.faults[0].times == 0, "the fault was never hit"
    assert not run.errors
    current = fake.state.vms[201].config["ide2"].split(",")[0]
    assert list(fake.state.storage("pve", "local").volumes) == [current]
