from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from generator.commands._common import add_command

if TYPE_CHECKING:
    from pathlib import Path

    from generator.config.model import Cluster


def configure(sub: Any) -> None:
    add_command(
        sub,
        "validate",
        run,
        help="check cluster.yaml, the secrets render needs, and that the rendered files are"
        " current",
    )


def run(args: argparse.Namespace) -> int:
    from generator import config
    from generator.render import check, guards

    loaded = config.load(args.directory)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    cluster = loaded.cluster
    # As render refuses them: a skipped minor, a downgrade, a change of CNI.
    guards.refuse_unsafe_changes(args.directory, cluster)
    summary = (
        f"cluster.yaml is valid: {len(cluster.servers)} server(s), {len(cluster.agents)} agent(s)"
    )
    problems, rendered_before = freshness(args.directory, cluster)
    if not rendered_before and not check.is_rendered(args.directory) and not problems:
        print(f"{summary}; nothing rendered yet to check (run 'homelab-gen render')")
        return 0
    if check.is_rendered(args.directory) or rendered_before:
        problems += check.check_tree(args.directory, cluster)
    if problems:
        print(f"error: the rendered tree has {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    print(f"{summary}; the rendered files are current and consistent")
    return 0


def freshness(directory: Path, cluster: Cluster) -> tuple[list[str], bool]:
    """What `render --check` would report, as problems, and whether this lab was rendered
    before (it has its secrets store or seeds). Render's own errors (a secret cluster.yaml
    needs but the store lacks, a missing age key) are problems too: validate reads the
    secrets as render does, so render never fails on what validate passed."""
    from generator import secretstore, workspace
    from generator.errors import HomelabError

    rendered_before = secretstore.store_exists(directory) or workspace.seeds_exist(directory)
    try:
        plan = workspace.plan_render(directory, cluster, write_secrets=False)
    except HomelabError as exc:
        return [f"{secretstore.STORE_FILE}: {exc}"], rendered_before
    if not rendered_before:
        return [], False  # a first render makes the secrets: nothing to compare yet
    return [_problem(item.path, item.change) for item in plan.pending], True


def _problem(path: str, change: Any) -> str:
    from generator.workspace import Change

    render = "run homelab-gen render"
    force = "run 'homelab-gen render --force' to overwrite it, or undo your edit"
    return {
        Change.CREATE: f"{path}: missing ({render})",
        Change.UPDATE: f"{path}: out of date with cluster.yaml ({render})",
        Change.ORPHAN: f"{path}: no longer rendered ({render} to remove it)",
        Change.EDITED: f"{path}: edited by hand ({force})",
        Change.EDITED_ORPHAN: f"{path}: edited by hand and no longer rendered ({force})",
    }[change]
