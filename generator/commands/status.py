from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from generator.commands._common import add_command
from generator.commands._io import spinner, warn


def configure(sub: Any) -> None:
    parser = add_command(
        sub,
        "status",
        run,
        help="where the lab is: VMs, guest agents, cloud-init, K3s nodes, Flux (no SSH)",
        description="Exit 0 when everything is ready, 1 otherwise (with the first blocker).",
    )
    parser.add_argument(
        "--wait", action="store_true", help="refresh until everything is ready or --timeout"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, metavar="S", help="for --wait (default 1800)"
    )
    parser.add_argument(
        "--interval", type=float, default=5.0, metavar="S", help="seconds between refreshes"
    )
    parser.add_argument("--json", action="store_true", help="print the facts as JSON")
    parser.add_argument(
        "--server",
        metavar="URL",
        help="reach the K3s API at URL instead of https://<api_vip or server IP>:6443",
    )


def run(args: argparse.Namespace) -> int:
    from generator import config
    from generator.environment import Environment
    from generator.errors import UsageError
    from generator.status import gather, view
    from generator.status.verdict import report

    if args.timeout < 0 or args.interval < 0:
        raise UsageError("--timeout and --interval must not be negative")
    loaded = config.load(args.directory)
    for warning in loaded.warnings:
        warn(warning)
    env = Environment.read()
    with gather.open_sources(
        loaded.cluster, args.directory, server=args.server, env=env, warn=warn
    ) as src:
        if not args.wait:
            with spinner():
                facts = gather.gather(src)
            verdict = report(facts)
        elif args.json or not sys.stdout.isatty():
            facts, verdict = gather.watch(
                src, timeout=args.timeout, interval=args.interval, show=_plain_progress(args.json)
            )
        else:
            facts, verdict = _live(src, args, loaded.cluster.name)
    if args.json:
        print(view.as_json(facts, verdict))
    elif not (args.wait and sys.stdout.isatty()):
        print(view.plain(verdict))
    if verdict.ready:
        return 0
    if args.wait:
        print(f"error: not ready after {args.timeout:.0f} s: {verdict.blocker}", file=sys.stderr)
    return 1


def _plain_progress(quiet: bool) -> Any:
    """One line each time the first blocker changes (to stderr under --json)."""
    from generator.status import view

    start = time.monotonic()
    last: list[str] = []
    out = sys.stderr if quiet else sys.stdout

    def show(facts: Any, verdict: Any) -> None:
        line = view.verdict_line(verdict)
        if last[-1:] != [line]:
            print(f"[{time.monotonic() - start:5.0f}s] {line}", file=out, flush=True)
            last.append(line)

    return show


def _live(src: Any, args: argparse.Namespace, name: str) -> Any:
    from rich.console import Console
    from rich.live import Live

    from generator.status import gather, view

    start = time.monotonic()
    with Live(console=Console(), auto_refresh=False) as live:

        def show(facts: Any, verdict: Any) -> None:
            title = f"homelab-gen status {name}  ({time.monotonic() - start:.0f} s)"
            live.update(view.rich_view(verdict, title), refresh=True)

        return gather.watch(src, timeout=args.timeout, interval=args.interval, show=show)
