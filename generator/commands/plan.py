from __future__ import annotations

import argparse
from typing import Any

from generator.cli import directory_option
from generator.commands._io import warn


def configure(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "plan", help="show what boot would do on Proxmox, per VM; change nothing"
    )
    directory_option(parser)
    parser.add_argument("--prune", action="store_true", help="plan deleting orphaned VMs too")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from generator.commands._common import prepare_from_disk
    from generator.environment import Environment
    from generator.proxmox import view

    prepared = prepare_from_disk(args.directory, Environment.read(), prune=args.prune, warn=warn)
    view.print_plan(prepared.plan)
    return 1 if prepared.plan.problems else 0
