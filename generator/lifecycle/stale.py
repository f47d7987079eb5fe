"""Which nodes booted other settings than their rendered seed holds: `--replace-stale`.

cloud-init applies a seed once per instance, so a node keeps what it booted with. The
guest's own copy (/var/lib/cloud/instance/user-data.txt, read through the agent) is
compared with the rendered user-data; the K3s version is left out of the comparison, since
the system-upgrade-controller moves running nodes to a new version in place and a version
bump alone is no reason to rebuild. A VM whose agent cannot tell falls back to the seed file
Proxmox has attached to it.
"""

from __future__ import annotations

import re

from generator.config.model import Node
from generator.proxmox import agent, core
from generator.proxmox import plan as planning
from generator.proxmox.failures import PveError
from generator.status.cloudinit import BOOTED_USER_DATA

K3S_VERSION = re.compile(r"v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?(?:\+|%2[Bb])k3s\d+")  # also URL-quoted


def settings_of(user_data: str) -> str:
    """The user-data with every K3s version replaced by one placeholder."""
    return K3S_VERSION.sub("<k3s-version>", user_data)


def _booted_other_settings(prepared: core.Prepared, node: Node) -> bool | None:
    vm = prepared.observed.vms[node.vmid]
    if vm.status != "running":
        return None
    try:
        booted = agent.read_file(prepared.client, vm.node, vm.vmid, BOOTED_USER_DATA)
    except PveError:
        return None  # no agent, no file: the attached seed has to tell
    rendered = prepared.texts[node.name]["user-data"]
    return settings_of(booted) != settings_of(rendered)


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
