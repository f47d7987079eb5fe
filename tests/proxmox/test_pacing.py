"""The adaptive limit: sequences of step endings and the limits they lead to."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from generator.proxmox import apply, core
from generator.proxmox.boot_job import Context
from generator.proxmox.failures import PveError
from generator.proxmox.pacing import Gate, Pace, Signal, Step, after, start
from tests.fakes.pve import Latency, running_fake
from tests.fakes.pve.harness import assert_converged, boot, client_for, make_cluster, seed_texts

OK, BUSY, FAILED = Signal.OK, Signal.BUSY, Signal.FAILED


def ok(kind: str = "clone", seconds: float = 1.0, epoch: int | None = None) -> Step:
    return Step(kind, -1 if epoch is None else epoch, seconds, OK)


def busy(epoch: int | None = None) -> Step:
    return Step("clone", -1 if epoch is None else epoch, 1.0, BUSY)


def limits(pace: Pace, steps: list[Step]) -> list[int]:
    """The limit after each step; a step without an epoch started under the current one."""
    out = []
    for step in steps:
        if step.epoch == -1:
            step = Step(step.kind, pace.epoch, step.seconds, step.signal)
        pace = after(pace, step)
        out.append(pace.limit)
    return out


@pytest.mark.parametrize(
    ("cap", "vms", "limit"),
    [(16, 13, 13), (16, 43, 16), (4, 13, 4), (1, 13, 1), (16, 1, 1), (0, 5, 1), (8, 0, 1)],
)
def test_starts_wide_up_to_the_cap(cap: int, vms: int, limit: int) -> None:
    assert start(cap, vms).limit == limit


@pytest.mark.parametrize(
    ("cap", "limit", "steps", "expected"),
    [
        # a lock timeout halves the limit; each new timeout under the new limit halves again
        (16, 13, [busy(), busy(), busy(), busy()], [6, 3, 1, 1]),
        # timeouts from steps let through before the decrease are the same congestion
        (16, 13, [busy(0), busy(0), busy(0)], [6, 6, 6]),
        # a limit's worth of successes in a row grows it by one
        (16, 2, [ok(), ok(), ok(), ok(), ok()], [2, 3, 3, 3, 4]),
        # never above the cap
        (3, 3, [ok(), ok(), ok(), ok()], [3, 3, 3, 3]),
        # a busy answer breaks the streak
        (16, 4, [ok(), ok(), ok(), busy(), ok(), ok()], [4, 4, 4, 2, 2, 3]),
        # a permanent error says nothing about load
        (16, 4, [ok(), Step("clone", 0, 1.0, FAILED), ok(), ok(), ok()], [4, 4, 4, 4, 5]),
        # 1 is the floor, and from 1 every success grows it
        (16, 1, [busy(), ok(), ok(), ok()], [1, 2, 2, 3]),
    ],
)
def test_aimd(cap: int, limit: int, steps: list[Step], expected: list[int]) -> None:
    assert limits(Pace(cap=cap, limit=limit), steps) == expected


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # 3x the kind's fastest is slow and backs off like a timeout
        ([ok(seconds=1.0), ok(seconds=3.5)], [8, 4]),
        # up to 3x is not
        ([ok(seconds=1.0), ok(seconds=2.9)], [8, 8]),
        # each kind against its own fastest: a start after a quick config is not slow
        ([ok("configure", 0.5), ok("start", 4.0)], [8, 8]),
        # the first of a kind sets its baseline, it cannot be slow
        ([ok(seconds=30.0)], [8]),
        # nothing is judged against less than the floor (task polling's interval)
        ([ok(seconds=0.01), ok(seconds=0.5)], [8, 8]),
        ([ok(seconds=0.01), ok(seconds=0.7)], [8, 4]),
    ],
)
def test_slow_steps_back_off(steps: list[Step], expected: list[int]) -> None:
    assert limits(Pace(cap=16, limit=8, floor=0.2), steps) == expected


def test_the_gate_never_lets_more_through_than_the_limit() -> None:
    gate = Gate(Pace(cap=8, limit=3, floor=10.0))  # held steps are not judged slow
    running, most, lock = 0, 0, threading.Lock()
    release = threading.Event()

    def worker() -> None:
        nonlocal running, most
        with gate.step("clone"):
            with lock:
                running += 1
                most = max(most, running)
            release.wait(5)
            with lock:
                running -= 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while running < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # time for a fourth to slip through, if the gate let it
    most_held = most
    release.set()
    for thread in threads:
        thread.join(5)
    assert most_held == 3
    assert gate.pace.limit == 5  # 3 successes at limit 3 make it 4, 4 more make it 5


def test_the_gate_reads_transient_errors_as_busy() -> None:
    gate = Gate(Pace(cap=8, limit=8))
    with pytest.raises(PveError), gate.step("clone"):
        raise PveError(
            "can't lock file '/var/lock/pve-manager/pve-storage-x' - got timeout", transient=True
        )
    assert (gate.pace.limit, gate.lowest) == (4, 4)
    with pytest.raises(PveError), gate.step("clone"):
        raise PveError("VM 201 already running")
    assert gate.pace.limit == 4


# -- through the engine and the fake ------------------------------------------------------
def _tight_lock(latency: Latency) -> None:
    """One clone at a time on the storage; a clone waiting past two others' work fails
    "got timeout" like PVE's lock_file, so 13 clones at once cannot all pass."""
    latency.clone_slots = 1
    latency.clone = 0.04
    latency.lock_timeout = 0.1


def test_the_default_run_backs_off_on_lock_timeouts_and_finishes(tmp_path: Path) -> None:
    with running_fake(tmp_path) as fake:
        _tight_lock(fake.state.latency)
        cluster = make_cluster(fake, 3, 10)
        client = client_for(fake, cluster)
        prepared = core.prepare(client, cluster, seed_texts(cluster))
        events: list[apply.Event] = []
        ctx = Context(
            client, cluster, prepared.observed, prepared.refs, prepared.texts, events.append
        )
        parallel = cluster.proxmox.parallel
        gate = apply.gate_for(ctx, parallel, 13)
        outcomes = apply.apply_plan(ctx, prepared.plan.vm_part, parallel, gate)
        assert [o.error for o in outcomes if o.error] == []
        # it did start wide (every VM at once), which the lock could not take ...
        assert start(parallel, 13).limit == 13
        retries = [e.detail for e in events if e.state == apply.State.RETRY]
        assert any("pve-storage-local-lvm' - got timeout" in t for t in retries)
        # ... so it backed off (halved at least once) rather than fail VMs on their last try
        assert gate.lowest <= 6
        fake.wait_idle()
        assert_converged(fake, cluster)


def test_parallel_1_stays_serial(tmp_path: Path) -> None:
    with running_fake(tmp_path) as fake:
        cluster = make_cluster(fake, 1, 3)
        run = boot(fake, cluster, parallel=1)
        assert not run.errors
        running: set[str] = set()
        most = 0
        for event in run.events:
            if event.state == apply.State.RUNNING:
                running.add(event.vm)
                most = max(most, len(running))
            else:
                running.discard(event.vm)
        assert most == 1
        # and VM by VM: once a VM's steps begin, no other VM's step runs until they end
        order = [e.vm for e in run.events if e.state == apply.State.RUNNING]
        switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
        assert (len(set(order)), switches) == (4, 3)
