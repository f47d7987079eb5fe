"""`homelab-gen template`: the cloud-image template VM, made through the API (PVE 8.4+).

observe -> plan (data) -> apply, like boot, with boot's plan types and engine (apply.py).
The plan is one row of at most four actions: download the image onto the seed storage
(`download-url`, content `import`), delete a half-made template of ours, create the VM
importing the image (`import-from`), convert it to a template. Anything else at the
template's VMID is left alone.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

from generator import naming
from generator.config.model import Cluster
from generator.proxmox import apply
from generator.proxmox import plan as planning
from generator.proxmox.client import Client
from generator.proxmox.failures import PveError
from generator.proxmox.images import Fetch, Source, fetch_https, resolve
from generator.proxmox.observe import NodeFacts, VMFacts, major_minor, read_node, read_vm
from generator.proxmox.plan import Action, Kind, Plan, VMPlan

MIN_VERSION = (8, 4)  # download-url with content=import
DESCRIPTION_HEAD = "homelab-gen: template"
# Proxmox's default CPU for new VMs since 8.0: runs on any x86-64-v2 host with AES-NI, so
# clones live-migrate across a mixed cluster; `host` is one `qm set` away if wanted.
CPU = "x86-64-v2-AES"
CREATE_PRIVS = ("VM.Allocate", "VM.Audit", *planning.VM_CONFIG_PRIVS)
NETWORK_ROLE = "HomelabGenDownload"
ROW = "template"  # the plan's one row; its notes are the commands to run by hand instead


@dataclass(frozen=True)
class TemplateFacts:
    version: str
    permissions: dict[str, dict[str, int]] = field(hash=False)
    node: NodeFacts | None
    vm: VMFacts | None
    images: frozenset[str]  # volids of `import` content on the seed storage

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
    return action.kind


# -- observe --------------------------------------------------------------------------------
def observe_template(client: Client, cluster: Cluster) -> TemplateFacts:
    pve = cluster.proxmox
    version = str(client.get("version").get("version", "0"))
    permissions = client.get("access/permissions") or {}
    node = read_node(client, pve.node, None)
    vm = _find_vm(client, pve.template_vmid)
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
    return TemplateFacts(version, permissions, node, vm, images)


def _find_vm(client: Client, vmid: int) -> VMFacts | None:
    for res in client.get("cluster/resources", type="vm") or []:
        if int(res["vmid"]) == vmid:
            return read_vm(client, str(res["node"]), vmid)
    return None


# -- what the template is -------------------------------------------------------------------
def image_volid(cluster: Cluster, source: Source) -> str:
    return f"{cluster.proxmox.seed_storage}:import/{source.filename}"


def description(cluster: Cluster, source: Source) -> str:
    return (
        f"{DESCRIPTION_HEAD} image={source.key} source={source.url}\n"
        "Made by homelab-gen template; homelab-gen boot clones it. To rebuild it, destroy it"
        " and run homelab-gen template again."
    )


def is_ours(vm: VMFacts) -> bool:
    return naming.TOOL_TAG in vm.tags and vm.description.startswith(DESCRIPTION_HEAD)


def image_of(vm: VMFacts) -> str | None:
    first = vm.description.splitlines()[0] if vm.description else ""
    found = [p.split("=", 1)[1] for p in first.split() if p.startswith("image=")]
    return found[0] if found else None


def create_params(cluster: Cluster, source: Source, import_from: str) -> dict[str, str]:
    pve = cluster.proxmox
    tag = source.key if source.key != "custom" else "custom-image"
    boot_disk = f"{pve.storage}:0,import-from={import_from},discard=on,iothread=1"
    return {
        "vmid": str(pve.template_vmid),
        "name": f"homelab-gen-{source.key if source.key != 'custom' else 'template'}",
        "ostype": "l26",
        "machine": source.machine,
        "cpu": CPU,
        "cores": "2",
        "memory": "2048",
        "agent": "1",
        "serial0": "socket",
        "vga": "serial0",
        "scsihw": "virtio-scsi-single",
        "scsi0": boot_disk,
        # The cloud-init drive where boot will put the seed CD.
        planning.drive_slot(source.machine, {"scsi0": boot_disk}): f"{pve.storage}:cloudinit",
        "boot": "order=scsi0",
        "net0": f"virtio,bridge={pve.bridge}",
        "tags": f"{naming.TOOL_TAG};template;{tag}",
        "description": description(cluster, source),
    }


# -- plan -----------------------------------------------------------------------------------
def _usable_problems(cluster: Cluster, facts: TemplateFacts) -> list[str]:
    """Boot's own pre-flight verdict on the template, so the two commands never disagree."""
    return planning.template_problems(cluster.proxmox.template_vmid, facts.vm)


def _row(cluster: Cluster, reason: str, actions: Sequence[Action] = ()) -> VMPlan:
    return VMPlan(ROW, cluster.proxmox.template_vmid, tuple(actions), reason)


def _refused(cluster: Cluster, reason: str, *problems: str) -> Plan:
    return Plan((_row(cluster, reason),), problems)


def _existing(
    cluster: Cluster, source: Source, facts: TemplateFacts, explicit: bool
) -> Plan | None:
    """The plan when something already sits at the VMID, or None to build from scratch."""
    vm, vmid = facts.vm, cluster.proxmox.template_vmid
    if vm is None:
        return None
    if vm.lock:
        return _refused(
            cluster, "locked", f"VM {vmid} is locked ({vm.lock}); wait for its task to end"
        )
    if vm.is_template:
        problems = _usable_problems(cluster, facts)
        if problems:
            return _refused(cluster, "unusable", *problems, _taken_hint(vmid))
        if is_ours(vm) and explicit and image_of(vm) not in (None, source.key):
            return _refused(
                cluster, "other image",
                f"template {vmid} holds {image_of(vm)}, not {source.key}; {_taken_hint(vmid)}",
            )  # fmt: skip
        made = f"made by homelab-gen from {image_of(vm)}" if is_ours(vm) else "made by hand"
        return Plan((_row(cluster, f"template {vmid} exists ({made}) and is usable"),))
    if not is_ours(vm):
        return _refused(
            cluster, "taken",
            f"VMID {vmid} (proxmox.template_vmid) is taken by VM '{vm.name or '?'}', which is"
            " not a template made by homelab-gen; nothing was touched. Pick a free VMID for"
            " proxmox.template_vmid in cluster.yaml",
        )  # fmt: skip
    if vm.boot_disk is not None:
        convert = Action(Kind.CONVERT, vmid, vm.node)
        return Plan((_row(cluster, "finish: convert the half-made VM", (convert,)),))
    return None  # ours, half-made without its disk: delete and build again


def _taken_hint(vmid: int) -> str:
    return (
        f"nothing was touched; destroy VM {vmid} on the Proxmox host (qm destroy {vmid}) to"
        " rebuild it, or pick another proxmox.template_vmid"
    )


def _build_actions(cluster: Cluster, source: Source, facts: TemplateFacts) -> list[Action]:
    pve = cluster.proxmox
    vmid, volid = pve.template_vmid, image_volid(cluster, source)
    actions: list[Action] = []
    if volid not in facts.images:
        rule = source.checksum.describe() if source.checksum else "NO checksum"
        params = (("url", source.url), ("volid", volid), ("checksum", rule))
        actions.append(Action(Kind.DOWNLOAD, vmid, pve.node, params))
    if facts.vm is not None:
        actions.append(Action(Kind.DELETE, vmid, facts.vm.node))
    actions += [
        Action(Kind.CREATE, vmid, pve.node, (("import", volid),)),
        Action(Kind.CONVERT, vmid, pve.node),
    ]
    return actions


def plan_template(
    cluster: Cluster, source: Source, facts: TemplateFacts, explicit: bool = False
) -> Plan:
    """One row, named ROW; its notes are the commands to run by hand when we must refuse.
    `explicit`: the user named the image, so a template of another image is a conflict."""
    existing = _existing(cluster, source, facts, explicit)
    if existing is not None and (existing.problems or existing.is_noop):
        return existing
    row = existing.vms[0] if existing else _row(cluster, "create")
    steps = row.actions or tuple(_build_actions(cluster, source, facts))
    builds = any(a.kind in (Kind.DOWNLOAD, Kind.CREATE) for a in steps)
    problems = _place_problems(cluster, facts) if builds else []
    manual: list[str] = []
    if builds and facts.major_minor < MIN_VERSION:
        problems.insert(
            0,
            f"Proxmox VE {facts.version} cannot download a disk image through the API"
            " (download-url with content 'import' needs 8.4 or newer); run these commands"
            f" on the Proxmox host ({cluster.proxmox.node}) as root instead:",
        )
        manual += manual_commands(cluster, source)
    # The manual route runs as root on the host, so the token's privileges matter no more.
    missing = [] if manual else missing_privileges(cluster, facts, steps)
    if missing:
        problems.append(
            f"the API token {cluster.proxmox.token_id} lacks: {', '.join(missing)};"
            " grant them on the Proxmox host with:"
        )
        manual += grant_commands(cluster, facts, missing)
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


# -- privileges -------------------------------------------------------------------------------
def _network_ok(cluster: Cluster, perms: dict[str, dict[str, int]]) -> bool:
    """download-url lets the host fetch URLs, so PVE wants Sys.AccessNetwork on the node
    (or, the old way, both Sys.Audit and Sys.Modify on /)."""
    has = planning.has_privilege
    node_path = f"/nodes/{cluster.proxmox.node}"
    return has(perms, node_path, "Sys.AccessNetwork") or (
        has(perms, "/", "Sys.Audit") and has(perms, "/", "Sys.Modify")
    )


def required_privileges(cluster: Cluster, steps: Sequence[Action]) -> list[tuple[str, str]]:
    pve = cluster.proxmox
    kinds = {s.kind for s in steps}
    vm_path = f"/vms/{pve.template_vmid}"
    needed = [(f"/storage/{pve.seed_storage}", "Datastore.Audit")]
    if Kind.DOWNLOAD in kinds:
        needed.append((f"/storage/{pve.seed_storage}", "Datastore.AllocateTemplate"))
    if Kind.CREATE in kinds:
        needed += [(vm_path, p) for p in CREATE_PRIVS]
        needed.append((f"/storage/{pve.storage}", "Datastore.AllocateSpace"))
        needed.append((f"/sdn/zones/localnetwork/{pve.bridge}", "SDN.Use"))
    if kinds & {Kind.CONVERT, Kind.DELETE}:
        needed.append((vm_path, "VM.Allocate"))
    return list(dict.fromkeys(needed))


def missing_privileges(
    cluster: Cluster, facts: TemplateFacts, steps: Sequence[Action]
) -> list[str]:
    perms = facts.permissions
    missing = [
        f"{priv} on {path}"
        for path, priv in required_privileges(cluster, steps)
        if not planning.has_privilege(perms, path, priv)
    ]
    if any(s.kind == Kind.DOWNLOAD for s in steps) and not _network_ok(cluster, perms):
        missing.append(f"Sys.AccessNetwork on /nodes/{cluster.proxmox.node}")
    return missing


def grant_commands(cluster: Cluster, facts: TemplateFacts, missing: list[str]) -> list[str]:
    pve = cluster.proxmox
    commands: list[str] = []
    if any(not m.startswith("Sys.AccessNetwork") for m in missing):
        commands += planning.pveum_commands(cluster, facts.major_minor)
    if any(m.startswith("Sys.AccessNetwork") for m in missing):
        commands += [
            f'pveum role add {NETWORK_ROLE} --privs "Sys.AccessNetwork"',
            f"pveum acl modify /nodes/{pve.node} --tokens '{pve.token_id}' --roles {NETWORK_ROLE}"
            "   # only needed while downloading; remove it afterwards with pveum acl delete",
        ]
    return commands


def manual_commands(cluster: Cluster, source: Source) -> list[str]:
    """What `template` does, as `qm` commands on the host, for PVE older than 8.4."""
    name = source.url.rsplit("/", 1)[-1].split("?", 1)[0]
    local = f"/var/tmp/{name}"
    commands = [f"cd /var/tmp && wget -O {shlex.quote(name)} {shlex.quote(source.url)}"]
    check = source.checksum
    if check and check.digest:
        commands.append(f"echo '{check.digest}  {name}' | {check.algorithm}sum -c -")
    elif check and check.sums_url:
        commands.append(
            f"wget -qO- {check.sums_url} | grep -E '[ *]{check.sums_name}$'"
            f" | {check.algorithm}sum -c -"
        )
    params = create_params(cluster, source, local)
    vmid = params.pop("vmid")
    args = " ".join(f"--{k} {shlex.quote(v)}" for k, v in params.items())
    commands += [f"qm create {vmid} {args}", f"qm template {vmid}", f"rm {local}"]
    return commands


# -- apply: the template as one of the engine's jobs ------------------------------------------
TemplateFailed = apply.StepFailed  # one engine, one failure


@dataclass(frozen=True)
class TemplateJob:
    client: Client
    cluster: Cluster
    source: Source
    progress: apply.Progress
    fetch: Fetch = fetch_https
    explicit: bool = False
    # A delete that failed on a half-made VM already gone is moot: the fresh plan says so.
    rechecked: ClassVar[frozenset[str]] = frozenset({Kind.DELETE})

    @property
    def executors(self) -> Mapping[str, apply.Executor]:
        return EXECUTORS

    def label(self, vm_plan: VMPlan) -> str:
        return f"template {vm_plan.vmid}"

    def refusal(self, vm: VMFacts) -> str | None:
        """Only a half-made template of ours is ever deleted."""
        if is_ours(vm) and not vm.is_template:
            return None
        return f"VM {vm.vmid} changed under us; not deleting it"

    def replan(self, vm_plan: VMPlan) -> list[Action]:
        """A fresh plan; a VM still locked by the create task whose answer we lost is
        waited for (the engine retries a transient error)."""
        facts = observe_template(self.client, self.cluster)
        again = plan_template(self.cluster, self.source, facts, self.explicit)
        if facts.vm is not None and facts.vm.lock:
            raise PveError("; ".join(again.problems), transient=True)
        if again.problems:
            raise TemplateFailed("; ".join(again.problems))
        return list(again.actions)


def _create(job: TemplateJob, action: Action) -> None:
    params = create_params(job.cluster, job.source, action.param("import"))
    job.client.task("POST", f"nodes/{action.pve_node}/qemu", **params)


def _download(job: TemplateJob, action: Action) -> None:
    """The image onto the seed storage; a slow line may take many minutes (_wait_long)."""
    client, source, pve = job.client, job.source, job.cluster.proxmox
    params = {"url": source.url, "content": "import", "filename": source.filename}
    if source.checksum:
        algorithm, digest = resolve(source.checksum, job.fetch)
        params.update({"checksum": digest, "checksum-algorithm": algorithm})
    upid = client.call(
        "POST", f"nodes/{action.pve_node}/storage/{pve.seed_storage}/download-url", **params
    )
    try:
        _wait_long(client, str(upid))
    except PveError as exc:
        text = str(exc).removeprefix("task failed: ")
        hint = "check that the Proxmox host can reach the URL"
        if "checksum" in text.lower():
            hint = (
                "the downloaded image does not match its checksum, so Proxmox discarded it;"
                " if the image was republished meanwhile, run homelab-gen template again,"
                " otherwise check --checksum"
            )
        raise TemplateFailed(f"Proxmox could not download {source.url}: {text}", hint) from exc


def _wait_long(client: Client, upid: str, rounds: int = 4) -> None:
    """A cloud image on a slow home line can outlast one task timeout; keep waiting."""
    for attempt in range(rounds):
        try:
            client.wait(upid)
            return
        except PveError as exc:
            if "still running" not in str(exc) or attempt == rounds - 1:
                raise


EXECUTORS: Mapping[str, apply.Executor] = {
    Kind.DOWNLOAD: _download,
    Kind.DELETE: apply.delete_vm,  # with TemplateJob.refusal as its ownership check
    Kind.CREATE: _create,
    Kind.CONVERT: apply.vm_task("POST", "/template"),
}


def apply_template(
    client: Client,
    cluster: Cluster,
    source: Source,
    plan: Plan,
    *,
    progress: apply.Progress = lambda event: None,
    fetch: Fetch = fetch_https,
    explicit: bool = False,
) -> tuple[str, ...]:
    """Run the plan through the engine: after a transient error it looks again and
    re-plans, so a step that did take effect (its answer lost to a reset) is not made twice."""
    if plan.problems:
        raise TemplateFailed("pre-flight found problems; nothing was changed")
    job = TemplateJob(client, cluster, source, progress, fetch, explicit)
    return tuple(kind for row in plan.vms for kind in apply.run_vm(job, row).steps)
