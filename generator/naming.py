"""Names and identifiers derived from cluster.yaml that several stages must agree on."""

from __future__ import annotations

import hashlib

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


def cluster_tag(cluster: Cluster) -> str:
    return f"cluster-{cluster.name}"


def api_dns_name(cluster: Cluster) -> str:
    return f"api.{cluster.cluster.domain}"
