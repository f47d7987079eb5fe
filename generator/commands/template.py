from __future__ import annotations

import argparse
import sys
from typing import Any

from generator.cli import directory_option
from generator.commands._io import confirm, warn

IMAGE_CHOICES = "debian-12|debian-13|ubuntu-24.04|URL"


def configure(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "template",
        help="make the cloud-image template VM (proxmox.template_vmid) through the API",
    )
    directory_option(parser)
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
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from generator.proxmox import core
    from generator.proxmox import template as tpl
    from generator.proxmox.images import choose_source

    source, warnings = choose_source(args.image, args.checksum, args.no_checksum)
    for warning in warnings:
        warn(warning)
    client, cluster = _connect(args, core)
    facts = tpl.observe_template(client, cluster)
    plan = tpl.plan_template(cluster, source, facts, args.image is not None)
    _show(plan)
    if plan.problems:
        return 1
    if args.dry_run or not plan.steps:
        return 0
    if not args.yes and not confirm(f"make template {plan.vmid} ({len(plan.steps)} step(s))?"):
        print("nothing changed")
        return 1
    explicit = args.image is not None
    tpl.apply_template(client, cluster, source, plan, progress=_progress, explicit=explicit)
    print(f"template {plan.vmid} is ready; next: homelab-gen boot")
    return 0


def _connect(args: argparse.Namespace, core: Any) -> Any:
    from generator import config

    loaded = config.load(args.directory)
    for warning in loaded.warnings:
        warn(warning)
    client = core.connect(loaded.cluster, args.directory, warn=warn)
    core.check_reachable(client)
    return client, loaded.cluster


def _show(plan: Any) -> None:
    for problem in plan.problems:
        print(f"problem: {problem}", file=sys.stderr)
    if plan.manual:
        print("\n".join(f"    {line}" for line in plan.manual), file=sys.stderr)
    if plan.problems:
        print("nothing was changed", file=sys.stderr)
        return
    if not plan.steps:
        print(f"{plan.reason}: nothing to do")
        return
    print(f"template {plan.vmid}: {plan.reason}")
    for step in plan.steps:
        print(f"  - {step.describe()}")


def _progress(step: str, state: str) -> None:
    print(f"{step}: {state}", flush=True)
