"""The defaults of cluster.yaml's optional fields, filled in once after the schema passes, so
the checks and the model always see complete data."""

from __future__ import annotations

import copy
from typing import Any

from generator.config.model import COMPONENTS, SeedMethod


def with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Fill in every optional field, so checks and the model see complete data."""
    out = copy.deepcopy(data)
    cluster = out["cluster"]
    git = cluster["git"]
    git.setdefault("branch", "main")
    git.setdefault("private", not git["url"].startswith("https://"))
    cluster.setdefault("cni", "flannel")
    # With Calico, K3s runs no Flannel at all: its own setting for that is backend "none".
    cluster.setdefault("flannel_backend", "vxlan" if cluster["cni"] == "flannel" else "none")
    cluster.setdefault("cluster_cidr", "10.42.0.0/16")
    cluster.setdefault("service_cidr", "10.43.0.0/16")
    cluster.setdefault("initialized", False)
    out["network"].setdefault("search_domain", cluster["domain"])
    pve = out["proxmox"]
    # parallel is a cap: boot starts this wide and backs off by itself while Proxmox is busy
    # (proxmox/pacing.py), so the default is wide enough for a 3+10 lab to go all at once.
    for key, value in (
        ("port", 8006),
        ("verify_tls", True),
        ("seed_method", SeedMethod.ISO.value),
        ("clone", "linked"),
        ("parallel", 16),
        ("ssh_user", "root"),
        ("ssh_port", 22),
        ("ha", False),
    ):
        pve.setdefault(key, value)
    _placement_defaults(pve, out["nodes"])
    out.setdefault("ssh_authorized_keys", [])
    vm = out.setdefault("vm", {})
    for key, value in (
        ("user", "homelab"),
        ("timezone", "UTC"),
        ("locale", "C.UTF-8"),
        ("upgrade_packages", False),
    ):
        vm.setdefault(key, value)
    for node in out["nodes"]:
        node.setdefault("cores", 2)
        node.setdefault("memory", 4096)
        node.setdefault("disk", 32)
    comps = out.setdefault("components", {})
    for info in COMPONENTS:
        comp = comps.setdefault(info.name, {})
        comp.setdefault("enabled", info.default)
    return out


def _placement_defaults(pve: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    """Spread over the hosts only when the user listed several: a lab without
    `proxmox.nodes` keeps today's placement (proxmox.node, or a node's own pin), and its
    pinned hosts count as listed so those pins stay valid."""
    listed = "nodes" in pve
    if not listed:
        pins = [n["proxmox_node"] for n in nodes if n.get("proxmox_node")]
        pve["nodes"] = list(dict.fromkeys([pve["node"], *pins]))
    pve.setdefault("placement", "spread" if listed and len(set(pve["nodes"])) > 1 else "pack")
