"""boot converges through injected faults and through being killed at any call."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.pve import FOREIGN_VMID, TEMPLATE_VMID, FakePVE, Fault, running_fake
from tests.fakes.pve.harness import assert_converged, boot, make_cluster, snapshot

STEPS = ("upload", "clone", "config", "resize", "start")
# The transient kinds; "500" (a handler's die) and "task" (a task that failed for another
# reason than a lock wait) are permanent: see tests/proxmox/test_retry_policy.py.
KINDS = ("reset", "relay", "lock", "task-lock", "noupid")


def _foreign_and_template_untouched(fake: FakePVE, before: dict[int, object]) -> None:
    for vmid, state in before.items():
        assert snapshot(fake, vmid) == state
    for call in fake.state.mutating_calls():
        assert f"/qemu/{FOREIGN_VMID}" not in call.path
        assert f"/qemu/{TEMPLATE_VMID}" not in call.path or call.path.endswith("/clone")


# pve-storage Status.pm, upload takes no lock, so no lock wait can time out there.
NO_LOCK = {("upload", "lock"), ("upload", "task-lock")}


@pytest.mark.parametrize(
    ("step", "kind"), [c for c in itertools.product(STEPS, KINDS) if c not in NO_LOCK]
)
def test_one_fault_per_step_converges(tmp_path: Path, step: str, kind: str) -> None:
    with running_fake(tmp_path) as fake:
        cluster = make_cluster(fake, 1, 1)
        before = {v: snapshot(fake, v) for v in (FOREIGN_VMID, TEMPLATE_VMID)}
        fault = Fault(step, kind)
        fake.state.faults.append(fault)
        run = boot(fake, cluster)
        assert fault.times == 0, "the fault was never hit"
        assert not run.errors
        assert any(e.state == "retry" and e.step.startswith(step[:5]) for e in run.events)
        fake.wait_idle()
        assert_converged(fake, cluster)  # exactly the expected VMs: no duplicate
        _foreign_and_template_untouched(fake, before)
        count = len(fake.state.mutating_calls())
        assert boot(fake, cluster).prepared.plan.is_noop
        assert len(fake.state.mutating_calls()) == count


def test_storage_lock_timeout_is_retried(tmp_path: Path) -> None:
    """Clones beyond the storage lock's capacity wait, time out like PVE, and are retried."""
    with running_fake(tmp_path) as fake:
        fake.state.latency.clone_slots = 1
        fake.state.latency.clone = 0.15
        fake.state.latency.lock_timeout = 0.05
        cluster = make_cluster(fake, 3, 0)
        run = boot(fake, cluster, parallel=3)
        assert not run.errors
        texts = [e.detail for e in run.events if e.state == "retry"]
        assert any("pve-storage-local-lvm' - got timeout" in t for t in texts)
        assert_converged(fake, cluster)


def test_persistent_failure_names_the_vm_and_step(tmp_path: Path) -> None:
    with running_fake(tmp_path) as fake:
        fake.state.faults.append(Fault("start", "task", times=99))
        run = boot(fake, make_cluster(fake, 1, 0))
        (error,) = run.errors
        assert "k3s-server-1 (VM 201): start failed" in error and "injected task failure" in error


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in boot may catch it."""


def _kill_after(k: int, log: list[str] | None = None) -> Callable[[str, str], None]:
    seen = [0]
    lock = threading.Lock()

    def hook(method: str, path: str) -> None:
        with lock:
            seen[0] += 1
            if log is not None:
                log.append(method)
            if seen[0] > k:
                raise Killed()

    return hook


def _kill_points(tmp_path: Path) -> list[int]:
    """Just before and just after every mutating call of a full run, plus every 4th call.
    (Every k works too; this keeps the loop short while covering each step kind.)"""
    log: list[str] = []
    with running_fake(tmp_path / "count") as fake:
        boot(fake, make_cluster(fake, 1, 1), before_call=_kill_after(10**9, log))
    points = {i for i, method in enumerate(log) if method != "GET"}
    points |= {i + 1 for i in points} | set(range(0, len(log), 4))
    return sorted(points)


def test_kill_after_k_calls_then_resume_converges(tmp_path: Path) -> None:
    points = _kill_points(tmp_path)
    assert len(points) > 15
    for k in points:
        with running_fake(tmp_path / f"k{k}") as fake:
            cluster = make_cluster(fake, 1, 1)
            before = {v: snapshot(fake, v) for v in (FOREIGN_VMID, TEMPLATE_VMID)}
            with contextlib.suppress(Killed):  # task polls vary; a late k may not be reached
                boot(fake, cluster, before_call=_kill_after(k))
            # Tasks the killed run started keep running on Proxmox; resume right away.
            resumed = boot(fake, cluster)
            assert not resumed.errors, (k, resumed.errors)
            fake.wait_idle()
            assert_converged(fake, cluster)
            _foreign_and_template_untouched(fake, before)
