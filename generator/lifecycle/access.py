"""The admin kubeconfig lifecycle runs with: the one `homelab-gen kubeconfig` wrote into the
cluster repo. Never fetched behind the user's back: draining needs a cluster the user has
seen answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from generator.config.model import Cluster
from generator.status import gather, kubeconfig


def read_kubeconfig(cluster: Cluster, directory: Path) -> tuple[dict[str, Any] | None, str]:
    """The kubeconfig, or None and why there is none."""
    path = gather.kubeconfig_path(cluster, directory)
    if not path.is_file():
        return None, f"{path} does not exist (run 'homelab-gen kubeconfig' first)"
    return kubeconfig.parse(path.read_text(), str(path)), ""
