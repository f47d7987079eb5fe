"""What a fake VM's cloud-init saw when it started: the user-data of the seed attached then.

A real guest keeps that user-data at /var/lib/cloud/instance/user-data.txt (cloud-init's
cloudinit/helpers.py Paths.lookups["userdata_raw"], written by cloudinit/stages.py
Init._store_rawdata from Init.update, which cloudinit/cmd/main.py main_init calls at every
boot with the seed read then). So the fake records it at each start, and the guest agent
answers `sha256sum` of that path from the record.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

from tests.fakes.pve.server import ApiError, FakePVE
from tests.fakes.pve.state import Storage, Vm
from tests.fakes.pve.storage_routes import SUBDIRS, parse_volname

BOOTED_USER_DATA = "/var/lib/cloud/instance/user-data.txt"
_DRIVES = re.compile(r"^(ide|sata|scsi|virtio)\d+$")


def _volume(value: str) -> str:
    """qemu-server QemuServer/Drive.pm, parse_drive: the volume before the options."""
    head = str(value).split(",")[0]
    return head.split("=", 1)[1] if head.startswith(("file=", "volume=")) else head


def _iso_user_data(pve: FakePVE, volid: str) -> bytes | None:
    """`user-data` on an uploaded seed ISO, by its Rock Ridge name as Linux mounts it."""
    import pycdlib

    try:
        _, store, _ = parse_volname(pve, volid)
    except ApiError:
        return None
    data = store.volumes.get(volid, {}).get("data")
    if not data:
        return None
    image = pycdlib.PyCdlib()
    image.open_fp(io.BytesIO(data))
    out = io.BytesIO()
    try:
        image.get_file_from_iso_fp(out, rr_path="/user-data")
    except pycdlib.pycdlibexception.PyCdlibInvalidInput:
        return None
    finally:
        image.close()
    return out.getvalue()


def _snippet_user_data(pve: FakePVE, vm: Vm) -> bytes | None:
    """qemu-server QemuServer/Cloudinit.pm: generate_cloudinit_config builds the NoCloud
    drive only for a `vm-<vmid>-cloudinit` volume; generate_nocloud takes `user=` of
    cicustom (get_custom_cloudinit_files -> read_cloudinit_snippets_file)."""
    drives = [_volume(v) for k, v in vm.config.items() if _DRIVES.match(k)]
    if not any(re.search(rf"vm-{vm.vmid}-cloudinit", d) for d in drives):
        return None
    custom = dict(
        p.split("=", 1) for p in str(vm.config.get("cicustom", "")).split(",") if "=" in p
    )
    if "user" not in custom:
        return None  # PVE's own user-data from ciuser & co.: not a seed of ours
    try:
        _, store, name = parse_volname(pve, custom["user"])
    except ApiError:
        return None
    path = _snippet_path(store, name.name)
    return path.read_bytes() if path.is_file() else None


def _snippet_path(store: Storage, name: str) -> Path:
    return Path(store.path or "/nonexistent") / SUBDIRS["snippets"] / name


def booted_user_data(pve: FakePVE, vm: Vm) -> bytes | None:
    """The user-data cloud-init reads at this start: a cicustom snippet through PVE's
    cloud-init drive, else a seed ISO in a CD drive (media=cdrom)."""
    from_snippet = _snippet_user_data(pve, vm)
    if from_snippet is not None:
        return from_snippet
    for key, value in sorted(vm.config.items()):
        if _DRIVES.match(key) and "media=cdrom" in str(value):
            found = _iso_user_data(pve, _volume(str(value)))
            if found is not None:
                return found
    return None


def sha256sum(vm: Vm, path: str) -> tuple[str, str, int]:
    """coreutils src/digest.c as `sha256sum FILE` runs it: output_file prints the hex digest,
    a space, ' ' for text mode (the default off Windows) and the name; a file it cannot
    open is `error (0, errno, "%s", quotef (file))` and exit status 1."""
    if path == BOOTED_USER_DATA and vm.booted_user_data is not None:
        return f"{hashlib.sha256(vm.booted_user_data).hexdigest()}  {path}\n", "", 0
    return "", f"sha256sum: {path}: No such file or directory\n", 1


def booted_text(pve: FakePVE, req: Any, path: str) -> str | None:
    """An unscripted file-read of the user-data the VM booted with (the one file the fake's
    guests hold); None like a file the guest does not have. qemu-server's file-read
    (PVE/API2/Qemu/Agent.pm) answers the guest-file-read content base64-decoded, as here."""
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        if path == BOOTED_USER_DATA and vm.booted_user_data is not None:
            return vm.booted_user_data.decode()
    return None
