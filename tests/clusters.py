"""The one builder of test clusters: unit tests, the fake PVE's harness, benchmarks and QEMU.

Every caller states only what differs from a plain lab (how many nodes, which Proxmox, which
network), so a change to cluster.yaml's shape is made here once.
"""

from __future__ import annotations

import copy
from typing import Any

from generator import config, yamlio
from generator.config.model import Cluster

SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd7vU0dXXv0m5ZbQm1Zk9a7R1L3r6d8Kq0mC5tHf0kQ me@laptop"
)
EVERY_COMPONENT = {
    "traefik": True,
    "metallb": True,
    "longhorn": True,
    "monitoring": True,
    "cert_manager": True,
}
PROXMOX = {
    "host": "pve.lan",
    "node": "pve",
    "token_id": "homelab@pve!homelab-gen",
    "template_vmid": 9000,
    "storage": "local-lvm",
    "seed_storage": "local",
    "bridge": "vmbr0",
}


def small_nodes(servers: int, agents: int, sized: bool = False) -> list[dict[str, Any]]:
    """Up to a few dozen nodes on a /24: k3s-server-N at .1N, k3s-agent-N at .10N."""
    rows = [
        {"name": f"k3s-server-{i}", "role": "server", "vmid": 200 + i, "ip": f"10.0.0.{10 + i}"}
        for i in range(1, servers + 1)
    ] + [
        {"name": f"k3s-agent-{i}", "role": "agent", "vmid": 300 + i, "ip": f"10.0.0.{100 + i}"}
        for i in range(1, agents + 1)
    ]
    if sized:
        for row in rows:
            row.update(
                {"cores": 2, "memory": 4096, "disk": 32}
                if row["role"] == "server"
                else {"cores": 2, "memory": 2048, "disk": 20}
            )
    return rows


def wide_nodes(servers: int, agents: int) -> list[dict[str, Any]]:
    """Hundreds of nodes on a /16: servers in 10.0.1.0/24, agents from 10.0.10.1 up."""
    return [
        {"name": f"server-{i}", "role": "server", "vmid": 200 + i, "ip": f"10.0.1.{i}"}
        for i in range(1, servers + 1)
    ] + [
        {
            "name": f"agent-{i}",
            "role": "agent",
            "vmid": 1000 + i,
            "ip": f"10.0.{10 + i // 250}.{i % 250 + 1}",
        }
        for i in range(agents)
    ]


def small_network(servers: int) -> dict[str, Any]:
    network: dict[str, Any] = {"cidr": "10.0.0.0/24", "gateway": "10.0.0.1", "dns": ["10.0.0.1"]}
    if servers >= 3:
        network["api_vip"] = "10.0.0.5"
    network["metallb_range"] = "10.0.0.200-10.0.0.250"
    return network


def wide_network(servers: int) -> dict[str, Any]:
    network: dict[str, Any] = {"cidr": "10.0.0.0/16", "gateway": "10.0.0.1", "dns": ["10.0.0.1"]}
    if servers > 1:
        network["api_vip"] = "10.0.0.10"
    network["metallb_range"] = "10.0.200.1-10.0.200.50"
    return network


def cluster_data(
    nodes: list[dict[str, Any]],
    network: dict[str, Any],
    *,
    cluster: dict[str, Any] | None = None,
    proxmox: dict[str, Any] | None = None,
    components: dict[str, Any] | None = None,
    ssh_keys: list[str] | None = None,
) -> dict[str, Any]:
    """cluster.yaml as plain data; each keyword overrides or extends one section."""
    data: dict[str, Any] = {
        "cluster": {
            "name": "home",
            "domain": "lab.example.com",
            "k3s_version": "v1.33.4+k3s1",
            "git": {"url": "https://github.com/me/home-ops.git", "branch": "main"},
            **(cluster or {}),
        },
        "network": network,
        "proxmox": {**PROXMOX, **(proxmox or {})},
        "ssh_authorized_keys": ssh_keys or [SSH_KEY],
        "nodes": nodes,
    }
    if components is not None:
        data["components"] = components
    return data


def text_of(data: dict[str, Any]) -> str:
    return yamlio.dump_text(data)


def build(data: dict[str, Any], source: str = "test cluster.yaml") -> Cluster:
    return config.from_data(copy.deepcopy(data), source=source).cluster
