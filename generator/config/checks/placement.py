"""Which Proxmox hosts the VMs may go on: the listed hosts, the pins, and, with
`placement: spread`, that losing one host never takes etcd's quorum with it."""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any

from generator.config.checks.findings import Findings
from generator.config.checks.nodes import node_entries
from generator.config.checks.proxmox import PVE_ID

SPREAD_HINT = (
    "add hosts to proxmox.nodes, pin servers to other hosts with proxmox_node,"
    " or set proxmox.placement: pack to accept the risk"
)


def check_hosts(data: dict[str, Any], found: Findings) -> None:
    pve = data["proxmox"]
    hosts = pve["nodes"]
    if not hosts:
        found.error("proxmox.nodes", "is empty", f"list the Proxmox hosts, e.g. [{pve['node']}]")
        return
    seen: set[str] = set()
    for index, host in enumerate(hosts):
        if not PVE_ID.match(host):
            found.error(
                f"proxmox.nodes[{index}]",
                f"{host!r} is not a Proxmox node name",
                "start with a letter; use letters, digits, '-', '_' and '.'",
            )
        elif host in seen:
            found.error(f"proxmox.nodes[{index}]", f"{host!r} is listed twice", "list it once")
        seen.add(host)
    if pve["node"] not in seen:
        found.error(
            "proxmox.node",
            f"{pve['node']!r} is not one of proxmox.nodes ({', '.join(hosts)})",
            f"add it to proxmox.nodes{_did_you_mean(pve['node'], hosts)}",
        )
    for where, node in node_entries(data):
        pin = node.get("proxmox_node")
        if pin is not None and pin not in seen:
            found.error(
                f"{where}.proxmox_node",
                f"{pin!r} is not one of proxmox.nodes ({', '.join(hosts)})",
                f"pin it to a listed host, or add {pin!r} to proxmox.nodes"
                f"{_did_you_mean(pin, hosts)}",
            )


def _did_you_mean(name: str, hosts: list[str]) -> str:
    close = difflib.get_close_matches(name, hosts, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def most_servers_per_host(servers: int) -> int:
    """How many servers one host may hold so that losing it leaves etcd a majority."""
    return (servers - 1) // 2


def check_spread(data: dict[str, Any], found: Findings) -> None:
    """With spread, placement can keep every host within what quorum can lose: refuse a
    config for which it cannot, by pins or for want of hosts. One server has no quorum to
    keep; an external datastore keeps the state off the servers."""
    pve = data["proxmox"]
    servers = [n for n in data["nodes"] if n["role"] == "server"]
    if (
        pve["placement"] != "spread"
        or len(servers) < 2
        or data["cluster"].get("datastore_endpoint")
    ):
        return
    limit = most_servers_per_host(len(servers))
    hosts = list(dict.fromkeys(pve["nodes"]))
    pinned = Counter(n["proxmox_node"] for n in servers if n.get("proxmox_node"))
    crowded = {host: count for host, count in pinned.items() if count > limit}
    if crowded:
        found.error(
            "nodes",
            f"{_listing(crowded)}: more than quorum can lose"
            f" (at most {limit} of the {len(servers)} servers on one host)",
            SPREAD_HINT,
        )
        return
    free = sum(limit - pinned.get(host, 0) for host in hosts)
    unpinned = sum(1 for n in servers if not n.get("proxmox_node"))
    if unpinned > free:
        found.error(
            "proxmox.placement",
            f"spread cannot place {len(servers)} servers on {len(hosts)} host(s)"
            f" ({', '.join(hosts)}) with at most {limit} per host, so that losing one"
            " keeps a majority",
            SPREAD_HINT,
        )


def _listing(crowded: dict[str, int]) -> str:
    return ", ".join(f"{count} servers pinned to {host}" for host, count in crowded.items())


def check_ha(data: dict[str, Any], found: Findings) -> None:
    """HA restarts a VM on another host, and only while the hosts left keep corosync's
    quorum: one host has nowhere to go, two lose quorum with either one."""
    pve = data["proxmox"]
    if not pve["ha"]:
        return
    hosts = list(dict.fromkeys(pve["nodes"]))
    if len(hosts) < 2:
        found.error(
            "proxmox.ha",
            f"needs at least 2 Proxmox hosts (3 for quorum), proxmox.nodes lists {len(hosts)}",
            "list the cluster's hosts in proxmox.nodes, or set proxmox.ha: false",
        )
    elif len(hosts) == 2:
        found.warn(
            "proxmox.ha",
            "with 2 hosts, losing one loses corosync's quorum and HA recovers nothing",
            "add a third host to proxmox.nodes, or a QDevice to the Proxmox cluster",
        )
    servers = [n for n in data["nodes"] if n["role"] == "server"]
    if len(hosts) >= 2 and len(servers) > len(hosts):
        found.warn(
            "proxmox.ha",
            f"{len(servers)} servers cannot be kept apart on {len(hosts)} hosts;"
            " HA will not keep them on different hosts",
            "add hosts to proxmox.nodes",
        )
