"""Showing plans and progress: a rich table and live view on a terminal, plain lines
otherwise (pipes, CI logs)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from generator.proxmox.actions import Kind, Plan, VMPlan
from generator.proxmox.apply import Event, Outcome, State


def _steps(vm: VMPlan) -> str:
    return ", ".join(a.kind for a in vm.actions) or "-"


def _detail(vm: VMPlan) -> str:
    return "; ".join((vm.reason, *vm.notes))


def _vmid(vm: VMPlan) -> str:
    return str(vm.vmid) if vm.vmid else "-"  # a seed file, not a VM


def _line(vm: VMPlan) -> str:
    # A seed row is named by its file; the volume id says where it goes from.
    if not vm.vmid:
        volids = ", ".join(a.param("volid") for a in vm.actions if a.kind == Kind.DELETE_SEED)
        return f"{volids or vm.name}: {_steps(vm)}  [{_detail(vm)}]"
    host = f"  on {vm.host}" if vm.host else ""
    return f"{vm.name} ({vm.vmid}): {_steps(vm)}  [{_detail(vm)}]{host}"


def print_plan(plan: Plan, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in plan.problems:
        print(f"problem: {problem}", file=sys.stderr)
    for line in plan.unreachable:
        print(f"unreachable: {line}", file=sys.stderr)
    if plan.problems:
        return
    if out.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="homelab-gen plan")
        for column in ("VM", "VMID", "host", "actions", "why"):
            table.add_column(column)
        for vm in plan.vms:
            table.add_row(vm.name, _vmid(vm), vm.host or "-", _steps(vm), _detail(vm))
        Console(file=out).print(table)
    else:
        for vm in plan.vms:
            print(_line(vm), file=out)
    count = len(plan.actions)
    print("nothing to do" if plan.is_noop else f"{count} action(s) planned", file=out)


class _Board:
    """The latest state of each VM's current step, for the live table."""

    def __init__(self, plan: Plan) -> None:
        self.rows = {vm.name: ("waiting", _steps(vm)) for vm in plan.vms if vm.actions}
        self.lock = threading.Lock()

    def update(self, event: Event) -> None:
        with self.lock:
            label = f"{event.step}: {event.state}"
            if event.detail and event.state in (State.RETRY, State.FAILED, State.RUNNING):
                label += f" ({event.detail[:70]})"  # a long wait says what it waits for
            self.rows[event.vm] = (label, self.rows.get(event.vm, ("", ""))[1])

    def table(self) -> Any:
        from rich.table import Table

        table = Table(title="homelab-gen boot")
        table.add_column("VM")
        table.add_column("now")
        table.add_column("steps")
        with self.lock:
            for name, (now, steps) in self.rows.items():
                table.add_row(name, now, steps)
        return table


@contextmanager
def progress(plan: Plan, out: TextIO | None = None) -> Iterator[Any]:
    """Yields a callback for apply's events."""
    out = out or sys.stdout
    if not out.isatty():
        lock = threading.Lock()

        def plain(event: Event) -> None:
            if event.state == State.RUNNING:
                return
            with lock:
                tail = f": {event.detail}" if event.detail else ""
                print(f"{event.vm}: {event.step} {event.state}{tail}", file=out, flush=True)

        yield plain
        return
    from rich.console import Console
    from rich.live import Live

    board = _Board(plan)
    with Live(board.table(), console=Console(file=out), refresh_per_second=4) as live:

        def update(event: Event) -> None:
            board.update(event)
            live.update(board.table())

        yield update


def print_outcomes(outcomes: tuple[Outcome, ...], out: TextIO | None = None) -> int:
    out = out or sys.stdout
    failed = [o for o in outcomes if o.error]
    for outcome in outcomes:
        if outcome.error:
            print(f"failed: {outcome.error}", file=sys.stderr)
        else:
            print(f"{outcome.vm}: {', '.join(outcome.steps) or 'nothing to do'}", file=out)
    return len(failed)
