"""Running replacement and removal rows: one node at a time, each step recorded in the
journal as it ends, so a run killed anywhere resumes with the step it was in.

Proxmox steps go through the same engine as boot (apply.run_vm: retries, re-planning from a
fresh look); the Kubernetes steps are the kube package's. Before a server goes down, the
cluster is asked again whether etcd keeps quorum without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import HomelabError
from generator.kube import drain, nodes
from generator.kube.client import Unreachable, seconds
from generator.lifecycle import journal, steps
from generator.proxmox import apply, boot_job
from generator.proxmox.actions import Action, Kind, VMPlan

GONE_HINT = (
    "K3s's etcd controller removes a server's member before the Node goes; it needs a Ready"
    " server. `kubectl get node {name} -o yaml` shows the finalizers; run the command again"
    " to resume"
)


POLL_INTERVAL = 5.0  # seconds between looks at a drain, a Node going, a node coming up


@dataclass(frozen=True)
class Settings:
    drain_timeout: float = 300.0
    ready_timeout: float = 900.0
    gone_timeout: float = 180.0
    force: bool = False
    interval: float = field(default_factory=lambda: POLL_INTERVAL)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)


@dataclass(frozen=True)
class Run:
    """What the rows run against: Proxmox (boot's job), the K3s API, the repo's journal."""

    ctx: boot_job.Context
    api: Any
    directory: Path
    settings: Settings


def _event(run: Run, name: str, kind: str, state: apply.State, detail: str = "") -> None:
    run.ctx.progress(apply.Event(name, kind, state, detail))


def wait_gone(run: Run, name: str) -> None:
    start = run.settings.clock()
    while True:
        try:
            if nodes.get_node(run.api, name) is None:
                return
        except Unreachable:
            pass  # the API behind the VIP can move while a server goes; ask again
        waited = run.settings.clock() - start
        if waited >= run.settings.gone_timeout:
            raise HomelabError(
                f"node {name} is still there {seconds(waited)} after it was deleted",
                GONE_HINT.format(name=name),
            )
        run.settings.sleep(run.settings.interval)


LEAVE_HINT = (
    "K3s's etcd controller (on the elected server) removes the member; it refuses when the"
    " rest would have no quorum of started members. Check the servers with homelab-gen"
    " status, then run the command again to resume"
)


def leave_etcd(run: Run, name: str) -> None:
    """Ask K3s to remove the member, then wait until the Node says it was removed."""
    start = run.settings.clock()
    state = nodes.leave_etcd(run.api, name)
    while state is not None and not state.etcd_removed and state.etcd_member:
        waited = run.settings.clock() - start
        if waited >= run.settings.gone_timeout:
            raise HomelabError(
                f"{name}'s etcd member {state.etcd_member} was not removed after {seconds(waited)}",
                LEAVE_HINT,
            )
        run.settings.sleep(run.settings.interval)
        try:
            state = nodes.get_node(run.api, name)
        except Unreachable:
            continue  # the API behind the VIP can move while etcd changes; ask again
        if state is not None and not state.etcd_removed and not state.etcd_remove_asked:
            state = nodes.leave_etcd(run.api, name)  # K3s dropped the request: ask again


def _check_quorum(run: Run, target: steps.Target) -> None:
    """A moved server's member goes with its Node: the same check before delete-node."""
    if not target.server:
        return
    problem = steps.quorum_problem(run.ctx.cluster, nodes.list_nodes(run.api), target.name)
    if problem:
        raise HomelabError(problem, "nothing was changed on this node; run the command again")


def _kube_step(run: Run, target: steps.Target, kind: str) -> None:
    s = run.settings
    if kind == Kind.LEAVE_ETCD:
        _check_quorum(run, target)
        leave_etcd(run, target.name)
    elif kind == Kind.DRAIN:
        _check_quorum(run, target)
        drain.drain(
            run.api,
            target.name,
            timeout=s.drain_timeout,
            force=s.force,
            interval=s.interval,
            sleep=s.sleep,
            clock=s.clock,
        )
    elif kind == Kind.DELETE_NODE:
        if target.what == steps.MOVE:
            _check_quorum(run, target)
        nodes.delete_node(run.api, target.name)
        wait_gone(run, target.name)
    elif kind == Kind.WAIT_READY:
        nodes.wait_ready(
            run.api,
            target.name,
            timeout=s.ready_timeout,
            interval=s.interval,
            sleep=s.sleep,
            clock=s.clock,
            on_wait=lambda seen: _event(run, target.name, kind, apply.State.RUNNING, seen),
        )


def _record(run: Run, target: steps.Target, kind: str) -> None:
    if target.what == steps.STALE:
        return  # its stop and delete are planned again from what Proxmox shows
    if kind == Kind.WAIT_READY or (target.what == steps.REMOVE and kind == Kind.DELETE_NODE):
        return  # the row's last step: the entry goes as a whole
    book = journal.load(run.directory)
    journal.save(run.directory, book.with_step(target.name, target.what, target.vmid, kind))


def _groups(actions: Sequence[Action]) -> list[list[Action]]:
    """Consecutive Proxmox steps together (one engine run), each Kubernetes step alone."""
    groups: list[list[Action]] = []
    for action in actions:
        pve = action.kind not in steps.KUBE_KINDS
        if groups and pve and groups[-1][0].kind not in steps.KUBE_KINDS:
            groups[-1].append(action)
        else:
            groups.append([action])
    return groups


def _pve_group(run: Run, row: VMPlan, target: steps.Target, group: list[Action]) -> None:
    planned = VMPlan(row.name, row.vmid, tuple(group), row.reason, host=row.host)
    if any(a.kind in (Kind.CLONE, Kind.UPLOAD, Kind.CONFIGURE, Kind.START) for a in group):
        # The rebuild, planned afresh: the teardown before it changed what Proxmox holds.
        actions = tuple(boot_job.boot_replan(run.ctx, planned))
        planned = VMPlan(row.name, row.vmid, actions, host=row.host)
    outcome = apply.run_vm(run.ctx, planned)
    for kind in outcome.steps:
        _record(run, target, kind)


def _is_teardown(group: list[Action]) -> bool:
    return all(a.kind in steps.TEARDOWN_KINDS for a in group)


def run_row(run: Run, target: steps.Target, row: VMPlan) -> None:
    rebuilding = steps.REBUILD in target.done
    for group in _groups(row.actions):
        kind = group[0].kind
        builds = target.what in (steps.REPLACE, steps.MOVE)
        if builds and not rebuilding and not _is_teardown(group):
            _record(run, target, steps.REBUILD)
            rebuilding = True
        if kind in steps.KUBE_KINDS:
            _event(run, row.name, kind, apply.State.RUNNING)
            try:
                _kube_step(run, target, kind)
            except HomelabError as exc:
                _event(run, row.name, kind, apply.State.FAILED, exc.message)
                raise
            _event(run, row.name, kind, apply.State.DONE)
            _record(run, target, kind)
        else:
            _pve_group(run, row, target, group)
    book = journal.load(run.directory)
    done = (
        book.without_moved(target.vmid) if target.what == steps.STALE else book.without(target.name)
    )
    journal.save(run.directory, done)


def run_rows(run: Run, rows: Sequence[tuple[steps.Target, VMPlan]]) -> tuple[apply.Outcome, ...]:
    """Node by node; the first that fails stops the rest, so no second node goes down."""
    outcomes: list[apply.Outcome] = []
    book = journal.load(run.directory)
    for target, _ in rows:  # all of them, so a run killed at the first resumes the rest too
        if target.what != steps.STALE:  # the journal's `moved` holds those already
            book = book.with_entry(target.name, target.what, target.vmid, target.host)
    journal.save(run.directory, book)
    for index, (target, row) in enumerate(rows):
        try:
            run_row(run, target, row)
        except HomelabError as exc:
            give_up = (
                f"fix the cause and run boot again to resume; to give up instead, delete"
                f" {journal.JOURNAL_FILE} (and `kubectl uncordon {row.name}` if it was drained)"
            )
            outcomes.append(apply.Outcome(row.name, (), f"{row.name}: {exc}\n  {give_up}"))
            left = ", ".join(r.name for _, r in rows[index + 1 :])
            if left:
                why = f"not started, as {row.name} failed; run the command again to resume"
                outcomes.append(apply.Outcome(left, (), f"{left}: {why}"))
            break
        outcomes.append(apply.Outcome(row.name, tuple(a.kind for a in row.actions)))
    return tuple(outcomes)
