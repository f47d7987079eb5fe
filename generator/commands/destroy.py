from __future__ import annotations

import argparse
from typing import Any

from generator.commands._common import add_command, yes_option
from generator.commands._io import confirm, spinner, warn


def configure(sub: Any) -> None:
    parser = add_command(
        sub,
        "destroy",
        run,
        help="stop and delete this cluster's VMs and uploaded seeds (only its own)",
    )
    yes_option(parser)


def run(args: argparse.Namespace) -> int:
    from generator.environment import Environment
    from generator.proxmox import core, view

    env = Environment.read()
    with spinner():
        client, cluster, observed = core.observe_from_disk(args.directory, env, warn=warn)
    plan = core.destroy_plan(cluster, observed)
    for warning in plan.warnings:
        warn(f"warning: {warning}")
    if plan.is_noop and plan.unreachable:
        return _unreached(plan.unreachable)
    if plan.is_noop:
        print(f"nothing to destroy: no VM or seed of cluster {cluster.name} on Proxmox")
        return 0
    for vm in plan.vms:
        what = ", ".join(dict(a.params).get("volid", a.kind) for a in vm.actions)
        if vm.vmid:
            print(f"{vm.name} ({vm.vmid}): {what}")
        else:  # a seed file, or the HA rule
            print(f"seeds: {what}" if vm in plan.seed_part.vms else f"{vm.name}: {what}")
    if not args.yes and not confirm(f"delete these from Proxmox for cluster {cluster.name}?"):
        print("nothing changed")
        return 1
    with view.progress(plan) as progress:
        outcomes = core.destroy(client, cluster, observed, plan, progress)
    failed = [o for o in outcomes if o.error]
    for outcome in outcomes:
        print(f"failed: {outcome.error}" if outcome.error else f"removed {outcome.vm}")
    if failed:
        return 1
    if plan.unreachable:
        return _unreached(plan.unreachable)  # the cluster is not gone yet: remember it
    from generator.lifecycle import flow

    said = flow.forget_cluster(args.directory)
    if said:
        print(said)
    return 0


def _unreached(lines: tuple[str, ...]) -> int:
    """VMs on an offline host stay: named, and exit 1, so the next destroy finishes."""
    import sys

    for line in lines:
        print(f"not done: {line}", file=sys.stderr)
    return 1
