from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from generator.commands._common import add_command

if TYPE_CHECKING:
    from generator.render.versions import Pin


def configure(sub: Any) -> None:
    add_command(
        sub,
        "versions",
        run,
        help="list every pinned version (K3s, charts, kube-vip, Flux, ...) and cluster.yaml's"
        " overrides",
    )


def run(args: argparse.Namespace) -> int:
    from generator import config
    from generator.render.versions import pins
    from generator.scaffold.cookiecutter import questions

    path = args.directory / config.CONFIG_NAME
    cluster = None
    if path.is_file():
        loaded = config.load(args.directory)
        for warning in loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        cluster = loaded.cluster
    else:
        print(
            f"no cluster.yaml in {args.directory}: showing the pins, and the K3s version"
            " 'homelab-gen new' writes",
            file=sys.stderr,
        )
    rows = pins(cluster, str(questions()["k3s_version"]))
    if sys.stdout.isatty():
        _print_rich(rows)
    else:
        _print_plain(rows)
    return 0


HEADER = ("NAME", "PINNED", "IN USE", "NOTE")


def _cells(pin: Pin) -> tuple[str, str, str, str]:
    used = f"{pin.used} *" if pin.overridden else pin.used
    return (pin.name, pin.pinned, used, pin.note)


def _print_plain(rows: list[Pin]) -> None:
    table = [HEADER, *(_cells(pin) for pin in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER) - 1)]
    for row in table:
        print(
            "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        )
    if any(pin.overridden for pin in rows):
        print("* set in cluster.yaml, instead of the pinned version")


def _print_rich(rows: list[Pin]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*HEADER, box=None, header_style="bold")
    for pin in rows:
        name, pinned, used, note = _cells(pin)
        table.add_row(name, pinned, f"[yellow]{used}[/]" if pin.overridden else used, note)
    console = Console()
    console.print(table)
    if any(pin.overridden for pin in rows):
        console.print("* set in cluster.yaml, instead of the pinned version")
