from __future__ import annotations

import argparse
from typing import Any

from generator.commands._common import add_command, prepare_from_disk
from generator.commands._io import warn


def configure(sub: Any) -> None:
    parser = add_command(
        sub, "plan", run, help="show what boot would do on Proxmox, per VM; change nothing"
    )
    parser.add_argument("--prune", action="store_true", help="plan deleting orphaned VMs too")


def run(args: argparse.Namespace) -> int:
    from generator.environment import Environment
    from generator.proxmox import view

    prepared = prepare_from_disk(args.directory, Environment.read(), prune=args.prune, warn=warn)
    view.print_plan(prepared.plan)
    return 1 if prepared.plan.problems else 0
