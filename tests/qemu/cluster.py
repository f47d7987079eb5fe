"""The cluster the QEMU tier boots: 3 servers + 1 agent on qemu's own user-mode network.

User-mode networking gives the guest 10.0.2.0/24 with the host side at 10.0.2.2 (gateway)
and a DNS forwarder at 10.0.2.3; `restrict=on` drops anything bound further. Longhorn is
on, so the seed's iSCSI/NFS packages and multipath settings are exercised too.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator import naming
from generator.config.model import Cluster, Node
from generator.secrets import Secrets
from tests import clusters

QEMU_NETWORK = {
    "cidr": "10.0.2.0/24",
    "gateway": "10.0.2.2",
    "dns": ["10.0.2.3"],
    "api_vip": "10.0.2.10",
    "metallb_range": "10.0.2.200-10.0.2.220",
}
QEMU_NODES = [
    {"name": "server-1", "role": "server", "vmid": 301, "ip": "10.0.2.15"},
    {"name": "server-2", "role": "server", "vmid": 302, "ip": "10.0.2.16"},
    {"name": "server-3", "role": "server", "vmid": 303, "ip": "10.0.2.17"},
    {"name": "agent-1", "role": "agent", "vmid": 311, "ip": "10.0.2.18"},
]
CLUSTER = clusters.cluster_data(
    QEMU_NODES,
    QEMU_NETWORK,
    cluster={
        "name": "qemu",
        "domain": "lab.test",
        "git": {"url": "https://git.lab.test/me/home-ops.git", "branch": "main"},
    },
    proxmox={"host": "pve.lab.test"},
    components=clusters.EVERY_COMPONENT,
    ssh_keys=[clusters.SSH_KEY.replace("me@laptop", "qemu@test")],
)

# Test-only values; nothing real is guarded by them. The age key makes the first server's
# seed carry the unit that creates Flux's bootstrap Secrets, so the boot exercises it too.
SECRETS = Secrets(
    k3s_token="qemu-test-token-0c9d2e7b",
    grafana_admin_password="qemu-test-pw",
    agent_token="qemu-test-agent-token-5a1f",
    age_key="AGE-SECRET-KEY-1QEMUTESTN0TAREA1KEYQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
)


@dataclass(frozen=True)
class Target:
    """One node of the test cluster, with what `boot` would give its VM."""

    cluster: Cluster
    node: Node
    seed: dict[str, str]

    @property
    def mac(self) -> str:
        return naming.node_mac(self.cluster.name, self.node.name)


# A node name with this prefix boots the same node of the cluster with `cni: calico`.
CALICO_PREFIX = "calico-"


def qemu_cluster(cni: str = "flannel") -> Cluster:
    data = {**CLUSTER, "cluster": {**CLUSTER["cluster"], "cni": cni}}
    return clusters.build(data, source="qemu test cluster.yaml")


def target(node_name: str) -> Target:
    from generator.render.seeds import node_seed

    cni = "calico" if node_name.startswith(CALICO_PREFIX) else "flannel"
    node_name = node_name.removeprefix(CALICO_PREFIX)
    cluster = qemu_cluster(cni)
    by_name = {node.name: node for node in cluster.nodes}
    if node_name not in by_name:
        raise KeyError(f"no node {node_name!r}; the test cluster has {', '.join(by_name)}")
    node = by_name[node_name]
    return Target(cluster, node, node_seed(cluster, SECRETS, node))
