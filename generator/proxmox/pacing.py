"""How many steps run against Proxmox at once: a limit that adapts (AIMD).

PVE has no queue we can see, only symptoms of one: a clone that waited too long for the
storage lock fails "got timeout" (pve-common Tools.pm, lock_file_full: 10 s), pveproxy
answers 595-597 when pvedaemon is swamped, a proxy in front of it 502-504, and every step
takes longer. So the limit starts wide (as many steps as there are VMs, up to the cap),
halves on such a symptom and grows by one after a limit's worth of steps went well, never
above the cap (`--parallel`, proxmox.parallel) nor below 1.

`after` is the whole policy, pure; `Gate` makes it a thread-safe door for apply's workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from generator.proxmox.failures import PveError

# A step counts as slow when it took this many times its kind's fastest time so far. A
# linked clone waiting behind two others for the storage lock takes 3x; past that, more
# clones in flight only bring them closer to the lock's timeout.
SLOW_FACTOR = 3.0


class Signal(StrEnum):
    """What one step's end says about Proxmox's load."""

    OK = "ok"
    BUSY = "busy"  # a transient refusal: a lock's "got timeout", 595-597, 502-504
    FAILED = "failed"  # a permanent error: says nothing about load


@dataclass(frozen=True)
class Ticket:
    """A step let through: when, and under which decrease (its `epoch`)."""

    kind: str
    epoch: int
    started: float


@dataclass(frozen=True)
class Step:
    """A finished step, as `after` judges it."""

    kind: str
    epoch: int
    seconds: float
    signal: Signal


@dataclass(frozen=True)
class Pace:
    """`limit` steps may run at once. `epoch` counts decreases: a step that started before
    the last one ran under a wider limit, and its trouble is already answered (as TCP
    halves its window once per round trip, not once per lost packet). `floor` is the
    shortest time worth comparing: task polling makes anything quicker look alike."""

    cap: int
    limit: int
    floor: float = 0.0
    epoch: int = 0
    streak: int = 0
    fastest: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


def start(cap: int, steps_ready: int, floor: float = 0.0) -> Pace:
    """Wide at once: every VM that has work may go, up to the cap."""
    cap = max(1, cap)
    return Pace(cap=cap, limit=max(1, min(cap, steps_ready)), floor=floor)


def slow(pace: Pace, step: Step) -> bool:
    fastest = pace.fastest.get(step.kind)
    if fastest is None:
        return False
    return step.seconds > SLOW_FACTOR * max(fastest, pace.floor)


def after(pace: Pace, step: Step) -> Pace:
    """The pace once `step` has ended."""
    if step.signal is Signal.FAILED:
        return pace
    if step.signal is Signal.BUSY or slow(pace, step):
        return _decrease(pace, step)
    fastest = min(step.seconds, pace.fastest.get(step.kind, step.seconds))
    pace = replace(pace, fastest=MappingProxyType({**pace.fastest, step.kind: fastest}))
    return _increase(pace)


def _decrease(pace: Pace, step: Step) -> Pace:
    if step.epoch != pace.epoch:
        return replace(pace, streak=0)
    return replace(pace, limit=max(1, pace.limit // 2), epoch=pace.epoch + 1, streak=0)


def _increase(pace: Pace) -> Pace:
    streak = pace.streak + 1
    if streak < pace.limit:
        return replace(pace, streak=streak)
    return replace(pace, limit=min(pace.cap, pace.limit + 1), streak=0)


class Gate:
    """Lets at most `pace.limit` steps through at once, the limit following `after`."""

    def __init__(self, pace: Pace) -> None:
        self._pace = pace
        self._running = 0
        self._changed = threading.Condition()
        self.lowest = pace.limit  # for reports: how far the run had to back off

    @property
    def pace(self) -> Pace:
        with self._changed:
            return self._pace

    def enter(self, kind: str) -> Ticket:
        with self._changed:
            self._changed.wait_for(lambda: self._running < self._pace.limit)
            self._running += 1
            return Ticket(kind, self._pace.epoch, time.monotonic())

    def leave(self, ticket: Ticket, signal: Signal) -> None:
        seconds = time.monotonic() - ticket.started
        with self._changed:
            self._running -= 1
            self._pace = after(self._pace, Step(ticket.kind, ticket.epoch, seconds, signal))
            self.lowest = min(self.lowest, self._pace.limit)
            self._changed.notify_all()

    @contextmanager
    def step(self, kind: str) -> Iterator[Ticket]:
        """A step through the gate; how it ended (`signal_of` its error) moves the limit."""
        ticket = self.enter(kind)
        try:
            yield ticket
        except BaseException as exc:
            self.leave(ticket, signal_of(exc))
            raise
        self.leave(ticket, Signal.OK)


def signal_of(exc: BaseException) -> Signal:
    """A transient PveError says "busy"; anything else is no news about load."""
    return Signal.BUSY if isinstance(exc, PveError) and exc.transient else Signal.FAILED
