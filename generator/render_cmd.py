"""Render a cluster repo: load secrets, render, diff against the disk, apply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator import files, secrets
from generator.files import FileDiff, RenderedFile
from generator.model import Cluster
from generator.render import render_all


@dataclass(frozen=True)
class RenderPlan:
    rendered: dict[str, RenderedFile]
    diff: list[FileDiff]

    @property
    def pending(self) -> list[FileDiff]:
        return [d for d in self.diff if d.change is not files.Change.IDENTICAL]


def seeds_exist(directory: Path) -> bool:
    return any((directory / "cloud-init").glob("*/user-data"))


def needs_deploy_key(cluster: Cluster) -> bool:
    git = cluster.cluster.git
    return git.private and not git.url.startswith("https://")


def plan_render(directory: Path, cluster: Cluster, create_secrets: bool = True) -> RenderPlan:
    if create_secrets:
        store = secrets.load_or_create(directory, seeds_exist(directory), needs_deploy_key(cluster))
    else:
        store = secrets.load(directory)
    rendered = render_all(cluster, store)
    return RenderPlan(rendered, files.diff(directory, rendered))


def apply_render(directory: Path, plan: RenderPlan) -> None:
    files.apply(directory, plan.rendered, plan.diff)
