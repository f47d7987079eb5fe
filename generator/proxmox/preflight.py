"""Pre-flight: what must hold on Proxmox before boot changes anything, checked against the
observed facts. Problems stop the plan; warnings (capacity) are shown with it.

Also the token's least-privilege role and the pveum commands that grant it, since a missing
privilege is the most common problem and its message says how to fix it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import partial

from generator.config.model import Cluster, Node, SeedMethod
from generator.proxmox import cluster_init, ha
from generator.proxmox.clone_source import unserved_problems
from generator.proxmox.observe import NodeFacts, Observed, StorageFacts, VMFacts
from generator.proxmox.pveconfig import leading_value
from generator.proxmox.seeds import SeedRef

MIN_VERSION = (8, 0)
ROLE = "HomelabGen"
VM_CONFIG_PRIVS = (
    "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit", "VM.Config.Disk",
    "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options",
)  # fmt: skip


# -- the token's privileges ---------------------------------------------------------------
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
    sources = [pve.template_vmid, *(t.vmid for t in observed.host_templates.values())]
    needed = [(f"/vms/{vmid}", p) for vmid in sources for p in ("VM.Audit", "VM.Clone")]
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


def may_delete_seeds(cluster: Cluster, observed: Observed) -> bool:
    # PVE's content DELETE wants Datastore.Allocate for ISOs and snippets alike.
    path = f"/storage/{cluster.proxmox.seed_storage}"
    return has_privilege(observed.permissions, path, "Datastore.Allocate")


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


# -- Proxmox nodes: storages and bridge ----------------------------------------------------
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


def vms_by_host(hosts: Mapping[str, str], nodes: Sequence[Node]) -> dict[str, list[Node]]:
    """`nodes` grouped by the Proxmox node their VMs live on (`hosts`: placement's
    {node name: host}), hosts in first-seen order."""
    grouped: dict[str, list[Node]] = {}
    for node in nodes:
        grouped.setdefault(hosts[node.name], []).append(node)
    return grouped


def _node_problems(cluster: Cluster, observed: Observed, hosts: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    for name in vms_by_host(hosts, cluster.nodes):
        facts = observed.nodes.get(name)
        if facts is None:
            problems.append(f"Proxmox node '{name}' does not exist (or the token cannot see it)")
            continue
        problems += _vm_storage_problems(cluster, name, facts)
        problems += _seed_storage_problems(cluster, observed, name, facts)
        if cluster.proxmox.bridge not in facts.bridges:
            problems.append(f"bridge '{cluster.proxmox.bridge}' does not exist on node {name}")
    return problems


def _vm_storage_problems(cluster: Cluster, name: str, facts: NodeFacts) -> list[str]:
    storage = cluster.proxmox.storage
    found = facts.storages.get(storage)
    if found is None:
        return [f"storage '{storage}' does not exist on node {name}"]
    if "images" not in found.content:
        return [f"storage '{storage}' on {name} does not hold VM disks (content 'images')"]
    return []


def _seed_storage_problems(
    cluster: Cluster, observed: Observed, name: str, facts: NodeFacts
) -> list[str]:
    pve = cluster.proxmox
    seed = facts.storages.get(pve.seed_storage)
    kind = str(pve.seed_method)  # also the content type the seed storage must accept
    if seed is None:
        return [f"seed storage '{pve.seed_storage}' does not exist on node {name}"]
    if kind not in seed.content:
        return [
            f"seed storage '{pve.seed_storage}' on {name} does not accept '{kind}' content"
            f" (Datacenter > Storage > {pve.seed_storage} > Content: add {kind})"
        ]
    if pve.seed_method == SeedMethod.SNIPPETS and not seed.path:
        return [snippets_path_problem(cluster, observed)]
    return []


def _seed_reach_problems(
    cluster: Cluster, observed: Observed, refs: Mapping[str, SeedRef], hosts: Mapping[str, str]
) -> list[str]:
    """A seed to put on another host's own (not shared) seed storage: PVE refuses to relay
    an upload there ("unable to proxy file uploads", pve-manager PVE/HTTPServer.pm), and
    the snippets' SSH reaches proxmox.host only."""
    pve = cluster.proxmox
    blocked: dict[str, list[str]] = {}
    for node in cluster.nodes:
        host, ref = hosts[node.name], refs.get(node.name)
        if host == pve.node or ref is None or set(ref.volids) <= observed.seeds.get(host, set()):
            continue
        facts = observed.nodes.get(host)
        seed = facts.storages.get(pve.seed_storage) if facts else None
        if seed is not None and not seed.shared:
            blocked.setdefault(host, []).append(node.name)
    return [
        f"the seeds of {', '.join(names)} would go to '{pve.seed_storage}' on {host}, which"
        f" only {host} reads: Proxmox cannot upload there through {pve.node}. Set"
        f" proxmox.seed_storage to a shared storage with '{pve.seed_method}' content"
        " (NFS, CephFS), or pin these nodes to proxmox.node"
        for host, names in blocked.items()
    ]


# -- the template and the VMIDs -----------------------------------------------------------
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
    if leading_value(template.config.get("agent", "0"), "enabled") != "1":
        problems.append(f"template {vmid} has the guest agent disabled (qm set {vmid} --agent 1)")
    if template.is_q35 and not template.config.get("scsihw", "").startswith("virtio-scsi"):
        problems.append(
            f"template {vmid} is a q35 machine without a virtio SCSI controller: the seed CD"
            f" would be invisible to Debian 12 (qm set {vmid} --scsihw virtio-scsi-pci)"
        )
    return problems


def _vm_problems(cluster: Cluster, observed: Observed) -> list[str]:
    found = (_vm_problem(cluster, node, observed.vms.get(node.vmid)) for node in cluster.nodes)
    return [problem for problem in found if problem]


def _vm_problem(cluster: Cluster, node: Node, vm: VMFacts | None) -> str | None:
    """Why the VM already at the node's VMID cannot be boot's to change, if it cannot."""
    if vm is None:
        return None
    if vm.owner != (cluster.name, node.name):
        return (
            f"VMID {node.vmid} ({node.name}) is taken by VM '{vm.name or '?'}' that this"
            " cluster does not own; pick another vmid in cluster.yaml"
        )
    if vm.lock:
        return (
            f"VM {node.vmid} ({node.name}) is locked ({vm.lock}); if no task is running,"
            f" run 'qm unlock {node.vmid}' on the Proxmox host"
        )
    return None


# -- capacity (warnings only: PVE overcommits, and thin disks rarely fill) ------------------
def _capacity_warnings(cluster: Cluster, observed: Observed, hosts: Mapping[str, str]) -> list[str]:
    new = [n for n in cluster.nodes if n.vmid not in observed.vms]
    warnings = []
    for name, here in vms_by_host(hosts, new).items():
        facts = observed.nodes.get(name)
        warnings += _memory_warnings(name, facts, here)
        storage = facts.storages.get(cluster.proxmox.storage) if facts else None
        warnings += _disk_warnings(name, storage, here)
    return warnings


def _memory_warnings(name: str, facts: NodeFacts | None, new: Sequence[Node]) -> list[str]:
    memory = sum(n.memory for n in new) * 2**20
    if facts is None or facts.memory_free is None or memory <= facts.memory_free:
        return []
    return [
        f"node {name}: the new VMs want {memory >> 30} GiB of memory,"
        f" {facts.memory_free >> 30} GiB is free"
    ]


def _disk_warnings(name: str, storage: StorageFacts | None, new: Sequence[Node]) -> list[str]:
    disk = sum(n.disk for n in new) * 2**30
    if storage is None or disk <= storage.avail:
        return []
    return [
        f"storage {storage.name} on {name}: the new disks may grow to {disk >> 30} GiB,"
        f" {storage.avail >> 30} GiB is free"
    ]


# -- all of it -----------------------------------------------------------------------------
def preflight(
    cluster: Cluster,
    observed: Observed,
    refs: Mapping[str, SeedRef],
    hosts: Mapping[str, str],
    rebuilding: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """Problems that stop the plan, and warnings; `hosts` is placement's {node: host}."""
    problems: list[str] = []
    if observed.major_minor < MIN_VERSION:
        problems.append(f"Proxmox VE {observed.version} is too old; homelab-gen needs 8.0 or newer")
    problems += _privilege_problems(cluster, observed)
    problems += _node_problems(cluster, observed, hosts)
    problems += template_problems(cluster.proxmox.template_vmid, observed.template)
    problems += unserved_problems(cluster, observed, hosts)
    problems += _vm_problems(cluster, observed)
    for found in (
        cluster_init.second_cluster_problem(cluster, observed, rebuilding),
        cluster_init.lost_cluster_problem(cluster, observed),
    ):
        if found:
            problems.append(found)
    missing = [n.name for n in cluster.nodes if n.name not in refs]
    if missing:
        problems.append(f"no rendered seed for {', '.join(missing)} (run 'homelab-gen render')")
    problems += _seed_reach_problems(cluster, observed, refs, hosts)
    problems += ha.privilege_problems(cluster, partial(has_privilege, observed.permissions))
    storages = {name: facts.storages for name, facts in observed.nodes.items()}
    ha_problems, ha_warnings = ha.storage_findings(cluster, storages)
    return problems + ha_problems, _capacity_warnings(cluster, observed, hosts) + ha_warnings
