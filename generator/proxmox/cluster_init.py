"""Which server may start the cluster: pre-flight refusals that keep boot from making a
second cluster behind the VIP, or servers that wait for one that is gone. Pure."""

from __future__ import annotations

from collections.abc import Collection

from generator.config.model import Cluster
from generator.proxmox.observe import Observed


def second_cluster_problem(
    cluster: Cluster, observed: Observed, rebuilding: Collection[str] = ()
) -> str | None:
    """Booting the cluster-init server while other servers of the cluster exist would start a
    second, empty cluster behind the same VIP (k3s-io/k3s#13623). `rebuilding`: nodes a
    lifecycle run replaces; the first server among them is rendered to join first."""
    init = cluster.init_server
    vm = observed.vms.get(init.vmid) if init else None
    if init is None or init.name in rebuilding or (vm is not None and vm.boot_disk is not None):
        return None  # there, or no server starts the cluster: nothing is made from that seed
    others = [n.name for n in cluster.servers if n != init and n.vmid in observed.vms]
    missing = "is missing" if vm is None else "has lost its disk"
    if not others:
        return None
    return (
        f"{init.name} {missing} while {', '.join(others)} exist: its seed starts a new cluster"
        f" (cluster-init), which would split this one. If the cluster runs, rebuild it with"
        f" 'homelab-gen boot --replace {init.name}' (it then joins through the API address);"
        " if the cluster never started, 'homelab-gen destroy' and boot again"
    )


def lost_cluster_problem(cluster: Cluster, observed: Observed) -> str | None:
    """cluster.initialized says the cluster exists, so every server joins it; with none of
    its servers left, they would all wait for a cluster that is gone."""
    if not cluster.cluster.initialized or cluster.init_server is not None:
        return None
    if any(n.vmid in observed.vms for n in cluster.servers):
        return None
    return (
        "cluster.initialized is true, but no server of the cluster exists: every server would"
        " wait to join a cluster that is gone. To start a new one, set cluster.initialized:"
        " false in cluster.yaml (destroy does this), run 'homelab-gen render', then boot"
    )
