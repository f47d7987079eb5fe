"""Whether `cluster.cni` may differ from the CNI the repo was last rendered with: never.

A running cluster cannot change its CNI in place: every pod keeps the address and routes of
the network it started on, and K3s reads `flannel-backend` only when a server first starts.
The tracked gitops tree says which one was rendered (Calico has its own Kustomization file),
so the answer is the same on every clone, with no cluster to ask.
"""

from __future__ import annotations

from pathlib import Path

from generator.config.model import Cluster
from generator.errors import ConfigError
from generator.render import calico, layout

FLANNEL = "flannel"


def last_rendered(directory: Path, cluster: Cluster) -> str | None:
    """The CNI of the gitops tree on disk; None when it was never rendered."""
    base = directory / layout.flux_cluster_dir(cluster.cluster.name)
    if not base.is_dir():
        return None
    return calico.CALICO if (base / "calico.yaml").is_file() else FLANNEL


def cni_problems(directory: Path, cluster: Cluster) -> list[str]:
    wanted, rendered = cluster.cluster.cni, last_rendered(directory, cluster)
    if rendered is None or rendered == wanted:
        return []
    folder = layout.flux_cluster_dir(cluster.cluster.name)
    return [
        f"cluster.cni: {wanted!r}, but this cluster was rendered with {rendered}; a running"
        " cluster cannot change its CNI (every pod would lose its network)"
        f" (set cni: {rendered} back; to rebuild with {wanted}: homelab-gen destroy, delete"
        f" {folder}/, then render and boot; a lab that never booted needs only the delete)"
    ]


def refuse_cni_change(directory: Path, cluster: Cluster) -> None:
    problems = cni_problems(directory, cluster)
    if problems:
        raise ConfigError(problems)
