"""Frozen, typed view of a validated cluster.yaml. Later stages never see raw dicts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Role = Literal["server", "agent"]


class SeedMethod(StrEnum):
    """How a node's seed reaches Proxmox. Each value is also the seed storage's content type
    and the volume's folder (`<storage>:iso/...`, `<storage>:snippets/...`). The schema's
    `seed_method` enum lists the same values (a test holds them equal)."""

    ISO = "iso"
    SNIPPETS = "snippets"


CloneMode = Literal["linked", "full"]
# spread: servers on distinct hosts, agents weighted by free memory; pack: all on proxmox.node.
PlacementMode = Literal["spread", "pack"]

IPv4 = ipaddress.IPv4Address
Net4 = ipaddress.IPv4Network


@dataclass(frozen=True)
class Git:
    url: str
    branch: str
    private: bool


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    domain: str
    k3s_version: str
    git: Git
    cni: str  # flannel (K3s's own) or calico (the Tigera operator, render/calico.py)
    flannel_backend: str  # "none" with Calico
    cluster_cidr: Net4
    service_cidr: Net4
    datastore_endpoint: str | None
    # The cluster exists: the first server joins through the API host like every other
    # server instead of starting one with cluster-init (see render.k3s.join_settings).
    initialized: bool = False


@dataclass(frozen=True)
class Network:
    cidr: Net4
    gateway: IPv4
    dns: tuple[IPv4, ...]
    search_domain: str
    api_vip: IPv4 | None
    metallb_start: IPv4
    metallb_end: IPv4

    @property
    def prefix(self) -> int:
        return self.cidr.prefixlen

    @property
    def metallb_range(self) -> str:
        return f"{self.metallb_start}-{self.metallb_end}"


@dataclass(frozen=True)
class Proxmox:
    host: str
    port: int
    node: str
    token_id: str
    verify_tls: bool
    ca_file: str | None
    template_vmid: int
    storage: str
    seed_storage: str
    seed_method: SeedMethod
    bridge: str
    clone: CloneMode
    parallel: int
    ssh_user: str
    ssh_port: int
    # The Proxmox hosts VMs may go on, proxmox.node first when the user did not list them.
    nodes: tuple[str, ...] = ()
    placement: PlacementMode = "pack"
    # Each VM an HA resource, servers kept on different hosts (generator.proxmox.ha).
    ha: bool = False

    @property
    def hosts(self) -> tuple[str, ...]:
        """The hosts in the user's order; a Proxmox built without them has proxmox.node."""
        return self.nodes or (self.node,)


@dataclass(frozen=True)
class Node:
    name: str
    role: Role
    vmid: int
    ip: IPv4
    cores: int
    memory: int  # MiB
    disk: int  # GiB
    proxmox_node: str | None = None

    @property
    def is_server(self) -> bool:
        return self.role == "server"


@dataclass(frozen=True)
class Component:
    enabled: bool
    version: str | None = None
    # Extra Helm values from cluster.yaml, merged over ours (plain nested data).
    values: dict[str, Any] = field(default_factory=dict, hash=False)
    # Component-specific settings (traefik.ip, cert_manager.issuer, ...).
    options: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Components:
    traefik: Component
    metallb: Component
    longhorn: Component
    monitoring: Component
    cert_manager: Component
    whoami: Component

    def enabled_names(self) -> tuple[str, ...]:
        return tuple(name for name in COMPONENT_NAMES if getattr(self, name).enabled)


@dataclass(frozen=True)
class ComponentInfo:
    """What every stage knows about one component, before any chart or manifest."""

    name: str  # key under components: in cluster.yaml, attribute of Components
    default: bool  # enabled when cluster.yaml does not say
    configs: bool = False  # also a folder under infrastructure/configs (CRs after the CRDs)
    app: bool = False  # under apps/, not infrastructure/controllers
    needs: tuple[str, ...] = ()  # rendered only when these are enabled too


# The one list of components, in the order of Components' fields; the others import it.
COMPONENTS: tuple[ComponentInfo, ...] = (
    ComponentInfo("traefik", True),
    ComponentInfo("metallb", True, configs=True),
    ComponentInfo("longhorn", False),
    ComponentInfo("monitoring", True),
    ComponentInfo("cert_manager", True, configs=True),
    ComponentInfo("whoami", True, app=True, needs=("traefik",)),
)
COMPONENT_BY_NAME = {c.name: c for c in COMPONENTS}
COMPONENT_NAMES = tuple(c.name for c in COMPONENTS)


@dataclass(frozen=True)
class VMSettings:
    user: str
    timezone: str
    locale: str
    upgrade_packages: bool


@dataclass(frozen=True)
class Cluster:
    cluster: ClusterInfo
    network: Network
    proxmox: Proxmox
    ssh_authorized_keys: tuple[str, ...]
    vm: VMSettings
    nodes: tuple[Node, ...]
    components: Components

    @property
    def name(self) -> str:
        return self.cluster.name

    @property
    def servers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.is_server)

    @property
    def agents(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.is_server)

    @property
    def first_server(self) -> Node:
        return self.servers[0]

    @property
    def init_server(self) -> Node | None:
        """The server whose first boot starts the cluster (K3s's cluster-init), or None.

        Only the first server of a cluster that does not exist yet. Once
        `cluster.initialized` is set (homelab-gen sets it before it rebuilds the first
        server), that server joins through the API host like the others: booting it with
        cluster-init again would start a second, empty cluster behind the same VIP
        (k3s-io/k3s#13623; the advice in #10362). A single server has no one to join, and an
        external datastore needs no init at all.
        """
        if self.cluster.datastore_endpoint is not None or not self.servers:
            return None
        if self.cluster.initialized and len(self.servers) > 1:
            return None
        return self.first_server

    @property
    def api_host(self) -> IPv4:
        """Where joiners and kubeconfigs point: the VIP, or the single server's IP."""
        return self.network.api_vip or self.first_server.ip
