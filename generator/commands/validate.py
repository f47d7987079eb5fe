from __future__ import annotations

import argparse
import sys
from typing import Any

from generator.commands._common import add_command


def configure(sub: Any) -> None:
    add_command(sub, "validate", run, help="check cluster.yaml and the rendered files")


def run(args: argparse.Namespace) -> int:
    from generator import config
    from generator.render import check, upgrade_guard

    loaded = config.load(args.directory)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    cluster = loaded.cluster
    # As render refuses it: a skipped minor or a downgrade of the version last rendered.
    upgrade_guard.refuse_unsafe_upgrade(args.directory, cluster)
    summary = (
        f"cluster.yaml is valid: {len(cluster.servers)} server(s), {len(cluster.agents)} agent(s)"
    )
    if not check.is_rendered(args.directory):
        print(f"{summary}; nothing rendered yet to check (run 'homelab-gen render')")
        return 0
    problems = check.check_tree(args.directory, cluster)
    if problems:
        print(f"error: the rendered tree has {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    print(f"{summary}; the rendered tree is consistent")
    return 0
