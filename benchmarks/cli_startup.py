"""CLI start-up: median wall time of `homelab-gen --help` beside two references, in one run.

Usage: python benchmarks/cli_startup.py [--runs N]

Runs are interleaved (a, b, c, a, b, c, ...) so machine noise hits all three alike; compare
the ratios, not the absolute figures. Goal: homelab-gen --help <= 0.10 s and under half of
cookiecutter --help.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def script(name: str) -> str | None:
    """The console script beside this interpreter (a venv's), else the one on PATH.

    PATH may hold a version manager's shim (a shell script), which would add its own
    start-up to the figure.
    """
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def commands() -> dict[str, list[str]]:
    entry = script("homelab-gen")
    cookiecutter = script("cookiecutter")
    found = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "homelab-gen --help": [entry, "--help"]
        if entry
        else [sys.executable, "-m", "generator", "--help"],
    }
    if cookiecutter:
        found["cookiecutter --help"] = [cookiecutter, "--help"]
    found["python -c 'import kubernetes'"] = [sys.executable, "-c", "import kubernetes"]
    return found


def time_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    cmds = commands()
    samples: dict[str, list[float]] = {name: [] for name in cmds}
    for argv in cmds.values():  # warm the page cache once
        time_once(argv)
    for _ in range(runs):
        for name, argv in cmds.items():
            samples[name].append(time_once(argv))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ours = medians["homelab-gen --help"]
    print(f"median of {runs} interleaved runs")
    for name, value in medians.items():
        print(f"  {name:32} {value * 1000:7.1f} ms   ({value / ours:4.2f}x homelab-gen)")
    if "cookiecutter --help" in medians:
        ratio = ours / medians["cookiecutter --help"]
        print(f"homelab-gen / cookiecutter = {ratio:.2f} (goal < 0.50)")
    print(f"homelab-gen --help = {ours:.3f} s (goal <= 0.100 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
