"""What `status` gathers about the lab: frozen records of each node's VM, guest agent,
cloud-init and K3s state, and of Flux's objects.

generator/status/gather.py fills them in from Proxmox's guest agent and the K3s API;
generator/status/verdict.py judges them. They live apart so the judging stays pure and can
be tested from hand-written records alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class VMState(StrEnum):
    """The VM column's own values; other Proxmox statuses (stopped, paused) pass through."""

    RUNNING = "running"
    MISSING = "missing"  # no VM with the node's vmid
    FOREIGN = "foreign"  # a VM with that vmid, not tagged for this cluster
    UNKNOWN = "unknown"


class CloudInitStatus(StrEnum):
    """cloud-init's status, normalised; a newer cloud-init's other words pass through."""

    DONE = "done"
    RUNNING = "running"
    ERROR = "error"
    NOT_STARTED = "not started"
    DISABLED = "disabled"


@dataclass(frozen=True)
class CloudInit:
    status: str  # done, running, error, not started, disabled
    detail: str = ""
    errors: tuple[str, ...] = ()
    degraded: bool = False  # done, with recoverable errors (cloud-init 23.4+)


@dataclass(frozen=True)
class Guest:
    """One cluster node as Proxmox and its guest agent see it; None means unknown."""

    name: str
    role: str
    vmid: int
    expected_ip: str
    vm: str | None = None  # running, stopped, paused, missing, foreign
    agent: bool | None = None
    agent_note: str = ""
    addresses: tuple[str, ...] = ()
    cloud_init: CloudInit | None = None
    cloud_init_note: str = ""
    # The user-data it booted with differs from the rendered one; None: cannot tell.
    seed_changed: bool | None = None
    # The Proxmox host its VM is on, when /cluster/resources shows that host offline.
    host_offline: str = ""


@dataclass(frozen=True)
class KubeNode:
    name: str
    ready: bool
    version: str
    message: str = ""


@dataclass(frozen=True)
class FluxObject:
    kind: str  # FluxInstance, Kustomization, HelmRelease
    namespace: str
    name: str
    ready: bool | None  # None: no Ready condition yet
    reason: str = ""
    message: str = ""
    stalled: bool = False
    revision: str = ""
    suspended: bool = False  # spec.suspend: Flux leaves it alone, its Ready is stale


@dataclass(frozen=True)
class Kube:
    """The K3s API's view; `error` says why it is unknown (API down, no kubeconfig yet)."""

    error: str = ""
    server: str = ""
    nodes: tuple[KubeNode, ...] = ()
    instance: FluxObject | None = None
    kustomizations: tuple[FluxObject, ...] = ()
    helmreleases: tuple[FluxObject, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    cluster: str
    guests: tuple[Guest, ...]
    kube: Kube
    pve_error: str = ""  # why the VM and agent columns are unknown
    k3s_version: str = ""  # the wanted one, cluster.k3s_version; "" compares with nothing
