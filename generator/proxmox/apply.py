"""Run a plan: VMs in parallel, each VM's steps in order, as many steps at once as PVE bears.

One engine for every command that changes Proxmox: boot, destroy and prune
(boot_job.Context) and template (template_job.TemplateJob). A command is a Job: a table of
executors, one per action kind, and a re-planner that looks at Proxmox again.

A failed step is never blindly repeated. After a transient error (a lock's "got timeout",
a reset once Proxmox had answered, pveproxy's 595-597, a task that failed on its lock: see
failures.classify) the VM is looked at again and re-planned, so a change that did take effect
(an answer lost to a reset) is not made twice. A permanent error fails its VM at once.

How many steps run at once is pacing's adaptive limit, `parallel` its cap. It gates steps,
not whole VMs: only clones contend for the storage lock, so a VM doing its config, resize
and start must not hold back another VM's clone, and a backed-off limit should still keep
the lock busy. Re-planning reads are not gated: they are cheap and the client retries them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from generator.errors import HomelabError, bug
from generator.proxmox.actions import Action, Plan, VMPlan
from generator.proxmox.client import Client
from generator.proxmox.failures import PveError
from generator.proxmox.observe import VMFacts, read_vm
from generator.proxmox.pacing import Gate, start


class State(StrEnum):
    """Where a step of a VM's plan is, as the progress events report it."""

    RUNNING = "running"
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Event:
    vm: str
    step: str  # the action's Kind
    state: State
    detail: str = ""


Progress = Callable[[Event], None]


@dataclass(frozen=True)
class Outcome:
    vm: str
    steps: tuple[str, ...]
    error: str | None = None


class StepFailed(HomelabError):
    pass


Executor = Callable[[Any, Action], None]  # (the job, the action): one API change


class Job(Protocol):
    """What the engine asks of a command: its client and progress; `executors`, how to
    carry out each action kind it plans; `rechecked`, the kinds whose permanent failure one
    fresh plan may show to be moot; `label`, how errors name a row (`k3s-server-1 (VM 201)`,
    `template 9000`); `refusal`, why a VM may not be stopped or deleted (None: it is ours);
    `replan`, a row's remaining actions from a fresh look at Proxmox."""

    @property
    def client(self) -> Client: ...
    @property
    def progress(self) -> Progress: ...
    @property
    def executors(self) -> Mapping[str, Executor]: ...
    @property
    def rechecked(self) -> frozenset[str]: ...
    def label(self, vm_plan: VMPlan) -> str: ...
    def refusal(self, vm: VMFacts) -> str | None: ...
    def replan(self, vm_plan: VMPlan) -> list[Action]: ...


def _path(action: Action) -> str:
    return f"nodes/{action.pve_node}/qemu/{action.vmid}"


def _require_ours(job: Job, action: Action) -> None:
    facts = read_vm(job.client, action.pve_node, action.vmid)
    refusal = job.refusal(facts) if facts is not None else None
    if refusal:
        raise StepFailed(refusal)


# -- executors every job may use -------------------------------------------------------------
def vm_task(method: str, suffix: str) -> Executor:
    """An action that is one task on the VM, its parameters sent as they are."""

    def run(job: Job, action: Action) -> None:
        job.client.task(method, f"{_path(action)}{suffix}", **dict(action.params))

    return run


def stop_vm(job: Job, action: Action) -> None:
    _require_ours(job, action)
    job.client.task("POST", f"{_path(action)}/status/stop")


def delete_vm(job: Job, action: Action) -> None:
    _require_ours(job, action)
    job.client.task("DELETE", _path(action), purge=1, **{"destroy-unreferenced-disks": 1})


def execute(job: Job, action: Action) -> None:
    run = job.executors.get(action.kind)
    if run is None:
        raise AssertionError(f"unknown action {action.kind}")
    run(job, action)


# -- the engine --------------------------------------------------------------------------------
def run_vm(job: Job, vm_plan: VMPlan, gate: Gate | None = None) -> Outcome:
    """One VM's actions in order; each passes `gate` (by default: one step at a time)."""
    gate = gate or serial_gate(job)
    actions = list(vm_plan.actions)
    done: list[str] = []
    failures = 0
    retry = job.client.retry
    while actions:
        action = actions[0]
        try:
            with gate.step(action.kind):
                job.progress(Event(vm_plan.name, action.kind, State.RUNNING))
                execute(job, action)
        except PveError as exc:
            failures += 1
            if not exc.transient and action.kind in job.rechecked:
                # Never retried. But our own earlier change (an answer lost to a reset, a
                # killed boot) may still have been in flight and made this step moot ("VM 201
                # already running"): if one fresh look no longer starts with it, carry on.
                try:
                    fresh = _replan_with_retries(job, vm_plan)
                except HomelabError:
                    fresh = [action]  # cannot tell: report the step's own error
                if not fresh or fresh[0].kind != action.kind:
                    job.progress(Event(vm_plan.name, action.kind, State.DONE))
                    actions = fresh
                    continue
            if not exc.transient or failures >= retry.attempts:
                job.progress(Event(vm_plan.name, action.kind, State.FAILED, str(exc)))
                raise StepFailed(f"{job.label(vm_plan)}: {action.kind} failed: {exc}") from exc
            job.progress(Event(vm_plan.name, action.kind, State.RETRY, str(exc)))
            time.sleep(retry.delay(failures - 1))
            actions = _replan_with_retries(job, vm_plan)
            continue
        except HomelabError:
            raise
        except Exception as exc:  # our bug, not Proxmox's: the other VMs go on
            job.progress(Event(vm_plan.name, action.kind, State.FAILED, "homelab-gen bug"))
            raise bug(f"{job.label(vm_plan)}: {action.kind} failed", exc) from exc
        job.progress(Event(vm_plan.name, action.kind, State.DONE))
        done.append(action.kind)
        actions.pop(0)
    return Outcome(vm_plan.name, tuple(done))


def _replan_with_retries(job: Job, vm_plan: VMPlan) -> list[Action]:
    """A fresh plan; a transient error (a VM still locked by a task whose answer we lost)
    is waited for."""
    retry = job.client.retry
    for attempt in range(retry.attempts):
        try:
            return job.replan(vm_plan)
        except PveError as exc:
            if not exc.transient or attempt == retry.attempts - 1:
                raise StepFailed(f"{job.label(vm_plan)}: {exc}") from exc
            time.sleep(retry.delay(attempt))
        except HomelabError:
            raise
        except Exception as exc:  # our bug, not Proxmox's: the other VMs go on
            raise bug(f"{job.label(vm_plan)}: re-planning failed", exc) from exc
    raise AssertionError("unreachable")


def gate_for(job: Job, parallel: int, vms: int) -> Gate:
    """Starts at one step per VM (up to `parallel`). Task polling blurs anything shorter
    than its longest interval, so no step is judged slow against less."""
    return Gate(start(parallel, vms, floor=job.client.retry.task_poll_cap))


def serial_gate(job: Job) -> Gate:
    return gate_for(job, 1, 1)


def apply_plan(
    job: Job, plan: Plan, parallel: int, gate: Gate | None = None
) -> tuple[Outcome, ...]:
    """Run every VM's actions, at most `parallel` at once (fewer while Proxmox is busy);
    VMs that fail are reported, the others still finish. `gate`: to watch the pace."""
    work = [vm for vm in plan.vms if vm.actions]
    gate = gate or gate_for(job, parallel, len(work))
    outcomes: list[Outcome] = []
    workers = max(1, min(parallel, len(work)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="boot") as pool:
        futures = [(vm, pool.submit(run_vm, job, vm, gate)) for vm in work]
        for vm, future in futures:
            try:
                outcomes.append(future.result())
            except HomelabError as exc:
                outcomes.append(Outcome(vm.name, (), str(exc)))
    return tuple(outcomes)
