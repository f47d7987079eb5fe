from __future__ import annotations

import argparse
import sys
from typing import Any

from generator.commands._common import (
    add_command,
    prepare_from_disk,
    yes_option,
)
from generator.commands._io import confirm, spinner, warn


def configure(sub: Any) -> None:
    parser = add_command(
        sub,
        "boot",
        run,
        help="create, configure and start the cluster's VMs on Proxmox (idempotent)",
    )
    yes_option(parser)
    parser.add_argument("--dry-run", action="store_true", help="show the plan only (= plan)")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="drain, delete from Kubernetes and then delete VMs no longer in cluster.yaml",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help="at most N steps at once; boot backs off by itself while Proxmox is busy"
        " (default: proxmox.parallel, 16)",
    )
    replace_options(parser)
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long evictions may wait on PodDisruptionBudgets (default 300)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="how long a rebuilt node may take to be Ready (default 900)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="drain also evicts pods that no controller manages (they are not recreated)",
    )


def replace_options(parser: argparse.ArgumentParser) -> None:
    """Which nodes to rebuild: `boot` does it, `plan` shows it."""
    parser.add_argument(
        "--replace",
        nargs="+",
        metavar="NODE",
        default=[],
        help="rebuild these nodes from their current seed, one at a time:"
        " drain, delete the VM and the Node, create it again, wait until Ready",
    )
    parser.add_argument(
        "--replace-stale",
        action="store_true",
        help="replace every node whose VM booted an older seed than the rendered one",
    )
    parser.add_argument(
        "--allow-move",
        action="store_true",
        help="with --replace: a node whose Proxmox host is offline is made again as a new VM"
        " (new vmid, written to cluster.yaml) on another host; its old VM is deleted by the"
        " first boot after that host is back",
    )


def check_replace_options(args: argparse.Namespace) -> None:
    from generator.errors import UsageError

    if args.allow_move and not args.replace:
        raise UsageError(
            "--allow-move goes with --replace NODE: it lets a named node whose Proxmox host"
            " is offline be made again on another host",
            "homelab-gen boot --replace NODE --allow-move",
        )


def run(args: argparse.Namespace) -> int:
    from generator.environment import Environment
    from generator.errors import UsageError
    from generator.lifecycle import flow

    check_replace_options(args)
    if args.parallel is not None and args.parallel < 1:
        raise UsageError("--parallel must be 1 or more")
    if args.drain_timeout <= 0 or args.ready_timeout <= 0:
        raise UsageError("--drain-timeout and --ready-timeout must be more than 0 seconds")
    request = flow.Request(tuple(args.replace), args.replace_stale, args.prune, args.allow_move)
    env = Environment.read()
    if flow.wanted(args.directory, request):
        return _lifecycle(args, env)
    return _plain(args, env)


def _plain(args: argparse.Namespace, env: Any) -> int:
    from generator.proxmox import core, seeds, view

    with spinner():
        prepared = prepare_from_disk(args.directory, env, prune=args.prune, warn=warn)
    view.print_plan(prepared.plan)
    if prepared.plan.problems:
        return 1
    if args.dry_run or prepared.plan.is_noop:
        return _unreached(prepared.plan)
    if not args.yes and not confirm(f"apply {len(prepared.plan.actions)} action(s)?"):
        print("nothing changed")
        return 1
    parallel = args.parallel or prepared.cluster.proxmox.parallel
    with view.progress(prepared.plan) as progress:
        ssh = seeds.default_ssh_target(prepared.cluster, env)  # used by seed_method snippets
        outcomes = core.boot(prepared.client, prepared, parallel, progress, ssh)
    return _report(outcomes, prepared.plan)


def _lifecycle(args: argparse.Namespace, env: Any) -> int:
    from generator.lifecycle import flow
    from generator.lifecycle.run import Settings
    from generator.proxmox import seeds, view

    request = flow.Request(tuple(args.replace), args.replace_stale, args.prune, args.allow_move)
    with spinner():
        prepared = flow.prepare(
            args.directory, env, request, dry_run=args.dry_run, warn=warn, say=print
        )
    shown = prepared.plan.shown
    for note in prepared.notes if args.dry_run else ():
        print(f"note: {note}")
    view.print_plan(shown)
    if shown.problems:
        return 1
    if args.dry_run or shown.is_noop:
        return _unreached(shown)
    if not args.yes and not confirm(f"apply {len(shown.actions)} action(s)?"):
        print("nothing changed")
        return 1
    cluster = prepared.boot.cluster
    settings = Settings(
        drain_timeout=args.drain_timeout, ready_timeout=args.ready_timeout, force=args.force
    )
    parallel = args.parallel or cluster.proxmox.parallel
    with view.progress(shown) as progress:
        ssh = seeds.default_ssh_target(cluster, env)
        outcomes = flow.apply_all(prepared, args.directory, settings, progress, parallel, ssh)
    _moved(prepared.plan)
    return _report(outcomes, shown)


def _moved(plan: Any) -> None:
    """What a move changed in cluster.yaml, and the old VM it leaves behind."""
    from generator.lifecycle import moving

    if plan.moves:
        print(f"{moving.moved_note(plan.moves)}: commit both")
    for line in plan.warnings:
        warn(f"warning: {line}")


def _report(outcomes: Any, plan: Any) -> int:
    from generator.proxmox import view

    failed = view.print_outcomes(outcomes)
    for vm in plan.vms:
        for note in vm.notes:
            print(f"note: {vm.name}: {note}")
    if failed:
        print(
            f"{failed} VM(s) failed; fix the cause and run 'homelab-gen boot' again",
            file=sys.stderr,
        )
        return 1
    if plan.unreachable:
        return _unreached(plan)
    print("done; next: homelab-gen status --wait")
    return 0


def _unreached(plan: Any) -> int:
    """1 when VMs sit on an offline host: the rest is done, these wait for the host."""
    for line in plan.unreachable:
        print(f"not done: {line}", file=sys.stderr)
    return 1 if plan.unreachable else 0
