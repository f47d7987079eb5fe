"""What a run with nothing to do costs: `plan` and `boot --yes` on a booted lab of 3 servers +
10 agents, each as a whole command through a fresh interpreter (start-up and imports
included), against the fake PVE answering every API call after 20 ms (a real pveproxy's round
trip, benchmarks/boot.py's model unscaled).

Prints, from one run: the median and max wall time of each command against the 1 s target
(as a ratio), the Proxmox API calls it made (reads per VM), and the floor: the interpreter
with the command's imports and nothing else.

The commands run as an installed tool does, with their modules' bytecode cached (in a
temporary directory, never in the tree; one run first compiles it). --cold compiles every
module on every run instead, as with PYTHONDONTWRITEBYTECODE set.

Run: python3 benchmarks/noop.py [--runs N] [--cold]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes.pve import Latency  # noqa: E402  (the repo root is on the path only from here)
from tests.lifecycle.labs import Lab, booted_lab  # noqa: E402

SERVERS, AGENTS = 3, 10
TARGET = 1.0
ROUND_TRIP = 0.02
# What a run with nothing to do imports: the CLI, the config, the render check, the client.
FLOOR = (
    "import generator.cli, generator.commands.boot, generator.proxmox.core,"
    " generator.proxmox.client, generator.workspace, generator.lifecycle.flow, proxmoxer"
)


def child_env(cache: Path | None) -> dict[str, str]:
    """The environment the commands run in: bytecode cached under `cache`, or none."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if cache is None:
        return {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    return {**env, "PYTHONPYCACHEPREFIX": str(cache)}


def timed(argv: list[str], cache: Path | None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=REPO, check=False, env=child_env(cache)
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:])} failed ({done.returncode}):\n{done.stderr}")
    return took, done.stdout


def command(lab: Lab, *args: str) -> list[str]:
    return [sys.executable, "-m", "generator", *args, "-C", str(lab.directory)]


def measure(
    lab: Lab, argv: list[str], runs: int, cache: Path | None
) -> tuple[list[float], Counter[str]]:
    times: list[float] = []
    calls: Counter[str] = Counter()
    timed(argv, cache)  # compiles what the command imports beyond the floor
    for _ in range(runs):
        lab.pve.state.calls.clear()
        took, out = timed(argv, cache)
        if "nothing to do" not in out and "up to date" not in out:
            raise SystemExit(f"expected a run with nothing to do, got:\n{out}")
        times.append(took)
        calls = Counter(_kind(c.path) for c in lab.pve.state.calls)
    return times, calls


def _kind(path: str) -> str:
    """An API path with its node and VMID left out: `nodes/*/qemu/*/config`."""
    parts = path.strip("/").removeprefix("api2/json/").split("/")
    if parts[:1] == ["nodes"] and len(parts) > 1:
        parts[1] = "*"
    if len(parts) > 3 and parts[2] == "qemu":
        parts[3] = "*"
    return "/".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="no bytecode cache")
    args = parser.parse_args()
    vms = SERVERS + AGENTS
    with (
        tempfile.TemporaryDirectory() as tmp,
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        booted_lab(Path(tmp), SERVERS, AGENTS, os.environ.__setitem__) as lab,
    ):
        lab.pve.state.latency = Latency(request=ROUND_TRIP)
        cache = None if args.cold else Path(tmp) / "pycache"
        timed([sys.executable, "-c", FLOOR], cache)
        floor = [timed([sys.executable, "-c", FLOOR], cache)[0] for _ in range(args.runs)]
        results = {
            name: measure(lab, command(lab, *argv), args.runs, cache)
            for name, argv in (("plan", ["plan"]), ("boot --yes", ["boot", "--yes"]))
        }
    print(
        f"a run with nothing to do: {SERVERS} servers + {AGENTS} agents, fake PVE with"
        f" {ROUND_TRIP * 1000:.0f} ms per API call, {args.runs} runs, whole command,"
        f" {'no bytecode cache' if args.cold else 'bytecode cached'}"
    )
    print(f"  floor (interpreter + imports): median {statistics.median(floor):.3f} s")
    for name, (times, calls) in results.items():
        median = statistics.median(times)
        total = sum(calls.values())
        print(
            f"  {name:11} median {median:.3f} s, max {max(times):.3f} s"
            f" ({median / TARGET:.2f}x the {TARGET:.0f} s target);"
            f" {total} API calls ({total / vms:.1f} per VM)"
        )
        for path, count in calls.most_common():
            print(f"      {count:4d}  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
