"""The fake PVE's routes for `homelab-gen template`: download-url, VM create, template.

Use them beside the base routes, with a table of what "the internet" serves:

    internet = {url: RemoteImage(data)}
    FakePVE(state, tls, routes=ROUTES + template_routes(internet))

Rules modelled on PVE 8.4/9.x: download-url needs the storage to allow the content type,
an image extension for `import`, both checksum parameters or neither, and
Datastore.AllocateTemplate plus network access (Sys.AccessNetwork on the node, or Sys.Audit
and Sys.Modify on /); its task fails with "checksum mismatch" when the digest is wrong.
VM create takes `STORAGE:0,import-from=VOLID` and `STORAGE:cloudinit` drives and holds
`lock: create` while its task runs; `template` turns vm- disks into base- disks.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.pve import schema
from tests.fakes.pve.routes import (
    ROUTES,
    _node,
    _start,
    check_lock,
    drive_is_cdrom,
    in_task,
    run_task,
    split_list,
    with_mac,
)
from tests.fakes.pve.server import ApiError, FakePVE, Request, Route, has_privilege
from tests.fakes.pve.state import TEMPLATE_VMID, PveState, Vm, default_state
from tests.fakes.pve.storage_routes import download_url
from tests.fakes.tls import make_tls

DISK_KEYS = re.compile(r"^(scsi|virtio|sata|ide)\d+$")


@dataclass
class RemoteImage:
    data: bytes
    virtual_size: str = "3G"  # what `qemu-img info` would say; becomes the disk's size=


def sha(data: bytes, algorithm: str = "sha512") -> str:
    return hashlib.new(algorithm, data).hexdigest()


def _allowed(perms: dict[str, dict[str, int]], path: str, priv: str) -> bool:
    return has_privilege(perms, path, priv)


def _check_download_permissions(pve: FakePVE, req: Request) -> None:
    perms, node = pve.state.permissions, req.params["node"]
    storage_path = f"/storage/{req.params['storage']}"
    if not _allowed(perms, storage_path, "Datastore.AllocateTemplate"):
        raise ApiError(403, f"Permission check failed ({storage_path}, Datastore.AllocateTemplate)")
    old_way = _allowed(perms, "/", "Sys.Audit") and _allowed(perms, "/", "Sys.Modify")
    if not (old_way or _allowed(perms, f"/nodes/{node}", "Sys.AccessNetwork")):
        raise ApiError(403, f"Permission check failed (/nodes/{node}, Sys.AccessNetwork)")


def _download_url(internet: dict[str, RemoteImage]) -> Any:
    # The rules are ported in storage_routes.download_url (pve-storage Status.pm,
    # download_url; pve-common Tools.pm, download_file_from_url).
    def handler(pve: FakePVE, req: Request) -> Any:
        _check_download_permissions(pve, req)
        return download_url(pve, req, internet)

    return handler


def _options(value: str) -> tuple[str, dict[str, str]]:
    head, *rest = value.split(",")
    file = head.split("=", 1)[1] if head.startswith(("file=", "volume=")) else head
    return file, dict(part.split("=", 1) for part in rest if "=" in part)


def _import_source(pve: FakePVE, node: str, volid: str) -> dict[str, Any]:
    if volid.startswith("/"):
        raise ApiError(403, "Permission check failed (only root may import from a path)")
    storage = volid.split(":", 1)[0]
    store = pve.state.nodes[node].storages.get(storage)
    volume = store.volumes.get(volid) if store else None
    if volume is None or volume["content"] not in ("import", "images"):
        raise ApiError(500, f"volume '{volid}' does not exist")
    return volume


def _new_disks(pve: FakePVE, req: Request) -> dict[str, str]:
    """Each drive parameter as the config file will hold it once the create task is done."""
    node, vmid = req.params["node"], req.int("vmid")
    out: dict[str, str] = {}
    count = 0
    for key, value in req.params.items():
        if not DISK_KEYS.match(key):
            continue
        file, opts = _options(value)
        storage, _, what = file.partition(":")
        target = pve.state.nodes[node].storages.get(storage)
        if target is None or "images" not in target.content:
            raise ApiError(500, f"storage '{storage}' does not support vm images")
        if what == "cloudinit":
            out[key] = f"{storage}:vm-{vmid}-cloudinit,media=cdrom"
            continue
        if "import-from" in opts:
            if what != "0":
                raise ApiError(
                    400, "Parameter verification failed.", {key: "import-from needs STORAGE:0"}
                )
            size = _import_source(pve, node, opts.pop("import-from"))["virtual_size"]
        elif re.fullmatch(r"\d+", what):
            size = f"{what}G"
        else:
            out[key] = value
            continue
        rest = "".join(f",{k}={v}" for k, v in opts.items() if k != "size")
        out[key] = f"{storage}:vm-{vmid}-disk-{count}{rest},size={size}"
        count += 1
    return out


# create_vm's parameters that are not written to the config (qemu-server API2/Qemu.pm,
# create_vm: extract_param calls).
_CREATE_ONLY = {"node", "vmid", "archive", "bwlimit", "force", "pool", "start", "ha-managed"}
_CREATE_ONLY |= {"storage", "unique", "live-restore", "import-working-storage"}


def _created_config(pve: FakePVE, req: Request, disks: dict[str, str]) -> dict[str, Any]:
    """qemu-server API2/Qemu.pm create_vm, $createfn: the parameters with their disks made,
    a default boot order, a fresh smbios1 uuid and vmgenid, unique tags; no lock."""
    config: dict[str, Any] = {k: v for k, v in req.params.items() if k not in _CREATE_ONLY}
    config.update(disks)
    for key, value in list(config.items()):
        if key.startswith("net"):
            # qemu-server QemuServer/Network.pm, add_random_macs
            config[key] = with_mac(value)
    if not config.get("boot"):
        bootable = sorted(k for k in config if DISK_KEYS.match(k) or k.startswith("net"))
        config["boot"] = f"order={';'.join(bootable)}" if bootable else ""
    config.setdefault("smbios1", f"uuid={uuid.uuid4()}")
    if config.get("vmgenid", "1") == "1":
        config["vmgenid"] = str(uuid.uuid4())
    if "tags" in config:
        config["tags"] = ";".join(sorted(set(split_list(config["tags"]))))
    return config


def create_vm(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm create_vm: create_and_lock_config writes `lock: create`
    before the worker (pve-cluster Cluster.pm check_vmid_unused: "VM <id> already exists
    on node '<node>'", prefixed "unable to create VM <id> -"); the worker (qmcreate)
    writes the final config without the lock, or removes the config and fails
    "unable to create VM <id> - <error>". A missing bridge is not checked here: it fails
    the start (routes.py, _bridges_exist). With start=1 a failed start is only a warning."""
    node, vmid = req.params["node"], req.int("vmid")
    _node(pve, req)
    with pve.lock:
        holder = pve.state.vms.get(vmid)
        if holder is not None:
            raise ApiError(
                500,
                f"unable to create VM {vmid} - VM {vmid} already exists on node '{holder.node}'",
            )
        disks = _new_disks(pve, req)
        vm = Vm(vmid, node, {"lock": "create"})
        pve.state.vms[vmid] = vm

    def body(warnings: list[str]) -> None:
        time.sleep(pve.state.latency.clone)
        with pve.lock:
            vm.config = _created_config(pve, req, disks)
            if not req.flag("start"):
                return
            try:
                start_now = Request("POST", "", "", {"node": node, "vmid": str(vmid)})
                _start(pve, start_now)
            except ApiError as exc:
                warnings.append(exc.message)

    def undo() -> None:
        if pve.state.vms.get(vmid) is vm:
            del pve.state.vms[vmid]

    return run_task(pve, req, node, "qmcreate", str(vmid), body, on_fail=undo)


def _template(pve: FakePVE, req: Request) -> Vm:
    """qemu-server API2/Qemu.pm template, $load_and_check (before and in the worker)."""
    vm = pve.vm(req.params["node"], req.int("vmid"))
    check_lock(vm)
    if vm.is_template and not req.params.get("disk"):
        raise ApiError(500, "you can't convert a template to a template")
    if vm.status == "running":
        raise ApiError(500, "you can't convert a VM to template if VM is running")
    return vm


def make_template(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm template: no lock key is set; the worker (qmtemplate) sets
    template: 1 and QemuServer.pm template_create turns each disk (all, or `disk`; not
    cd-roms or cloud-init drives) into a base volume."""
    with pve.lock:
        _template(pve, req)

    def body(warnings: list[str]) -> None:
        time.sleep(pve.state.latency.config)
        with pve.lock:
            vm = in_task(lambda: _template(pve, req))
            vm.config["template"] = 1
            only = req.params.get("disk")
            for key, value in list(vm.config.items()):
                if not DISK_KEYS.match(key) or drive_is_cdrom(str(value)):
                    continue
                if only is None or key == only:
                    vm.config[key] = re.sub(r":vm-(\d+)-disk", r":base-\1-disk", str(value))

    return run_task(pve, req, req.params["node"], "qmtemplate", req.params["vmid"], body)


def template_routes(internet: dict[str, RemoteImage]) -> list[Route]:
    return [
        ("POST", "/nodes/{node}/storage/{storage}/download-url", _download_url(internet)),
        ("POST", "/nodes/{node}/qemu", create_vm),
        ("POST", "/nodes/{node}/qemu/{vmid}/template", make_template),
    ]


def template_state(token_secret: str) -> PveState:
    """The default world without its template, with the download privilege granted."""
    state = default_state(token_secret)
    del state.vms[TEMPLATE_VMID]
    state.permissions["/nodes"] = {**state.permissions.get("/nodes", {}), "Sys.AccessNetwork": 1}
    return state


@contextlib.contextmanager
def running_template_fake(
    directory: Path, internet: dict[str, RemoteImage], state: PveState | None = None
) -> Iterator[FakePVE]:
    tls = make_tls(directory / "fakepve-tls")
    fake = FakePVE(
        state or template_state(secrets.token_hex(16)),
        tls,
        routes=ROUTES + template_routes(internet),
    )
    with fake:
        yield fake


# The built-in schema subset, used only when ../shared/upstream is absent.
_S = {"type": "string", "optional": 1}
_CREATE = {k: v for k, v in schema._VM_CONFIG.items() if k not in ("delete", "digest", "skiplock")}
_CREATE.update(
    {
        "ostype": {**_S, "enum": ["other", "l24", "l26", "win10", "win11", "solaris"]},
        "scsihw": {**_S, "enum": ["lsi", "virtio-scsi-pci", "virtio-scsi-single", "pvscsi"]},
        "serial[n]": {**_S, "pattern": "(/dev/.+|socket)"},
        "import-working-storage": _S,
        "start": {"type": "boolean", "optional": 1},
    }
)
schema.FALLBACK.setdefault(
    ("POST", "/nodes/{node}/storage/{storage}/download-url"),
    {
        "node": {"type": "string"},
        "storage": {"type": "string"},
        "url": {"type": "string", "pattern": "https?://.*"},
        "filename": {"type": "string", "maxLength": 255},
        "content": {"type": "string", "enum": ["iso", "vztmpl", "import"]},
        "checksum": _S,
        "checksum-algorithm": {
            **_S,
            "enum": ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
        },
        "compression": _S,
        "verify-certificates": {"type": "boolean", "optional": 1},
    },
)
schema.FALLBACK.setdefault(("POST", "/nodes/{node}/qemu"), _CREATE)
schema.FALLBACK.setdefault(
    ("POST", "/nodes/{node}/qemu/{vmid}/template"),
    {"node": {"type": "string"}, "vmid": schema._VMID, "disk": _S},
)
