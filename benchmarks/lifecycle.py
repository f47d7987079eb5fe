"""What one `boot --replace` costs, against the fake PVE and the fake K3s API: wall time,
Proxmox API calls and K3s API requests for replacing an agent, then a server.

The fakes answer at once and the K3s side runs on a clock of requests (a pod terminates in
2, a node registers 2 and turns Ready 3 after its VM starts), so the figures are the tool's
own overhead and its call counts, not a real cluster's drain or boot time. Polling is every
10 ms instead of 5 s.

Run: python3 benchmarks/lifecycle.py
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.cli import main
from generator.lifecycle import run
from tests.lifecycle.labs import booted_lab

SERVERS, AGENTS = 3, 4


def measure(root: Path) -> list[tuple[str, float, int, int]]:
    run.POLL_INTERVAL = 0.01
    rows = []
    with booted_lab(root, SERVERS, AGENTS, os.environ.__setitem__) as lab:
        agents = [n.name for n in lab.config.agents]
        lab.k8s.add_replicaset("web", 4, nodes=agents)
        lab.k8s.add_pdb("web", selector={"app": "web"}, min_available=3)
        for node in ("k3s-agent-1", "k3s-server-2"):
            lab.pve.state.calls.clear()
            lab.world.requests.clear()
            start = time.perf_counter()
            argv = ["boot", "-C", str(lab.directory), "--yes", "--replace", node]
            assert main(argv) == 0
            took = time.perf_counter() - start
            rows.append((node, took, len(lab.pve.state.calls), len(lab.world.requests)))
    return rows


def main_() -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        rows = measure(Path(tmp))
    print(f"lab: {SERVERS} servers + {AGENTS} agents; one node replaced per run")
    print(f"{'node':<14} {'wall s':>7} {'PVE calls':>10} {'K3s requests':>13}")
    for node, took, pve_calls, kube_requests in rows:
        print(f"{node:<14} {took:>7.2f} {pve_calls:>10} {kube_requests:>13}")


if __name__ == "__main__":
    main_()
