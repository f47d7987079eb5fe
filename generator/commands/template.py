from __future__ import annotations

import argparse
import sys
from typing import Any

from generator.commands._common import add_command, connect_from_disk, yes_option
from generator.commands._io import confirm, spinner, warn

IMAGE_CHOICES = "debian-12|debian-13|ubuntu-24.04|URL"


def configure(sub: Any) -> None:
    parser = add_command(
        sub,
        "template",
        run,
        help="make the cloud-image template VM (proxmox.template_vmid) through the API",
    )
    parser.add_argument(
        "--image",
        metavar=IMAGE_CHOICES,
        help="a known cloud image (default: debian-12) or the http(s) URL of a qcow2/raw image",
    )
    parser.add_argument(
        "--checksum",
        metavar="ALGO:HEX",
        help="the image's digest, e.g. sha512:...; for known images it replaces reading the"
        " publisher's checksum file",
    )
    parser.add_argument(
        "--no-checksum",
        action="store_true",
        help="import a custom URL without any checksum (warns)",
    )
    yes_option(parser)
    parser.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")


def run(args: argparse.Namespace) -> int:
    from generator.environment import Environment
    from generator.proxmox import core, template_job
    from generator.proxmox import template as tpl
    from generator.proxmox.images import choose_source

    source, warnings = choose_source(args.image, args.checksum, args.no_checksum)
    for warning in warnings:
        warn(warning)
    with spinner():
        client, cluster = connect_from_disk(args.directory, Environment.read(), warn)
        core.check_reachable(client)
        facts = tpl.observe_template(client, cluster)
    plan = tpl.plan_template(cluster, source, facts, args.image is not None)
    _show(plan, tpl.describe)
    if plan.problems:
        return 1
    if args.dry_run or plan.is_noop:
        return 0
    vmid, count = cluster.proxmox.template_vmid, len(plan.actions)
    if not args.yes and not confirm(f"make template {vmid} ({count} step(s))?"):
        print("nothing changed")
        return 1
    explicit = args.image is not None
    with spinner():
        template_job.apply_template(
            client, cluster, source, plan, progress=_progress, explicit=explicit
        )
    print(f"template {vmid} is ready; next: homelab-gen boot")
    return 0


def _show(plan: Any, describe: Any) -> None:
    """The template plan's one row; its notes are the commands to run by hand instead."""
    (row,) = plan.vms
    for problem in plan.problems:
        print(f"problem: {problem}", file=sys.stderr)
    if row.notes:
        print("\n".join(f"    {line}" for line in row.notes), file=sys.stderr)
    if plan.problems:
        print("nothing was changed", file=sys.stderr)
        return
    if not row.actions:
        print(f"{row.reason}: nothing to do")
        return
    print(f"template {row.vmid}: {row.reason}")
    for action in row.actions:
        print(f"  - {describe(action)}")


def _progress(event: Any) -> None:
    print(f"{event.step}: {event.state}", flush=True)
