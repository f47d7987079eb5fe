"""What `render` and `validate` refuse before anything else, against the repo as last
rendered: changes a running cluster cannot take from a commit. Both commands ask here, so
they always agree, and every such problem is listed at once."""

from __future__ import annotations

from pathlib import Path

from generator.config.model import Cluster
from generator.errors import ConfigError
from generator.render import cni_guard, upgrade_guard


def refuse_unsafe_changes(directory: Path, cluster: Cluster) -> None:
    problems = upgrade_guard.upgrade_problems(directory, cluster)
    problems += cni_guard.cni_problems(directory, cluster)
    if problems:
        raise ConfigError(problems)
