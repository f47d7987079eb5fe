"""Frozen records of what Proxmox holds, read through the API before any change."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

from generator import naming
from generator.config.model import Cluster, Node, SeedMethod
from generator.proxmox import template_marks
from generator.proxmox.client import Client
from generator.proxmox.failures import PROXY_CONNECT_FAILED, PveError, Unreachable
from generator.proxmox.ha import HaFacts, read_ha
from generator.proxmox.pveconfig import boot_disk, volids_in
from generator.proxmox.seeds import is_seed_of


@dataclass(frozen=True)
class StorageFacts:
    name: str
    type: str
    content: frozenset[str]
    avail: int
    total: int
    shared: bool
    path: str | None = None


@dataclass(frozen=True)
class NodeFacts:
    name: str
    storages: dict[str, StorageFacts] = field(hash=False)
    bridges: frozenset[str]
    memory_free: int | None  # None when the token may not read node status (Sys.Audit)


@dataclass(frozen=True)
class VMFacts:
    vmid: int
    node: str
    status: str
    config: dict[str, str] = field(hash=False)
    # A running VM's config as QEMU runs it (`current=1`), when a change is still pending;
    # None when it matches `config` (the API's default view, pending changes applied).
    running_config: dict[str, str] | None = field(default=None, hash=False)

    @property
    def attached(self) -> frozenset[str]:
        """Volumes the VM uses now or will after a restart: none of them may be deleted."""
        return volids_in(self.config) | volids_in(self.running_config or {})

    @property
    def name(self) -> str:
        return self.config.get("name", "")

    @property
    def tags(self) -> frozenset[str]:
        return naming.parse_tags(self.config.get("tags"))

    @property
    def description(self) -> str:
        return self.config.get("description", "")

    @property
    def lock(self) -> str | None:
        return self.config.get("lock")

    @property
    def is_template(self) -> bool:
        return self.config.get("template") in ("1", "true")

    @property
    def machine(self) -> str:
        return self.config.get("machine", "pc")

    @property
    def is_q35(self) -> bool:
        return "q35" in self.machine

    @property
    def boot_disk(self) -> str | None:
        return boot_disk(self.config)

    @property
    def owner(self) -> tuple[str, str] | None:
        """(cluster, node) from the description's ownership line, if it has one."""
        return naming.parse_owner(self.description)

    def owned_by(self, cluster: Cluster) -> bool:
        """Ours: both tags and the ownership line. Only then may we stop or delete it."""
        return naming.tagged_for(self.tags, cluster) and self.claimed_by(cluster)

    def claimed_by(self, cluster: Cluster) -> bool:
        owner = self.owner
        return owner is not None and owner[0] == cluster.name


def major_minor(version: str) -> tuple[int, int]:
    """`8.4.1` -> (8, 4); (0, 0) when PVE says something else."""
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found[1]), int(found[2])) if found else (0, 0)


@dataclass(frozen=True)
class Observed:
    version: str
    permissions: dict[str, dict[str, int]] = field(hash=False)
    nodes: dict[str, NodeFacts] = field(hash=False)
    template: VMFacts | None
    vms: dict[int, VMFacts] = field(hash=False)
    # pve node -> volume ids on the seed storage named as this cluster's seeds
    seeds: dict[str, frozenset[str]] = field(hash=False)
    # (cluster, node) of other homelab-gen clusters' VMs: names that could also be theirs
    other_nodes: frozenset[tuple[str, str]] = frozenset()
    # Hosts /cluster/resources shows offline (or that answered 595 when asked): not called.
    offline_hosts: frozenset[str] = frozenset()
    # vmid -> host of the VMs to look at that sit on an offline host: they exist, but
    # nothing can be read or changed there until the host is back.
    unreachable: dict[int, str] = field(default_factory=dict, hash=False)
    # host -> the copy of the template made there (template --all-hosts), found by its marks
    host_templates: dict[str, VMFacts] = field(default_factory=dict, hash=False)
    ha: HaFacts = field(default_factory=HaFacts)

    @property
    def major_minor(self) -> tuple[int, int]:
        return major_minor(self.version)

    def with_vm(self, vmid: int, facts: VMFacts | None) -> Observed:
        vms = {k: v for k, v in self.vms.items() if k != vmid}
        if facts is not None:
            vms[vmid] = facts
        return replace(self, vms=vms)

    def with_seeds(self, node: str, volids: frozenset[str]) -> Observed:
        return replace(self, seeds={**self.seeds, node: volids})


def pinned_host(cluster: Cluster, node: Node) -> str:
    """Where a node's VM goes when nothing else is known: its pin, else proxmox.node. Only
    for a VM that Proxmox does not list; placement.place decides for boot."""
    return node.proxmox_node or cluster.proxmox.node


def pve_nodes(cluster: Cluster) -> tuple[str, ...]:
    """Every Proxmox node to look at: the template's, the listed hosts, each pin."""
    pins = (n.proxmox_node for n in cluster.nodes if n.proxmox_node)
    return tuple(dict.fromkeys([cluster.proxmox.node, *cluster.proxmox.hosts, *pins]))


def host_of(client: Client, cluster: Cluster, node: Node) -> str:
    """The host a node's VM is on now. With several hosts listed, wherever Proxmox has it
    (HA may have moved it): one read of /cluster/resources. With one, as before: its pin or
    proxmox.node, with no call; so too when Proxmox does not list the VM."""
    if len(cluster.proxmox.hosts) < 2:
        return pinned_host(cluster, node)
    for res in client.get("cluster/resources", type="vm") or []:
        if res.get("type", "qemu") == "qemu" and int(res["vmid"]) == node.vmid:
            return str(res["node"])
    return pinned_host(cluster, node)


def _str_config(raw: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in raw.items() if k != "digest"}


def read_vm(client: Client, node: str, vmid: int, clone_wait: float = 120.0) -> VMFacts | None:
    """A VM's facts; a clone still in progress (`lock: clone`) is waited for, since its
    config is empty until the clone task ends."""
    deadline = time.monotonic() + clone_wait
    delay = 0.1
    while True:
        try:
            config = _str_config(client.get(f"nodes/{node}/qemu/{vmid}/config"))
            status = client.get(f"nodes/{node}/qemu/{vmid}/status/current").get("status", "")
        except PveError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        if config.get("lock") != "clone" or time.monotonic() > deadline:
            return VMFacts(vmid, node, str(status), config)
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def read_node(client: Client, name: str, snippets_storage: str | None) -> NodeFacts | None:
    try:
        listed = client.get(f"nodes/{name}/storage")
    except PveError as exc:
        # Only an answer that the node is not there means "no such node"; a Proxmox that
        # cannot be reached, or is busy past the retries, is an error of its own.
        if exc.transient or isinstance(exc, Unreachable):
            raise
        return None
    storages = {
        s["storage"]: StorageFacts(
            name=s["storage"],
            type=str(s.get("type", "")),
            content=frozenset(c for c in str(s.get("content", "")).split(",") if c),
            avail=int(s.get("avail") or 0),
            total=int(s.get("total") or 0),
            shared=bool(s.get("shared")),
        )
        for s in listed
        if s.get("active", 1) and s.get("enabled", 1)
    }
    if snippets_storage is not None and snippets_storage in storages:
        path = _storage_path(client, snippets_storage)
        storages[snippets_storage] = replace(storages[snippets_storage], path=path)
    bridges = frozenset(
        n["iface"] for n in client.get(f"nodes/{name}/network") if "bridge" in str(n.get("type"))
    )
    try:
        memory_free: int | None = int(client.get(f"nodes/{name}/status")["memory"]["free"])
    except (PveError, KeyError, TypeError):
        memory_free = None
    return NodeFacts(name, storages, bridges, memory_free)


def read_hosts(
    client: Client, cluster: Cluster, snippets: str | None, offline: frozenset[str] = frozenset()
) -> dict[str, NodeFacts]:
    """The facts of every host to look at. A host /cluster/resources shows offline is not
    called (pveproxy would answer 595, which the client retries as transient). A listed
    host that the Proxmox we talk to cannot reach all the same (595 "No route to host",
    after the client's retries) is left out, so placement puts nothing new there and the
    plan says so; proxmox.node and a pinned host stay errors, since the plan cannot do
    without them."""
    pins = {n.proxmox_node for n in cluster.nodes}
    optional = set(cluster.proxmox.hosts) - pins - {cluster.proxmox.node}
    nodes = {}
    for name in pve_nodes(cluster):
        if name in offline:
            continue
        try:
            found = read_node(client, name, snippets)
        except PveError as exc:
            if isinstance(exc, Unreachable) or name not in optional:
                raise
            continue
        if found is not None:
            nodes[name] = found
    return nodes


def _storage_path(client: Client, storage: str) -> str | None:
    try:
        path = client.get(f"storage/{storage}").get("path")
        return str(path) if path else None
    except PveError:
        return None


def read_seeds(client: Client, cluster: Cluster, node: str) -> frozenset[str]:
    pve = cluster.proxmox
    content = str(pve.seed_method)  # the seed method is also the storage content type
    try:
        volumes = client.get(f"nodes/{node}/storage/{pve.seed_storage}/content", content=content)
    except PveError as exc:
        if exc.transient:
            raise
        return frozenset()
    return frozenset(v["volid"] for v in volumes if is_seed_of(cluster.name, v["volid"]))


def offline_hosts(resources: list[dict[str, Any]]) -> frozenset[str]:
    """Cluster members /cluster/resources shows offline (corosync does not see them:
    pve-manager API2Tools.pm, extract_node_stats)."""
    return frozenset(
        str(r["node"])
        for r in resources
        if r.get("type") == "node" and r.get("status") == "offline" and r.get("node")
    )


def is_host_unreachable(exc: PveError) -> bool:
    """pveproxy could not relay the call to the VM's host: AnyEvent::HTTP's 595 (connect
    failed) with the connect error as its text (pve-http-server AnyEvent.pm,
    proxy_request). A host that went down after /cluster/resources was read."""
    return not isinstance(exc, Unreachable) and exc.status == PROXY_CONNECT_FAILED


def observe(client: Client, cluster: Cluster) -> Observed:
    pve = cluster.proxmox
    version = str(client.get("version").get("version", "0"))
    permissions = client.get("access/permissions") or {}
    snippets = pve.seed_storage if pve.seed_method == SeedMethod.SNIPPETS else None
    # One read for the VMs on every host and which hosts are offline.
    resources = client.get("cluster/resources") or []
    offline = offline_hosts(resources)
    nodes = read_hosts(client, cluster, snippets, offline)
    by_vmid = {int(r["vmid"]): r for r in resources if r.get("type", "qemu") == "qemu"}
    wanted = {n.vmid for n in cluster.nodes} | {pve.template_vmid}
    for vmid, res in by_vmid.items():
        if naming.tagged_for(naming.parse_tags(res.get("tags")), cluster):
            wanted.add(vmid)  # possible orphans: the ownership line decides
    vms: dict[int, VMFacts] = {}
    unreachable: dict[int, str] = {}
    for vmid in sorted(wanted & by_vmid.keys()):
        host = str(by_vmid[vmid]["node"])
        if host in offline:
            unreachable[vmid] = host
            continue
        try:
            facts = read_vm(client, host, vmid)
        except PveError as exc:
            if not is_host_unreachable(exc):
                raise
            offline, unreachable[vmid] = offline | {host}, host
            continue
        if facts is not None:
            vms[vmid] = facts
    # A host found down while reading its VMs takes nothing new, and is asked nothing more.
    nodes = {name: facts for name, facts in nodes.items() if name not in offline}
    # A VM of ours on a host not listed (moved there by HA, or by hand): its host is read
    # too, so the plan can check it and its seeds.
    for host in sorted({vm.node for vm in vms.values()} - nodes.keys()):
        if found := read_node(client, host, snippets):
            nodes[host] = found
    template = vms.pop(pve.template_vmid, None)
    vms = {vmid: with_running_config(client, facts) for vmid, facts in vms.items()}
    seeds = {n: read_seeds(client, cluster, n) for n in nodes}
    others = other_clusters_nodes(cluster, list(by_vmid.values()))
    copies = read_host_templates(client, cluster, list(by_vmid.values()), offline)
    ha = read_ha(client, cluster, resources, major_minor(version) >= (9, 0))
    return Observed(
        version,
        permissions,
        nodes,
        template,
        vms,
        seeds,
        others,
        offline,
        unreachable,
        copies,
        ha=ha,
    )


def read_host_templates(
    client: Client, cluster: Cluster, resources: list[dict[str, Any]], offline: frozenset[str]
) -> dict[str, VMFacts]:
    """host -> the template's copy there, from /cluster/resources' tags, then each
    candidate's description. A copy on a host that is down is simply not there: the plan
    needs none of its VMs' seeds nor facts from it."""
    pve, ours = cluster.proxmox, {n.vmid for n in cluster.nodes}
    found: dict[str, VMFacts] = {}
    for res in sorted(resources, key=lambda r: int(r["vmid"])):
        vmid, host = int(res["vmid"]), str(res["node"])
        tags = naming.parse_tags(res.get("tags"))
        if vmid in ours | {pve.template_vmid} or host in offline or host in found:
            continue
        if not template_marks.may_be_ours(tags) or not res.get("template"):
            continue
        try:
            vm = read_vm(client, host, vmid)
        except PveError as exc:
            if not is_host_unreachable(exc):
                raise
            continue
        if vm is not None and template_marks.copy_of(vm.description) == (pve.template_vmid, host):
            found[host] = vm
    return found


def with_running_config(client: Client, facts: VMFacts) -> VMFacts:
    """A running VM may still use a seed its config no longer names (a change PVE could not
    apply live waits in `pending`): read what it runs, so that seed is kept."""
    if facts.status != "running":
        return facts
    raw = client.get(f"nodes/{facts.node}/qemu/{facts.vmid}/config", current=1)
    current = _str_config(raw)
    return facts if current == facts.config else replace(facts, running_config=current)


def other_clusters_nodes(
    cluster: Cluster, resources: list[dict[str, Any]]
) -> frozenset[tuple[str, str]]:
    """(cluster, node) of the VMs other homelab-gen clusters tagged: cluster names may
    share a prefix ("home", "home-lab"), so a seed name alone cannot always tell whose it is."""
    found = set()
    for res in resources:
        tags = naming.parse_tags(res.get("tags"))
        if naming.TOOL_TAG not in tags:
            continue
        for tag in tags - {naming.cluster_tag(cluster)}:
            if (other := naming.tagged_cluster(tag)) is not None and res.get("name"):
                found.add((other, str(res["name"])))
    return frozenset(found)
