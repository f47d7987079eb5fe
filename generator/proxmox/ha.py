"""Proxmox HA (`proxmox.ha`): each node's VM an HA resource, the servers kept apart.

One reader (read_ha) and pure planning over plain data, so every decision is a table test.
An HA resource is ours when its comment carries our ownership line (naming.owner_line):
switching HA off removes those only, never one a user added by hand. What keeps the servers
on different hosts depends on the PVE release:

- PVE 9 has HA rules: one `resource-affinity` rule with `affinity: negative` over the
  servers' resources (naming.ha_rule_id).
- PVE 8 has no anti-affinity, only node groups (pve-ha-manager stable-4, HA/Groups.pm). The
  closest it offers: one group per server that prefers the host it was placed on (priority
  2, every other listed host 1, failback on). A failed host's server restarts elsewhere and
  goes home once its host is back, so the servers stay apart whenever all hosts run. A
  PVE 9 whose groups were not migrated to rules yet keeps working the PVE 8 way.

Order matters to Proxmox. A rule may name only HA-managed resources (API2/HA/Rules.pm,
create_rule), so rules are made after the VMs' rows (Plan.rule_part). A VM is removed from
HA before it is stopped: qemu-server's vm_stop only asks the HA manager to stop an
HA-managed VM (API2/Qemu.pm, vm_stop: a `hastop` task running `ha-manager crm-command
stop`), so the VM would still run when the delete comes ("VM is running - destroy failed").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from generator import naming
from generator.config.model import Cluster, Node
from generator.proxmox.actions import Action, Kind, VMPlan
from generator.proxmox.client import Client
from generator.proxmox.failures import PveError

ROLE = "HomelabGenHA"
# API2/HA/Resources.pm, Rules.pm, Groups.pm: Sys.Audit on / to read, Sys.Console to change.
PRIVILEGES = ("Sys.Audit", "Sys.Console")
# Storage types pvesr can replicate (pve-manager: zfspool only): a VM on such a local
# storage can still move with HA, from its last replica.
REPLICATED = frozenset({"zfspool"})


@dataclass(frozen=True)
class HaFacts:
    """What Proxmox's HA config holds, as far as this cluster needs to know."""

    # VMIDs of this cluster's VMs that /cluster/resources shows HA-managed (`hastate`):
    # known without any HA privilege, so destroy never stops one behind HA's back.
    managed: frozenset[int] = frozenset()
    # sid ("vm:201") -> the resource's fields; rule id -> rule; group id -> group.
    resources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    uses_rules: bool = True  # PVE 9 with its groups migrated; else PVE 8's groups
    read: bool = False  # the HA config was read (not needed, or not allowed: False)


def sid(vmid: int) -> str:
    return f"vm:{vmid}"


# -- reading -----------------------------------------------------------------------------
def _managed(cluster: Cluster, resources: Sequence[Mapping[str, Any]]) -> frozenset[int]:
    return frozenset(
        int(r["vmid"])
        for r in resources
        if r.get("type", "qemu") == "qemu"
        and r.get("hastate")
        and naming.tagged_for(naming.parse_tags(r.get("tags")), cluster)
    )


def _listing(client: Client, path: str) -> list[dict[str, Any]] | None:
    """The rows of an HA listing; None when this Proxmox refuses it: no such API (PVE 8's
    rules: 501) or groups already migrated to rules (PVE 9's Groups.pm dies)."""
    try:
        return list(client.get(path) or [])
    except PveError as exc:
        if exc.transient or exc.status == 403:
            raise
        return None


def read_ha(
    client: Client, cluster: Cluster, resources: Sequence[Mapping[str, Any]], pve9: bool
) -> HaFacts:
    """The HA config, read only when HA is wanted or a VM of ours is HA-managed
    (`resources`: /cluster/resources as observe read it). A token that may not read it
    (403, no Sys.Audit on /) gets HaFacts with `read` False: preflight names the grant
    when HA is on, and with HA off nothing of it is needed."""
    managed = _managed(cluster, resources)
    if not cluster.proxmox.ha and not managed:
        return HaFacts(managed)
    try:
        listed = {str(r["sid"]): r for r in client.get("cluster/ha/resources") or []}
        groups = _listing(client, "cluster/ha/groups")
        rules = _listing(client, "cluster/ha/rules") if pve9 else None
    except PveError as exc:
        if exc.status != 403:
            raise
        return HaFacts(managed)
    # PVE 9 keeps groups until every host runs 9 and the HA manager migrates them.
    uses_rules = pve9 and not groups
    return HaFacts(
        managed,
        listed,
        {str(r["rule"]): r for r in rules or []},
        {str(g["group"]): g for g in groups or []},
        uses_rules,
        read=True,
    )


# -- who is ours --------------------------------------------------------------------------
def is_ours(cluster: Cluster, resource: Mapping[str, Any]) -> bool:
    owner = naming.parse_owner(str(resource.get("comment", "")))
    return owner is not None and owner[0] == cluster.name


def _servers(cluster: Cluster) -> list[Node]:
    return [n for n in cluster.nodes if n.is_server]


def keeps_servers_apart(cluster: Cluster) -> bool:
    """Anti-affinity needs two servers, and a host for each (PVE 9 refuses a negative rule
    over more resources than nodes: HA/Rules/ResourceAffinity.pm)."""
    servers = len(_servers(cluster))
    return cluster.proxmox.ha and 2 <= servers <= len(set(cluster.proxmox.hosts))


# -- one node's VM -------------------------------------------------------------------------
def group_nodes(cluster: Cluster, host: str) -> str:
    """A PVE 8 group's `nodes`: the server's host first and preferred."""
    others = [h for h in dict.fromkeys(cluster.proxmox.hosts) if h != host]
    return ",".join([f"{host}:2", *(f"{h}:1" for h in others)])


def node_additions(cluster: Cluster, ha: HaFacts, node: Node, host: str) -> list[Action]:
    """Make the node's VM an HA resource, as its row's last steps (after it was created
    and started, so HA never starts a half-made VM). Nothing when it already is one."""
    if not cluster.proxmox.ha or sid(node.vmid) in ha.resources:
        return []
    actions = []
    params = [
        ("sid", sid(node.vmid)),
        ("state", "started"),
        ("comment", naming.owner_line(cluster, node)),
    ]
    if node.is_server and keeps_servers_apart(cluster) and not ha.uses_rules:
        group = naming.ha_group_id(cluster, node.name)
        if group not in ha.groups:
            nodes = group_nodes(cluster, host)
            actions.append(
                Action(Kind.HA_GROUP, node.vmid, host, (("group", group), ("nodes", nodes)))
            )
        params.append(("group", group))
    actions.append(Action(Kind.HA_ADD, node.vmid, host, tuple(params)))
    return actions


def node_removals(
    cluster: Cluster, ha: HaFacts, vmid: int, name: str, host: str, only_ours: bool = True
) -> list[Action]:
    """Take a VM out of HA, and its PVE 8 group after it (a group in use cannot be
    deleted: API2/HA/Groups.pm, delete). `only_ours`: a resource a user made stays."""
    resource = ha.resources.get(sid(vmid))
    if resource is None and not (vmid in ha.managed and not only_ours):
        return []
    if resource is not None and only_ours and not is_ours(cluster, resource):
        return []
    actions = [Action(Kind.HA_REMOVE, vmid, host, (("sid", sid(vmid)),))]
    group = naming.ha_group_id(cluster, name)
    if group in ha.groups:
        actions.append(Action(Kind.HA_GROUP_DELETE, vmid, host, (("group", group),)))
    return actions


def without_vm(cluster: Cluster, ha: HaFacts, vmid: int, name: str) -> HaFacts:
    """The HA config once a VM's teardown took it out (and its PVE 8 group): what a VM
    rebuilt at the same VMID is planned against."""
    group = naming.ha_group_id(cluster, name)
    return replace(
        ha,
        managed=ha.managed - {vmid},
        resources={k: v for k, v in ha.resources.items() if k != sid(vmid)},
        groups={k: v for k, v in ha.groups.items() if k != group},
    )


def teardown_steps(cluster: Cluster, ha: HaFacts, vmid: int, name: str, host: str) -> list[Action]:
    """Out of HA before a VM is stopped and deleted, whoever put it there: a stop of an
    HA-managed VM only asks HA (qemu-server API2/Qemu.pm, vm_stop: a `hastop` task)."""
    return node_removals(cluster, ha, vmid, name, host, only_ours=False)


def node_steps(cluster: Cluster, ha: HaFacts, node: Node, host: str) -> list[Action]:
    """The HA steps of a node's row: into HA with proxmox.ha, else out of it if ours."""
    if cluster.proxmox.ha:
        return node_additions(cluster, ha, node, host)
    return node_removals(cluster, ha, node.vmid, node.name, host)


REMOVAL_KINDS = frozenset({Kind.HA_REMOVE, Kind.HA_GROUP_DELETE})


def _is_removal(row: VMPlan) -> bool:
    kinds = {a.kind for a in row.actions}
    return bool(kinds) and kinds <= {Kind.STOP, Kind.DELETE}


def guarded(cluster: Cluster, ha: HaFacts, row: VMPlan) -> VMPlan:
    """A row that stops and deletes a VM takes it out of HA first, whoever made it HA."""
    if not row.vmid or not _is_removal(row):
        return row
    host = row.actions[0].pve_node
    first = teardown_steps(cluster, ha, row.vmid, row.name, host)
    return VMPlan(row.name, row.vmid, (*first, *row.actions), row.reason, row.notes, row.host)


# -- the servers' rule (PVE 9) ----------------------------------------------------------------
def rule_params(cluster: Cluster, sids: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return (
        ("rule", naming.ha_rule_id(cluster)),
        ("type", "resource-affinity"),
        ("affinity", "negative"),
        ("resources", ",".join(sorted(sids))),
        ("comment", f"homelab-gen: cluster={cluster.name} servers on different hosts"),
    )


def rule_row(cluster: Cluster, ha: HaFacts, servers: Collection[str]) -> VMPlan | None:
    """The rule over `servers` (sids that are, or are planned to be, HA resources), made,
    replaced when its members changed, or deleted once HA is off."""
    rule_id = naming.ha_rule_id(cluster)
    current = ha.rules.get(rule_id)
    wanted = sorted(servers) if keeps_servers_apart(cluster) and ha.uses_rules else []
    have = sorted(str(current.get("resources", "")).split(",")) if current else []
    if have == wanted:
        return None
    actions = []
    if current is not None:
        actions.append(Action(Kind.HA_RULE_DELETE, 0, "", (("rule", rule_id),)))
    if len(wanted) >= 2:
        actions.append(Action(Kind.HA_RULE, 0, "", rule_params(cluster, wanted)))
    if not actions:
        return None
    why = "servers on different hosts" if wanted else "proxmox.ha is off: rule removed"
    return VMPlan(rule_id, 0, tuple(actions), why)


def rule_after_teardowns(
    cluster: Cluster, ha: HaFacts, torn_down: Collection[int], reached: Collection[int]
) -> VMPlan | None:
    """The servers' rule once the VMs `torn_down` left HA and came back (a rebuild): on
    PVE 9 a resource's delete also takes it out of every rule, and drops a rule left empty
    (HA/Config.pm, delete_service_from_config, `purge` being the default), so the rule is
    made again with them. `reached`: the VMIDs of servers whose host is online."""
    rule_id = naming.ha_rule_id(cluster)
    current = ha.rules.get(rule_id)
    gone = {sid(vmid) for vmid in torn_down}
    if current is not None and gone:
        left = [s for s in str(current.get("resources", "")).split(",") if s and s not in gone]
        ha = replace(ha, rules={**ha.rules, rule_id: {**current, "resources": ",".join(left)}})
    servers = [sid(n.vmid) for n in _servers(cluster) if n.vmid in reached]
    wanted = servers if cluster.proxmox.ha else [s for s in servers if s in ha.resources]
    return rule_row(cluster, ha, wanted)


# -- the whole plan ----------------------------------------------------------------------------
def with_ha(
    cluster: Cluster, ha: HaFacts, rows: Sequence[VMPlan], skip: Collection[str] = ()
) -> list[VMPlan]:
    """boot's rows with HA's steps added: each node's VM made (or, HA off, no longer) an HA
    resource, pruned VMs out of HA first, and the servers' rule. `skip`: nodes not reached
    (their host is offline); their resources are left as they are."""
    nodes = {n.vmid: n for n in cluster.nodes if n.name not in skip}
    out = []
    servers = []
    for row in rows:
        node = nodes.get(row.vmid)
        if node is None:
            out.append(guarded(cluster, ha, row))
            continue
        host = row.host or (row.actions[-1].pve_node if row.actions else "")
        more = node_steps(cluster, ha, node, host)
        if node.is_server and (sid(node.vmid) in ha.resources or more):
            servers.append(sid(node.vmid))
        out.append(_extended(row, more, cluster.proxmox.ha))
    rule = rule_row(cluster, ha, servers)
    return out + ([rule] if rule else [])


def _extended(row: VMPlan, more: Sequence[Action], ha_on: bool) -> VMPlan:
    if not more:
        return row
    reason = row.reason
    if not row.actions:
        reason = "make it an HA resource" if ha_on else "proxmox.ha is off: out of HA"
    return VMPlan(row.name, row.vmid, (*row.actions, *more), reason, row.notes, row.host)


def destroy_rows(cluster: Cluster, ha: HaFacts, rows: Sequence[VMPlan]) -> list[VMPlan]:
    """destroy's rows: every VM out of HA before it is stopped, then our rule deleted."""
    out = [guarded(cluster, ha, row) for row in rows]
    rule_id = naming.ha_rule_id(cluster)
    if rule_id in ha.rules:
        delete = Action(Kind.HA_RULE_DELETE, 0, "", (("rule", rule_id),))
        out.append(VMPlan(rule_id, 0, (delete,), "delete"))
    return out


# -- pre-flight -----------------------------------------------------------------------------
class StorageLike(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def shared(self) -> bool: ...


def privilege_problems(cluster: Cluster, granted: Callable[[str, str], bool]) -> list[str]:
    if not cluster.proxmox.ha:
        return []
    missing = [p for p in PRIVILEGES if not granted("/", p)]
    if not missing:
        return []
    token = cluster.proxmox.token_id
    return [
        f"proxmox.ha is on, but the API token {token} lacks {', '.join(missing)} on / "
        "(HA resources and rules are changed there)\n"
        f'  grant them on the Proxmox host with:\n    pveum role add {ROLE} --privs "'
        f'{",".join(PRIVILEGES)}"\n'
        f"    pveum acl modify / --tokens '{token}' --roles {ROLE} --propagate 0"
    ]


def storage_findings(
    cluster: Cluster, storages: Mapping[str, Mapping[str, StorageLike]]
) -> tuple[list[str], list[str]]:
    """HA moves a VM only if each host can reach its volumes. qemu-server refuses to
    migrate a VM with a CD image on local storage ("local cdrom image", QemuMigrate.pm,
    scan_local_volumes) and moves local disks only with `with-local-disks`, which HA's
    migrate does not pass; recovering from a dead host just moves the config
    (pve-ha-manager Manager.pm, recover_service), so a local volume stays behind on the dead
    host and the VM cannot start. A local ZFS pool replicated by pvesr is the exception,
    warned about: it moves from the last replica, losing what came after.
    `storages`: {host: {storage: facts}} of the hosts the VMs use."""
    if not cluster.proxmox.ha:
        return [], []
    pve = cluster.proxmox
    problems: list[str] = []
    warnings: list[str] = []
    for key, name in (("storage", pve.storage), ("seed_storage", pve.seed_storage)):
        local = sorted(
            h for h, found in storages.items() if name in found and not found[name].shared
        )
        if not local:
            continue
        what = (
            f"proxmox.{key} '{name}' is local to {', '.join(local)}: HA cannot move or recover"
            " a VM whose volumes are there"
        )
        if key == "storage" and all(storages[h][name].type in REPLICATED for h in local):
            warnings.append(f"{what}, unless pvesr replicates them (then from the last replica)")
        else:
            problems.append(f"{what}; use a shared storage (NFS, Ceph RBD, ...) for proxmox.ha")
    return problems, warnings


# -- running the steps (boot_job's executors) ------------------------------------------------
class Job(Protocol):
    @property
    def client(self) -> Client: ...


def _tolerating(job: Job, text: str, method: str, path: str, **params: str) -> None:
    """One HA call; an answer saying it was already done (ours, lost to a reset before a
    re-plan) is success."""
    try:
        job.client.call(method, path, **params)
    except PveError as exc:
        if text not in str(exc):
            raise


def _add(job: Job, action: Action) -> None:
    # API2/HA/Resources.pm, create: "resource ID '...' already defined"
    _tolerating(job, "already defined", "POST", "cluster/ha/resources", **dict(action.params))


def _remove(job: Job, action: Action) -> None:
    # PVE 9: "not HA managed!", PVE 8: "is not HA managed" (a purge may have been first).
    _tolerating(job, "HA managed", "DELETE", f"cluster/ha/resources/{action.param('sid')}")


def _group(job: Job, action: Action) -> None:
    _tolerating(job, "already defined", "POST", "cluster/ha/groups", **dict(action.params))


def _group_delete(job: Job, action: Action) -> None:
    job.client.call("DELETE", f"cluster/ha/groups/{action.param('group')}")


def _rule(job: Job, action: Action) -> None:
    _tolerating(job, "already defined", "POST", "cluster/ha/rules", **dict(action.params))


def _rule_delete(job: Job, action: Action) -> None:
    # API2/HA/Rules.pm, delete_rule: a rule that is not there is no error.
    job.client.call("DELETE", f"cluster/ha/rules/{action.param('rule')}")


EXECUTORS: Mapping[str, Callable[[Job, Action], None]] = {
    Kind.HA_ADD: _add,
    Kind.HA_REMOVE: _remove,
    Kind.HA_GROUP: _group,
    Kind.HA_GROUP_DELETE: _group_delete,
    Kind.HA_RULE: _rule,
    Kind.HA_RULE_DELETE: _rule_delete,
}
