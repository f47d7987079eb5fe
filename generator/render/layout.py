"""Where the gitops/ tree's folders are in the cluster repo; the seeds' folder is in naming."""

from __future__ import annotations

GITOPS = "gitops"
CONTROLLERS_DIR = f"{GITOPS}/infrastructure/controllers"
CONFIGS_DIR = f"{GITOPS}/infrastructure/configs"
# The K3s upgrade Plans (render/system_upgrade.py): always there, whatever is switched on.
SYSTEM_UPGRADE_DIR = f"{GITOPS}/infrastructure/system-upgrade"
APPS_DIR = f"{GITOPS}/apps"


def flux_cluster_dir(cluster_name: str) -> str:
    """The folder the FluxInstance syncs: the Kustomizations that apply everything else."""
    return f"{GITOPS}/clusters/{cluster_name}"
