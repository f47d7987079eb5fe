from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from generator.commands._common import add_command

if TYPE_CHECKING:
    from pathlib import Path

    from generator.workspace import RenderPlan

FORCE_HINT = "run 'homelab-gen render --force' to overwrite them, or undo your edits"


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
    mode.add_argument(
        "--force",
        action="store_true",
        help="overwrite (or remove) rendered files that were edited by hand",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="with --check or --dry-run: show a unified diff of each change",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also list the files that are identical"
    )


def run(args: argparse.Namespace) -> int:
    from generator import config, workspace
    from generator.errors import UsageError
    from generator.render import guards

    preview = args.check or args.dry_run
    if args.diff and not preview:
        raise UsageError("--diff shows what would change", "use it with --check or --dry-run")
    loaded = config.load(args.directory)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # Before anything is written: once pushed, Flux and the upgrade Plans apply it.
    guards.refuse_unsafe_changes(args.directory, loaded.cluster)
    plan = workspace.plan_render(args.directory, loaded.cluster, write_secrets=not preview)
    for note in plan.notes:
        print(f"secrets: {note}")
    report_changes(args.directory, plan, args.verbose, args.diff, args.force)
    for node in plan.changed_seeds(args.directory):
        print(
            f"note: {node}: its seed changed; if it has booted, it keeps the settings it booted"
            " with (login user, SSH keys, K3s config) until it is rebuilt (homelab-gen boot"
            " --replace-stale)"
        )
    pending = plan.pending
    if args.check:
        print(f"{len(pending)} file(s) would change ({summary(plan, preview=True)})")
        if not pending:
            print("rendered files are up to date")
        return 1 if pending else 0
    if args.dry_run:
        print(f"{len(pending)} file(s) would change; nothing written (dry run)")
        print(summary(plan, preview=True))
        return 0
    workspace.apply_render(args.directory, plan, force=args.force)
    print(summary(plan, force=args.force))
    kept = [] if args.force else plan.edited
    if kept:
        print(
            f"error: {len(kept)} file(s) edited by hand were kept: "
            + ", ".join(d.path for d in kept)
            + f" ({FORCE_HINT})",
            file=sys.stderr,
        )
        return 1
    return 0


def report_changes(
    directory: Path, plan: RenderPlan, verbose: bool, diff: bool, force: bool
) -> None:
    """One line per file that changes (all of them with `verbose`); hand edits always come
    with their diff against what render writes, other changes with `diff`."""
    from generator.workspace import Change, unified_diff

    for item in plan.diff:
        if item.change is Change.IDENTICAL and not verbose:
            continue
        print(f"{_label(item.change, force):9} {item.path}{_why(item.change, force)}")
        hand_edit = item.change is Change.EDITED and not force
        if hand_edit or (diff and item.change is not Change.IDENTICAL):
            for line in unified_diff(directory, plan, item):
                print(line)


def _label(change: Any, force: bool) -> str:
    from generator.workspace import Change

    if change is Change.EDITED_ORPHAN:
        return "remove" if force else "edited"
    if change is Change.EDITED and force:
        return "overwrite"
    return str(change.value)


def _why(change: Any, force: bool) -> str:
    from generator.workspace import Change

    if change is Change.EDITED:
        return " (edited by hand: overwritten)" if force else " (edited by hand: kept)"
    if change is Change.EDITED_ORPHAN:
        return (
            " (edited by hand, no longer rendered: removed)"
            if force
            else " (edited by hand, no longer rendered: kept)"
        )
    return ""


def summary(plan: RenderPlan, preview: bool = False, force: bool = False) -> str:
    """One line of counts, e.g. `3 updated, 1 created, 57 unchanged`."""
    from generator.workspace import Change

    done = {
        Change.UPDATE: "updated",
        Change.CREATE: "created",
        Change.ORPHAN: "removed",
        Change.EDITED: "overwritten" if force else "kept (edited by hand)",
        Change.EDITED_ORPHAN: "removed" if force else "kept (edited by hand)",
        Change.IDENTICAL: "unchanged",
    }
    todo = {
        Change.UPDATE: "to update",
        Change.CREATE: "to create",
        Change.ORPHAN: "to remove",
        Change.EDITED: "edited by hand",
        Change.EDITED_ORPHAN: "edited by hand",
        Change.IDENTICAL: "unchanged",
    }
    words = todo if preview else done
    counts = dict.fromkeys(words.values(), 0)
    for item in plan.diff:
        counts[words[item.change]] += 1
    return ", ".join(f"{n} {word}" for word, n in counts.items() if n) or "nothing rendered"
