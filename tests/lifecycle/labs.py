"""A booted lab on the fake PVE with its K3s cluster on the fake K3s API, and the repo's
kubeconfig: the tests' fixture and benchmarks/lifecycle.py build it the same way.

A VM that the fake PVE starts joins the fake cluster a few requests later (its kubelet
registering NotReady, then Ready), as a rebuilt node does.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.cli import main
from generator.config.load import load
from generator.config.model import Cluster as ClusterConfig
from generator.status import kubeconfig
from tests.fakes.kube import Cluster, FakeKube, World, running_kube
from tests.fakes.pve import FakePVE, default_state, make_tls
from tests.fakes.pve.agent_routes import Guests, agent_routes
from tests.fakes.pve.harness import cluster_yaml
from tests.fakes.pve.routes import ROUTES
from tests.fakes.pve.state import PveState, Vm


@dataclass
class Lab:
    directory: Path
    pve: FakePVE
    kube: FakeKube
    world: World
    k8s: Cluster
    config: ClusterConfig

    def cli(self, *args: str) -> int:
        return main([*args, "-C", str(self.directory)])

    def boot(self, *args: str) -> int:
        return self.cli("boot", "--yes", *args)

    def reload(self) -> ClusterConfig:
        self.config = load(self.directory).cluster
        return self.config

    def node_ready(self, name: str) -> bool:
        obj = self.k8s.nodes.get(name)
        return bool(obj) and obj["status"]["conditions"][0]["status"] == "True"

    def pve_calls(self, method: str, suffix: str = "") -> list[str]:
        return [
            c.path
            for c in self.pve.state.calls
            if c.method == method and c.path.endswith(suffix) and c.status < 400
        ]


def write_kubeconfig(kube: FakeKube, config: ClusterConfig, directory: Path) -> None:
    ours = kubeconfig.rewrite(kubeconfig.parse(kube.k3s_yaml(), "k3s.yaml"), config.name, kube.url)
    kubeconfig.write(directory / f"{config.name}.kubeconfig", ours)


@contextlib.contextmanager
def booted_lab(
    root: Path,
    servers: int,
    agents: int,
    setenv: Callable[[str, str], None],
    state: PveState | None = None,
    **proxmox: Any,
) -> Iterator[Lab]:
    """`render` and `boot` made the lab; every node is registered and Ready in K3s. `state`:
    another Proxmox world (several hosts), with `proxmox` settings for cluster.yaml."""
    guests = Guests()  # every VM's agent answers; file-read gives the user-data it booted
    state = state or default_state(secrets.token_hex(16))
    routes = ROUTES + agent_routes(guests)
    with FakePVE(state, make_tls(root / "pve-tls"), routes=routes) as pve:
        directory = root / "lab"
        directory.mkdir()
        (directory / "cluster.yaml").write_text(cluster_yaml(pve, servers, agents, **proxmox))
        setenv("HOMELAB_GEN_PVE_TOKEN", pve.state.token_secret)
        assert main(["render", "-C", str(directory)]) == 0
        assert main(["boot", "-C", str(directory), "--yes"]) == 0
        config = load(directory).cluster
        k8s = Cluster(join_after=2, ready_after=3)
        for node in config.nodes:
            guests.vm(node.vmid)
            k8s.add_node(node.name, control_plane=node.is_server)
        world = World(cluster=k8s)
        with running_kube(root, world) as kube:
            write_kubeconfig(kube, config, directory)
            servers_ = {n.name for n in config.servers}

            def joins(vm: Vm) -> None:
                name = str(vm.config["name"])
                with kube.lock:
                    k8s.vm_created(name, control_plane=name in servers_)

            pve.state.on_start.append(joins)
            pve.state.calls.clear()
            yield Lab(directory, pve, kube, world, k8s, config)


def journal_exists(directory: Path) -> bool:
    return os.path.exists(directory / ".homelab-gen" / "lifecycle.json")
