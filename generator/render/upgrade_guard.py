"""The K3s version a cluster repo was last rendered with, and whether `cluster.k3s_version` may
move from it (config/checks/k3s_version.py has the rule and its sources).

`render` and `validate` both ask before anything else, so the two always agree: once a new
version is rendered and pushed, the Plans upgrade the running nodes to it, and a skipped minor
or a downgrade would be applied to a live cluster.

Where the last version is read, in order:
1. the server Plan's spec.version (gitops/infrastructure/system-upgrade/k3s-server.yaml);
2. a lab rendered before the Plans existed: the seeds' INSTALL_K3S_VERSION (the newest one);
3. neither (a new lab): nothing to compare, nothing refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml.error import YAMLError

from generator import naming, yamlio
from generator.config.checks import k3s_version
from generator.config.checks.k3s_version import K3sVersion
from generator.config.model import Cluster
from generator.render import system_upgrade

SEED_INSTALL_VERSION = re.compile(r"INSTALL_K3S_VERSION='([^']+)'")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def plan_version(directory: Path) -> K3sVersion | None:
    text = _read(directory / system_upgrade.PLAN_PATHS[system_upgrade.SERVER_PLAN])
    if text is None:
        return None
    try:
        docs = yamlio.load_all_plain(text)
    except YAMLError:
        return None  # validate's tree check reports broken YAML
    for doc in docs:
        spec = doc.get("spec") if isinstance(doc, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("version"), str):
            return k3s_version.parse(spec["version"])
    return None


def seed_version(directory: Path) -> K3sVersion | None:
    found = []
    for path in sorted((directory / naming.SEED_DIR).glob("*/user-data")):
        text = _read(path) or ""
        found += [v for m in SEED_INSTALL_VERSION.finditer(text) if (v := k3s_version.parse(m[1]))]
    return max(found, default=None)


def last_rendered(directory: Path) -> K3sVersion | None:
    return plan_version(directory) or seed_version(directory)


def upgrade_problems(directory: Path, cluster: Cluster) -> list[str]:
    """`cluster.k3s_version: ...` problems; [] when the change is safe or cannot be judged."""
    wanted = k3s_version.parse(cluster.cluster.k3s_version)
    current = last_rendered(directory)
    if wanted is None or current is None:
        return []  # a malformed k3s_version is the config check's error
    problem = k3s_version.upgrade_problem(current, wanted)
    return [problem] if problem else []
