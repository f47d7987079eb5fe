from __future__ import annotations

import argparse
from typing import Any

from generator.commands._common import add_command, prepare_from_disk
from generator.commands._io import spinner, warn
from generator.commands.boot import check_replace_options, replace_options


def configure(sub: Any) -> None:
    parser = add_command(
        sub, "plan", run, help="show what boot would do on Proxmox, per VM; change nothing"
    )
    parser.add_argument("--prune", action="store_true", help="plan deleting orphaned VMs too")
    replace_options(parser)


def run(args: argparse.Namespace) -> int:
    from generator.environment import Environment
    from generator.lifecycle import flow
    from generator.proxmox import view

    check_replace_options(args)
    env = Environment.read()
    request = flow.Request(tuple(args.replace), args.replace_stale, args.prune, args.allow_move)
    if flow.wanted(args.directory, request):
        with spinner():
            prepared = flow.prepare(
                args.directory, env, request, dry_run=True, warn=warn, say=print
            )
        for note in prepared.notes:
            print(f"note: {note}")
        view.print_plan(prepared.plan.shown)
        shown = prepared.plan.shown
        return 1 if shown.problems or shown.unreachable else 0
    with spinner():
        plain = prepare_from_disk(args.directory, env, prune=args.prune, warn=warn)
    view.print_plan(plain.plan)
    return 1 if plain.plan.problems or plain.plan.unreachable else 0
