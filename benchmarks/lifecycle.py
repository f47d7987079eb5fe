"""What one `boot --replace` costs, against the fake PVE and the fake K3s API: wall time,
Proxmox API calls and K3s API requests for replacing an agent, then a server.

The fakes answer at once and the K3s side runs on a clock of requests (a pod terminates in
2, a node registers 2 and turns Ready 3 after its VM starts), so the figures are the tool's
own overhead and its call counts, not a real cluster's drain or boot time. Polling is every
10 ms instead of 5 s.

Run: python3 benchmarks/lifecycle.py
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.cli import main
from generator.config.load import load
from generator.lifecycle import run
from tests.fakes.kube import Cluster, World, running_kube
from tests.fakes.pve import FakePVE, default_state, make_tls
from tests.fakes.pve.agent_routes import Guests, agent_routes
from tests.fakes.pve.harness import cluster_yaml
from tests.fakes.pve.routes import ROUTES
from tests.fakes.pve.state import Vm
from tests.lifecycle.conftest import write_kubeconfig

SERVERS, AGENTS = 3, 4


def _quiet(argv: list[str]) -> int:
    with open(os.devnull, "w") as sink:
        saved = sys.stdout
        sys.stdout = sink
        try:
            return main(argv)
        finally:
            sys.stdout = saved


def measure(root: Path) -> list[tuple[str, float, int, int]]:
    run.POLL_INTERVAL = 0.01
    guests = Guests()
    state = default_state(secrets.token_hex(16))
    rows = []
    with FakePVE(state, make_tls(root / "tls"), routes=ROUTES + agent_routes(guests)) as pve:
        repo = root / "lab"
        repo.mkdir()
        (repo / "cluster.yaml").write_text(cluster_yaml(pve, SERVERS, AGENTS))
        os.environ["HOMELAB_GEN_PVE_TOKEN"] = pve.state.token_secret
        assert _quiet(["render", "-C", str(repo)]) == 0
        assert _quiet(["boot", "-C", str(repo), "--yes"]) == 0
        config = load(repo).cluster
        k8s = Cluster()
        for node in config.nodes:
            guests.vm(node.vmid)
            k8s.add_node(node.name, control_plane=node.is_server)
        agents = [n.name for n in config.agents]
        k8s.add_replicaset("web", 4, nodes=agents)
        k8s.add_pdb("web", selector={"app": "web"}, min_available=3)
        world = World(cluster=k8s)
        with running_kube(root, world) as kube:
            write_kubeconfig(kube, config, repo)
            servers = {n.name for n in config.servers}

            def joins(vm: Vm) -> None:
                name = str(vm.config["name"])
                with kube.lock:
                    k8s.vm_created(name, control_plane=name in servers)

            pve.state.on_start.append(joins)
            for node in ("k3s-agent-1", "k3s-server-2"):
                pve.state.calls.clear()
                world.requests.clear()
                start = time.perf_counter()
                assert _quiet(["boot", "-C", str(repo), "--yes", "--replace", node]) == 0
                took = time.perf_counter() - start
                rows.append((node, took, len(pve.state.calls), len(world.requests)))
    return rows


def main_() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(Path(tmp))
    print(f"lab: {SERVERS} servers + {AGENTS} agents; one node replaced per run")
    print(f"{'node':<14} {'wall s':>7} {'PVE calls':>10} {'K3s requests':>13}")
    for node, took, pve_calls, kube_requests in rows:
        print(f"{node:<14} {took:>7.2f} {pve_calls:>10} {kube_requests:>13}")


if __name__ == "__main__":
    main_()
