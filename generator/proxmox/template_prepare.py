"""`homelab-gen template --prepare`: the template VM boots once, before it is converted, with
a preparation seed that installs every node's packages and puts the pinned K3s in place (see
render/prepared.py), then cleans cloud-init and powers itself off. All through the API: the
seed goes up as a NoCloud ISO into the cloud-init drive's slot, the VM is started, its
status is polled until it stops, the cloud-init drive comes back and the description records
the K3s version baked in. Nodes cloned from it install that version with no download.

Resumable like the rest of `template`: the description carries `preparing=<version>` from
the moment the seed is attached, so a run killed half-way waits for (or starts again) the
preparation boot, which fetches nothing it already has.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from generator.config.model import Cluster
from generator.errors import HomelabError
from generator.proxmox import apply
from generator.proxmox.actions import Action, Kind
from generator.proxmox.observe import VMFacts
from generator.proxmox.seediso import build_seed_iso, seed_digest
from generator.proxmox.template_marks import PREPARED, PREPARING, mark, with_mark

ISO_PREFIX = "homelab-gen-prepare-"
# Installing packages and fetching K3s's binary and images on a slow line, under a slow disk.
TIMEOUT = 30 * 60.0
POLL = 5.0


@dataclass(frozen=True)
class Preparation:
    """What `--prepare` bakes in: the K3s version and the seed rendered for it."""

    version: str
    seed: Mapping[str, str] = field(hash=False)
    timeout: float = TIMEOUT
    poll: float = POLL

    def iso_name(self, vmid: int) -> str:
        return f"{ISO_PREFIX}{vmid}-{seed_digest(self.seed)}.iso"


def prepared_version(vm: VMFacts | None) -> str | None:
    return mark(vm.description, PREPARED) if vm is not None else None


def _cloudinit_slot(config: Mapping[str, str]) -> str | None:
    for key, value in sorted(config.items()):
        volume = str(value).split(",", 1)[0]
        if re.search(r"(^|[:/])(vm-\d+-)?cloudinit(\.\w+)?$", volume):
            return key
    return None


def _seed_slot(config: Mapping[str, str]) -> tuple[str, str] | None:
    """(slot, volid) of the preparation seed CD, while it is attached."""
    for key, value in sorted(config.items()):
        volume = str(value).split(",", 1)[0]
        if f"/{ISO_PREFIX}" in volume:
            return key, volume
    return None


# -- plan (pure) --------------------------------------------------------------------------------
def fresh_steps(cluster: Cluster, create: Mapping[str, str], prep: Preparation) -> list[Action]:
    """After CREATE of a VM whose create parameters are `create`, before CONVERT."""
    pve = cluster.proxmox
    vmid, node = pve.template_vmid, pve.node
    slot = _cloudinit_slot(create)
    assert slot is not None, "the template is always created with a cloud-init drive"
    volid = f"{pve.seed_storage}:iso/{prep.iso_name(vmid)}"
    attach = (("k3s", prep.version), ("slot", slot), ("volid", volid))
    return [
        Action(Kind.PREPARE_SEED, vmid, node, attach),
        Action(Kind.START, vmid, node),
        Action(Kind.WAIT_STOPPED, vmid, node),
        Action(Kind.RECORD, vmid, node, (("k3s", prep.version), ("slot", slot))),
    ]


def resumed_steps(cluster: Cluster, vm: VMFacts, prep: Preparation | None) -> list[Action] | None:
    """Steps before CONVERT for a half-made template of ours with its disk; None when it is
    to be converted as it is (not prepared, and not asked to be)."""
    if mark(vm.description, PREPARED):
        return []
    version = mark(vm.description, PREPARING)
    if version is None:
        if prep is None:
            return None
        return fresh_steps(cluster, vm.config, prep)
    attached = _seed_slot(vm.config)
    slot = attached[0] if attached else _cloudinit_slot(vm.config)
    if slot is None:
        return None
    record = Action(Kind.RECORD, vm.vmid, vm.node, (("k3s", version), ("slot", slot)))
    wait = Action(Kind.WAIT_STOPPED, vm.vmid, vm.node)
    if vm.status == "running":
        return [wait, record]
    # Stopped: never started, or done and its RECORD lost. Booting again is safe: the seed
    # finds everything in place and powers off at once.
    return [Action(Kind.START, vm.vmid, vm.node), wait, record]


def version_note(cluster: Cluster, vm: VMFacts | None, asked: bool) -> str | None:
    """When the template does not hold cluster.k3s_version: nodes download K3s."""
    if vm is None or not vm.is_template:
        return None
    baked, wanted = prepared_version(vm), cluster.cluster.k3s_version
    if baked == wanted or (baked is None and not asked):
        return None
    what = f"is prepared with K3s {baked}" if baked else "is not prepared"
    return (
        f"template {vm.vmid} {what}, not cluster.k3s_version {wanted}: nodes cloned from it"
        " download K3s at first boot. A template is never re-made in place (linked clones"
        f" use its disk); to prepare one for {wanted}, destroy it once no linked clone is"
        f" left (qm destroy {vm.vmid}) or pick another proxmox.template_vmid, then run"
        " homelab-gen template --prepare"
    )


# -- apply --------------------------------------------------------------------------------------
def _path(action: Action) -> str:
    return f"nodes/{action.pve_node}/qemu/{action.vmid}"


def _description(job: Any, action: Action) -> str:
    config = job.client.get(f"{_path(action)}/config") or {}
    return str(config.get("description", ""))


def _upload(job: Any, action: Action, prep: Preparation) -> None:
    volid = action.param("volid")
    storage, name = volid.split(":", 1)[0], prep.iso_name(action.vmid)
    there = job.client.get(f"nodes/{action.pve_node}/storage/{storage}/content", content="iso")
    if any(str(v.get("volid")) == volid for v in there or []):
        return
    data = build_seed_iso(prep.seed)
    handle = io.BytesIO(data)
    handle.name = name
    # pve-http-server takes the form fields in this order only (see seeds.upload_iso).
    job.client.task(
        "POST",
        f"nodes/{action.pve_node}/storage/{storage}/upload",
        content="iso",
        **{"checksum-algorithm": "sha256", "checksum": hashlib.sha256(data).hexdigest()},
        filename=handle,
    )


def _attach(job: Any, action: Action) -> None:
    prep: Preparation | None = job.preparation
    if prep is None or prep.version != action.param("k3s"):
        raise apply.StepFailed(
            f"template {action.vmid}: the preparation seed for K3s {action.param('k3s')}"
            " is not at hand",
            "run homelab-gen template --prepare",
        )
    _upload(job, action, prep)
    description = with_mark(_description(job, action), PREPARING, prep.version)
    slot = {action.param("slot"): f"{action.param('volid')},media=cdrom"}
    job.client.task("POST", f"{_path(action)}/config", description=description, **slot)


def _wait_stopped(job: Any, action: Action) -> None:
    prep: Preparation | None = job.preparation
    timeout, poll = (prep.timeout, prep.poll) if prep else (TIMEOUT, POLL)
    deadline = time.monotonic() + timeout
    while True:
        status = job.client.get(f"{_path(action)}/status/current") or {}
        if status.get("status") == "stopped":
            return
        if time.monotonic() >= deadline:
            raise HomelabError(
                f"template {action.vmid}: still running {timeout / 60:.0f} min after its"
                " preparation boot started; the preparation powers the VM off once done,"
                " so it failed or is still downloading",
                f"look at its console (qm terminal {action.vmid}) or, through the guest"
                " agent, /var/log/cloud-init-output.log; homelab-gen template --prepare"
                " goes on waiting where this stopped",
            )
        time.sleep(poll)


def _record(job: Any, action: Action) -> None:
    config = job.client.get(f"{_path(action)}/config") or {}
    seed = _seed_slot({k: str(v) for k, v in config.items()})
    description = with_mark(str(config.get("description", "")), PREPARING, None)
    description = with_mark(description, PREPARED, action.param("k3s"))
    slot_name = action.param("slot")
    slot = {slot_name: f"{job.cluster.proxmox.storage}:cloudinit"}
    if _cloudinit_slot({slot_name: str(config.get(slot_name, ""))}):
        slot = {}  # back already: qemu-server refuses a second cloud-init drive
    job.client.task("POST", f"{_path(action)}/config", description=description, **slot)
    if seed is not None:
        volid = seed[1]
        store = volid.split(":", 1)[0]
        job.client.task("DELETE", f"nodes/{action.pve_node}/storage/{store}/content/{volid}")


EXECUTORS: Mapping[str, apply.Executor] = {
    Kind.PREPARE_SEED: _attach,
    Kind.START: apply.vm_task("POST", "/status/start"),
    Kind.WAIT_STOPPED: _wait_stopped,
    Kind.RECORD: _record,
}
