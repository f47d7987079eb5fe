"""Pure planning: cluster.yaml and the observed Proxmox facts in, actions per VM out.

Nothing here talks to Proxmox, so every decision is a table test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from generator import naming
from generator.config.model import Cluster, Node, SeedMethod
from generator.proxmox.observe import (
    DISK_KEY,
    Observed,
    VMFacts,
    cloudinit_slot,
    disk_size,
    volids_in,
)
from generator.proxmox.seeds import SeedRef, is_seed_of

MIN_VERSION = (8, 0)
ROLE = "HomelabGen"
# Storage types on which PVE can make a linked clone of a template.
LINKABLE = frozenset({"lvmthin", "zfspool", "rbd", "dir", "nfs", "cifs", "glusterfs", "btrfs"})
VM_CONFIG_PRIVS = (
    "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit", "VM.Config.Disk",
    "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options",
)  # fmt: skip
SEED_ROW = "unused seed: no VM of the cluster uses it"


class Kind(StrEnum):
    """Every action kind, written once: boot's, destroy's and prune's, the seeds', the
    template's. A StrEnum, so `str(Kind.CLONE) == "clone"` in every output."""

    UPLOAD = "upload"
    STOP = "stop"
    DELETE = "delete"
    CLONE = "clone"
    CONFIGURE = "configure"
    RESIZE = "resize"
    START = "start"
    DELETE_SEED = "delete-seed"
    DOWNLOAD = "download"  # template: the cloud image onto the seed storage
    CREATE = "create"  # template: the VM, importing the image
    CONVERT = "convert"  # template: the VM into a template


@dataclass(frozen=True)
class Action:
    kind: Kind
    vmid: int
    pve_node: str
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str:
        return dict(self.params)[name]

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params if k not in ("description",))
        return f"{self.kind} ({shown})" if shown else self.kind


@dataclass(frozen=True)
class VMPlan:
    name: str
    vmid: int
    actions: tuple[Action, ...]
    reason: str = ""  # why there is nothing to do, or what the actions are for
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    vms: tuple[VMPlan, ...]
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for vm in self.vms for a in vm.actions)

    @property
    def is_noop(self) -> bool:
        return not self.actions

    @property
    def vm_part(self) -> Plan:
        return Plan(tuple(vm for vm in self.vms if vm.vmid), self.problems, self.warnings)

    @property
    def seed_part(self) -> Plan:
        """Rows with no VM (vmid 0): seeds deleted once every VM is done with them."""
        return Plan(tuple(vm for vm in self.vms if not vm.vmid))


# -- what a VM should look like -------------------------------------------------------------
def owner_description(cluster: Cluster, node: Node) -> str:
    return (
        f"{naming.owner_line(cluster, node)}\n"
        "Made by homelab-gen boot; change it in cluster.yaml, not here."
    )


def pve_node_of(cluster: Cluster, node: Node) -> str:
    return node.proxmox_node or cluster.proxmox.node


def seed_slot(template: VMFacts) -> str:
    return drive_slot(template.machine, template.config)


def drive_slot(machine: str, config: Mapping[str, str]) -> str:
    """The seed's drive slot, one the guest kernel can see: IDE on i440fx; on q35 IDE means
    AHCI, which Debian 12's cloud kernel lacks, so SCSI there. Boot's seed CD and the
    template's cloud-init drive both go here."""
    bus = "scsi" if "q35" in machine else "ide"
    current = cloudinit_slot(dict(config))
    if current and current.startswith(bus):
        return current
    used = {k for k in config if DISK_KEY.match(k)} - {current}
    slots = ["ide2", "ide3", "ide1", "ide0"] if bus == "ide" else [f"scsi{i}" for i in range(1, 31)]
    free = [s for s in slots if s not in used]
    return free[0] if free else slots[0]


def desired_config(cluster: Cluster, node: Node, template: VMFacts, ref: SeedRef) -> dict[str, str]:
    pve = cluster.proxmox
    mac = naming.node_mac(cluster.name, node.name)
    config = {
        "name": node.name,
        "cores": str(node.cores),
        "memory": str(node.memory),
        "agent": "1",
        "net0": f"virtio={mac},bridge={pve.bridge}",
        "onboot": "1",
        "tags": naming.vm_tags(cluster),
        "description": owner_description(cluster, node),
    }
    slot = seed_slot(template)
    if ref.method == SeedMethod.ISO:
        config[slot] = f"{ref.volid('iso')},media=cdrom"
    else:
        config[slot] = f"{pve.storage}:cloudinit"
        config["cicustom"] = ",".join(f"{p}={ref.volid(p)}" for p in ("user", "network", "meta"))
    return config


def _options(value: str) -> dict[str, str]:
    out = {}
    for i, part in enumerate(value.split(",")):
        key, sep, val = part.partition("=")
        out[key if sep else f"_{i}"] = val if sep else key
    return out


def _leading(value: str, name: str) -> str | None:
    """A property string's default-key value: `4096` and `current=4096` both give 4096."""
    options = _options(value)
    return options.get("_0", options.get(name))


def _same(key: str, want: str, have: str | None) -> bool:
    if have is None:
        return False
    if key == "tags":
        return naming.parse_tags(want) == naming.parse_tags(have)
    if key == "net0":
        w, h = _options(want), _options(have)
        return all(h.get(k, "").upper() == v.upper() for k, v in w.items())
    if key in ("memory", "agent"):
        name = "current" if key == "memory" else "enabled"
        return _leading(want, name) == _leading(have, name)
    if key == "description":
        return want.splitlines()[0] in have.splitlines()
    if DISK_KEY.match(key):
        w, h = _options(want), _options(have)
        if "cloudinit" in want:
            return "cloudinit" in have
        return w.get("_0") == h.get("_0") and h.get("media") == "cdrom"
    return want == have


def config_changes(desired: Mapping[str, str], current: Mapping[str, str]) -> dict[str, str]:
    """The `config` call's parameters that make `current` match; {} when it does."""
    changes = {k: v for k, v in desired.items() if not _same(k, v, current.get(k))}
    stale = sorted(
        k
        for k, v in current.items()
        if (DISK_KEY.match(k) and "cloudinit" in v and k not in desired)
        or (k == "cicustom" and k not in desired)
    )
    if stale:
        changes["delete"] = ",".join(stale)
    return changes


# -- per VM --------------------------------------------------------------------------------
def _clone_action(cluster: Cluster, node: Node, observed: Observed, full: bool) -> Action:
    pve = cluster.proxmox
    params = [
        ("newid", str(node.vmid)),
        ("name", node.name),
        # The ownership line is on the VM from its first moment, so a half-made clone is
        # recognised as ours on the next run.
        ("description", owner_description(cluster, node)),
        ("full", "1" if full else "0"),
    ]
    if full:
        params.append(("storage", pve.storage))
    template_node = observed.template.node if observed.template else pve.node
    if pve_node_of(cluster, node) != template_node:
        params.append(("target", pve_node_of(cluster, node)))
    return Action(Kind.CLONE, pve.template_vmid, template_node, tuple(params))


def use_full_clone(cluster: Cluster, observed: Observed, node: Node) -> bool:
    if cluster.proxmox.clone == "full":
        return True
    facts = observed.nodes.get(pve_node_of(cluster, node))
    storage = facts.storages.get(cluster.proxmox.storage) if facts else None
    return storage is not None and storage.type not in LINKABLE


def _build_actions(
    cluster: Cluster, node: Node, observed: Observed, ref: SeedRef, vm: VMFacts | None
) -> tuple[list[Action], list[str]]:
    assert observed.template is not None
    where = pve_node_of(cluster, node)
    desired = desired_config(cluster, node, observed.template, ref)
    actions: list[Action] = []
    notes: list[str] = []
    if vm is None:
        actions.append(
            _clone_action(cluster, node, observed, use_full_clone(cluster, observed, node))
        )
        base = {k: v for k, v in observed.template.config.items() if k not in ("template",)}
        running, disk_key = False, observed.template.boot_disk
        disk_bytes = disk_size(observed.template.config.get(disk_key or "", ""))
    else:
        base = vm.config
        running, disk_key = vm.status == "running", vm.boot_disk
        disk_bytes = disk_size(vm.config.get(disk_key or "", ""))
    changes = config_changes(desired, base)
    if changes:
        actions.append(Action(Kind.CONFIGURE, node.vmid, where, tuple(sorted(changes.items()))))
        if running and {"cores", "memory"} & changes.keys():
            notes.append("cores/memory change: restart the VM for it to take effect")
    if disk_key and disk_bytes < node.disk * 2**30:
        actions.append(
            Action(Kind.RESIZE, node.vmid, where, (("disk", disk_key), ("size", f"{node.disk}G")))
        )
    if not running:
        actions.append(Action(Kind.START, node.vmid, where))
    return actions, notes


def plan_node(cluster: Cluster, node: Node, observed: Observed, ref: SeedRef) -> VMPlan:
    where = pve_node_of(cluster, node)
    actions: list[Action] = []
    have = observed.seeds.get(where, frozenset())
    if not set(ref.volids) <= have:
        actions.append(Action(Kind.UPLOAD, node.vmid, where, (("volid", ",".join(ref.volids)),)))
    vm = observed.vms.get(node.vmid)
    reason = "create" if vm is None else "update"
    if vm is not None and vm.boot_disk is None and vm.owned_by(cluster):
        # A half-made VM without its disk cannot be finished: recreate it.
        if vm.status == "running":
            actions.append(Action(Kind.STOP, node.vmid, vm.node))
        actions.append(Action(Kind.DELETE, node.vmid, vm.node))
        vm, reason = None, "recreate (it has no disk)"
    more, notes = _build_actions(cluster, node, observed, ref, vm)
    actions += more
    return VMPlan(
        node.name, node.vmid, tuple(actions), reason if actions else "up to date", tuple(notes)
    )


def plan_orphan(vm: VMFacts, prune: bool) -> VMPlan:
    name = vm.owner[1] if vm.owner else vm.name
    if not prune:
        return VMPlan(name, vm.vmid, (), "orphan: not in cluster.yaml (boot --prune deletes it)")
    actions = [Action(Kind.STOP, vm.vmid, vm.node)] if vm.status == "running" else []
    actions.append(Action(Kind.DELETE, vm.vmid, vm.node))
    return VMPlan(name, vm.vmid, tuple(actions), "orphan: delete (--prune)")


def make_plan(
    cluster: Cluster, observed: Observed, refs: Mapping[str, SeedRef], prune: bool = False
) -> Plan:
    problems, warnings = preflight(cluster, observed, refs)
    if problems:
        return Plan((), tuple(problems), tuple(warnings))
    vms = [plan_node(cluster, node, observed, refs[node.name]) for node in cluster.nodes]
    ours = {n.vmid for n in cluster.nodes}
    vms += [
        plan_orphan(vm, prune)
        for vmid, vm in sorted(observed.vms.items())
        if vmid not in ours and vm.owned_by(cluster)
    ]
    rows, seed_warnings = plan_seed_cleanup(cluster, observed, refs, vms)
    vms += rows
    warnings += seed_warnings
    for node in cluster.nodes:
        if use_full_clone(cluster, observed, node) and cluster.proxmox.clone == "linked":
            warnings.append(
                f"{node.name}: storage {cluster.proxmox.storage} cannot make linked clones;"
                " using a full clone"
            )
    return Plan(tuple(vms), (), tuple(dict.fromkeys(warnings)))


# -- seeds no VM uses any more ---------------------------------------------------------------
def config_after(config: Mapping[str, str], action: Action) -> dict[str, str]:
    """A VM's config once a `configure` action is applied."""
    params = dict(action.params)
    gone = set(params.pop("delete", "").split(",")) - {""}
    return {**{k: v for k, v in config.items() if k not in gone}, **params}


def attached_after(vm: VMFacts, vm_plan: VMPlan | None) -> frozenset[str]:
    """Volumes the VM will use once its plan is applied; a CD-ROM swap on a running VM is
    taken to be applied live, as PVE does (if it is not, the check before deleting sees it)."""
    actions = vm_plan.actions if vm_plan else ()
    if any(a.kind == Kind.DELETE for a in actions):
        return frozenset()  # pruned, or recreated from the template and then configured
    configure = next((a for a in actions if a.kind == Kind.CONFIGURE), None)
    if configure is None:
        return vm.attached
    return volids_in(config_after(vm.config, configure))


def seeds_in_use(
    cluster: Cluster, observed: Observed, refs: Mapping[str, SeedRef], vms: Sequence[VMPlan] = ()
) -> frozenset[str]:
    """Seeds that must stay: every node's current one, and any a VM (template included)
    still uses after `vms` are applied (none given: as things are now)."""
    plans = {vm.vmid: vm for vm in vms}
    used = {volid for ref in refs.values() for volid in ref.volids}
    for vmid, vm in observed.vms.items():
        used |= attached_after(vm, plans.get(vmid))
    if observed.template is not None:
        used |= observed.template.attached
    return frozenset(used)


def claimed_by_another_cluster(observed: Observed, volid: str) -> bool:
    """`homelab-gen-home-lab-k3s-1-….iso` is node `lab-k3s-1` of cluster `home`, or node
    `k3s-1` of cluster `home-lab`: when a VM of the other reading exists, leave it alone."""
    return any(is_seed_of(c, volid, node) for c, node in observed.other_nodes)


def unused_seeds(
    cluster: Cluster, observed: Observed, refs: Mapping[str, SeedRef], vms: Sequence[VMPlan] = ()
) -> list[tuple[str, str]]:
    """(pve node, volid) of this cluster's seeds that nothing uses once `vms` are applied."""
    keep = seeds_in_use(cluster, observed, refs, vms)
    return [
        (node, volid)
        for node, volids in sorted(observed.seeds.items())
        for volid in sorted(volids)
        if volid not in keep
        and is_seed_of(cluster.name, volid)
        and not claimed_by_another_cluster(observed, volid)
    ]


def seed_rows(unused: Sequence[tuple[str, str]]) -> list[VMPlan]:
    """One row per file, so a failed delete never holds up the others."""
    return [
        VMPlan(volid.split("/", 1)[-1], 0, (seed_deletion(node, volid),), SEED_ROW)
        for node, volid in unused
    ]


def seed_deletion(pve_node: str, volid: str) -> Action:
    return Action(Kind.DELETE_SEED, 0, pve_node, (("volid", volid),))


def may_delete_seeds(cluster: Cluster, observed: Observed) -> bool:
    # PVE's content DELETE wants Datastore.Allocate for ISOs and snippets alike.
    path = f"/storage/{cluster.proxmox.seed_storage}"
    return has_privilege(observed.permissions, path, "Datastore.Allocate")


def plan_seed_cleanup(
    cluster: Cluster, observed: Observed, refs: Mapping[str, SeedRef], vms: Sequence[VMPlan]
) -> tuple[list[VMPlan], list[str]]:
    """Rows deleting the seeds no VM will use after `vms`, or a warning why they stay."""
    if any(node.name not in refs for node in cluster.nodes):
        return [], []  # a node without its seed cannot say which of its seeds is current
    return seed_rows_or_warning(cluster, observed, unused_seeds(cluster, observed, refs, vms))


def seed_rows_or_warning(
    cluster: Cluster, observed: Observed, unused: Sequence[tuple[str, str]]
) -> tuple[list[VMPlan], list[str]]:
    """Rows deleting `unused`, or, when the token may not delete there, why they stay."""
    if not unused or may_delete_seeds(cluster, observed):
        return seed_rows(unused), []
    storage, token = cluster.proxmox.seed_storage, cluster.proxmox.token_id
    return [], [
        f"{len(unused)} unused seed file(s) stay on {storage}: deleting them takes"
        f" Datastore.Allocate on /storage/{storage}; grant it there only with"
        f" pveum acl modify /storage/{storage} --tokens '{token}' --roles PVEDatastoreAdmin"
    ]


# -- pre-flight ------------------------------------------------------------------------------
def guest_agent_privs(version: tuple[int, int]) -> tuple[str, ...]:
    if version >= (9, 0):
        return ("VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted")
    return ("VM.Monitor",)


def role_privileges(version: tuple[int, int]) -> tuple[str, ...]:
    """The least-privilege role for boot, destroy and status (README: API token)."""
    return (
        "VM.Allocate", "VM.Audit", "VM.Clone", *VM_CONFIG_PRIVS, "VM.PowerMgmt",
        *guest_agent_privs(version),
        "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
        "SDN.Use", "Sys.Audit",
    )  # fmt: skip


def required_privileges(cluster: Cluster, observed: Observed) -> list[tuple[str, str]]:
    pve = cluster.proxmox
    needed = [(f"/vms/{pve.template_vmid}", p) for p in ("VM.Audit", "VM.Clone")]
    for node in cluster.nodes:
        for priv in ("VM.Allocate", "VM.Audit", *VM_CONFIG_PRIVS, "VM.PowerMgmt"):
            needed.append((f"/vms/{node.vmid}", priv))
    needed += [
        (f"/storage/{pve.storage}", p) for p in ("Datastore.AllocateSpace", "Datastore.Audit")
    ]
    needed += [
        (f"/storage/{pve.seed_storage}", p)
        for p in ("Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit")
    ]
    needed.append((f"/sdn/zones/localnetwork/{pve.bridge}", "SDN.Use"))
    return list(dict.fromkeys(needed))


def has_privilege(perms: Mapping[str, Mapping[str, int]], path: str, priv: str) -> bool:
    """PVE's rule: an ACL on the path itself, or a propagating one on an ancestor."""
    parts = path.strip("/").split("/")
    for depth in range(len(parts), -1, -1):
        at = "/" + "/".join(parts[:depth])
        if priv in perms.get(at, {}):
            return depth == len(parts) or bool(perms[at][priv])
    return False


def pveum_commands(cluster: Cluster, version: tuple[int, int]) -> list[str]:
    """The role and its grants, for PVE `version` (major, minor)."""
    token = cluster.proxmox.token_id
    privs = ",".join(role_privileges(version))
    return [
        f'pveum role add {ROLE} --privs "{privs}"'
        f'   # or: pveum role modify {ROLE} --privs "{privs}"',
        *(
            f"pveum acl modify {path} --tokens '{token}' --roles {ROLE}"
            for path in ("/vms", "/storage", "/sdn/zones/localnetwork", "/nodes")
        ),
    ]


def _privilege_problems(cluster: Cluster, observed: Observed) -> list[str]:
    missing = [
        f"{priv} on {path}"
        for path, priv in required_privileges(cluster, observed)
        if not has_privilege(observed.permissions, path, priv)
    ]
    if not missing:
        return []
    commands = "\n    ".join(pveum_commands(cluster, observed.major_minor))
    return [
        f"the API token {cluster.proxmox.token_id} lacks: {', '.join(missing)}\n"
        f"  grant them on the Proxmox host with:\n    {commands}"
    ]


def snippets_path_problem(cluster: Cluster, observed: Observed) -> str:
    storage = cluster.proxmox.seed_storage
    problem = f"seed storage '{storage}' has no file path for snippets"
    if may_delete_seeds(cluster, observed):
        return problem
    # GET /storage/{storage}, which tells the path, wants Datastore.Allocate there.
    return (
        f"{problem}, or the token may not read it: grant Datastore.Allocate on that storage"
        f" only with pveum acl modify /storage/{storage} --tokens '{cluster.proxmox.token_id}'"
        " --roles PVEDatastoreAdmin"
    )


def _node_problems(cluster: Cluster, observed: Observed) -> list[str]:
    pve = cluster.proxmox
    problems: list[str] = []
    for name in dict.fromkeys(pve_node_of(cluster, n) for n in cluster.nodes):
        facts = observed.nodes.get(name)
        if facts is None:
            problems.append(f"Proxmox node '{name}' does not exist (or the token cannot see it)")
            continue
        vm_storage = facts.storages.get(pve.storage)
        if vm_storage is None:
            problems.append(f"storage '{pve.storage}' does not exist on node {name}")
        elif "images" not in vm_storage.content:
            problems.append(
                f"storage '{pve.storage}' on {name} does not hold VM disks (content 'images')"
            )
        seed = facts.storages.get(pve.seed_storage)
        kind = str(pve.seed_method)  # also the content type the seed storage must accept
        if seed is None:
            problems.append(f"seed storage '{pve.seed_storage}' does not exist on node {name}")
        elif kind not in seed.content:
            problems.append(
                f"seed storage '{pve.seed_storage}' on {name} does not accept '{kind}' content"
                f" (Datacenter > Storage > {pve.seed_storage} > Content: add {kind})"
            )
        elif pve.seed_method == SeedMethod.SNIPPETS and not seed.path:
            problems.append(snippets_path_problem(cluster, observed))
        if pve.bridge not in facts.bridges:
            problems.append(f"bridge '{pve.bridge}' does not exist on node {name}")
    return problems


def template_problems(vmid: int, template: VMFacts | None) -> list[str]:
    """Whether the VM at proxmox.template_vmid can be cloned; `template` and `boot` share it."""
    if template is None:
        return [f"template VM {vmid} does not exist (create it with 'homelab-gen template')"]
    problems = []
    if not template.is_template:
        problems.append(f"VM {vmid} is not a template (convert it, or run 'homelab-gen template')")
    if template.boot_disk is None:
        problems.append(
            f"template {vmid} has no disk (import the cloud image, or 'homelab-gen template')"
        )
    if _leading(template.config.get("agent", "0"), "enabled") != "1":
        problems.append(f"template {vmid} has the guest agent disabled (qm set {vmid} --agent 1)")
    if template.is_q35 and not template.config.get("scsihw", "").startswith("virtio-scsi"):
        problems.append(
            f"template {vmid} is a q35 machine without a virtio SCSI controller: the seed CD"
            f" would be invisible to Debian 12 (qm set {vmid} --scsihw virtio-scsi-pci)"
        )
    return problems


def _vm_problems(cluster: Cluster, observed: Observed) -> list[str]:
    problems = []
    for node in cluster.nodes:
        vm = observed.vms.get(node.vmid)
        if vm is None:
            continue
        owner = vm.owner
        if owner != (cluster.name, node.name):
            problems.append(
                f"VMID {node.vmid} ({node.name}) is taken by VM '{vm.name or '?'}' that this"
                " cluster does not own; pick another vmid in cluster.yaml"
            )
        elif vm.lock:
            problems.append(
                f"VM {node.vmid} ({node.name}) is locked ({vm.lock}); if no task is running,"
                f" run 'qm unlock {node.vmid}' on the Proxmox host"
            )
    return problems


def _capacity_warnings(cluster: Cluster, observed: Observed) -> list[str]:
    warnings = []
    new = [n for n in cluster.nodes if n.vmid not in observed.vms]
    for name in dict.fromkeys(pve_node_of(cluster, n) for n in new):
        facts = observed.nodes.get(name)
        here = [n for n in new if pve_node_of(cluster, n) == name]
        memory = sum(n.memory for n in here) * 2**20
        if facts and facts.memory_free is not None and memory > facts.memory_free:
            warnings.append(
                f"node {name}: the new VMs want {memory >> 30} GiB of memory,"
                f" {facts.memory_free >> 30} GiB is free"
            )
        storage = facts.storages.get(cluster.proxmox.storage) if facts else None
        disk = sum(n.disk for n in here) * 2**30
        if storage and disk > storage.avail:
            warnings.append(
                f"storage {storage.name} on {name}: the new disks may grow to {disk >> 30} GiB,"
                f" {storage.avail >> 30} GiB is free"
            )
    return warnings


def preflight(
    cluster: Cluster, observed: Observed, refs: Mapping[str, SeedRef]
) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    if observed.major_minor < MIN_VERSION:
        problems.append(f"Proxmox VE {observed.version} is too old; homelab-gen needs 8.0 or newer")
    problems += _privilege_problems(cluster, observed)
    problems += _node_problems(cluster, observed)
    problems += template_problems(cluster.proxmox.template_vmid, observed.template)
    problems += _vm_problems(cluster, observed)
    missing = [n.name for n in cluster.nodes if n.name not in refs]
    if missing:
        problems.append(f"no rendered seed for {', '.join(missing)} (run 'homelab-gen render')")
    return problems, _capacity_warnings(cluster, observed)
