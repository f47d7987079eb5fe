"""`validate` beyond cluster.yaml: the rendered tree's own consistency."""

from __future__ import annotations

from pathlib import Path

from generator.model import Cluster


def is_rendered(directory: Path) -> bool:
    return (directory / "gitops").is_dir()


def check_rendered(directory: Path, cluster: Cluster) -> list[str]:
    """Problems in the rendered files, as `path: what is wrong (hint)`; [] when none."""
    from generator.render.gitops import check_tree

    return check_tree(directory, cluster)
