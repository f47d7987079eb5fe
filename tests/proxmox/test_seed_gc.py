"""Seeds no VM uses any more are deleted by boot, after the new ones are attached; nothing
else on the storage is touched. Planning is a table; boot runs against the fake PVE."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from generator.config.model import Cluster
from generator.proxmox.actions import Plan
from generator.proxmox.observe import NodeFacts, Observed, StorageFacts, VMFacts
from generator.proxmox.plan import desired_config, make_plan
from generator.proxmox.seeds import SeedRef, seed_ref
from generator.proxmox.view import print_plan
from tests.fakes.pve import FakePVE, Vm, running_fake
from tests.fakes.pve.harness import assert_converged, boot, make_cluster, seed_texts
from tests.fakes.pve.state import STORAGE_PRIVS, full_permissions, revoke, template_config

CLUSTER = make_cluster(None, 1, 1)
SERVER, AGENT = CLUSTER.nodes


def _refs(cluster: Cluster, version: str) -> dict[str, SeedRef]:
    texts = seed_texts(cluster, version)
    return {n.name: seed_ref(cluster, n, texts[n.name]) for n in cluster.nodes}


OLD, NEW = _refs(CLUSTER, "1"), _refs(CLUSTER, "2")
OLD_SERVER, OLD_AGENT = OLD[SERVER.name].volids[0], OLD[AGENT.name].volids[0]
NEW_SERVER, NEW_AGENT = NEW[SERVER.name].volids[0], NEW[AGENT.name].volids[0]
# Files on the same storage that are not this cluster's seeds.
FOREIGN_ISO = "local:iso/debian-12.5.0-amd64-netinst.iso"
OTHER_CLUSTER = "local:iso/homelab-gen-other-k3s-server-1-0123456789ab.iso"
USERS_OWN = "local:iso/homelab-gen-home-notes.iso"
# Node `lab-k3s-1` of cluster `home`, or node `k3s-1` of cluster `home-lab`, which has a VM.
PREFIX_TWIN = "local:iso/homelab-gen-home-lab-k3s-1-0123456789ab.iso"
REMOVED_NODE = "local:iso/homelab-gen-home-k3s-agent-9-0123456789ab.iso"
STRANGERS = frozenset({FOREIGN_ISO, OTHER_CLUSTER, USERS_OWN, PREFIX_TWIN})
TWIN_VMID = 250
SEED_ADMIN = {"/storage/local": dict.fromkeys((*STORAGE_PRIVS, "Datastore.Allocate"), 1)}


def _template() -> VMFacts:
    return VMFacts(9000, "pve", "stopped", {k: str(v) for k, v in template_config().items()})


def _vm(node_index: int, ref: SeedRef, status: str = "running", **changes: str) -> VMFacts:
    """A VM as boot leaves it, on seed `ref`; `changes` edit its config ("" removes a key)."""
    node = CLUSTER.nodes[node_index]
    config = {k: str(v) for k, v in template_config().items() if k != "template"}
    config.update(desired_config(CLUSTER, node, _template(), ref))
    config["scsi0"] = f"local-lvm:vm-{node.vmid}-disk-0,size={node.disk}G"
    config.update(changes)
    return VMFacts(node.vmid, "pve", status, {k: v for k, v in config.items() if v})


def _observed(vms: list[VMFacts], seeds: set[str], **kw: Any) -> Observed:
    storages = {
        "local": StorageFacts("local", "dir", frozenset({"iso"}), 2**40, 2**40, False),
        "local-lvm": StorageFacts(
            "local-lvm", "lvmthin", frozenset({"images"}), 2**40, 2**40, False
        ),
    }
    base = Observed(
        version="9.1.1",
        permissions={**full_permissions(), **SEED_ADMIN},
        nodes={"pve": NodeFacts("pve", storages, frozenset({"vmbr0"}), 2**36)},
        template=_template(),
        vms={vm.vmid: vm for vm in vms},
        seeds={"pve": frozenset(seeds | STRANGERS)},
        other_nodes=frozenset({("home-lab", "k3s-1"), ("other", "k3s-server-1")}),
    )
    return replace(base, **kw)


def _deleted(plan: Plan) -> set[str]:
    assert not plan.problems, plan.problems
    return {a.param("volid") for a in plan.actions if a.kind == "delete-seed"}


BOTH = {OLD_SERVER, OLD_AGENT, NEW_SERVER, NEW_AGENT}
ON_OLD = [_vm(0, OLD[SERVER.name]), _vm(1, OLD[AGENT.name])]
ON_NEW = [_vm(0, NEW[SERVER.name]), _vm(1, NEW[AGENT.name])]
SMALLER = make_cluster(None, 1, 0)
TABLE = [
    ("seed changed: each VM keeps the one it booted", ON_OLD, BOTH, NEW, set()),
    ("stopped VMs too", [replace(v, status="stopped") for v in ON_OLD], BOTH, NEW, set()),
    ("finished cluster: nothing to delete", ON_NEW, {NEW_SERVER, NEW_AGENT}, NEW, set()),
    ("old seeds already unused", ON_NEW, BOTH, NEW, {OLD_SERVER, OLD_AGENT}),
    ("removed node whose VM is gone", ON_NEW, {NEW_SERVER, NEW_AGENT, REMOVED_NODE}, NEW,
     {REMOVED_NODE}),
    ("new seed not uploaded yet: uploaded, the booted one kept", ON_OLD,
     {OLD_SERVER, OLD_AGENT}, NEW, set()),
    ("running VM still runs the old seed (change pending)",
     [replace(ON_NEW[0], running_config=ON_OLD[0].config), ON_NEW[1]], BOTH, NEW, {OLD_AGENT}),
    ("old seed still on another slot the plan keeps",
     [_vm(0, NEW[SERVER.name], ide3=f"{OLD_SERVER},media=cdrom"), ON_NEW[1]], BOTH, NEW,
     {OLD_AGENT}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "vms", "seeds", "refs", "deleted"), TABLE, ids=[t[0] for t in TABLE]
)
def test_seed_cleanup_table(
    case: str, vms: list[VMFacts], seeds: set[str], refs: dict[str, SeedRef], deleted: set[str]
) -> None:
    plan = make_plan(CLUSTER, _observed(vms, seeds), refs)
    assert _deleted(plan) == deleted
    assert not _deleted(plan) & (STRANGERS | set(v for r in refs.values() for v in r.volids))


@pytest.mark.parametrize(("prune", "deleted"), [(False, set()), (True, {OLD_AGENT})])
def test_orphan_keeps_its_seed_until_pruned(prune: bool, deleted: set[str]) -> None:
    observed = _observed([ON_OLD[0], ON_OLD[1]], {OLD_SERVER, OLD_AGENT})
    plan = make_plan(SMALLER, observed, {SERVER.name: OLD[SERVER.name]}, prune)
    assert _deleted(plan) == deleted


def test_without_datastore_allocate_the_seeds_stay_and_the_plan_says_why() -> None:
    permissions = full_permissions()
    revoke(permissions, "Datastore.Allocate")
    observed = _observed(ON_NEW, BOTH, permissions=permissions)
    plan = make_plan(CLUSTER, observed, NEW)
    assert _deleted(plan) == set() and plan.is_noop
    (warning,) = plan.warnings
    assert "2 unused seed file(s) stay on local" in warning
    assert "pveum acl modify /storage/local" in warning and "PVEDatastoreAdmin" in warning


def test_plan_lists_each_seed_it_deletes() -> None:
    out = io.StringIO()
    print_plan(make_plan(CLUSTER, _observed(ON_NEW, BOTH), NEW), out)
    text = out.getvalue()
    assert "k3s-server-1 (201): -  [up to date]" in text
    assert f"{OLD_SERVER}: delete-seed  [unused seed" in text
    assert f"{OLD_AGENT}: delete-seed" in text
    assert "2 action(s) planned" in text


def test_a_vm_keeps_the_seed_it_booted_and_the_plan_says_so() -> None:
    plan = make_plan(CLUSTER, _observed(ON_OLD, BOTH), NEW)
    assert plan.is_noop  # no swap: cloud-init would not apply the new seed anyway
    notes = {vm.name: vm.notes for vm in plan.vms}
    assert all(any("--replace-stale" in n for n in notes[v]) for v in ("k3s-server-1",))


# -- against the fake PVE --------------------------------------------------------------------
@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePVE]:
    with running_fake(tmp_path) as running:
        running.state.permissions.update(SEED_ADMIN)
        volumes = running.state.storage("pve", "local").volumes
        for volid in STRANGERS:
            volumes[volid] = {"content": "iso", "size": 1, "data": b"x"}
        # Cluster home-lab's VM: PREFIX_TWIN may be its seed, so home must leave it alone.
        running.state.vms[TWIN_VMID] = Vm(TWIN_VMID, "pve", {
            "name": "k3s-1",
            "tags": "homelab-gen;cluster-home-lab",
            "description": "homelab-gen: cluster=home-lab node=k3s-1",
            "scsi0": "local-lvm:vm-250-disk-0,size=8G",
        })  # fmt: skip
        yield running


def _isos(fake: FakePVE) -> set[str]:
    return set(fake.state.storage("pve", "local").volumes)


def test_boot_deletes_old_seeds_once_the_vms_are_rebuilt_then_plans_nothing(
    fake: FakePVE,
) -> None:
    cluster = make_cluster(fake, 1, 1)
    assert not boot(fake, cluster).errors
    first = _isos(fake)
    assert not boot(fake, cluster, texts=seed_texts(cluster, "2")).errors
    assert first <= _isos(fake)  # each booted VM keeps its seed
    for vmid in (201, 301):  # rebuilt, as boot --replace leaves them: gone
        del fake.state.vms[vmid]
    count = len(fake.state.mutating_calls())
    run = boot(fake, cluster, texts=seed_texts(cluster, "2"))
    assert not run.errors
    assert_converged(fake, cluster, frozenset({TWIN_VMID}))
    new = {fake.state.vms[vmid].config["ide2"].split(",")[0] for vmid in (201, 301)}
    assert _isos(fake) == STRANGERS | new
    assert first - _isos(fake) == {OLD_SERVER, OLD_AGENT}
    calls = fake.state.mutating_calls()[count:]
    deletes = [i for i, c in enumerate(calls) if c.method == "DELETE"]
    configs = [i for i, c in enumerate(calls) if c.path.endswith("/config")]
    assert len(deletes) == 2 and min(deletes) > max(configs), "deleted before the VMs were done"
    count = len(fake.state.mutating_calls())
    again = boot(fake, cluster, texts=seed_texts(cluster, "2"))
    assert again.prepared.plan.is_noop
    assert len(fake.state.mutating_calls()) == count


def test_pruned_node_loses_its_vm_and_then_its_seed(fake: FakePVE) -> None:
    boot(fake, make_cluster(fake, 1, 2))
    removed = next(v for v in _isos(fake) if "-k3s-agent-2-" in v)
    smaller = make_cluster(fake, 1, 1)
    kept = boot(fake, smaller)
    assert removed in _isos(fake) and not kept.prepared.plan.actions  # the orphan still uses it
    pruned = boot(fake, smaller, prune=True)
    assert not pruned.errors
    assert 302 not in fake.state.vms and removed not in _isos(fake)
    assert _isos(fake) >= STRANGERS
    assert boot(fake, smaller).prepared.plan.is_noop


def test_seed_of_a_node_whose_vm_is_gone(fake: FakePVE) -> None:
    boot(fake, make_cluster(fake, 1, 2))
    removed = next(v for v in _isos(fake) if "-k3s-agent-2-" in v)
    del fake.state.vms[302]  # deleted by hand
    smaller = make_cluster(fake, 1, 1)
    run = boot(fake, smaller)
    assert [a.param("volid") for a in run.prepared.plan.actions] == [removed]
    assert removed not in _isos(fake) and _isos(fake) >= STRANGERS


def test_without_the_privilege_boot_keeps_the_seeds(fake: FakePVE) -> None:
    del fake.state.permissions["/storage/local"]
    cluster = make_cluster(fake, 1, 0)
    boot(fake, cluster)
    del fake.state.vms[201]  # rebuilt: its old seed is left unused
    run = boot(fake, cluster, texts=seed_texts(cluster, "2"))
    assert not run.errors and any("Datastore.Allocate" in w for w in run.prepared.plan.warnings)
    assert OLD_SERVER in _isos(fake)
    assert boot(fake, cluster, texts=seed_texts(cluster, "2")).prepared.plan.is_noop
