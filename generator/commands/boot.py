from __future__ import annotations

import argparse
import sys
from typing import Any

from generator.commands._common import add_command, prepare_from_disk, yes_option
from generator.commands._io import confirm, warn


def configure(sub: Any) -> None:
    parser = add_command(
        sub,
        "boot",
        run,
        help="create, configure and start the cluster's VMs on Proxmox (idempotent)",
    )
    yes_option(parser)
    parser.add_argument("--dry-run", action="store_true", help="show the plan only (= plan)")
    parser.add_argument("--prune", action="store_true", help="delete VMs no longer in cluster.yaml")
    parser.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help="VMs worked on at once (default: proxmox.parallel)",
    )


def run(args: argparse.Namespace) -> int:
    from generator.environment import Environment
    from generator.errors import UsageError
    from generator.proxmox import core, seeds, view

    if args.parallel is not None and args.parallel < 1:
        raise UsageError("--parallel must be 1 or more")
    env = Environment.read()
    prepared = prepare_from_disk(args.directory, env, prune=args.prune, warn=warn)
    view.print_plan(prepared.plan)
    if prepared.plan.problems:
        return 1
    if args.dry_run or prepared.plan.is_noop:
        return 0
    if not args.yes and not confirm(f"apply {len(prepared.plan.actions)} action(s)?"):
        print("nothing changed")
        return 1
    parallel = args.parallel or prepared.cluster.proxmox.parallel
    with view.progress(prepared.plan) as progress:
        ssh = seeds.default_ssh_target(prepared.cluster, env)  # used by seed_method snippets
        outcomes = core.boot(prepared.client, prepared, parallel, progress, ssh)
    failed = view.print_outcomes(outcomes)
    for vm in prepared.plan.vms:
        for note in vm.notes:
            print(f"note: {vm.name}: {note}")
    if failed:
        print(
            f"{failed} VM(s) failed; fix the cause and run 'homelab-gen boot' again",
            file=sys.stderr,
        )
        return 1
    print("done; next: homelab-gen status --wait")
    return 0
