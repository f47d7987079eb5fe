from __future__ import annotations

import argparse
import sys
from typing import Any

from generator.commands._common import add_command


def configure(sub: Any) -> None:
    parser = add_command(
        sub,
        "render",
        run,
        help="write cloud-init/<node>/ seeds and the gitops/ tree from cluster.yaml",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if anything would change"
    )
    mode.add_argument(
        "--dry-run", action="store_true", help="show what would change; write nothing"
    )


def run(args: argparse.Namespace) -> int:
    from generator import config, workspace
    from generator.render import upgrade_guard

    loaded = config.load(args.directory)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # Before anything is written: once pushed, the upgrade Plans apply the new version.
    upgrade_guard.refuse_unsafe_upgrade(args.directory, loaded.cluster)
    writes = not (args.check or args.dry_run)
    changes = workspace.plan_render(args.directory, loaded.cluster, write_secrets=writes)
    for note in changes.notes:
        print(f"secrets: {note}")
    pending = changes.pending
    for item in changes.diff:
        if item.change is not workspace.Change.IDENTICAL or not (args.check or args.dry_run):
            print(f"{item.change.value:9} {item.path}")
    for node in changes.changed_seeds(args.directory):
        print(
            f"note: {node}: its seed changed; if it has booted, it keeps the settings it booted"
            " with (login user, SSH keys, K3s config) until it is rebuilt (homelab-gen boot"
            " --replace-stale)"
        )
    if args.check:
        print(
            f"{len(pending)} file(s) would change" if pending else "rendered files are up to date"
        )
        return 1 if pending else 0
    if args.dry_run:
        print(f"{len(pending)} file(s) would change; nothing written (dry run)")
        return 0
    workspace.apply_render(args.directory, changes)
    counts = {c: sum(1 for i in changes.diff if i.change is c) for c in workspace.Change}
    print(", ".join(f"{n} {c.value}" for c, n in counts.items() if n) or "nothing rendered")
    return 0
