"""Frozen records of what Proxmox holds, read through the API before any change."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
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


# Reads that go out at once: enough to overlap the round trips of a lab's VMs, few enough
# not to crowd pveproxy's few worker processes (3 unless MAX_WORKERS says otherwise:
# pve-manager PVE/Service/pveproxy.pm), whose event loops each serve many connections.
READERS = 8

# vm_config and vm_pending print a set `cipassword` as this, never the value itself.
HIDDEN_PASSWORD = "**********"


def _perl_true(value: object) -> bool:
    return value is not None and str(value) not in ("", "0")


def configs_from_pending(items: Iterable[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """(config, current) as vm_config answers without and with `current=1`, rebuilt from
    one vm_pending answer (qemu-server API2/Qemu.pm; pve-guest-common GuestHelpers.pm,
    config_with_pending_array): the running values, then the pending ones applied and
    pending deletions dropped as AbstractConfig.pm load_current_config does (only a key
    whose value Perl holds true is dropped)."""
    items = list(items)
    current = {str(i["key"]): str(i["value"]) for i in items if i.get("value") is not None}
    config = dict(current)
    config.update({str(i["key"]): str(i["pending"]) for i in items if i.get("pending") is not None})
    for item in items:
        if item.get("delete") and _perl_true(config.get(str(item["key"]))):
            del config[str(item["key"])]
    for view in (config, current):
        # vm_pending masks a pending password with a trailing blank: print it as vm_config does.
        if "cipassword" in view:
            view["cipassword"] = HIDDEN_PASSWORD
    return config, current


@dataclass(frozen=True)
class VmReads:
    """Reads under way for the VMs to look at (vmid -> host): per host, which of its VMs
    run (vmlist: vmstatus, as live as vm_status); per VM, its config both with and
    without the changes still pending (vm_pending)."""

    hosts: dict[int, str]
    listed: dict[str, Future[Any]]
    pending: dict[int, Future[Any]]


def start_vm_reads(pool: ThreadPoolExecutor, client: Client, hosts: dict[int, str]) -> VmReads:
    listed = {h: pool.submit(client.get, f"nodes/{h}/qemu") for h in sorted(set(hosts.values()))}
    pending = {
        vmid: pool.submit(client.get, f"nodes/{host}/qemu/{vmid}/pending")
        for vmid, host in sorted(hosts.items())
    }
    return VmReads(hosts, listed, pending)


def _statuses(listed: Future[Any]) -> dict[int, str]:
    return {int(v["vmid"]): str(v.get("status", "")) for v in listed.result() or []}


def vm_facts(client: Client, reads: VmReads, vmid: int) -> VMFacts | None:
    """A VM's facts as read_vm and with_running_config give them, from the reads."""
    host = reads.hosts[vmid]
    status = _statuses(reads.listed[host]).get(vmid)
    try:
        config, current = configs_from_pending(reads.pending[vmid].result())
    except PveError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    if status is None or config.get("lock") == "clone":
        # Made or moved between the two reads, or a clone whose config is not written yet.
        facts = read_vm(client, host, vmid)
        return None if facts is None else with_running_config(client, facts)
    running = current if status == "running" and current != config else None
    return VMFacts(vmid, host, status, config, running)


def finish_vm_reads(
    client: Client, reads: VmReads
) -> tuple[dict[int, VMFacts], frozenset[str], dict[int, str]]:
    """(facts by vmid, hosts found down, vmid -> host of the VMs there). A host that
    went down after /cluster/resources was read answers 595 for each of its VMs."""
    vms: dict[int, VMFacts] = {}
    down: set[str] = set()
    unreachable: dict[int, str] = {}
    for vmid, host in sorted(reads.hosts.items()):
        try:
            facts = vm_facts(client, reads, vmid)
        except PveError as exc:
            if not is_host_unreachable(exc):
                raise
            down.add(host)
            unreachable[vmid] = host
            continue
        if facts is not None:
            vms[vmid] = facts
    return vms, frozenset(down), unreachable


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


def start_host_reads(
    pool: ThreadPoolExecutor,
    client: Client,
    cluster: Cluster,
    snippets: str | None,
    offline: frozenset[str],
) -> dict[str, Future[NodeFacts | None]]:
    """read_node for every host to look at, each host's reads beside the others'. A host
    /cluster/resources shows offline is not called (pveproxy would answer 595, which the
    client retries as transient)."""
    names = [name for name in pve_nodes(cluster) if name not in offline]
    return {name: pool.submit(read_node, client, name, snippets) for name in names}


def finish_host_reads(
    cluster: Cluster, reads: dict[str, Future[NodeFacts | None]]
) -> dict[str, NodeFacts]:
    """The facts of every host read. A listed host that the Proxmox we talk to cannot
    reach all the same (595 "No route to host", after the client's retries) is left out,
    so placement puts nothing new there and the plan says so; proxmox.node and a pinned
    host stay errors, since the plan cannot do without them."""
    pins = {n.proxmox_node for n in cluster.nodes}
    optional = set(cluster.proxmox.hosts) - pins - {cluster.proxmox.node}
    nodes = {}
    for name, read in reads.items():
        try:
            found = read.result()
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


def to_look_at(cluster: Cluster, by_vmid: dict[int, dict[str, Any]]) -> dict[int, str]:
    """vmid -> host of the VMs Proxmox lists that may be ours: the nodes', the template's,
    and any tagged for this cluster (possible orphans: the ownership line decides)."""
    wanted = {n.vmid for n in cluster.nodes} | {cluster.proxmox.template_vmid}
    for vmid, res in by_vmid.items():
        if naming.tagged_for(naming.parse_tags(res.get("tags")), cluster):
            wanted.add(vmid)
    return {vmid: str(by_vmid[vmid]["node"]) for vmid in sorted(wanted & by_vmid.keys())}


def observe(client: Client, cluster: Cluster, version: str | None = None) -> Observed:
    """`version`: PVE's, when the caller has just read it (core.check_reachable). Reads that
    do not wait on each other go out together: a no-op run costs a few round trips, not one
    per call."""
    pve = cluster.proxmox
    snippets = pve.seed_storage if pve.seed_method == SeedMethod.SNIPPETS else None
    with ThreadPoolExecutor(READERS, thread_name_prefix="observe") as pool:
        if version is None:
            version = str(client.get("version").get("version", "0"))
        asked = pool.submit(client.get, "access/permissions")
        # One read for the VMs on every host and which hosts are offline.
        resources = client.get("cluster/resources") or []
        permissions = asked.result() or {}
        offline = offline_hosts(resources)
        by_vmid = {int(r["vmid"]): r for r in resources if r.get("type", "qemu") == "qemu"}
        placed = to_look_at(cluster, by_vmid)
        unreachable = {vmid: host for vmid, host in placed.items() if host in offline}
        reachable = {vmid: host for vmid, host in placed.items() if host not in offline}
        host_reads = start_host_reads(pool, client, cluster, snippets, offline)
        vm_reads = start_vm_reads(pool, client, reachable)
        nodes = finish_host_reads(cluster, host_reads)
        vms, down, lost = finish_vm_reads(client, vm_reads)
        offline, unreachable = offline | down, dict(sorted({**unreachable, **lost}.items()))
        # A host found down while reading its VMs takes nothing new, and is asked nothing
        # more.
        nodes = {name: facts for name, facts in nodes.items() if name not in offline}
        # A VM of ours on a host not listed (moved there by HA, or by hand): its host is read
        # too, so the plan can check it and its seeds.
        for host in sorted({vm.node for vm in vms.values()} - nodes.keys()):
            if found := read_node(client, host, snippets):
                nodes[host] = found
        found_seeds = pool.map(lambda host: read_seeds(client, cluster, host), list(nodes))
        seeds = dict(zip(nodes, found_seeds, strict=True))
    template = vms.pop(pve.template_vmid, None)
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
