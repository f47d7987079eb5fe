"""Whole-process wall time and peak RSS of `homelab-gen render`: 3 servers + 50, and + 500 agents.

Run from the repo root: python3 benchmarks/render.py [--runs N]
Each run renders into a fresh copy of a cluster repo (cluster.yaml plus its secrets store),
so it measures a first render: Python start-up, imports, validation, rendering, writing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import clusters  # noqa: E402  (the repo root is on the path only from here)

SIZES = (50, 500)
SERVERS = 3


def cluster_yaml(agents: int) -> str:
    data = clusters.cluster_data(
        clusters.wide_nodes(SERVERS, agents),
        clusters.wide_network(SERVERS),
        cluster={"name": "bench"},
        components=clusters.EVERY_COMPONENT,
    )
    return clusters.text_of(data)


def prepare(agents: int, root: Path) -> Path:
    """A repo with cluster.yaml and a secrets store, made by one untimed render."""
    template = root / f"template-{agents}"
    template.mkdir()
    (template / "cluster.yaml").write_text(cluster_yaml(agents))
    one_run(template)
    shutil.rmtree(template / "cloud-init", ignore_errors=True)
    shutil.rmtree(template / "gitops", ignore_errors=True)
    (template / ".homelab-gen" / "rendered.json").unlink(missing_ok=True)
    return template


def one_run(directory: Path) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds of one `python -m generator render -C DIR`.

    CPU time (user + system) is less disturbed than wall time on a shared machine.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator", "render", "-C", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"render failed in {directory}:\n{err}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def measure(template: Path, root: Path, runs: int) -> tuple[float, float, float, float]:
    """Median first-render wall, peak RSS (MiB), median CPU, and median re-render wall."""
    times, peaks, cpus, again = [], [], [], []
    for index in range(runs):
        target = root / f"{template.name}-run{index}"
        shutil.copytree(template, target)
        elapsed, peak, cpu = one_run(target)
        times.append(elapsed)
        peaks.append(peak)
        cpus.append(cpu)
        again.append(one_run(target)[0])
        shutil.rmtree(target)
    return (
        statistics.median(times),
        max(peaks) / 1024,
        statistics.median(cpus),
        statistics.median(again),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    gitops = (REPO / "generator" / "render" / "gitops.py").exists()
    print(f"homelab-gen render, {args.runs} runs each, median wall time and peak RSS")
    print(f"gitops renderer present: {gitops}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for agents in SIZES:
            template = prepare(agents, root)
            median, peak, cpu, again = measure(template, root, args.runs)
            results[agents] = median
            print(
                f"{SERVERS} servers + {agents:3d} agents: "
                f"{median:.3f} s median wall, {cpu:.3f} s median CPU, {peak:.1f} MiB peak RSS; "
                f"re-render with nothing to change {again:.3f} s"
            )
    small, large = results[SIZES[0]], results[SIZES[1]]
    nodes_small, nodes_large = SERVERS + SIZES[0], SERVERS + SIZES[1]
    print(
        f"growth: {large / small:.2f}x time for {nodes_large / nodes_small:.2f}x nodes; "
        f"marginal {(large - small) / (nodes_large - nodes_small) * 1000:.2f} ms per extra node"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
