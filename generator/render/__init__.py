"""Pure rendering: a validated Cluster (and its secrets) in, `{path: RenderedFile}` out."""

from __future__ import annotations

from generator.config.model import Cluster
from generator.render.output import RenderedFile
from generator.secrets import Secrets


def render_all(cluster: Cluster, secrets: Secrets) -> dict[str, RenderedFile]:
    from generator.render.gitops import render_gitops
    from generator.render.seeds import render_seeds

    return {**render_seeds(cluster, secrets), **render_gitops(cluster, secrets)}
