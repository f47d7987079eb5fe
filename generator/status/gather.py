"""Gather `status` facts from Proxmox (VMs, guest agent) and the K3s API, once or until the
lab is ready. Whatever cannot be asked yet becomes an explained "unknown", never an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator import naming
from generator.config.model import Cluster, Node
from generator.environment import Environment
from generator.errors import HomelabError
from generator.status import kubeconfig
from generator.status.facts import CloudInit, CloudInitStatus, Facts, Guest, Kube, VMState
from generator.status.verdict import Report, report

if TYPE_CHECKING:
    from generator.proxmox.client import Client, Retry


def kubeconfig_path(cluster: Cluster, directory: Path) -> Path:
    """Where `kubeconfig` writes by default, and where `status` looks first."""
    return directory / naming.kubeconfig_file(cluster)


@dataclass
class Sources:
    """Connections and what stays true between refreshes of `status --wait`."""

    cluster: Cluster
    directory: Path
    client: Client | None
    pve_error: str = ""
    server: str | None = None
    workers: int = 8
    done: dict[str, CloudInit] = field(default_factory=dict)  # cloud-init finished
    no_json: set[str] = field(default_factory=set)  # cloud-init 22.4: no --format json
    exec_note: str = ""  # set once exec is forbidden: asking again cannot help
    # The booted user-data's sha256 (None: the guest cannot tell), asked once per node:
    # cloud-init writes it at boot, so it changes only if the VM restarts mid-watch.
    booted: dict[str, str | None] = field(default_factory=dict)
    unreachable: str = ""  # this refresh found Proxmox unreachable: do not ask it again
    kubeconfig: dict[str, Any] | None = None
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    def pool(self) -> ThreadPoolExecutor:
        """One pool for every refresh: Client keeps a session per thread, so long-lived
        threads reuse their open connections instead of a TLS handshake each per refresh."""
        if self._pool is None:
            workers = max(1, min(self.workers, len(self.cluster.nodes)))
            self._pool = ThreadPoolExecutor(max_workers=workers)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Sources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sources(
    cluster: Cluster,
    directory: Path,
    *,
    server: str | None = None,
    env: Environment,
    warn: Callable[[str], None],
    retry: Retry | None = None,
) -> Sources:
    from generator.proxmox import core
    from generator.proxmox.client import Retry as RetryPolicy

    try:
        # A refresh must stay quick: one short retry, then say "unknown" and move on.
        quick = retry or RetryPolicy(attempts=2, base=0.5, cap=1.0)
        client = core.connect(cluster, directory, env=env, warn=warn, retry=quick)
    except HomelabError as exc:
        return Sources(cluster, directory, None, pve_error=str(exc), server=server)
    return Sources(cluster, directory, client, server=server)


# -- Proxmox and the guest agent -----------------------------------------------------------
def _unknown(cluster: Cluster) -> tuple[Guest, ...]:
    return tuple(Guest(n.name, n.role, n.vmid, str(n.ip)) for n in cluster.nodes)


def _vm_state(src: Sources, resource: dict[str, Any] | None) -> str:
    if resource is None:
        return VMState.MISSING
    if not naming.tagged_for(naming.parse_tags(resource.get("tags")), src.cluster):
        return VMState.FOREIGN
    return str(resource.get("status", VMState.UNKNOWN))


def _cloud_init(src: Sources, node: Node, pve_node: str, guest: Guest) -> Guest:
    from generator.proxmox import agent
    from generator.status import cloudinit

    if node.name in src.done:
        return _seed_changed(src, node, pve_node, replace(guest, cloud_init=src.done[node.name]))
    if src.exec_note:
        return replace(guest, cloud_init_note=src.exec_note)
    assert src.client is not None
    try:
        found, json_ok = cloudinit.cloud_init_status(
            src.client, pve_node, node.vmid, json_ok=node.name not in src.no_json
        )
    except agent.AgentError as exc:
        if exc.kind == agent.AgentFailure.FORBIDDEN:
            src.exec_note = agent.forbidden_note()
            return replace(guest, cloud_init_note=src.exec_note)
        return replace(guest, cloud_init_note=exc.message[:120])
    if not json_ok:
        src.no_json.add(node.name)
    if found.status != CloudInitStatus.DONE:
        return replace(guest, cloud_init=found)
    src.done[node.name] = found
    return _seed_changed(src, node, pve_node, replace(guest, cloud_init=found))


def _rendered_digest(src: Sources, node: Node) -> str | None:
    from generator.status import cloudinit

    path = src.directory / naming.seed_path(node.name, "user-data")
    return cloudinit.settings_digest(path.read_text()) if path.is_file() else None


def _seed_changed(src: Sources, node: Node, pve_node: str, guest: Guest) -> Guest:
    """Whether the node booted from other user-data than is rendered now, K3s versions left
    out (the upgrade Plans change those in place): only a note, since cloud-init runs once
    per instance and the node keeps what it booted with."""
    from generator.proxmox import agent
    from generator.status import cloudinit

    rendered = _rendered_digest(src, node)
    if rendered is None:
        return guest  # nothing rendered to compare with
    if node.name not in src.booted:
        assert src.client is not None
        try:
            src.booted[node.name] = cloudinit.booted_settings_digest(
                src.client, pve_node, node.vmid
            )
        except agent.AgentError:
            return guest  # a note can wait for the next look
    booted = src.booted[node.name]
    return guest if booted is None else replace(guest, seed_changed=booted != rendered)


def _guest(
    src: Sources, node: Node, resource: dict[str, Any] | None, offline: frozenset[str]
) -> Guest:
    from generator.proxmox import agent

    assert src.client is not None
    base = Guest(node.name, node.role, node.vmid, str(node.ip), vm=_vm_state(src, resource))
    if resource is not None and str(resource.get("node")) in offline:
        # Its host is down: the VM exists, but neither it nor its agent can be asked.
        host = str(resource["node"])
        return replace(base, vm=f"host {host} offline", host_offline=host)
    if base.vm != VMState.RUNNING or resource is None:
        return base
    pve_node = str(resource["node"])
    try:
        seen = agent.addresses(src.client, pve_node, node.vmid)
    except agent.AgentError as exc:
        if exc.kind == agent.AgentFailure.FORBIDDEN:
            return replace(base, agent_note=f"token may not ask: {exc.message}")
        return replace(base, agent=False, agent_note=exc.message)
    up = replace(base, agent=True, addresses=seen)
    return _cloud_init(src, node, pve_node, up)


def guests(src: Sources) -> tuple[tuple[Guest, ...], str]:
    """Each node's guest facts, and why they are unknown if Proxmox cannot be asked."""
    from generator.proxmox.failures import PveError, Unreachable
    from generator.proxmox.observe import offline_hosts

    src.unreachable = ""
    if src.client is None:
        return _unknown(src.cluster), src.pve_error
    try:
        listed = src.client.get("cluster/resources") or []  # VMs and hosts, in one read
    except PveError as exc:
        if isinstance(exc, Unreachable):
            src.unreachable = str(exc)
        return _unknown(src.cluster), str(exc)
    by_vmid = {int(r["vmid"]): r for r in listed if r.get("type", "qemu") == "qemu"}
    offline = offline_hosts(listed)
    found = src.pool().map(
        lambda n: _guest(src, n, by_vmid.get(n.vmid), offline), src.cluster.nodes
    )
    return tuple(found), ""


# -- the K3s API ---------------------------------------------------------------------------
def _fetch_kubeconfig(src: Sources) -> tuple[dict[str, Any] | None, str]:
    """The admin kubeconfig: the file `kubeconfig` wrote, else K3s's own through the agent."""
    from generator.proxmox import agent
    from generator.proxmox.failures import PveError, Unreachable
    from generator.proxmox.observe import host_of

    path = kubeconfig_path(src.cluster, src.directory)
    if path.is_file():
        return kubeconfig.parse(path.read_text(), str(path)), ""
    first = src.cluster.first_server
    if src.client is None or src.unreachable:
        return None, f"no {path.name} and Proxmox cannot be asked for K3s's own"
    try:
        pve_node = host_of(src.client, src.cluster, first)
        text = agent.read_file(src.client, pve_node, first.vmid, agent.K3S_KUBECONFIG)
    except Unreachable as exc:  # Proxmox, not the guest agent, is what does not answer
        return None, f"no {path.name} and Proxmox cannot be asked for K3s's own: {exc}"
    except agent.AgentError as exc:
        failure = agent.AgentFailure
        why = {
            failure.NO_FILE: f"K3s has not written {agent.K3S_KUBECONFIG} on {first.name} yet",
            failure.AGENT_DOWN: f"{first.name}'s guest agent is not answering",
            failure.VM_DOWN: f"{first.name} is not running",
            failure.PVE_DOWN: exc.message,
        }.get(exc.kind, f"reading {agent.K3S_KUBECONFIG} on {first.name} failed: {exc.message}")
        return None, f"no kubeconfig yet: {why}"
    except PveError as exc:  # finding the first server's host
        return None, f"no {path.name} and Proxmox cannot say where {first.name} is: {exc}"
    k3s_yaml = kubeconfig.parse(text, f"{first.name}:{agent.K3S_KUBECONFIG}")
    server = kubeconfig.api_server(src.cluster)
    return kubeconfig.rewrite(k3s_yaml, src.cluster.name, server), ""


def _with_server(config: dict[str, Any], server: str) -> dict[str, Any]:
    clusters = [
        {**c, "cluster": {**c.get("cluster", {}), "server": server}} for c in config["clusters"]
    ]
    return {**config, "clusters": clusters}


def kube_facts(src: Sources) -> Kube:
    from generator.status import k8s

    if src.kubeconfig is None:
        try:
            src.kubeconfig, why = _fetch_kubeconfig(src)
        except HomelabError as exc:
            return Kube(error=str(exc))
        if src.kubeconfig is None:
            return Kube(error=why)
    config = src.kubeconfig
    if src.server:
        config = _with_server(config, src.server)
    return k8s.read(config)


# -- together ------------------------------------------------------------------------------
def gather(src: Sources) -> Facts:
    found, pve_error = guests(src)
    wanted = src.cluster.cluster.k3s_version
    return Facts(src.cluster.name, found, kube_facts(src), pve_error, wanted)


def watch(
    src: Sources,
    *,
    timeout: float,
    interval: float,
    show: Callable[[Facts, Report], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Facts, Report]:
    """Refresh until everything is ready (returns at once) or the timeout passes."""
    deadline = clock() + timeout
    while True:
        facts = gather(src)
        verdict = report(facts)
        show(facts, verdict)
        if verdict.ready or clock() >= deadline:
            return facts, verdict
        sleep(max(0.0, min(interval, deadline - clock())))
