"""What one `status` refresh of a 3 servers + 40 agents lab costs, against the fake PVE
(guest agents scripted: every agent up, cloud-init done) and the fake K3s API (every node
Ready, Flux applied).

Prints, from one run, each against its target as a ratio (goal: at most 1.00):
- the first refresh in-process, as `status` does it: load cluster.yaml, open the sources,
  gather, judge (target 3 s);
- the next refreshes, as `status --wait` repeats them on the same sources: median and max
  (target 1 s), and the Proxmox and K3s API requests each one makes; beside them the same
  refreshes on new worker threads, as `status` made them before its sources kept a pool;
- the whole command through a fresh interpreter (`python -m generator status`): start-up,
  imports and the first refresh (target 3 s).

Twice: with the fakes as they are (they answer at once), then with 20 ms per Proxmox API
round trip (a real pveproxy's, from benchmarks/boot.py's model unscaled); the K3s fake has no
latency model. Machines are noisy: compare the ratios within one run.

Run: python3 benchmarks/status.py
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator import config
from generator.cli import main
from generator.environment import Environment
from generator.status import gather
from generator.status.verdict import report
from tests.fakes.pve import Latency
from tests.labfakes import Lab, healthy, lab

SERVERS, AGENTS = 3, 40
REFRESHES = 5
FIRST_TARGET, LATER_TARGET = 3.0, 1.0
ROUND_TRIP = 0.02
TOKEN = "HOMELAB_GEN_PVE_TOKEN"


@dataclass(frozen=True)
class Refresh:
    seconds: float
    pve_calls: int
    kube_requests: int
    ready: bool


@contextlib.contextmanager
def ready_lab(root: Path) -> Iterator[Lab]:
    """The lab with its seeds rendered, so each done node's booted user-data is compared."""
    with lab(root, SERVERS, AGENTS) as made:
        os.environ[TOKEN] = made.pve.state.token_secret
        healthy(made.guests, made.cluster, made.kube)
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["render", "-C", str(made.directory)]) == 0
        yield made


def _counted(made: Lab, step: object) -> Refresh:
    made.pve.state.calls.clear()
    made.world.requests.clear()
    start = time.perf_counter()
    ready = step()  # type: ignore[operator]
    took = time.perf_counter() - start
    return Refresh(took, len(made.pve.state.calls), len(made.world.requests), bool(ready))


def refreshes(made: Lab) -> tuple[Refresh, list[Refresh], list[Refresh]]:
    """The first refresh (config and sources included), then REFRESHES more on its sources,
    each beside one on new worker threads (new Proxmox sessions and connections, as every
    refresh had before the sources kept their pool), interleaved so noise hits both alike."""
    sources: list[gather.Sources] = []

    def first() -> bool:
        loaded = config.load(made.directory)
        src = gather.open_sources(
            loaded.cluster,
            made.directory,
            server=made.kube.url,
            env=Environment.read(),
            warn=lambda _: None,
        )
        sources.append(src)
        return report(gather.gather(src)).ready

    def again() -> bool:
        return report(gather.gather(sources[0])).ready

    def on_new_threads() -> bool:
        sources[0].close()
        return again()

    opening = _counted(made, first)
    kept, fresh = [], []
    for _ in range(REFRESHES):
        kept.append(_counted(made, again))
        fresh.append(_counted(made, on_new_threads))
    sources[0].close()
    return opening, kept, fresh


def whole_command(made: Lab) -> Refresh:
    argv = [sys.executable, "-m", "generator", "status", "-C", str(made.directory)]
    argv += ["--server", made.kube.url]
    root = str(Path(__file__).resolve().parents[1])

    def run() -> bool:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=root, check=False)
        return done.returncode == 0

    return _counted(made, run)


def against(seconds: float, target: float) -> str:
    return f"{seconds:6.3f} s  ({seconds / target:4.2f}x the {target:.0f} s target)"


def show(
    title: str, opening: Refresh, kept: list[Refresh], fresh: list[Refresh], command: Refresh
) -> None:
    print(title)
    print(
        f"  {'first refresh (in-process)':38} {against(opening.seconds, FIRST_TARGET)};"
        f" PVE {opening.pve_calls}, K3s {opening.kube_requests} requests"
    )
    for label, later in (("", kept), (", new threads", fresh)):
        times = [r.seconds for r in later]
        name = f"next {len(later)} refreshes{label}"
        print(f"  {name + ', median':38} {against(statistics.median(times), LATER_TARGET)}")
        print(f"  {name + ', max':38} {against(max(times), LATER_TARGET)}")
    print(
        f"  {'requests per later refresh':38}"
        f"  PVE {statistics.median(r.pve_calls for r in kept):.0f},"
        f" K3s {statistics.median(r.kube_requests for r in kept):.0f}"
    )
    print(
        f"  {'python -m generator status':38} {against(command.seconds, FIRST_TARGET)};"
        f" PVE {command.pve_calls}, K3s {command.kube_requests} requests"
    )
    everything = [opening, command, *kept, *fresh]
    if not all(r.ready for r in everything):
        print("  warning: a refresh did not find the lab ready; the figures mean little")


def measure(root: Path, latency: Latency) -> tuple[Refresh, list[Refresh], list[Refresh], Refresh]:
    with ready_lab(root) as made:
        made.pve.state.latency = latency
        command = whole_command(made)  # before the in-process run warms any cache
        opening, kept, fresh = refreshes(made)
        return opening, kept, fresh, command


def main_() -> None:
    print(f"status of {SERVERS} servers + {AGENTS} agents against the fakes")
    worlds = (
        ("fakes as they are (no latency)", Latency()),
        (f"{ROUND_TRIP * 1000:.0f} ms per Proxmox API round trip", Latency(request=ROUND_TRIP)),
    )
    for title, latency in worlds:
        with tempfile.TemporaryDirectory() as tmp:
            show(title, *measure(Path(tmp), latency))


if __name__ == "__main__":
    main_()
