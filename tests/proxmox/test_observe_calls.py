"""observe's reads: few enough for a no-op run to stay quick, and the same facts as reading
each VM's config (with and without `current=1`) and status one by one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.proxmox import core
from generator.proxmox.observe import observe, read_vm, with_running_config
from tests.fakes.pve import TEMPLATE_VMID, FakePVE, running_fake
from tests.fakes.pve.harness import boot, client_for, make_cluster, seed_texts

# A booted lab of 13 VMs on one host: version, permissions, /cluster/resources, the host's
# VM list, storages, bridges, status and seeds, and one config read per VM and the template.
NOOP_CALLS_13_VMS = 8 + 13 + 1


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePVE]:
    with running_fake(tmp_path) as running:
        yield running


def _kinds(fake: FakePVE) -> Counter[str]:
    return Counter(call.template for call in fake.state.calls)


def test_a_no_op_plan_of_13_vms_reads_each_vm_once(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 3, 10)
    assert not boot(fake, cluster).errors
    fake.state.calls.clear()
    prepared = core.prepare(client_for(fake, cluster), cluster, seed_texts(cluster))
    assert prepared.plan.is_noop
    kinds = _kinds(fake)
    assert sum(kinds.values()) <= NOOP_CALLS_13_VMS, kinds
    assert kinds["/version"] == 1
    assert kinds["/nodes/{node}/qemu/{vmid}/status/current"] == 0
    assert kinds["/nodes/{node}/qemu/{vmid}/config"] == 0
    assert kinds["/nodes/{node}/qemu/{vmid}/pending"] == 13 + 1  # the nodes and the template


def _pending_changes(fake: FakePVE, vmid: int) -> None:
    """What PVE keeps pending on a running VM: a value it cannot hotplug, a deleted key,
    a new key, and a deletion of a key whose value Perl holds false (load_current_config
    keeps it)."""
    vm = fake.state.vms[vmid]
    assert vm.status == "running"
    vm.config.update(ciuser="admin", cipassword="$5$old", balloon="0")
    vm.pending.update(cores="7", serial1="socket", cipassword="$5$new")
    vm.pending_delete.extend(["ciuser", "balloon", "vga"])


def test_facts_match_reading_each_vm_by_itself(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1, 2)
    assert not boot(fake, cluster).errors
    changed = cluster.nodes[0].vmid
    _pending_changes(fake, changed)
    fake.state.vms[cluster.nodes[1].vmid].status = "stopped"
    client = client_for(fake, cluster)
    observed = observe(client, cluster)
    for node in cluster.nodes:
        one_by_one = read_vm(client, "pve", node.vmid)
        assert one_by_one is not None
        assert observed.vms[node.vmid] == with_running_config(client, one_by_one), node.name
        assert observed.vms[node.vmid].config == one_by_one.config, node.name
    running = observed.vms[changed].running_config
    assert running is not None and running["cores"] != "7" and running["ciuser"] == "admin"
    assert observed.vms[changed].config["cores"] == "7"
    assert observed.vms[changed].config["balloon"] == "0"
    assert "ciuser" not in observed.vms[changed].config
    assert observed.vms[changed].config["cipassword"] == "**********"
    assert observed.template == read_vm(client, "pve", TEMPLATE_VMID)
