"""How fast `boot` brings up 1 VM, 3+10 and 3+40 VMs against the fake PVE's latency model.

Prints, from one run, per lab size: the makespan at default settings (the adaptive limit,
capped by proxmox.parallel's default), the lower bound the storage-lock model allows, their
ratio (the goal is at most 1.5), API calls per VM, the old fixed default (4 at once), the
serial makespan (parallel=1) and the speed-up over it, next to the best speed-up the lock
model allows at all. Then 3+10 VMs spread over a Proxmox cluster of three hosts: VM disks
on one shared storage (one cluster-wide lock, pve-storage's cfs lock), and on each host's
own local-lvm with a template per host (a lock per host), each against its own bound.

The model is real PVE timings scaled by 1/10 so the run takes seconds: a linked clone 5 s,
a config change 1 s, a resize 1 s, a start 6 s, a seed upload 1.5 s, 20 ms per API round
trip; the storage lock admits 3 clones at once, and a clone that waits for it longer than
PVE's 10 s (pve-common Tools.pm, lock_file_full's default) fails "got timeout". Task polling
is scaled the same way (0.25 s rising to 1 s becomes 0.025 s rising to 0.1 s).

Run: python3 benchmarks/boot.py
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator import naming
from generator.proxmox import core, template_marks
from generator.proxmox.apply import Event, State
from generator.proxmox.client import Client, Retry
from tests.fakes.pve import TEMPLATE_VMID, Latency, running_fake
from tests.fakes.pve.harness import make_cluster, seed_texts
from tests.fakes.pve.state import HOSTS, PveState, cluster_state

SIZES = ((1, 0), (3, 10), (3, 40))
OLD_DEFAULT = 4  # proxmox.parallel's default before the adaptive limit: a fixed pool
SERIAL_MEASURED_UP_TO = 13  # VMs; a longer serial run is extrapolated from this one's
LATENCY = Latency(
    request=0.002,
    clone=0.5,
    config=0.1,
    resize=0.1,
    start=0.6,
    upload=0.15,
    clone_slots=3,
    lock_timeout=1.0,
)
RETRY = Retry(attempts=6, base=0.1, cap=1.0, task_poll=0.025, task_poll_cap=0.1)


@dataclass(frozen=True)
class Result:
    vms: int
    parallel: int
    observe: float
    makespan: float  # applying the plan
    calls: int
    mutating: int
    retries: int  # steps that failed transiently (a lock's "got timeout") and were re-planned


def run(size: tuple[int, int], parallel: int | None = None, world: str = "one host") -> Result:
    """One boot; `parallel` None: the default settings (proxmox.parallel's default)."""
    with tempfile.TemporaryDirectory() as tmp, running_fake(Path(tmp), _state(world)) as fake:
        fake.state.latency = LATENCY
        cluster = make_cluster(fake, *size, **_proxmox(world))
        cap = parallel or cluster.proxmox.parallel
        client = Client(cluster.proxmox, fake.state.token_secret, retry=RETRY, warn=print)
        start = time.monotonic()
        prepared = core.prepare(client, cluster, seed_texts(cluster))
        observed = time.monotonic()
        events: list[Event] = []
        outcomes = core.boot(client, prepared, cap, events.append)
        done = time.monotonic()
        errors = [o.error for o in outcomes if o.error]
        if errors:
            raise SystemExit(f"boot failed ({world}): {errors}")
        calls, mutating = len(fake.state.calls), len(fake.state.mutating_calls())
        return Result(
            sum(size),
            cap,
            observe=observed - start,
            makespan=done - observed,
            calls=calls,
            mutating=mutating,
            retries=sum(1 for e in events if e.state == State.RETRY),
        )


THREE_HOSTS = ("3 hosts, shared storage", "3 hosts, local-lvm, a template per host")


def _state(world: str) -> PveState | None:
    if world == THREE_HOSTS[0]:
        return cluster_state("benchmark", templates=((HOSTS[0], "shared"),))
    if world == THREE_HOSTS[1]:
        state = cluster_state("benchmark", templates=tuple((h, "local-lvm") for h in HOSTS))
        for index, host in enumerate(HOSTS[1:], start=1):
            _mark_copy(state, TEMPLATE_VMID + index, host)
        return state
    return None  # the default world: one host


def _mark_copy(state: PveState, vmid: int, host: str) -> None:
    """As `template --all-hosts` marks the copy it makes on `host`, so boot finds it."""
    config = state.vms[vmid].config
    config["tags"] = f"{naming.TOOL_TAG};{template_marks.TEMPLATE_TAG}"
    head = f"{template_marks.DESCRIPTION_HEAD} {template_marks.copy_marks(TEMPLATE_VMID, host)}"
    config["description"] = head


def _proxmox(world: str) -> dict[str, object]:
    if world == THREE_HOSTS[0]:
        return {
            "node": HOSTS[0],
            "nodes": list(HOSTS),
            "storage": "shared",
            "seed_storage": "shared",
        }
    if world == THREE_HOSTS[1]:
        return {
            "node": HOSTS[0],
            "nodes": list(HOSTS),
            "storage": "local-lvm",
            "seed_storage": "shared",
        }
    return {}


def lower_bound(vms: int, parallel: int, latency: Latency) -> tuple[float, float, float]:
    """(lock bound, worker bound, per-VM chain) for applying the plan; the max is the bound.

    Clones pass the storage lock `clone_slots` at a time; before the first one a seed must be
    uploaded, after the last one its VM still needs config, resize and start.
    """
    after = latency.config + latency.resize + latency.start
    chain = latency.upload + latency.clone + after
    lock = latency.upload + math.ceil(vms / latency.clone_slots) * latency.clone + after
    workers = math.ceil(vms / parallel) * chain
    return lock, workers, chain


def bound(vms: int, parallel: int, locks: int = 1) -> float:
    lock, _, chain = lower_bound(math.ceil(vms / locks), parallel, LATENCY)
    return max(lock, math.ceil(vms / parallel) * chain, chain)


def line(label: str, result: Result, serial: float, locks: int = 1) -> str:
    best = bound(result.vms, result.parallel, locks)
    return (
        f"  {label}: makespan {result.makespan:.2f} s, bound {best:.2f} s,"
        f" ratio {result.makespan / best:.2f}, {serial / result.makespan:.1f}x serial;"
        f" API calls/VM {result.calls / result.vms:.1f} ({result.mutating / result.vms:.1f}"
        f" mutating), {result.retries} re-planned steps; observe+plan {result.observe:.2f} s"
    )


def one_size(size: tuple[int, int], serial_per_vm: float | None) -> float:
    """Prints one lab size's figures; returns the serial seconds per VM it measured/used."""
    vms = sum(size)
    print(f"{size[0]} server(s) + {size[1]} agent(s) = {vms} VM(s), one host:")
    default, old = run(size), run(size, OLD_DEFAULT)
    if vms <= SERIAL_MEASURED_UP_TO or serial_per_vm is None:
        serial = run(size, 1).makespan
        how = "measured"
    else:
        serial = serial_per_vm * vms
        how = f"extrapolated: {serial_per_vm:.2f} s/VM measured at {SERIAL_MEASURED_UP_TO} VMs"
    print(line(f"default (adaptive, cap {default.parallel})", default, serial))
    print(line(f"parallel={OLD_DEFAULT} (the old fixed default)", old, serial))
    best = bound(vms, default.parallel)
    print(
        f"  serial (parallel=1): {serial:.2f} s ({how}); speed-up at default"
        f" {serial / default.makespan:.1f}x; the lock model allows at most"
        f" {serial / best:.1f}x here ({serial:.1f} s / bound {best:.2f} s)"
    )
    return serial / vms


def main() -> None:
    print("boot against the fake PVE (latency x1/10; makespan = applying the plan)")
    serial_per_vm: float | None = None
    for size in SIZES:
        serial_per_vm = one_size(size, serial_per_vm)
    print(
        "  note: 10x serial is out of reach under this lock model at any size: a VM's chain"
        f" is {_chain():.2f} s of which {LATENCY.clone:.2f} s holds one of"
        f" {LATENCY.clone_slots} lock slots, so even infinitely many VMs gain at most"
        f" {_chain() / LATENCY.clone * LATENCY.clone_slots:.1f}x (plus what polling adds to"
        " the serial run)"
    )
    size = SIZES[1]
    assert serial_per_vm is not None
    for world, locks in zip(THREE_HOSTS, (1, len(HOSTS)), strict=True):
        print(f"{sum(size)} VMs on {world} (placement: spread; serial from one host)")
        serial = serial_per_vm * sum(size)
        print(line("default", run(size, None, world), serial, locks))
        print(line(f"parallel={OLD_DEFAULT}", run(size, OLD_DEFAULT, world), serial, locks))


def _chain() -> float:
    return lower_bound(1, 1, LATENCY)[2]


if __name__ == "__main__":
    main()
