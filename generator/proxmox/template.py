"""`homelab-gen template`: the cloud-image template VM, made through the API (PVE 8.4+).

observe -> plan (data) -> apply, like boot. The plan has at most four steps: download the
image onto the seed storage (`download-url`, content `import`), delete a half-made template
of ours, create the VM importing the image (`import-from`), convert it to a template.
Anything else at the template's VMID is left alone.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from generator import naming
from generator.errors import HomelabError
from generator.model import Cluster
from generator.proxmox import plan as planning
from generator.proxmox.client import Client, PveError
from generator.proxmox.images import Fetch, Source, fetch_https, resolve
from generator.proxmox.observe import NodeFacts, VMFacts, major_minor, read_node, read_vm

MIN_VERSION = (8, 4)  # download-url with content=import
DESCRIPTION_HEAD = "homelab-gen: template"
# Proxmox's default CPU for new VMs since 8.0: runs on any x86-64-v2 host with AES-NI, so
# clones live-migrate across a mixed cluster; `host` is one `qm set` away if wanted.
CPU = "x86-64-v2-AES"
CREATE_PRIVS = ("VM.Allocate", "VM.Audit", *planning.VM_CONFIG_PRIVS)
NETWORK_ROLE = "HomelabGenDownload"


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


@dataclass(frozen=True)
class Step:
    kind: str  # download, delete, create, convert
    params: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        shown = dict(self.params)
        if self.kind == "download":
            return f"download {shown['url']} -> {shown['volid']} ({shown['checksum']})"
        if self.kind == "create":
            return f"create VM from {shown['import']}"
        return self.kind


@dataclass(frozen=True)
class TemplatePlan:
    vmid: int
    steps: tuple[Step, ...]
    reason: str
    problems: tuple[str, ...] = ()
    manual: tuple[str, ...] = ()  # commands to run by hand instead, when we must refuse


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


def _existing(
    cluster: Cluster, source: Source, facts: TemplateFacts, explicit: bool
) -> TemplatePlan | None:
    """The plan when something already sits at the VMID, or None to build from scratch."""
    vm, vmid = facts.vm, cluster.proxmox.template_vmid
    if vm is None:
        return None
    if vm.lock:
        return TemplatePlan(
            vmid, (), "locked", (f"VM {vmid} is locked ({vm.lock}); wait for its task to end",)
        )
    if vm.is_template:
        problems = _usable_problems(cluster, facts)
        if problems:
            return TemplatePlan(vmid, (), "unusable", (*problems, _taken_hint(vmid)))
        if is_ours(vm) and explicit and image_of(vm) not in (None, source.key):
            return TemplatePlan(
                vmid, (), "other image",
                (f"template {vmid} holds {image_of(vm)}, not {source.key}; {_taken_hint(vmid)}",),
            )  # fmt: skip
        made = f"made by homelab-gen from {image_of(vm)}" if is_ours(vm) else "made by hand"
        return TemplatePlan(vmid, (), f"template {vmid} exists ({made}) and is usable")
    if not is_ours(vm):
        return TemplatePlan(
            vmid, (), "taken",
            (f"VMID {vmid} (proxmox.template_vmid) is taken by VM '{vm.name or '?'}', which is"
             " not a template made by homelab-gen; nothing was touched. Pick a free VMID for"
             " proxmox.template_vmid in cluster.yaml",),
        )  # fmt: skip
    if vm.boot_disk is not None:
        return TemplatePlan(vmid, (Step("convert"),), "finish: convert the half-made VM")
    return None  # ours, half-made without its disk: delete and build again


def _taken_hint(vmid: int) -> str:
    return (
        f"nothing was touched; destroy VM {vmid} on the Proxmox host (qm destroy {vmid}) to"
        " rebuild it, or pick another proxmox.template_vmid"
    )


def _build_steps(cluster: Cluster, source: Source, facts: TemplateFacts) -> tuple[Step, ...]:
    steps: list[Step] = []
    volid = image_volid(cluster, source)
    if volid not in facts.images:
        rule = source.checksum.describe() if source.checksum else "NO checksum"
        steps.append(Step("download", (("url", source.url), ("volid", volid), ("checksum", rule))))
    if facts.vm is not None:
        steps.append(Step("delete"))
    steps += [Step("create", (("import", volid),)), Step("convert")]
    return tuple(steps)


def plan_template(
    cluster: Cluster, source: Source, facts: TemplateFacts, explicit: bool = False
) -> TemplatePlan:
    """`explicit`: the user named the image, so a template of another image is a conflict."""
    vmid = cluster.proxmox.template_vmid
    existing = _existing(cluster, source, facts, explicit)
    if existing is not None and (existing.problems or not existing.steps):
        return existing
    steps = existing.steps if existing else _build_steps(cluster, source, facts)
    reason = existing.reason if existing else "create"
    builds = any(s.kind in ("download", "create") for s in steps)
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
    return TemplatePlan(vmid, steps, reason, tuple(problems), tuple(manual))


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


def required_privileges(cluster: Cluster, steps: tuple[Step, ...]) -> list[tuple[str, str]]:
    pve = cluster.proxmox
    kinds = {s.kind for s in steps}
    vm_path = f"/vms/{pve.template_vmid}"
    needed = [(f"/storage/{pve.seed_storage}", "Datastore.Audit")]
    if "download" in kinds:
        needed.append((f"/storage/{pve.seed_storage}", "Datastore.AllocateTemplate"))
    if "create" in kinds:
        needed += [(vm_path, p) for p in CREATE_PRIVS]
        needed.append((f"/storage/{pve.storage}", "Datastore.AllocateSpace"))
        needed.append((f"/sdn/zones/localnetwork/{pve.bridge}", "SDN.Use"))
    if kinds & {"convert", "delete"}:
        needed.append((vm_path, "VM.Allocate"))
    return list(dict.fromkeys(needed))


def missing_privileges(
    cluster: Cluster, facts: TemplateFacts, steps: tuple[Step, ...]
) -> list[str]:
    perms = facts.permissions
    missing = [
        f"{priv} on {path}"
        for path, priv in required_privileges(cluster, steps)
        if not planning.has_privilege(perms, path, priv)
    ]
    if any(s.kind == "download" for s in steps) and not _network_ok(cluster, perms):
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


# -- apply ------------------------------------------------------------------------------------
Progress = Callable[[str, str], None]  # (step, state)


class TemplateFailed(HomelabError):
    pass


def _execute(client: Client, cluster: Cluster, source: Source, step: Step, fetch: Fetch) -> None:
    pve = cluster.proxmox
    vm_path = f"nodes/{pve.node}/qemu/{pve.template_vmid}"
    if step.kind == "download":
        _download(client, cluster, source, fetch)
    elif step.kind == "delete":
        facts = _find_vm(client, pve.template_vmid)
        if facts is not None and (facts.is_template or not is_ours(facts)):
            raise TemplateFailed(f"VM {pve.template_vmid} changed under us; not deleting it")
        if facts is not None:
            client.task(
                "DELETE", f"nodes/{facts.node}/qemu/{facts.vmid}",
                purge=1, **{"destroy-unreferenced-disks": 1},
            )  # fmt: skip
    elif step.kind == "create":
        params = create_params(cluster, source, dict(step.params)["import"])
        client.task("POST", f"nodes/{pve.node}/qemu", **params)
    elif step.kind == "convert":
        client.task("POST", f"{vm_path}/template")
    else:
        raise AssertionError(f"unknown step {step.kind}")


def _download(client: Client, cluster: Cluster, source: Source, fetch: Fetch) -> None:
    pve = cluster.proxmox
    params = {"url": source.url, "content": "import", "filename": source.filename}
    if source.checksum:
        algorithm, digest = resolve(source.checksum, fetch)
        params.update({"checksum": digest, "checksum-algorithm": algorithm})
    upid = client.call(
        "POST", f"nodes/{pve.node}/storage/{pve.seed_storage}/download-url", **params
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


def _replan(client: Client, cluster: Cluster, source: Source, explicit: bool) -> TemplatePlan:
    """A fresh plan; a VM still locked by the create task whose answer we lost is waited for."""
    for attempt in range(client.retry.attempts):
        again = plan_template(cluster, source, observe_template(client, cluster), explicit)
        if again.reason != "locked":
            break
        time.sleep(client.retry.delay(attempt))
    if again.problems:
        raise TemplateFailed("; ".join(again.problems))
    return again


def _wait_long(client: Client, upid: str, rounds: int = 4) -> None:
    """A cloud image on a slow home line can outlast one task timeout; keep waiting."""
    for attempt in range(rounds):
        try:
            client.wait(upid)
            return
        except PveError as exc:
            if "still running" not in str(exc) or attempt == rounds - 1:
                raise


def apply_template(
    client: Client,
    cluster: Cluster,
    source: Source,
    plan: TemplatePlan,
    *,
    progress: Progress = lambda step, state: None,
    fetch: Fetch = fetch_https,
    explicit: bool = False,
) -> tuple[str, ...]:
    """Run the steps; after a transient error look again and re-plan, so a step that did take
    effect (its answer lost to a reset) is not made twice."""
    if plan.problems:
        raise TemplateFailed("pre-flight found problems; nothing was changed")
    steps, done, failures = list(plan.steps), [], 0
    while steps:
        step = steps[0]
        progress(step.kind, "running")
        try:
            _execute(client, cluster, source, step, fetch)
        except PveError as exc:
            failures += 1
            if not exc.transient or failures >= client.retry.attempts:
                progress(step.kind, "failed")
                raise TemplateFailed(f"template {plan.vmid}: {step.kind} failed: {exc}") from exc
            progress(step.kind, "retry")
            time.sleep(client.retry.delay(failures - 1))
            steps = list(_replan(client, cluster, source, explicit).steps)
            continue
        progress(step.kind, "done")
        done.append(step.kind)
        steps.pop(0)
    return tuple(done)
