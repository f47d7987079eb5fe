"""The fake PVE's storage routes (pve-storage's API): storages, content, delete, upload.

Each handler follows pve-storage's src/PVE/API2/Storage/*.pm; the multipart body of an
upload is parsed before this, by the HTTP layer in server.py, as pve-http-server does.
Rules are cited as "repo file, sub"; pve-storage is the stable-8 branch for PVE 8.4 and
master for PVE 9.x, and both agree unless a rule says otherwise.

The storage configuration is cluster wide: a storage that is in the dict of some other
node but not in this node's is, on this node, a storage restricted to other nodes
(`nodes` in storage.cfg). Volumes of file-less content live in Storage.volumes; snippets
are files under the storage's path, as on PVE.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tests.fakes.pve.server import (
    ApiError,
    FakePVE,
    Request,
    Route,
    TaskFailed,
    has_privilege,
    major_of,
    perm_denied,
)
from tests.fakes.pve.state import Storage

# -- names (pve-storage src/PVE/Storage.pm, the `our $..._RE` variables) ------------------
ISO_EXT = r"\.(?:iso|img)"  # $ISO_EXT_RE_0, matched case-insensitively
# $VZTMPL_EXT_RE_1: plain .tar since "allow .tar container templates" (pve-storage 9.0.14,
# PVE 9.1); PVE 8.4 (stable-8) knows only the compressed ones.
VZTMPL_EXT = r"\.(?:tar(?!\.)|tar\.(?:gz|xz|zst|bz2))"
VZTMPL_EXT_8 = r"\.tar\.(?:gz|xz|zst|bz2)"
BACKUP_EXT = r"\.(tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst|bz2))?)"  # $BACKUP_EXT_RE_2
IMPORT_EXT = r"\.(ova|ovf|qcow2|raw|vmdk)"  # $IMPORT_EXT_RE_1
UPLOAD_IMPORT_EXT = r"\.(ova|qcow2|raw|vmdk)"  # $UPLOAD_IMPORT_EXT_RE_1
SAFE_CHAR = r"[a-zA-Z0-9\-.+=_]"  # $SAFE_CHAR_CLASS_RE
SAFE_CHAR_WS = r"[ a-zA-Z0-9\-.+=_]"  # $SAFE_CHAR_WITH_WHITESPACE_CLASS_RE
OVA_CONTENT = SAFE_CHAR_WS + r"+\.(qcow2|raw|vmdk)"  # $OVA_CONTENT_RE_1

# pve-storage src/PVE/Storage/Plugin.pm, $vtype_subdirs.
SUBDIRS = {
    "images": "images",
    "rootdir": "private",
    "iso": "template/iso",
    "vztmpl": "template/cache",
    "backup": "dump",
    "snippets": "snippets",
    "import": "import",
}
# pve-storage src/PVE/Storage.pm, volume_list: the content types it walks.
CONTENT_TYPES = ("rootdir", "images", "vztmpl", "iso", "backup", "snippets", "import")


def release(pve: FakePVE) -> tuple[int, int]:
    major, minor = pve.state.version.split(".")[:2]
    return int(major), int(minor)


def vztmpl_ext(pve: FakePVE) -> str:
    return VZTMPL_EXT if release(pve) >= (9, 1) else VZTMPL_EXT_8


def normalize_content_filename(name: str) -> str:
    """pve-storage src/PVE/Storage.pm, normalize_content_filename: chomp, drop everything up
    to the last slash or backslash, every other character outside [a-zA-Z0-9_.-] -> '_'."""
    name = name.removesuffix("\n")
    name = re.sub(r"^.*[/\\]", "", name)
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", name)


def check_file_name(pve: FakePVE, content: str, name: str) -> None:
    """pve-storage src/PVE/API2/Storage/Status.pm, upload and download_url: the extension
    rule of each content type, on the normalized name (400, `filename`)."""
    if content == "iso" and not re.search(rf"[^/]+{ISO_EXT}$", name, re.I):
        raise param_error("filename", "wrong file extension")
    if content == "vztmpl" and not re.search(rf"[^/]+{vztmpl_ext(pve)}$", name, re.I):
        raise param_error("filename", "wrong file extension")
    if content == "import" and not re.search(rf"{SAFE_CHAR}+{UPLOAD_IMPORT_EXT}$", name):
        raise param_error("filename", "invalid filename or wrong extension")


def param_error(name: str, text: str) -> ApiError:
    # pve-common src/PVE/Exception.pm, raise_param_exc.
    return ApiError(400, "Parameter verification failed.", {name: text})


def task_error(text: str) -> TaskFailed:
    """pve-common src/PVE/RESTEnvironment.pm, fork_worker: the die text, chomped, newlines
    made spaces, is the log's last line "TASK ERROR: text"; UPID.pm read_status hands back
    only `text` as the exitstatus (no "TASK ERROR:" prefix)."""
    return TaskFailed(text.removesuffix("\n").replace("\n", " "))


def check_checksum_params(pve: FakePVE, req: Request) -> None:
    """`checksum` and `checksum-algorithm` each `requires` the other: pve-common
    src/PVE/JSONSchema.pm, validate. The error sits on the missing one; its text changed
    in pve-common 9.0.8 ("schema: clarify error on missing property dependency")."""
    for present, missing in (
        ("checksum", "checksum-algorithm"),
        ("checksum-algorithm", "checksum"),
    ):
        if present in req.params and missing not in req.params:
            if major_of(pve.state.version) >= 9:
                text = f"missing property required by '{present}'"
            else:
                text = f"missing property - '{present}' requires this property"
            raise param_error(missing, text)


def file_hash(algorithm: str, data: bytes) -> str:
    # pve-common src/PVE/Tools.pm, get_file_hash: lower-case hex.
    return hashlib.new(algorithm, data).hexdigest().lower()


# -- the storage configuration (pve-storage src/PVE/Storage.pm) ---------------------------
def storage_config(pve: FakePVE, storeid: str, node: str | None = None) -> Storage:
    """Storage.pm, storage_config: "storage 'x' does not exist" (a die: 500)."""
    nodes = pve.state.nodes
    if node in nodes and storeid in nodes[node].storages:
        return nodes[node].storages[storeid]
    for facts in nodes.values():
        if storeid in facts.storages:
            return facts.storages[storeid]
    raise ApiError(500, f"storage '{storeid}' does not exist")


def on_node(pve: FakePVE, storeid: str, node: str) -> bool:
    facts = pve.state.nodes.get(node)
    return facts is not None and storeid in facts.storages


def storage_check_enabled(pve: FakePVE, storeid: str, node: str) -> Storage:
    """Storage.pm, storage_check_enabled then storage_check_node."""
    store = storage_config(pve, storeid, node)
    if store.disable:
        raise ApiError(500, f"storage '{storeid}' is disabled")
    if not on_node(pve, storeid, node):
        raise ApiError(500, f"storage '{storeid}' is not available on node '{node}'")
    return store


def _storage(pve: FakePVE, req: Request) -> Storage:
    """The storage of a node-local call, as activate_storage (Storage.pm) needs it."""
    pve.node_state(req.params["node"])
    return storage_check_enabled(pve, req.params["storage"], req.params["node"])


def subdir(store: Storage, vtype: str) -> str:
    """Plugin.pm, get_subdir: "$path/$subdir" ("storage definition has no path")."""
    if not store.path:
        raise ApiError(500, "storage definition has no path")
    return f"{store.path}/{SUBDIRS[vtype]}"


# -- GET /nodes/{node}/storage (API2/Storage/Status.pm, index; Storage.pm, storage_info) ---
def _cluster_storages(pve: FakePVE, node: str) -> dict[str, Storage]:
    found: dict[str, Storage] = {}
    for name, facts in pve.state.nodes.items():
        for storeid, store in facts.storages.items():
            if storeid not in found or name == node:
                found[storeid] = store
    return found


def _content_string(store: Storage) -> str:
    # Plugin.pm, content_hash_to_string (Perl hash order; sorted here).
    return ",".join(sorted(store.content))


def _storage_status(pve: FakePVE, storeid: str, store: Storage, node: str) -> dict[str, Any]:
    """Storage.pm, storage_info: every field starts at 0; a storage that is not enabled on
    this node (disabled, or restricted to other nodes) is neither activated nor sized."""
    enabled = not store.disable and on_node(pve, storeid, node)
    out: dict[str, Any] = {
        "storage": storeid,
        "type": store.type,
        "content": _content_string(store),
        "shared": int(store.is_shared()),
        "enabled": int(enabled),
        "active": 0,
        "total": 0,
        "used": 0,
        "avail": 0,
    }
    if enabled and store.active:
        used = store.total - store.avail
        out.update(active=1, total=store.total, used=used, avail=store.avail)
    if out["total"]:
        # Status.pm, index: used_fraction only when total is not 0.
        out["used_fraction"] = out["used"] / out["total"]
    return out


def storages(pve: FakePVE, req: Request) -> Any:
    node = req.params["node"]
    pve.node_state(node)
    wanted = [c for c in re.split(r"[,;\s]+", req.params.get("content", "")) if c]
    info: dict[str, dict[str, Any]] = {}
    config = _cluster_storages(pve, node)
    for storeid, store in config.items():
        row = _storage_status(pve, storeid, store, node)
        # storage_info: with `content`, only enabled storages holding one of the types.
        if "content" in req.params and not (row["enabled"] and store.content & set(wanted)):
            continue
        info[storeid] = row
    only = req.params.get("storage")
    if only and only not in info:
        raise param_error("storage", "No such storage.")  # Status.pm, index
    out = []
    for storeid, row in sorted(info.items()):
        # Status.pm, index: rows the caller may see (Datastore.Audit or .AllocateSpace).
        path = f"/storage/{storeid}"
        perms = pve.state.permissions
        if not any(has_privilege(perms, path, p) for p in STORAGE_SEE):
            continue
        if only and only != storeid:
            continue
        if req.flag("enabled") and config[storeid].disable:
            continue  # Status.pm, index: `enabled` drops only storages disabled in config
        out.append(row)
    return out


STORAGE_SEE = ("Datastore.Audit", "Datastore.AllocateSpace")


# -- GET /storage/{storage} (API2/Storage/Config.pm, read and $api_storage_config) ---------
def storage_read(pve: FakePVE, req: Request) -> Any:
    return _api_storage_config(pve, req.params["storage"])


def storage_index(pve: FakePVE, req: Request) -> Any:
    """API2/Storage/Config.pm, index: every storage the caller may see (Datastore.Audit
    or .AllocateSpace, check_any), optionally of one `type`; each as read answers it.
    storage_ids is Perl hash order; sorted here."""
    out = []
    for storeid in sorted(_cluster_storages(pve, "")):
        path = f"/storage/{storeid}"
        if not any(has_privilege(pve.state.permissions, path, p) for p in STORAGE_SEE):
            continue
        row = _api_storage_config(pve, storeid)
        if req.params.get("type") and req.params["type"] != row["type"]:
            continue
        out.append(row)
    return out


def _api_storage_config(pve: FakePVE, storeid: str) -> dict[str, Any]:
    """Config.pm, $api_storage_config: storage.cfg's section (`shared` set by parse_config
    for the @SHARED_STORAGE types, Plugin.pm), storage, digest, content and nodes."""
    store = storage_config(pve, storeid)
    out: dict[str, Any] = {"type": store.type, **store.options}
    if store.path:
        out["path"] = store.path
    if store.is_shared():
        out["shared"] = 1
    if store.disable:
        out["disable"] = 1
    holders = sorted(n for n, facts in pve.state.nodes.items() if storeid in facts.storages)
    if len(holders) < len(pve.state.nodes):
        out["nodes"] = ",".join(holders)  # Plugin.pm, encode_value 'nodes'
    # Plugin.pm, encode_value 'content': an empty set is "none".
    out["content"] = _content_string(store) or "none"
    out["storage"] = storeid
    out["digest"] = _config_digest(pve)
    return out


def _config_digest(pve: FakePVE) -> str:
    # PVE::Storage::config's digest is the SHA-1 of storage.cfg; any stable SHA-1 will do.
    text = repr(
        sorted((k, s.type, sorted(s.content)) for k, s in _cluster_storages(pve, "").items())
    )
    return hashlib.sha1(text.encode()).hexdigest()


# -- volumes (pve-storage src/PVE/Storage/Plugin.pm) ------------------------------------------
@dataclass(frozen=True)
class VolName:
    """What a plugin's parse_volname returns: (vtype, name, vmid, ..., isBase, format)."""

    vtype: str
    name: str
    owner: int | None
    format: str


def parse_volume_id(volid: str) -> tuple[str, str]:
    """Plugin.pm, parse_volume_id."""
    found = re.fullmatch(r"([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)", volid, re.I | re.S)
    if not found:
        raise ApiError(500, f"unable to parse volume ID '{volid}'")
    return found[1], found[2]


def _parse_name_dir(name: str) -> str:
    """Plugin.pm, parse_name_dir: the image file name's format."""
    found = re.fullmatch(r"(?:vm-|base-|subvol-)\d+-[^/\s]+\.(raw|qcow2|vmdk|subvol)", name)
    if found:
        return found[1]
    if re.fullmatch(r"snap-.*\.qcow2", name):
        raise ApiError(500, f"'{name}' is a snapshot filename, not a volume!")
    found = re.fullmatch(r"(?:base-)?[^/\s]+\.(raw|qcow2|vmdk|subvol)", name)
    if found:
        return found[1]
    raise ApiError(500, f"unable to parse volume filename '{name}'")


def parse_dir_volname(pve: FakePVE, volname: str) -> VolName:
    """Plugin.pm, parse_volname (dir, nfs, cifs and every storage with a path)."""
    found = re.fullmatch(r"(\d+)/(\S+)/(\d+)/(\S+)", volname)
    if found:
        _parse_name_dir(found[2])
        return VolName("images", found[4], int(found[3]), _parse_name_dir(found[4]))
    found = re.fullmatch(r"(\d+)/(\S+)", volname)
    if found:
        return VolName("images", found[2], int(found[1]), _parse_name_dir(found[2]))
    rules = (
        ("iso", rf"iso/([^/]+{ISO_EXT})", re.I),
        ("vztmpl", rf"vztmpl/([^/]+{vztmpl_ext(pve)})", re.I),
        ("backup", rf"backup/([^/]+{BACKUP_EXT})", 0),
        ("snippets", r"snippets/([^/]+)", 0),
    )
    for vtype, pattern, flags in rules:
        found = re.fullmatch(pattern, volname, flags)
        if found:
            owner = re.match(r"vzdump-(?:openvz|lxc|qemu)-(\d+)-.+", found[1])
            if vtype == "backup" and owner:
                return VolName(vtype, found[1], int(owner[1]), "raw")
            return VolName(vtype, found[1], None, "raw")
    found = re.fullmatch(rf"import/({SAFE_CHAR_WS}+\.ova/{OVA_CONTENT})", volname)
    if found:
        return VolName("import", found[1], None, f"ova+{found[2]}")
    found = re.fullmatch(rf"import/({SAFE_CHAR_WS}+{IMPORT_EXT})", volname)
    if found:
        return VolName("import", found[1], None, found[2])
    raise ApiError(500, f"unable to parse directory volume name '{volname}'")


def parse_lvm_volname(volname: str) -> VolName:
    """LvmThinPlugin.pm, parse_volname, after Plugin.pm, parse_lvm_name."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9\-_.]*[a-z0-9]", volname, re.I):
        raise ApiError(500, f"lvm name '{volname}' contains illegal characters")
    found = re.fullmatch(r"(?:vm|base)-(\d+)-\S+", volname)
    if not found:
        raise ApiError(500, f"unable to parse lvm volume name '{volname}'")
    return VolName("images", volname, int(found[1]), "raw")


def parse_volname(pve: FakePVE, volid: str) -> tuple[str, Storage, VolName]:
    """Storage.pm, parse_volname/path: the storage's plugin parses the volume name."""
    storeid, volname = parse_volume_id(volid)
    store = storage_config(pve, storeid)
    if store.path:
        return storeid, store, parse_dir_volname(pve, volname)
    return storeid, store, parse_lvm_volname(volname)


def _snippet_file(store: Storage, name: str) -> Path:
    return Path(store.path or "/nonexistent") / SUBDIRS["snippets"] / name


# -- GET .../content (API2/Storage/Content.pm, index; Storage.pm, volume_list) -------------
def _listed(pve: FakePVE, storeid: str, store: Storage, wanted: set[str]) -> list[dict[str, Any]]:
    """Plugin.pm, list_volumes and $get_subdir_files: volid, format, size, ctime."""
    items: list[dict[str, Any]] = []
    for volid, volume in store.volumes.items():
        try:
            vol = parse_volname(pve, volid)[2]
        except ApiError:
            continue  # $get_subdir_files lists only names its type's regex matches
        if vol.vtype not in wanted:
            continue
        item = {"volid": volid, "content": vol.vtype, "format": _list_format(vol)}
        item["size"] = int(volume.get("size", 0))
        item["ctime"] = int(volume.get("ctime") or time.time())
        if vol.owner is not None and vol.vtype in ("images", "rootdir", "backup"):
            item["vmid"] = vol.owner
        items.append(item)
    folder = Path(store.path or "/nonexistent") / SUBDIRS["snippets"]
    if "snippets" in wanted and folder.is_dir():
        for file in folder.iterdir():
            if file.is_dir():
                continue
            stat = file.stat()
            items.append(
                {
                    "volid": f"{storeid}:snippets/{file.name}",
                    "content": "snippets",
                    "format": "snippet",  # $get_subdir_files
                    "size": stat.st_size,
                    "ctime": int(stat.st_ctime),
                }
            )
    return items


def _list_format(vol: VolName) -> str:
    # Plugin.pm, $get_subdir_files: iso -> 'iso'; vztmpl -> 'tar' or "t" + compression;
    # import -> its extension; images -> the file's format.
    if vol.vtype == "iso":
        return "iso"
    if vol.vtype == "vztmpl":
        ext = vol.name.rsplit(".", 1)[-1].lower()
        return "tar" if ext == "tar" else f"t{ext}"
    if vol.vtype == "backup":
        found = re.search(BACKUP_EXT + "$", vol.name)
        return found[1] if found else "raw"
    return vol.format


def may_see(pve: FakePVE, storeid: str, vol: VolName) -> bool:
    """Storage.pm, check_volume_access (vmid undef), as Content.pm index uses it to filter:
    Datastore.Allocate sees all; iso, vztmpl and import need AllocateSpace or Audit; an
    owned image needs Audit and VM.Config.Disk on the VM; the rest (snippets, backups
    of no VM) only Datastore.Allocate."""
    perms, path = pve.state.permissions, f"/storage/{storeid}"
    if has_privilege(perms, path, "Datastore.Allocate"):
        return True
    if vol.vtype in ("iso", "vztmpl", "import"):
        return any(has_privilege(perms, path, p) for p in STORAGE_SEE)
    if vol.vtype == "backup" and vol.owner is not None:
        vm_path = f"/vms/{vol.owner}"
        return has_privilege(perms, path, "Datastore.AllocateSpace") and has_privilege(
            perms, vm_path, "VM.Backup"
        )
    if vol.vtype in ("images", "rootdir") and vol.owner is not None:
        vm_path = f"/vms/{vol.owner}"
        return has_privilege(perms, path, "Datastore.Audit") and has_privilege(
            perms, vm_path, "VM.Config.Disk"
        )
    return False


def content(pve: FakePVE, req: Request) -> Any:
    storeid = req.params["storage"]
    with pve.lock:
        pve.node_state(req.params["node"])
        store = storage_config(pve, storeid, req.params["node"])
        # volume_list: the requested type, or all; only those the storage allows.
        wanted = {req.params["content"]} if "content" in req.params else set(CONTENT_TYPES)
        wanted &= store.content
        storage_check_enabled(pve, storeid, req.params["node"])  # activate_storage
        vmid = int(req.params["vmid"]) if "vmid" in req.params else None
        items = []
        for item in _listed(pve, storeid, store, wanted):
            vol = parse_volname(pve, item["volid"])[2]
            # Plugin.pm, list_volumes: with a vmid, no iso or vztmpl; images and backups
            # of that VM only.
            if vmid is not None and vol.vtype in ("iso", "vztmpl"):
                continue
            owned = vol.vtype in ("images", "rootdir", "backup")
            if vmid is not None and owned and vol.owner != vmid:
                continue
            if may_see(pve, storeid, vol):
                items.append(item)
        # Storage.pm, volume_list: sorted by the lower-cased volid.
        return sorted(items, key=lambda i: str(i["volid"]).lower())


# -- DELETE .../content/{volume} (API2/Storage/Content.pm, delete) -------------------------
def real_volume_id(storeid: str | None, volume: str) -> tuple[str, str]:
    """Content.pm, $real_volume_id: a volume with a colon must name this storage; one
    without gets it prefixed. Errors are parameter errors on `volume`."""
    if ":" in volume:
        try:
            sid, _ = parse_volume_id(volume)
        except ApiError as exc:
            raise param_error("volume", exc.message + "\n") from exc
        if storeid and sid != storeid:
            raise param_error("volume", f"storage ID mismatch ({sid} != {storeid})\n")
        return volume, sid
    if not storeid:
        raise param_error("volume", "no storage specified - incomplete volume ID")
    return f"{storeid}:{volume}", storeid


def _may_delete(pve: FakePVE, storeid: str, vol: VolName) -> None:
    # Content.pm, delete: rpcenv->check (pve-access-control RPCEnvironment.pm, check).
    perms, path = pve.state.permissions, f"/storage/{storeid}"
    if vol.vtype == "backup" and vol.owner is not None:
        needed = ((path, "Datastore.AllocateSpace"), (f"/vms/{vol.owner}", "VM.Backup"))
    else:
        needed = ((path, "Datastore.Allocate"),)
    for at, priv in needed:
        if not has_privilege(perms, at, priv):
            raise perm_denied(f"{at}, {priv}")


def _free(pve: FakePVE, volid: str, node: str) -> None:
    """The worker: Storage.pm, vdisk_free (activate_storage first), then the plugin's
    free_image. A missing file is only a Perl warn (Plugin.pm, free_image: "disk image
    ... does not exist"), which does not count as a task warning: the task ends OK."""
    storeid, store, vol = parse_volname(pve, volid)
    try:
        storage_check_enabled(pve, storeid, node)
    except ApiError as exc:
        raise task_error(exc.message) from exc
    with pve.lock:
        store.volumes.pop(volid, None)
        if vol.vtype == "snippets":
            _snippet_file(store, vol.name).unlink(missing_ok=True)


def delete_volume(pve: FakePVE, req: Request) -> Any:
    node = req.params["node"]
    pve.node_state(node)
    volid, storeid = real_volume_id(req.params.get("storage"), req.params["volume"])
    _, _, vol = parse_volname(pve, volid)  # Storage.pm, path
    _may_delete(pve, storeid, vol)
    # Content.pm, delete: task imgdel, id "OWNER@STORAGE" or "STORAGE". PVE does not look
    # for guests using the volume: an ISO attached as a CD-ROM is deleted all the same.
    ident = f"{vol.owner}@{storeid}" if vol.owner is not None else storeid
    upid = pve.run_task(req, node, "imgdel", ident, lambda: _free(pve, volid, node))
    if "delay" in req.params:
        return _wait_for(pve, upid, int(req.params["delay"]))
    return upid


def _wait_for(pve: FakePVE, upid: str, delay: int) -> str | None:
    """Content.pm, delete with `delay`: a task done within the delay answers null, or dies
    with its exit status; one still running answers its UPID."""
    end = time.monotonic() + delay
    task = pve.state.tasks[upid]
    while task.status == "running" and time.monotonic() < end:
        time.sleep(0.005)
    if task.status == "running":
        return upid
    status = str(task.exitstatus)
    # pve-common UPID.pm, status_is_error: anything but OK and WARNINGS: n.
    if status == "OK" or re.fullmatch(r"WARNINGS: \d+", status):
        return None
    raise ApiError(500, status)


# -- POST .../upload (API2/Storage/Status.pm, upload) -------------------------------------
def upload(pve: FakePVE, req: Request) -> Any:
    node, storeid, kind = req.params["node"], req.params["storage"], req.params["content"]
    check_checksum_params(pve, req)
    pve.node_state(node)
    store = storage_check_enabled(pve, storeid, node)
    if not store.path:
        raise ApiError(500, f"can't upload to storage type '{store.type}'")
    sent, data = req.files.get("filename", (req.params.get("filename", ""), b""))
    filename = normalize_content_filename(req.params.get("filename", sent))
    check_file_name(pve, kind, filename)
    if kind not in store.content:
        raise ApiError(500, f"storage '{storeid}' does not support '{kind}' content")
    checksum, algorithm = req.params.get("checksum"), req.params.get("checksum-algorithm")
    volid = f"{storeid}:{kind}/{filename}"

    def body() -> None:
        time.sleep(pve.state.latency.upload)
        if algorithm and checksum is not None:
            got = file_hash(algorithm, data)
            if got != checksum.lower():
                raise task_error(f"checksum mismatch: got '{got}' != expect '{checksum}'\n")
        with pve.lock:
            # "we simply overwrite the destination file if it already exists"
            store.volumes[volid] = {
                "content": kind,
                "size": len(data),
                "data": data,
                "ctime": int(time.time()),
            }

    # The worker: fork_worker('imgcopy', undef, ...): the UPID's id is empty.
    return pve.run_task(req, node, "imgcopy", "", body)


# -- POST .../download-url (API2/Storage/Status.pm, download_url) -------------------------
class Remote(Protocol):
    """What "the internet" serves at a URL (template_routes.RemoteImage)."""

    data: bytes
    virtual_size: str


# pve-storage src/PVE/Storage.pm, decompressor_info, for format 'iso'.
ISO_DECOMPRESSORS = {"gz": "zcat", "lzo": "lzop -d -c", "zst": "zstd -q -d -c", "bz2": "bzcat -q"}


def _decompress(command: str, tmp: str, data: bytes) -> bytes:
    """The decompressor's run (pve-common Tools.pm, download_file_from_url: run_command
    without errmsg dies "command '...' failed: exit code N"). gz and bz2 are checked
    here (gzip exits 1 on bad input, bzip2 2); lzo and zst pass through unchanged."""
    exit_code = 0
    try:
        if command == "zcat":
            exit_code = 1
            data = gzip.decompress(data)
        elif command == "bzcat -q":
            exit_code = 2
            data = bz2.decompress(data)
    except (OSError, EOFError, ValueError) as exc:
        raise task_error(f"command '{command} {tmp}' failed: exit code {exit_code}") from exc
    return data


def _fetch(
    pve: FakePVE,
    internet: Mapping[str, Remote],
    req: Request,
    dest: str,
    volid: str,
    pid: int,
) -> Remote | None:
    """pve-common src/PVE/Tools.pm, download_file_from_url, up to the rename: the file
    that arrived (decompressed), or None when an existing file already has the checksum."""
    store = storage_config(pve, req.params["storage"], req.params["node"])
    checksum, algorithm = req.params.get("checksum"), req.params.get("checksum-algorithm")
    use_sum = bool(checksum) and algorithm is not None  # Status.pm: `if ($checksum)`
    with pve.lock:
        existing = store.volumes.get(volid)
    if existing is not None:
        if not use_sum:
            raise task_error(f"refusing to override existing file '{dest}'\n")
        got = file_hash(str(algorithm), existing.get("data", b""))
        if got == str(checksum).lower():
            return None  # "OK, got correct file already, no need to download"
        raise task_error(f"checksum mismatch: got '{got}' != expect '{checksum}', aborting\n")
    remote = internet.get(req.params["url"])
    if remote is None:
        # wget exits 8 on an HTTP error; its last stderr line is empty, so run_command's
        # errmsg only adds the exit code (pve-common Cmd.pm, run).
        raise task_error("download failed: exit code 8\n")
    if use_sum:
        got = file_hash(str(algorithm), remote.data)
        if got != str(checksum).lower():
            raise task_error(f"checksum mismatch: got '{got}' != expect '{checksum}'\n")
    compression = req.params.get("compression")
    if compression:
        data = _decompress(ISO_DECOMPRESSORS[compression], f"{dest}.tmp_dwnl.{pid}", remote.data)
        return _Arrived(data, remote.virtual_size)
    return remote


@dataclass
class _Arrived:
    data: bytes
    virtual_size: str


def download_url(pve: FakePVE, req: Request, internet: Mapping[str, Remote]) -> Any:
    """Status.pm, download_url, in its order: the schema's `requires`, storage enabled on
    the node, a file based storage, the content type configured, the normalized name's
    extension; then the worker (download_file_from_url and the decompression)."""
    node, storeid, kind = req.params["node"], req.params["storage"], req.params["content"]
    check_checksum_params(pve, req)
    pve.node_state(node)
    store = storage_check_enabled(pve, storeid, node)
    if not store.path:
        raise ApiError(
            500, f"can't upload to storage type '{store.type}', not a file based storage!"
        )
    if kind not in store.content:
        raise ApiError(500, f"storage '{storeid}' is not configured for content-type '{kind}'")
    filename = normalize_content_filename(req.params["filename"])
    check_file_name(pve, kind, filename)
    dest, volid = f"{subdir(store, kind)}/{filename}", f"{storeid}:{kind}/{filename}"
    compression = req.params.get("compression")
    started = threading.Event()
    upid_box: list[str] = []

    def body() -> None:
        started.wait(5)
        time.sleep(pve.state.latency.upload)
        if compression and kind != "iso":
            raise task_error(f"decompression not supported for {kind}\n")
        if compression and compression not in ISO_DECOMPRESSORS:
            raise task_error("no decompression method found\n")
        pid = int(upid_box[0].split(":")[2], 16)  # the worker's $$
        arrived = _fetch(pve, internet, req, dest, volid, pid)
        if arrived is None:
            return
        with pve.lock:
            store.volumes[volid] = {
                "content": kind,
                "size": len(arrived.data),
                "data": arrived.data,
                "virtual_size": arrived.virtual_size,
                "ctime": int(time.time()),
            }

    # fork_worker('download', encode_text($filename), ...)
    upid = pve.run_task(req, node, "download", encode_text(filename), body)
    upid_box.append(upid)
    started.set()
    return upid


def encode_text(text: str) -> str:
    """pve-common src/PVE/ParseUtils.pm, encode_text: control and high-bit characters,
    ':' and '%' percent-encoded (UTF-8)."""
    return urllib.parse.quote(text, safe=" !\"#$&'()*+,-./;<=>?@[\\]^_`{|}~" + _ALNUM)


_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


STORAGE_ROUTES: list[Route] = [
    ("GET", "/nodes/{node}/storage", storages),
    ("GET", "/storage", storage_index),
    ("GET", "/storage/{storage}", storage_read),
    ("GET", "/nodes/{node}/storage/{storage}/content", content),
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", delete_volume),
    ("POST", "/nodes/{node}/storage/{storage}/upload", upload),
]
