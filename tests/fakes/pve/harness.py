"""Shared set-up for tests that boot clusters against the fake: configs, seeds, clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from generator import config
from generator.config.model import Cluster
from generator.naming import SEED_FILES
from generator.proxmox import apply, core
from generator.proxmox.client import Client, Retry
from tests import clusters
from tests.fakes.pve.server import FakePVE
from tests.fakes.pve.state import TOKEN_ID

FAST_RETRY = Retry(attempts=6, base=0.01, cap=0.05, task_poll=0.005, task_poll_cap=0.02)


def cluster_yaml(
    fake: FakePVE | None, servers: int = 1, agents: int = 0, name: str = "home", **proxmox: Any
) -> str:
    """A lab whose Proxmox is the fake (or, without one, an address the caller names)."""
    pve: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": fake.port if fake else 8006,
        "token_id": TOKEN_ID,
        "verify_tls": True,
        "seed_method": "iso",
    }
    if fake and proxmox.get("verify_tls", True):
        pve["ca_file"] = str(fake.tls.ca_file)
    pve.update(proxmox)
    data = clusters.cluster_data(
        clusters.small_nodes(servers, agents, sized=True),
        clusters.small_network(servers),
        cluster={"name": name},
        proxmox=pve,
    )
    return clusters.text_of(data)


def make_cluster(fake: FakePVE | None, servers: int = 1, agents: int = 0, **kw: Any) -> Cluster:
    return config.parse(cluster_yaml(fake, servers, agents, **kw)).cluster


def seed_texts(cluster: Cluster, version: str = "1") -> dict[str, dict[str, str]]:
    """Stand-in seeds: the engine only needs three texts per node."""
    return {
        n.name: {f: f"#{f} for {n.name} v{version}\n" for f in SEED_FILES} for n in cluster.nodes
    }


def client_for(fake: FakePVE, cluster: Cluster, **kw: Any) -> Client:
    kw.setdefault("retry", FAST_RETRY)
    return Client(cluster.proxmox, fake.state.token_secret, warn=lambda _: None, **kw)


@dataclass
class Run:
    prepared: core.Prepared
    outcomes: tuple[apply.Outcome, ...]
    events: list[apply.Event] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [o.error for o in self.outcomes if o.error]


def boot(
    fake: FakePVE,
    cluster: Cluster,
    texts: dict[str, dict[str, str]] | None = None,
    prune: bool = False,
    parallel: int = 4,
    before_call: Callable[[str, str], None] | None = None,
    ssh: Any = None,
) -> Run:
    client = client_for(fake, cluster, before_call=before_call)
    prepared = core.prepare(client, cluster, texts or seed_texts(cluster), prune=prune)
    events: list[apply.Event] = []
    outcomes = core.boot(client, prepared, parallel, events.append, ssh=ssh)
    return Run(prepared, outcomes, events)


def snapshot(fake: FakePVE, vmid: int) -> tuple[str, dict[str, Any]]:
    vm = fake.state.vms[vmid]
    return vm.status, dict(vm.config)


def assert_converged(
    fake: FakePVE, cluster: Cluster, extra_vmids: frozenset[int] = frozenset()
) -> None:
    """Proxmox holds exactly the VMs cluster.yaml describes, configured as it says."""
    from generator import naming
    from generator.proxmox.pveconfig import boot_disk, disk_size

    expected = {n.vmid for n in cluster.nodes} | {9000, 100} | set(extra_vmids)
    assert set(fake.state.vms) == expected
    volumes = fake.state.storage("pve", cluster.proxmox.seed_storage).volumes
    for node in cluster.nodes:
        vm = fake.state.vms[node.vmid]
        config = {k: str(v) for k, v in vm.config.items()}
        assert vm.status == "running", node.name
        assert config["name"] == node.name
        assert config["cores"] == str(node.cores)
        assert config["memory"] == str(node.memory)
        assert config["agent"] == "1" and config["onboot"] == "1"
        mac = naming.node_mac(cluster.name, node.name)
        assert config["net0"] == f"virtio={mac},bridge={cluster.proxmox.bridge}"
        assert set(config["tags"].split(";")) == {"homelab-gen", f"cluster-{cluster.name}"}
        owner_line = config["description"].splitlines()[0]
        assert owner_line == f"homelab-gen: cluster={cluster.name} node={node.name}"
        disk = boot_disk(config)
        assert disk and disk_size(config[disk]) == node.disk * 2**30
        assert "lock" not in config
        if cluster.proxmox.seed_method == "iso":
            cds = [v for k, v in config.items() if "media=cdrom" in v]
            assert len(cds) == 1 and "cloudinit" not in cds[0], cds
            volid = cds[0].split(",")[0]
            assert volid in volumes and f"-{node.name}-" in volid
        else:
            assert "cicustom" in config
