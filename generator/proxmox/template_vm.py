"""What the template VM is: its create call, how homelab-gen recognises one it made, and
the same recipe as `qm` commands for a host too old to take it through the API.
"""

from __future__ import annotations

import shlex

from generator import naming
from generator.config.model import Cluster
from generator.proxmox.images import Source
from generator.proxmox.observe import VMFacts
from generator.proxmox.pveconfig import drive_slot
from generator.proxmox.template_marks import (
    DESCRIPTION_HEAD,
    TEMPLATE_TAG,
    copy_marks,
    copy_of,
)

Marks = tuple[int, str] | None  # (main template's VMID, host) for a copy; None for the main one
# Proxmox's default CPU for new VMs since 8.0: runs on any x86-64-v2 host with AES-NI, so
# clones live-migrate across a mixed cluster; `host` is one `qm set` away if wanted.
CPU = "x86-64-v2-AES"


def image_volid(cluster: Cluster, source: Source) -> str:
    return f"{cluster.proxmox.seed_storage}:import/{source.filename}"


def description(cluster: Cluster, source: Source, marks: Marks = None) -> str:
    copy = f" {copy_marks(*marks)}" if marks else ""
    return (
        f"{DESCRIPTION_HEAD} image={source.key} source={source.url}{copy}\n"
        "Made by homelab-gen template; homelab-gen boot clones it. To rebuild it, destroy it"
        " and run homelab-gen template again."
    )


def is_ours(vm: VMFacts, marks: Marks = None) -> bool:
    """Made by homelab-gen as this very template: the main one, or the copy for a host."""
    made = naming.TOOL_TAG in vm.tags and vm.description.startswith(DESCRIPTION_HEAD)
    return made and copy_of(vm.description) == marks


def source_of(vm: VMFacts) -> str | None:
    first = vm.description.splitlines()[0] if vm.description else ""
    found = [p.split("=", 1)[1] for p in first.split() if p.startswith("source=")]
    return found[0] if found else None


def image_of(vm: VMFacts) -> str | None:
    first = vm.description.splitlines()[0] if vm.description else ""
    found = [p.split("=", 1)[1] for p in first.split() if p.startswith("image=")]
    return found[0] if found else None


def create_params(
    cluster: Cluster, source: Source, import_from: str, marks: Marks = None
) -> dict[str, str]:
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
        drive_slot(source.machine, {"scsi0": boot_disk}): f"{pve.storage}:cloudinit",
        "boot": "order=scsi0",
        "net0": f"virtio,bridge={pve.bridge}",
        "tags": f"{naming.TOOL_TAG};{TEMPLATE_TAG};{tag}",
        "description": description(cluster, source, marks),
    }


def manual_commands(cluster: Cluster, source: Source, marks: Marks = None) -> list[str]:
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
    params = create_params(cluster, source, local, marks)
    vmid = params.pop("vmid")
    args = " ".join(f"--{k} {shlex.quote(v)}" for k, v in params.items())
    commands += [f"qm create {vmid} {args}", f"qm template {vmid}", f"rm {local}"]
    return commands
