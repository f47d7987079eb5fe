"""Showing `status`: rich tables on a terminal, aligned plain text otherwise, JSON for
scripts. Reads only generator.status.facts and verdict records."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from generator.status.facts import Facts
from generator.status.verdict import Report

NODE_COLUMNS = ("NODE", "VM", "AGENT", "ADDRESS", "CLOUD-INIT", "K3S")
FLUX_COLUMNS = ("KIND", "NAME", "READY", "REASON", "MESSAGE")


def node_cells(verdict: Report) -> list[tuple[str, ...]]:
    return [(r.node, r.vm, r.agent, r.address, r.cloud_init, r.k3s) for r in verdict.nodes]


def flux_cells(verdict: Report) -> list[tuple[str, ...]]:
    return [(r.kind, r.name, r.ready, r.reason, r.message[:70]) for r in verdict.flux]


def flux_title(verdict: Report) -> str:
    return f"Flux (applied {verdict.revision})" if verdict.revision else "Flux"


def verdict_line(verdict: Report) -> str:
    return "ready: everything is up" if verdict.ready else f"not ready: {verdict.blocker}"


def _aligned(header: Sequence[str], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [tuple(header), *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [tuple(header), *rows]
    ]


def plain(verdict: Report) -> str:
    lines = _aligned(NODE_COLUMNS, node_cells(verdict))
    if verdict.flux:
        lines += ["", flux_title(verdict), *_aligned(FLUX_COLUMNS, flux_cells(verdict))]
    lines += ["", *(f"note: {n}" for n in verdict.notes), verdict_line(verdict)]
    return "\n".join(lines)


def rich_view(verdict: Report, title: str) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    nodes = Table(title=title, title_justify="left")
    for column in NODE_COLUMNS:
        nodes.add_column(column)
    for row, cells in zip(verdict.nodes, node_cells(verdict), strict=True):
        nodes.add_row(*cells, style=None if row.ready else "yellow")
    parts: list[Any] = [nodes]
    if verdict.flux:
        flux = Table(title=flux_title(verdict), title_justify="left")
        for column in FLUX_COLUMNS:
            flux.add_column(column, overflow="fold")
        for flux_row, cells in zip(verdict.flux, flux_cells(verdict), strict=True):
            flux.add_row(*cells, style=None if flux_row.ready == "True" else "yellow")
        parts.append(flux)
    parts += [Text(f"note: {n}", style="dim") for n in verdict.notes]
    parts.append(Text(verdict_line(verdict), style="green" if verdict.ready else "bold red"))
    return Group(*parts)


def as_json(facts: Facts, verdict: Report) -> str:
    return json.dumps(
        {
            "cluster": facts.cluster,
            "ready": verdict.ready,
            "blocker": verdict.blocker,
            "facts": dataclasses.asdict(facts),
            "rows": {
                "nodes": [dataclasses.asdict(r) for r in verdict.nodes],
                "flux": [dataclasses.asdict(r) for r in verdict.flux],
            },
            "notes": list(verdict.notes),
        },
        indent=2,
    )
