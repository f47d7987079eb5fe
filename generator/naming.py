"""Names and identifiers derived from cluster.yaml that several stages must agree on: VM
tags and the ownership line, MACs, and the cluster repo's paths (the `.homelab-gen/` state
files are named in generator/fileio.py, below the secrets store that keeps them)."""

from __future__ import annotations

import hashlib
import re

from generator.config.model import Cluster, Node

# Proxmox's own OUI for generated MACs; boot sets the same MAC that network-config matches.
PROXMOX_OUI = "BC:24:11"
TOOL_TAG = "homelab-gen"
# The files of a NoCloud seed: rendered under cloud-init/<node>/, packed into the seed ISO.
SEED_FILES = ("user-data", "meta-data", "network-config")


def node_mac(cluster_name: str, node_name: str) -> str:
    """A stable MAC per node: the NIC is matched by it, since names differ across images."""
    digest = hashlib.sha256(f"{cluster_name}/{node_name}".encode()).digest()
    return PROXMOX_OUI + "".join(f":{b:02X}" for b in digest[:3])


def instance_id(cluster: Cluster, node: Node) -> str:
    """Fixed per node, so editing user-data never re-runs first-boot modules."""
    return f"{cluster.name}-{node.name}-{node.vmid}"


def fqdn(cluster: Cluster, node: Node) -> str:
    return f"{node.name}.{cluster.cluster.domain}"


# -- a VM's tags and ownership line: written and parsed here only --------------------------
CLUSTER_TAG_PREFIX = "cluster-"
OWNER_LINE = re.compile(r"^homelab-gen: cluster=(?P<cluster>\S+) node=(?P<node>\S+)\s*$", re.M)


def cluster_tag(cluster: Cluster) -> str:
    return f"{CLUSTER_TAG_PREFIX}{cluster.name}"


def vm_tags(cluster: Cluster) -> str:
    """The tags boot sets on a node's VM, as Proxmox's `tags` property."""
    return f"{TOOL_TAG};{cluster_tag(cluster)}"


def parse_tags(value: object) -> frozenset[str]:
    """A `tags` property as a set: Proxmox separates them with `;`, `,` or spaces."""
    return frozenset(t for t in re.split(r"[;, ]+", str(value or "")) if t)


def tagged_for(tags: frozenset[str], cluster: Cluster) -> bool:
    return {TOOL_TAG, cluster_tag(cluster)} <= tags


def tagged_cluster(tag: str) -> str | None:
    """The cluster a `cluster-<name>` tag names, or None for any other tag."""
    return tag.removeprefix(CLUSTER_TAG_PREFIX) if tag.startswith(CLUSTER_TAG_PREFIX) else None


def owner_line(cluster: Cluster, node: Node) -> str:
    return f"homelab-gen: cluster={cluster.name} node={node.name}"


def parse_owner(description: str) -> tuple[str, str] | None:
    """(cluster, node) from a description's ownership line, if it has one."""
    found = OWNER_LINE.search(description)
    return (found["cluster"], found["node"]) if found else None


def ha_rule_id(cluster: Cluster) -> str:
    """The PVE 9 HA rule keeping this cluster's servers apart (a pve-configid)."""
    return f"{TOOL_TAG}-{cluster.name}-servers"


def ha_group_id(cluster: Cluster, node_name: str) -> str:
    """The PVE 8 HA group of one server (a pve-configid)."""
    return f"{TOOL_TAG}-{cluster.name}-{node_name}"


def api_dns_name(cluster: Cluster) -> str:
    return f"api.{cluster.cluster.domain}"


# -- the cluster repo's paths, relative to its root -----------------------------------------
SEED_DIR = "cloud-init"


def seed_path(node_name: str, file: str) -> str:
    """`cloud-init/<node>/<file>`: a rendered seed file, one of SEED_FILES."""
    return f"{SEED_DIR}/{node_name}/{file}"


def kubeconfig_file(cluster: Cluster) -> str:
    """Where `kubeconfig` writes by default, and where `status` looks first."""
    return f"{cluster.name}.kubeconfig"


# The Secret in flux-system that holds the age key: the first server's seed creates it, and
# every Flux Kustomization names it in `decryption`.
SOPS_AGE_SECRET = "sops-age"
