"""Which nodes booted other settings than their rendered seed holds: `--replace-stale`.

cloud-init applies a seed once per instance, so a node keeps what it booted with. The
guest's own copy (/var/lib/cloud/instance/user-data.txt, read through the agent) is
compared with the rendered user-data; the K3s version is left out of the comparison, since
the system-upgrade-controller moves running nodes to a new version in place and a version
bump alone is no reason to rebuild. A VM whose agent cannot tell falls back to the seed file
Proxmox has attached to it.
"""

from __future__ import annotations

from generator.config.model import Node
from generator.proxmox import core
from generator.proxmox import plan as planning
from generator.proxmox.failures import PveError
from generator.status import cloudinit


def _booted_other_settings(prepared: core.Prepared, node: Node) -> bool | None:
    vm = prepared.observed.vms[node.vmid]
    if vm.status != "running":
        return None
    try:
        booted = cloudinit.booted_settings_digest(prepared.client, vm.node, vm.vmid)
    except PveError:
        return None  # no agent: the attached seed has to tell
    if booted is None:
        return None
    return booted != cloudinit.settings_digest(prepared.texts[node.name]["user-data"])


def stale_nodes(prepared: core.Prepared) -> list[Node]:
    cluster, stale = prepared.cluster, []
    for node in cluster.nodes:
        vm = prepared.observed.vms.get(node.vmid)
        if vm is None or node.name not in prepared.refs:
            continue
        differs = _booted_other_settings(prepared, node)
        if differs is None:
            differs = planning.seed_changed(cluster, node, vm, prepared.refs[node.name])
        if differs:
            stale.append(node)
    return stale
