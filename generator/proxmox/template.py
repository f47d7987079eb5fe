"""`homelab-gen template`: the cloud-image template VM, made through the API (PVE 8.4+).

observe -> plan (data) -> apply, like boot, with boot's plan types and engine (apply.py).
The plan is one row of at most four actions: download the image onto the seed storage
(`download-url`, content `import`), delete a half-made template of ours, create the VM
importing the image (`import-from`), convert it to a template; with `--prepare`, the VM
boots once with a preparation seed before the convert (template_prepare). Anything else at
the template's VMID is left alone.

Here: the facts, how they are read and the plan (pure). What the VM is lives in
template_vm, the token's privileges in template_access, the apply in template_job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from generator import naming
from generator.config.model import Cluster
from generator.proxmox.actions import Action, Kind, Plan, VMPlan
from generator.proxmox.client import Client
from generator.proxmox.failures import PveError
from generator.proxmox.images import Source
from generator.proxmox.observe import NodeFacts, VMFacts, major_minor, read_node, read_vm
from generator.proxmox.preflight import template_problems
from generator.proxmox.template_access import grant_commands, missing_privileges
from generator.proxmox.template_marks import copy_of, may_be_ours
from generator.proxmox.template_prepare import (
    Preparation,
    fresh_steps,
    prepared_version,
    resumed_steps,
    version_note,
)
from generator.proxmox.template_vm import (
    Marks,
    create_params,
    image_of,
    image_volid,
    is_ours,
    manual_commands,
)

MIN_VERSION = (8, 4)  # download-url with content=import
ROW = "template"  # the plan's one row; its notes are the commands to run by hand instead


@dataclass(frozen=True)
class TemplateFacts:
    version: str
    permissions: dict[str, dict[str, int]] = field(hash=False)
    node: NodeFacts | None
    vm: VMFacts | None
    images: frozenset[str]  # volids of `import` content on the seed storage
    marks: Marks = None  # a host's copy: (the main template's VMID, the host)

    @property
    def major_minor(self) -> tuple[int, int]:
        return major_minor(self.version)


def describe(action: Action) -> str:
    """A template step as `template` shows it."""
    if action.kind == Kind.DOWNLOAD:
        shown = (action.param("url"), action.param("volid"), action.param("checksum"))
        return "download {} -> {} ({})".format(*shown)
    if action.kind == Kind.CREATE:
        return f"create VM from {action.param('import')}"
    if action.kind == Kind.PREPARE_SEED:
        return (
            f"attach the preparation seed for K3s {action.param('k3s')} ({action.param('volid')})"
        )
    if action.kind == Kind.START:
        return "start it: it installs the packages and K3s, then powers itself off"
    if action.kind == Kind.WAIT_STOPPED:
        return "wait until it has powered off"
    if action.kind == Kind.RECORD:
        return f"put the cloud-init drive back; record K3s {action.param('k3s')}"
    return action.kind


# -- observe --------------------------------------------------------------------------------
def observe_template(client: Client, cluster: Cluster, marks: Marks = None) -> TemplateFacts:
    """The template at proxmox.template_vmid on proxmox.node; for a host's copy, `cluster`
    is for_host's and the copy is looked for by its marks first."""
    pve = cluster.proxmox
    version = str(client.get("version").get("version", "0"))
    permissions = client.get("access/permissions") or {}
    node = read_node(client, pve.node, None)
    vm = _find_vm(client, pve.template_vmid, marks)
    images: frozenset[str] = frozenset()
    if node is not None and pve.seed_storage in node.storages:
        try:
            listed = client.get(
                f"nodes/{pve.node}/storage/{pve.seed_storage}/content", content="import"
            )
            images = frozenset(str(v["volid"]) for v in listed)
        except PveError as exc:
            if exc.transient:
                raise
    return TemplateFacts(version, permissions, node, vm, images, marks)


def _find_vm(client: Client, vmid: int, marks: Marks = None) -> VMFacts | None:
    listed = client.get("cluster/resources", type="vm") or []
    if marks is not None:
        tagged = (r for r in listed if may_be_ours(naming.parse_tags(r.get("tags"))))
        for copy in (r for r in tagged if str(r["node"]) == marks[1]):
            found = read_vm(client, marks[1], int(copy["vmid"]))
            if found is not None and copy_of(found.description) == marks:
                return found
    for res in listed:
        if int(res["vmid"]) == vmid:
            return read_vm(client, str(res["node"]), vmid)
    return None


# -- plan -----------------------------------------------------------------------------------
def _usable_problems(cluster: Cluster, facts: TemplateFacts) -> list[str]:
    """Boot's own pre-flight verdict on the template, so the two commands never disagree."""
    return template_problems(cluster.proxmox.template_vmid, facts.vm)


def _row(cluster: Cluster, reason: str, actions: Sequence[Action] = ()) -> VMPlan:
    return VMPlan(ROW, cluster.proxmox.template_vmid, tuple(actions), reason)


def _refused(cluster: Cluster, reason: str, *problems: str) -> Plan:
    return Plan((_row(cluster, reason),), problems)


def _existing(
    cluster: Cluster,
    source: Source,
    facts: TemplateFacts,
    explicit: bool,
    prep: Preparation | None = None,
) -> Plan | None:
    """The plan when something already sits at the VMID, or None to build from scratch."""
    vm, vmid = facts.vm, cluster.proxmox.template_vmid
    if vm is None:
        return None
    if facts.marks is not None and not is_ours(vm, facts.marks):
        return _refused(cluster, "taken", _copy_taken(vm, facts.marks))
    if vm.lock:
        return _refused(
            cluster, "locked", f"VM {vmid} is locked ({vm.lock}); wait for its task to end"
        )
    if vm.is_template:
        problems = _usable_problems(cluster, facts)
        if problems:
            return _refused(cluster, "unusable", *problems, _taken_hint(vmid))
        if is_ours(vm, facts.marks) and explicit and image_of(vm) not in (None, source.key):
            return _refused(
                cluster, "other image",
                f"template {vmid} holds {image_of(vm)}, not {source.key}; {_taken_hint(vmid)}",
            )  # fmt: skip
        ours = is_ours(vm, facts.marks)
        made = f"made by homelab-gen from {image_of(vm)}" if ours else "made by hand"
        baked = prepared_version(vm)
        made += f", prepared with K3s {baked}" if baked else ""
        note = version_note(cluster, vm, asked=prep is not None)
        row = _row(cluster, f"template {vmid} exists ({made}) and is usable")
        return Plan((row,), (), (note,) if note else ())
    if not is_ours(vm, facts.marks):
        return _refused(
            cluster, "taken",
            f"VMID {vmid} (proxmox.template_vmid) is taken by VM '{vm.name or '?'}', which is"
            " not a template made by homelab-gen; nothing was touched. Pick a free VMID for"
            " proxmox.template_vmid in cluster.yaml",
        )  # fmt: skip
    if vm.boot_disk is not None:
        convert = Action(Kind.CONVERT, vmid, vm.node)
        steps = resumed_steps(cluster, vm, prep)
        if steps:
            return Plan((_row(cluster, "finish: prepare and convert the half-made VM",
                              (*steps, convert)),))  # fmt: skip
        return Plan((_row(cluster, "finish: convert the half-made VM", (convert,)),))
    return None  # ours, half-made without its disk: delete and build again


def _copy_taken(vm: VMFacts, marks: tuple[int, str]) -> str:
    original, host = marks
    return (
        f"VMID {vm.vmid}, where the copy of template {original} for {host} goes"
        " (proxmox.template_vmid + the host's place among the other hosts of proxmox.nodes),"
        f" is taken by VM '{vm.name or '?'}' on {vm.node}; nothing was touched. Move that VM"
        f" to a free VMID, or give {host} another place in proxmox.nodes"
    )


def _taken_hint(vmid: int) -> str:
    return (
        f"nothing was touched; destroy VM {vmid} on the Proxmox host (qm destroy {vmid}) to"
        " rebuild it, or pick another proxmox.template_vmid"
    )


def _build_actions(
    cluster: Cluster, source: Source, facts: TemplateFacts, prep: Preparation | None = None
) -> list[Action]:
    pve = cluster.proxmox
    vmid, volid = pve.template_vmid, image_volid(cluster, source)
    actions: list[Action] = []
    if volid not in facts.images:
        rule = source.checksum.describe() if source.checksum else "NO checksum"
        params = (("url", source.url), ("volid", volid), ("checksum", rule))
        actions.append(Action(Kind.DOWNLOAD, vmid, pve.node, params))
    if facts.vm is not None:
        actions.append(Action(Kind.DELETE, vmid, facts.vm.node))
    actions.append(Action(Kind.CREATE, vmid, pve.node, (("import", volid),)))
    if prep is not None:
        actions += fresh_steps(cluster, create_params(cluster, source, volid, facts.marks), prep)
    actions.append(Action(Kind.CONVERT, vmid, pve.node))
    return actions


def plan_template(
    cluster: Cluster,
    source: Source,
    facts: TemplateFacts,
    explicit: bool = False,
    prep: Preparation | None = None,
) -> Plan:
    """One row, named ROW; its notes are the commands to run by hand when we must refuse.
    `explicit`: the user named the image, so a template of another image is a conflict.
    `prep`: `--prepare`, the template boots once with this preparation before CONVERT."""
    existing = _existing(cluster, source, facts, explicit, prep)
    if existing is not None and (existing.problems or existing.is_noop):
        return existing
    row = existing.vms[0] if existing else _row(cluster, "create")
    steps = row.actions or tuple(_build_actions(cluster, source, facts, prep))
    builds = any(a.kind in (Kind.DOWNLOAD, Kind.CREATE) for a in steps)
    problems = _place_problems(cluster, facts) if builds else []
    if any(a.kind == Kind.PREPARE_SEED for a in steps):
        problems += _seed_iso_problems(cluster, facts)
    manual: list[str] = []
    if builds and facts.major_minor < MIN_VERSION:
        problems.insert(
            0,
            f"Proxmox VE {facts.version} cannot download a disk image through the API"
            " (download-url with content 'import' needs 8.4 or newer); run these commands"
            f" on the Proxmox host ({cluster.proxmox.node}) as root instead:",
        )
        manual += manual_commands(cluster, source, facts.marks)
    # The manual route runs as root on the host, so the token's privileges matter no more.
    missing = [] if manual else missing_privileges(cluster, facts.permissions, steps)
    if missing:
        problems.append(
            f"the API token {cluster.proxmox.token_id} lacks: {', '.join(missing)};"
            " grant them on the Proxmox host with:"
        )
        manual += grant_commands(cluster, facts.major_minor, missing)
    return Plan((replace(row, actions=steps, notes=tuple(manual)),), tuple(problems))


def _place_problems(cluster: Cluster, facts: TemplateFacts) -> list[str]:
    pve, node = cluster.proxmox, facts.node
    if node is None:
        return [f"Proxmox node '{pve.node}' does not exist (or the token cannot see it)"]
    problems = []
    disks = node.storages.get(pve.storage)
    if disks is None or "images" not in disks.content:
        problems.append(
            f"storage '{pve.storage}' on {pve.node} does not exist or holds no VM disks"
        )
    seed = node.storages.get(pve.seed_storage)
    if seed is None:
        problems.append(f"seed storage '{pve.seed_storage}' does not exist on {pve.node}")
    elif "import" not in seed.content:
        content = ",".join(sorted(seed.content | {"import"}))
        problems.append(
            f"seed storage '{pve.seed_storage}' does not accept 'import' content (disk images);"
            f" allow it with: pvesm set {pve.seed_storage} --content {content}"
        )
    if pve.bridge not in node.bridges:
        problems.append(f"bridge '{pve.bridge}' does not exist on {pve.node}")
    return problems


def _seed_iso_problems(cluster: Cluster, facts: TemplateFacts) -> list[str]:
    """The preparation seed goes up as an ISO, whatever proxmox.seed_method says."""
    pve = cluster.proxmox
    seed = facts.node.storages.get(pve.seed_storage) if facts.node else None
    if seed is None or "iso" in seed.content:
        return []  # a missing storage is _place_problems' to report
    content = ",".join(sorted(seed.content | {"iso"}))
    return [
        f"seed storage '{pve.seed_storage}' does not accept 'iso' content, where --prepare"
        f" puts its preparation seed; allow it with: pvesm set {pve.seed_storage}"
        f" --content {content}"
    ]
