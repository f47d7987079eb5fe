"""A cluster repo wired to the fake PVE (with guest agents) and the fake K3s API, for the
status and kubeconfig tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from generator import naming
from generator.config.model import Cluster
from tests.fakes.kube import (
    FakeKube,
    Moment,
    World,
    flux_instance,
    helmrelease,
    kustomization,
    node,
)
from tests.fakes.kube.server import running_kube
from tests.fakes.pve import FakePVE, Vm, default_state, make_tls
from tests.fakes.pve.agent_routes import (
    JSON_COMMAND,
    Guests,
    agent_routes,
    exec_for_json,
)
from tests.fakes.pve.harness import cluster_yaml, make_cluster
from tests.fakes.pve.routes import ROUTES
from tests.fakes.pve.state import template_config


@dataclass
class Lab:
    directory: Path
    cluster: Cluster
    pve: FakePVE
    guests: Guests
    kube: FakeKube
    world: World

    def cli(self, *args: str) -> list[str]:
        return [*args, "-C", str(self.directory), "--server", self.kube.url]


def place_vms(pve: FakePVE, cluster: Cluster) -> None:
    """The VMs `boot` would have made, running."""
    for n in cluster.nodes:
        config = template_config()
        config.pop("template")
        config.update(
            name=n.name,
            tags=naming.vm_tags(cluster),
            description=naming.owner_line(cluster, n),
        )
        pve.state.vms[n.vmid] = Vm(n.vmid, "pve", config, status="running")


def healthy(guests: Guests, cluster: Cluster, kube: FakeKube | None = None) -> None:
    """Every guest's agent up with its address, cloud-init done; the first server holds
    K3s's kubeconfig."""
    for n in cluster.nodes:
        guest = guests.vm(n.vmid)
        guest.interfaces = [[str(n.ip)]]
        guest.commands[JSON_COMMAND] = [exec_for_json("done")]
    if kube is not None:
        guests.vm(cluster.first_server.vmid).files["/etc/rancher/k3s/k3s.yaml"] = [kube.k3s_yaml()]


def ready_moment(cluster: Cluster) -> Moment:
    return Moment(
        nodes=[node(n.name) for n in cluster.nodes],
        instance=flux_instance(True),
        kustomizations=[
            kustomization("flux-system"),
            kustomization("infra-metallb"),
            kustomization("config-metallb"),
            kustomization("infra-traefik"),
            kustomization("infra-longhorn"),
            kustomization("apps"),
        ],
        helmreleases=[
            helmrelease("metallb", "metallb-system"),
            helmrelease("traefik", "traefik"),
            helmrelease("longhorn", "longhorn-system"),
        ],
    )


@contextmanager
def lab(
    tmp_path: Path,
    servers: int = 1,
    agents: int = 2,
    moments: list[Moment] | None = None,
    refuse: int = 0,
) -> Iterator[Lab]:
    guests = Guests()
    with ExitStack() as stack:
        state = default_state(secrets.token_hex(16))
        pve = stack.enter_context(
            FakePVE(state, make_tls(tmp_path / "pve-tls"), routes=ROUTES + agent_routes(guests))
        )
        cluster = make_cluster(pve, servers, agents)
        world = World(moments or [ready_moment(cluster)], refuse=refuse)
        kube = stack.enter_context(running_kube(tmp_path, world))
        directory = tmp_path / "repo"
        directory.mkdir()
        (directory / "cluster.yaml").write_text(cluster_yaml(pve, servers, agents))
        place_vms(pve, cluster)
        yield Lab(directory, cluster, pve, guests, kube, world)
