"""Steps that several commands share and that span stages: the cluster repo on disk, then
Proxmox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from generator import workspace
from generator.environment import Environment
from generator.proxmox import core


def prepare_from_disk(
    directory: Path, env: Environment, prune: bool, warn: Callable[[str], None]
) -> core.Prepared:
    """cluster.yaml and the rendered seeds on disk, then a look at Proxmox and a plan."""
    cluster = core.load_cluster(directory, warn)
    texts = workspace.load_seed_texts(directory, cluster)
    client = core.connect(cluster, directory, env=env, warn=warn)
    return core.prepare(client, cluster, texts, prune)
