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
    parser.add_argument(
        "--all-hosts",
        action="store_true",
        help="also give each other host of proxmox.nodes its own copy of the template, for"
        " a template on storage only its host reads (not needed on shared storage)",
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="boot the new template once to install the packages and cluster.k3s_version"
        " (K3s's air-gap layout), so nodes skip apt and the K3s download at first boot;"
        " it needs DHCP and internet on proxmox.bridge",
    )
    yes_option(parser)
    parser.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")


def run(args: argparse.Namespace) -> int:
    from generator.environment import Environment
    from generator.proxmox import core, template_job
    from generator.proxmox import template as tpl
    from generator.proxmox import template_hosts as hosts
    from generator.proxmox.images import choose_source

    source, warnings = choose_source(args.image, args.checksum, args.no_checksum)
    for warning in warnings:
        warn(warning)
    explicit = args.image is not None
    with spinner():
        client, cluster = connect_from_disk(args.directory, Environment.read(), warn)
        core.check_reachable(client)
        main = hosts.Target(cluster, None, tpl.observe_template(client, cluster))
        copies, offline = hosts.observe_copies(client, cluster) if args.all_hosts else ([], [])
    prep = _preparation(cluster) if args.prepare else None
    if args.all_hosts:
        plan, targets = hosts.plan_all_hosts(cluster, source, main, copies, offline, explicit, prep)
    else:
        plan = tpl.plan_template(cluster, source, main.facts, explicit, prep)
        targets = [main]
    note = None if args.all_hosts else hosts.hosts_note(cluster, main.facts)
    _show(plan, tpl.describe, [note] if note else [])
    if plan.problems:
        return 1
    if args.dry_run or plan.is_noop:
        return 0
    count = len(plan.actions)
    if not args.yes and not confirm(f"make the template(s) ({count} step(s))?"):
        print("nothing changed")
        return 1
    with spinner():
        template_job.apply_targets(
            client, source, plan, targets, progress=_progress, explicit=explicit, preparation=prep
        )
    made = ", ".join(str(t.cluster.proxmox.template_vmid) for t in targets)
    print(f"template(s) {made} ready; next: homelab-gen boot")
    return 0


def _preparation(cluster: Any) -> Any:
    """The preparation seed, rendered here: the Proxmox side never renders (layers)."""
    from generator.proxmox.template_prepare import Preparation
    from generator.render.prepared import preparation_seed

    return Preparation(cluster.cluster.k3s_version, preparation_seed(cluster))


def _show(plan: Any, describe: Any, notes: list[str]) -> None:
    """One row per template; a row's notes are the commands to run by hand instead."""
    for problem in plan.problems:
        print(f"problem: {problem}", file=sys.stderr)
    shown: set[str] = set()  # the grant commands are the same for every host
    for row in plan.vms:
        fresh = [line for line in row.notes if line not in shown]
        shown.update(fresh)
        if fresh and len(plan.vms) > 1:
            print(f"  {row.name}:", file=sys.stderr)
        if fresh:
            print("\n".join(f"    {line}" for line in fresh), file=sys.stderr)
    for line in [*plan.warnings, *notes]:
        print(f"note: {line}")
    if plan.problems:
        print("nothing was changed", file=sys.stderr)
        return
    for row in plan.vms:
        if not row.actions:
            print(f"{row.name} {row.vmid}: {row.reason}: nothing to do")
            continue
        print(f"{row.name} {row.vmid}: {row.reason}")
        for action in row.actions:
            print(f"  - {describe(action)}")


def _progress(event: Any) -> None:
    print(f"{event.step}: {event.state}", flush=True)
