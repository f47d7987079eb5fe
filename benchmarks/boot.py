"""How fast `boot` brings up 3 servers + 10 agents against the fake PVE's latency model.

Prints, from one run: the makespan at the default parallelism and at a wider one, a serial
baseline (parallel=1), the lower bound the storage-lock model allows, and API calls per VM.
Then the same 13 VMs spread over a Proxmox cluster of three hosts: VM disks on one shared
storage (one cluster-wide lock, pve-storage's cfs lock), and on each host's own local-lvm
with a template per host (a lock per host), each against its own bound.

The model is real PVE timings scaled by 1/10 so the run takes seconds: a linked clone 5 s,
a config change 1 s, a resize 1 s, a start 6 s, a seed upload 1.5 s, 20 ms per API round
trip; the storage lock admits 3 clones at once (others wait, as on PVE). Task polling is
scaled the same way (0.25 s rising to 1 s becomes 0.025 s rising to 0.1 s).

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

from generator.proxmox import core
from generator.proxmox.client import Client, Retry
from tests.fakes.pve import Latency, running_fake
from tests.fakes.pve.harness import make_cluster, seed_texts
from tests.fakes.pve.state import HOSTS, PveState, cluster_state

SERVERS, AGENTS = 3, 10
LATENCY = Latency(
    request=0.002,
    clone=0.5,
    config=0.1,
    resize=0.1,
    start=0.6,
    upload=0.15,
    clone_slots=3,
    lock_timeout=10.0,
)
RETRY = Retry(attempts=6, base=0.1, cap=1.0, task_poll=0.025, task_poll_cap=0.1)


@dataclass(frozen=True)
class Result:
    parallel: int
    observe: float
    makespan: float  # applying the plan
    calls: int
    mutating: int


def run(parallel: int, world: str = "one host") -> Result:
    with tempfile.TemporaryDirectory() as tmp, running_fake(Path(tmp), _state(world)) as fake:
        fake.state.latency = LATENCY
        cluster = make_cluster(fake, SERVERS, AGENTS, **_proxmox(world))
        client = Client(cluster.proxmox, fake.state.token_secret, retry=RETRY, warn=print)
        start = time.monotonic()
        prepared = core.prepare(client, cluster, seed_texts(cluster))
        observed = time.monotonic()
        outcomes = core.boot(client, prepared, parallel, lambda event: None)
        done = time.monotonic()
        errors = [o.error for o in outcomes if o.error]
        if errors:
            raise SystemExit(f"boot failed ({world}): {errors}")
        calls, mutating = len(fake.state.calls), len(fake.state.mutating_calls())
        return Result(
            parallel,
            observe=observed - start,
            makespan=done - observed,
            calls=calls,
            mutating=mutating,
        )


THREE_HOSTS = ("3 hosts, shared storage", "3 hosts, local-lvm, a template per host")


def _state(world: str) -> PveState | None:
    if world == THREE_HOSTS[0]:
        return cluster_state("benchmark", templates=((HOSTS[0], "shared"),))
    if world == THREE_HOSTS[1]:
        return cluster_state("benchmark", templates=tuple((h, "local-lvm") for h in HOSTS))
    return None  # the default world: one host


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


def report(results: list[Result], serial: Result, locks: int) -> None:
    vms = SERVERS + AGENTS
    for result in results:
        lock, workers, chain = lower_bound(math.ceil(vms / locks), result.parallel, LATENCY)
        workers = math.ceil(vms / result.parallel) * chain
        bound = max(lock, workers, chain)
        print(
            f"  parallel={result.parallel}: makespan {result.makespan:.2f} s"
            f" (lower bound {bound:.2f} s: lock {lock:.2f}, workers {workers:.2f};"
            f" {result.makespan / bound:.2f}x the bound;"
            f" {serial.makespan / result.makespan:.1f}x faster than serial)"
            f"; observe+plan {result.observe:.2f} s;"
            f" API calls/VM {result.calls / vms:.1f} ({result.mutating / vms:.1f} mutating)"
        )
    print(f"  serial baseline (parallel=1): {serial.makespan:.2f} s")


def main() -> None:
    default_parallel = 4
    results = [run(default_parallel), run(8), run(1)]
    print(f"boot of {SERVERS} servers + {AGENTS} agents against the fake PVE (latency x1/10)")
    report(results, results[-1], locks=1)
    print(
        f"  note: with {default_parallel} workers (the default) no schedule beats"
        f" {default_parallel}x serial; the 4x goal needs proxmox.parallel >= 8 (or --parallel 8)"
    )
    for world, locks in zip(THREE_HOSTS, (1, len(HOSTS)), strict=True):
        results = [run(default_parallel, world), run(8, world), run(13, world), run(1, world)]
        print(f"the same VMs on {world} (placement: spread)")
        report(results, results[-1], locks)


if __name__ == "__main__":
    main()
