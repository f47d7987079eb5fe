"""boot on a Proxmox cluster of three hosts, against the fake: the VMs spread as placement
says, each seed on its VM's host, and a second run plans nothing."""

from __future__ import annotations

import io
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.proxmox import core
from generator.proxmox.view import print_plan
from tests.fakes.pve import ApiError, FakePVE, Request, make_tls, running_fake
from tests.fakes.pve.harness import boot, client_for, make_cluster, seed_texts
from tests.fakes.pve.routes import ROUTES
from tests.fakes.pve.server import Route
from tests.fakes.pve.state import NodeState, PveState, Storage, default_state

HOSTS = ["pve", "pve2", "pve3"]
GIB = 2**30


def _three_hosts() -> PveState:
    """The default world (`pve`: template 9000, foreign VM 100) plus two hosts. VM disks and
    the template live on one shared RBD pool, as PVE needs to clone across hosts; the seeds
    on one shared NFS export (`isos`), as PVE uploads only to the host it is asked through;
    each host also has its own `local`. Free memory 48, 48 and 24 GiB."""
    state = default_state(secrets.token_hex(16))
    pool = Storage(content={"images", "rootdir"}, type="rbd", path=None, shared=True)
    pool.total = pool.avail = 2**40
    isos = Storage(content={"iso"}, type="nfs", path="/mnt/pve/isos", shared=True)
    state.nodes["pve"].storages.update({"ceph": pool, "isos": isos})
    for host, free in (("pve2", 48), ("pve3", 24)):
        local = Storage(content={"iso", "vztmpl", "backup", "import"})
        state.nodes[host] = NodeState(storages={"local": local, "ceph": pool, "isos": isos})
        state.nodes[host].memory_free = free * GIB
    template = state.vms[9000].config
    template["scsi0"] = "ceph:base-9000-disk-0,size=3G"
    template["ide2"] = "ceph:vm-9000-cloudinit,media=cdrom"
    return state


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePVE]:
    with running_fake(tmp_path, _three_hosts()) as running:
        yield running


def test_boot_spreads_the_vms_and_a_second_run_plans_nothing(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 3, 3, node="pve", nodes=HOSTS, storage="ceph", seed_storage="isos")
    run = boot(fake, cluster)
    assert run.errors == []
    shown = io.StringIO()
    print_plan(run.prepared.plan, shown)
    hosts = {n.name: fake.state.vms[n.vmid].node for n in cluster.nodes}
    # Servers on distinct hosts; agents by free memory: pve and pve2 twice pve3's.
    assert [hosts[f"k3s-server-{i}"] for i in (1, 2, 3)] == HOSTS
    assert Counter(hosts[f"k3s-agent-{i}"] for i in (1, 2, 3)) == {"pve": 2, "pve2": 1}
    for node in cluster.nodes:
        vm = fake.state.vms[node.vmid]
        assert vm.status == "running"
        assert f"{node.name} ({node.vmid}): " in shown.getvalue()
        assert f"  on {vm.node}\n" in shown.getvalue().split(f"{node.name} ({node.vmid}): ")[1]
        # the seed is on the shared storage every host reads
        cd = next(v for v in vm.config.values() if "media=cdrom" in str(v))
        assert str(cd).split(",")[0] in fake.state.storage(vm.node, "isos").volumes
    # uploaded through proxmox.node: pveproxy relays no upload to another host
    uploads = [c.path for c in fake.state.mutating_calls() if c.path.endswith("/upload")]
    assert uploads and all(p.startswith("/nodes/pve/") for p in uploads), uploads
    client = client_for(fake, cluster)
    again = core.prepare(client, cluster, seed_texts(cluster)).plan
    assert again.is_noop, again
    assert {vm.name: vm.host for vm in again.vms} == hosts


def test_adding_a_fourth_host_moves_nothing(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 3, 3, node="pve", nodes=HOSTS, storage="ceph", seed_storage="isos")
    assert boot(fake, cluster).errors == []
    before = {vmid: vm.node for vmid, vm in fake.state.vms.items()}
    shared = {name: fake.state.storage("pve", name) for name in ("ceph", "isos")}
    local = Storage(content={"iso", "vztmpl", "backup", "import"})
    fake.state.nodes["pve4"] = NodeState(storages={"local": local, **shared})
    fake.state.nodes["pve4"].memory_free = 60 * GIB
    bigger = make_cluster(
        fake, 3, 3, node="pve", nodes=[*HOSTS, "pve4"], storage="ceph", seed_storage="isos"
    )
    again = core.prepare(client_for(fake, bigger), bigger, seed_texts(bigger)).plan
    assert again.is_noop, again
    assert {vmid: vm.node for vmid, vm in fake.state.vms.items()} == before


def _offline(host: str) -> list[Route]:
    """The fake's routes, with `host` offline the way pveproxy says it when relaying to a
    powered-off cluster member: 595 "No route to host" (AnyEvent::HTTP's connect error)."""
    template = "/nodes/{node}/storage"
    original = next(h for m, t, h in ROUTES if (m, t) == ("GET", template))

    def storage(pve: FakePVE, req: Request) -> object:
        if req.params["node"] == host:
            raise ApiError(595, "No route to host")
        return original(pve, req)

    return [("GET", template, storage), *ROUTES]


def test_a_listed_host_proxmox_cannot_reach_gets_no_new_vm(tmp_path: Path) -> None:
    with FakePVE(_three_hosts(), make_tls(tmp_path / "tls"), _offline("pve3")) as fake:
        cluster = make_cluster(
            fake, 1, 3, node="pve", nodes=HOSTS, storage="ceph", seed_storage="isos"
        )
        run = boot(fake, cluster)
        assert run.errors == []
        assert {fake.state.vms[n.vmid].node for n in cluster.nodes} == {"pve", "pve2"}
        assert run.prepared.plan.warnings[0].startswith(
            "proxmox.nodes lists pve3, which Proxmox does not show"
        )


def test_seeds_on_another_hosts_own_storage_are_refused(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 3, 0, node="pve", nodes=HOSTS, storage="ceph")
    plan = core.prepare(client_for(fake, cluster), cluster, seed_texts(cluster)).plan
    assert plan.problems == tuple(
        f"the seeds of k3s-server-{i} would go to 'local' on {host}, which only {host}"
        " reads: Proxmox cannot upload there through pve. Set proxmox.seed_storage to a"
        " shared storage with 'iso' content (NFS, CephFS), or pin these nodes to proxmox.node"
        for i, host in ((2, "pve2"), (3, "pve3"))
    )
