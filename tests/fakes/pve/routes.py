"""The route table: (method, PVE path template, handler). Add a row to serve more of PVE.

A handler reads `req.params` (strings, path parameters included, already checked against
the schema), changes `pve.state` under `pve.lock`, and returns the `data` PVE would answer.
Slow operations return `pve.run_task(...)`'s UPID; their body sleeps for the step's
latency and then changes the state.

Every rule below is ported from the PVE source named beside it ("repo file, sub"): which
check runs in the API call (an HTTP error) and which in the worker (a failed task), and
the exact texts. Repos: qemu-server, pve-manager, pve-common, pve-guest-common,
pve-cluster, pve-storage.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from tests.fakes.pve import guest_seed, schema
from tests.fakes.pve.ha_routes import HA_ROUTES, delete_service
from tests.fakes.pve.server import (
    ApiError,
    FakePVE,
    Request,
    Route,
    TaskFailed,
    check_cfs_quorum,
    has_privilege,
)
from tests.fakes.pve.state import Storage, Task, Vm
from tests.fakes.pve.storage_routes import STORAGE_ROUTES, storage_config

T = TypeVar("T")
# qemu-server QemuServer/Drive.pm, valid_drive_names
DISK_KEYS = re.compile(r"^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$")
PARAM_FAILED = "Parameter verification failed."
ROOT_ONLY = "Only root may use this option."
# Storage types whose volumes are block devices named vm-<vmid>-disk-<n>, no file extension.
BLOCK_STORAGE = {"lvmthin", "lvm", "zfspool", "rbd", "iscsidirect", "zfs"}


# -- shared rules ------------------------------------------------------------------------------
def major(pve: FakePVE) -> int:
    return int(pve.state.version.split(".")[0])


def param_error(name: str, text: str) -> ApiError:
    """pve-common Exception.pm, raise_param_exc: HTTP 400 with an errors hash."""
    return ApiError(400, PARAM_FAILED, {name: text})


def root_only(req: Request, *names: str) -> None:
    """qemu-server API2/Qemu.pm (update_vm_api, vm_stop, destroy_vm, resize_vm, vm_start):
    skiplock and friends are refused unless the user is root@pam; an API token's user is
    `user@realm!token`, never root@pam."""
    for name in names:
        if req.flag(name):
            raise param_error(name, ROOT_ONLY)


def exists_on_node(pve: FakePVE, node: str, vmid: int) -> Vm:
    """qemu-server QemuConfig.pm, assert_config_exists_on_node (run by QemuServer.pm
    check_running): its text differs from load_config's."""
    vm = pve.state.vms.get(vmid)
    if vm is None or vm.node != node:
        raise ApiError(500, f"unable to find configuration file for VM {vmid} on node '{node}'")
    return vm


def check_lock(vm: Vm) -> None:
    """pve-guest-common AbstractConfig.pm, check_lock ("VM" is QemuConfig's guest_type)."""
    if vm.config.get("lock"):
        raise ApiError(500, f"VM is locked ({vm.config['lock']})")


def task_text(exc: ApiError) -> str:
    """What a worker's die becomes in the task's exit status: pve-common RESTEnvironment.pm
    fork_worker chomps the error and turns newlines into spaces; a PVE::Exception
    stringifies as "<code> <msg>" plus one "<param>: <text>" line per error
    (pve-common Exception.pm, stringify)."""
    if exc.errors is None:
        return exc.message.rstrip("\n").replace("\n", " ")
    lines = [f"{exc.status} {exc.message}"] + [f"{k}: {v}" for k, v in exc.errors.items()]
    return " ".join(lines)


def in_task(step: Callable[[], T]) -> T:
    """Run a check inside a worker: an API error there fails the task instead."""
    try:
        return step()
    except ApiError as exc:
        raise TaskFailed(task_text(exc)) from exc


def run_task(
    pve: FakePVE,
    req: Request,
    node: str,
    kind: str,
    ident: str,
    body: Callable[[list[str]], None],
    on_fail: Callable[[], None] | None = None,
) -> str:
    """pve.run_task, with a list the body appends warnings to: a task that warned ends
    "WARNINGS: n" (see task_status)."""
    warnings: list[str] = []
    upid = pve.run_task(req, node, kind, ident, lambda: body(warnings), on_fail=on_fail)
    with pve.lock:
        pve.state.tasks[upid].warnings = warnings
    return upid


def allowed(pve: FakePVE, path: str, priv: str) -> bool:
    """A privilege on `path`, as RPCEnvironment.pm's permissions() computes it."""
    return has_privilege(pve.state.permissions, path, priv)


def parse_size(text: str) -> int | None:
    """pve-common JSONSchema.pm, parse_size."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT](?:iB)?)?", text)
    if not found:
        return None
    unit = (found[2] or "")[:1]
    return int(float(found[1]) * {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(unit, 1))


def format_size(size: int) -> str:
    """pve-common JSONSchema.pm, format_size: the largest unit that divides exactly."""
    for unit, factor in (("T", 2**40), ("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if size % factor == 0 and size >= factor:
            return f"{size // factor}{unit}"
    return str(size)


def drive_options(value: str) -> tuple[str, dict[str, str]]:
    """qemu-server QemuServer/Drive.pm, parse_drive: the volume and its key=value options."""
    head, *rest = str(value).split(",")
    volume = head.split("=", 1)[1] if head.startswith(("file=", "volume=")) else head
    return volume, dict(part.split("=", 1) for part in rest if "=" in part)


def drive_is_cloudinit(value: str) -> bool:
    """qemu-server QemuServer/Drive.pm, drive_is_cloudinit."""
    return bool(re.search(r"[:/]vm-\d+-cloudinit(\.\w+)?$", drive_options(value)[0]))


def drive_is_cdrom(value: str, exclude_cloudinit: bool = False) -> bool:
    """qemu-server QemuServer/Drive.pm, drive_is_cdrom."""
    if exclude_cloudinit and drive_is_cloudinit(value):
        return False
    return drive_options(value)[1].get("media") == "cdrom"


def config_digest(vm: Vm) -> str:
    """The SHA1 of the config file (pve-cluster: cfs_read_file sets `digest`); the fake
    hashes the file's data, pending section included."""
    data = repr((sorted(vm.config.items()), sorted(vm.pending.items()), vm.pending_delete))
    return hashlib.sha1(data.encode()).hexdigest()


# -- reading -----------------------------------------------------------------------------------
def version(pve: FakePVE, req: Request) -> Any:
    # pve-manager API2/Version.pm, version
    return {"version": pve.state.version, "release": pve.state.release, "repoid": "fake0000"}


def permissions(pve: FakePVE, req: Request) -> Any:
    perms = pve.state.permissions
    wanted = req.params.get("path")
    return {p: dict(v) for p, v in perms.items() if wanted is None or p == wanted}


def nextid(pve: FakePVE, req: Request) -> Any:
    """pve-manager API2/Cluster.pm, nextid: racy, it reserves nothing; the answer is the
    id as a string (Perl used it as a hash key first)."""
    with pve.lock:
        if req.params.get("vmid"):
            if req.int("vmid") in pve.state.vms:
                raise param_error("vmid", f"VM {req.params['vmid']} already exists")
            return req.params["vmid"]
        # datacenter.cfg next-id defaults: lower 100, upper 1000000
        for vmid in range(100, 1_000_000):
            if vmid not in pve.state.vms:
                return str(vmid)
        raise ApiError(500, "unable to get any free VMID in range [100, 1000000]")


def _boot_disk_size(vm: Vm) -> int:
    """qemu-server QemuServer/Drive.pm, bootdisk_size: the first boot-order disk's size."""
    order = re.search(r"order=([^,]+)", str(vm.config.get("boot", "")))
    keys = order[1].split(";") if order else sorted(k for k in vm.config if DISK_KEYS.match(k))
    for key in keys:
        value = vm.config.get(key)
        if value and not drive_is_cdrom(str(value)):
            return parse_size(drive_options(str(value))[1].get("size", "0")) or 0
    return 0


def _maxmem(vm: Vm) -> int:
    # qemu-server QemuServer/Memory.pm, get_current_memory (default 512 MiB)
    memory = str(vm.config.get("memory", "512"))
    return int(memory.split("current=")[-1].split(",")[0]) * 2**20


def _vmstatus(vm: Vm, cpus: int) -> dict[str, Any]:
    """qemu-server QemuServer.pm, vmstatus."""
    sockets = int(vm.config.get("sockets", 1))
    out: dict[str, Any] = {
        "vmid": vm.vmid,
        "status": vm.status,
        "name": vm.config.get("name") or f"VM {vm.vmid}",
        "cpus": min(sockets * int(vm.config.get("cores", 1)), cpus),
        "maxmem": _maxmem(vm),
        "maxdisk": _boot_disk_size(vm),
        "disk": 0,
        "uptime": 0,
        "cpu": 0,
        "mem": 0,
        "netin": 0,
        "netout": 0,
    }
    if vm.is_template:
        out["template"] = 1
    if any(re.match(r"serial\d+$", k) for k in vm.config):
        out["serial"] = 1
    for key in ("lock", "tags"):
        if vm.config.get(key) is not None and vm.config.get(key) != "":
            out[key] = vm.config[key]
    if vm.status == "running":
        out["pid"] = 10000 + vm.vmid
    return out


def _has_stats(pve: FakePVE, node: str) -> bool:
    """Whether pmxcfs's rrd dump still holds `node`'s pvestatd stats (and those of its
    guests and storages): an offline host's entries are dropped after 5 minutes
    (pve-cluster src/pmxcfs/status.c, cfs_rrd_dump and rrd_entry_is_old)."""
    facts = pve.state.nodes[node]
    return facts.online or facts.recent_stats


def _vm_resource(pve: FakePVE, vm: Vm) -> dict[str, Any]:
    """pve-manager API2Tools.pm extract_vm_stats: id, vmid, node, type and status
    "unknown", the rest only from the VM's rrd entry (gone for a host offline for long);
    then API2/Cluster.pm, resources: `lock` and `tags` from the config (pmxcfs has every
    host's configs) and `hastate` for an HA resource."""
    out: dict[str, Any] = {
        "id": f"qemu/{vm.vmid}",
        "type": "qemu",
        "vmid": vm.vmid,
        "node": vm.node,
        "status": "unknown",
    }
    if vm.node not in pve.state.nodes or _has_stats(pve, vm.node):
        out.update(
            {
                "name": vm.config.get("name") or f"VM {vm.vmid}",
                "status": vm.status,
                "template": 1 if vm.is_template else 0,
                "maxcpu": int(vm.config.get("sockets", 1)) * int(vm.config.get("cores", 1)),
                "cpu": 0,
                "maxmem": _maxmem(vm),
                "mem": 0,
                "maxdisk": _boot_disk_size(vm),
                "disk": 0,
                "uptime": 0,
                "netin": 0,
                "netout": 0,
                "diskread": 0,
                "diskwrite": 0,
            }
        )
    for key in ("tags", "lock"):
        if vm.config.get(key) is not None:
            out[key] = vm.config[key]
    ha = pve.state.ha_resources.get(f"vm:{vm.vmid}")
    if ha is not None:
        # Cluster.pm, resources: the manager's service state, else the configured one
        # (resources.cfg's default is "started", pve-ha-manager Resources/PVEVM.pm).
        out["hastate"] = ha.get("state", "started")
    return out


def _node_entry(pve: FakePVE, name: str) -> dict[str, Any]:
    """pve-manager API2Tools.pm, extract_node_stats: status "online" only for a member
    corosync sees online, "offline" for one it does not; uptime/cpu/mem/disk only while
    online, level and the max* fields while its rrd entry lasts; stats only with
    Sys.Audit."""
    node = pve.state.nodes[name]
    out: dict[str, Any] = {"id": f"node/{name}", "node": name, "type": "node"}
    out["status"] = "online" if node.online else "offline"
    if not _has_stats(pve, name):
        return out
    out["level"] = ""
    if allowed(pve, f"/nodes/{name}", "Sys.Audit"):
        out.update({"maxcpu": node.cpus, "maxmem": node.memory_total, "maxdisk": 100 * 2**30})
        if node.online:
            used = node.memory_total - _available(node)
            out.update({"uptime": 1000, "cpu": 0.01, "mem": used, "disk": 0})
    return out


def _storage_entry(pve: FakePVE, name: str, store: Storage, node: str) -> dict[str, Any]:
    """pve-manager API2Tools.pm, extract_storage_stats: `shared` from storage.cfg (one
    entry per node for a shared storage, Cluster.pm resources); status "unknown" and no
    sizes without the node's rrd entry."""
    out: dict[str, Any] = {
        "id": f"storage/{node}/{name}",
        "storage": name,
        "node": node,
        "type": "storage",
        "plugintype": store.type,
        "status": "unknown",
        "shared": 1 if store.is_shared() else 0,
        "content": ",".join(sorted(store.content)),
    }
    if _has_stats(pve, node):
        out.update(status="available", maxdisk=store.total, disk=store.total - store.avail)
    return out


def resources(pve: FakePVE, req: Request) -> Any:
    """pve-manager API2/Cluster.pm, resources: vms (sorted by vmid as strings, only those
    with VM.Audit), then nodes, then storages (only with Datastore.Audit); `type=vm`
    means qemu and lxc."""
    with pve.lock:
        kind = req.params.get("type")
        out: list[dict[str, Any]] = []
        if kind in (None, "vm"):
            for vmid in sorted(pve.state.vms, key=str):
                if allowed(pve, f"/vms/{vmid}", "VM.Audit"):
                    out.append(_vm_resource(pve, pve.state.vms[vmid]))
        if kind in (None, "node"):
            out += [_node_entry(pve, n) for n in pve.state.nodes]
        if kind in (None, "storage"):
            for node, facts in pve.state.nodes.items():
                for name, store in facts.storages.items():
                    # one entry per node where storage_check_enabled passes (not disabled)
                    if not store.disable and allowed(pve, f"/storage/{name}", "Datastore.Audit"):
                        out.append(_storage_entry(pve, name, store, node))
        return out


def nodes(pve: FakePVE, req: Request) -> Any:
    """pve-manager API2/Nodes.pm (PVE::API2::Nodes), index: extract_node_stats per node."""
    with pve.lock:
        return [{**_node_entry(pve, name), "ssl_fingerprint": "AA:BB"} for name in pve.state.nodes]


def _node(pve: FakePVE, req: Request) -> Any:
    return pve.node_state(req.params["node"])


def _available(node: Any) -> int:
    return node.memory_free if node.memory_available is None else node.memory_available


def node_status(pve: FakePVE, req: Request) -> Any:
    """pve-manager API2/Nodes.pm, status: `free` is MemFree; `used` is total minus
    MemAvailable (pve-common ProcFSTools.pm read_meminfo, since April 2025); `available`
    is answered from PVE 9.0 on."""
    node = _node(pve, req)
    available = _available(node)
    memory = {
        "total": node.memory_total,
        "free": node.memory_free,
        "used": node.memory_total - available,
    }
    if major(pve) >= 9:
        memory["available"] = available
    return {"memory": memory, "cpuinfo": {"cpus": node.cpus}, "pveversion": pve.state.version}


def network(pve: FakePVE, req: Request) -> Any:
    return [{"iface": b, "type": "bridge", "active": 1} for b in _node(pve, req).bridges]


def vm_list(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm vmlist: vmstatus of the node's VMs with VM.Audit."""
    with pve.lock:
        cpus = _node(pve, req).cpus
        return [
            _vmstatus(vm, cpus)
            for vm in pve.state.vms.values()
            if vm.node == req.params["node"] and allowed(pve, f"/vms/{vm.vmid}", "VM.Audit")
        ]


def current_config(vm: Vm, current: bool) -> dict[str, Any]:
    """pve-guest-common AbstractConfig.pm, load_current_config: pending values applied
    and pending deletions dropped (only a value Perl holds true: not "" nor "0"), unless
    `current`."""
    config = dict(vm.config)
    if not current:
        config.update(vm.pending)
        for key in vm.pending_delete:
            if config.get(key) is not None and str(config[key]) not in ("", "0"):
                del config[key]
    return config


def vm_config(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm, vm_config."""
    if req.params.get("snapshot") and req.flag("current"):
        text = "cannot use 'snapshot' parameter with 'current'"
        raise ApiError(400, PARAM_FAILED, {"snapshot": text, "current": text})
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        config = current_config(vm, req.flag("current"))
        if config.get("cipassword"):
            config["cipassword"] = "**********"
        return {**config, "digest": config_digest(vm)}


def vm_pending(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm, vm_pending, through pve-guest-common GuestHelpers.pm
    config_with_pending_array: one item per key of the config (its value, and its pending
    value or deletion if any), then per key only pending; a set `cipassword` masked (the
    pending one with a trailing blank). The fake keeps no forced deletions: `delete` is 1."""
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        pending = dict(vm.pending)
        deleted = list(vm.pending_delete)
        if vm.config.get("cipassword") is not None:
            config = {**vm.config, "cipassword": "**********"}
        else:
            config = dict(vm.config)
        if pending.get("cipassword") is not None:
            pending["cipassword"] = "********** "
        out: list[dict[str, Any]] = []
        for key, value in config.items():
            item: dict[str, Any] = {"key": key, "value": value}
            if pending.get(key) is not None:
                item["pending"] = pending.pop(key)
            if key in deleted:
                deleted.remove(key)
                item["delete"] = 1
            out.append(item)
        out += [{"key": k, "pending": v} for k, v in pending.items() if v is not None]
        return out + [{"key": k, "delete": 1} for k in deleted]


def vm_status(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm, vm_status: load_config first, then vmstatus."""
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        out = _vmstatus(vm, _node(pve, req).cpus)
        out["ha"] = {"managed": 0}
        agent = str(vm.config.get("agent", ""))
        if re.match(r"^(1|on|yes|true|enabled=(1|on|yes|true))(,|$)", agent):
            out["agent"] = 1
        return out


# -- clone -------------------------------------------------------------------------------------
def check_storage(pve: FakePVE, storage: str, node: str) -> Storage:
    """pve-storage Storage.pm, storage_config and storage_check_node (via
    storage_check_enabled)."""
    found = pve.state.nodes[node].storages.get(storage) if node in pve.state.nodes else None
    if found is not None:
        return found
    if any(storage in n.storages for n in pve.state.nodes.values()):
        raise ApiError(500, f"storage '{storage}' is not available on node '{node}'")
    raise ApiError(500, f"storage '{storage}' does not exist")


def _clone_target(pve: FakePVE, req: Request) -> str | None:
    """qemu-server API2/Qemu.pm clone_vm: `target` naming this node (or `localhost`) means
    no move; then $load_and_check: pve-cluster Cluster.pm check_node_exists ("no such
    cluster node"); `storage` must be enabled here and hold images (raise_param_exc),
    and with a target be enabled there too and be shared; then check_cfs_quorum."""
    node, target = req.params["node"], req.params.get("target")
    if target in (node, "localhost"):
        target = None
    if target and target not in pve.state.nodes:
        raise ApiError(500, f"no such cluster node '{target}'")
    storage = req.params.get("storage")
    if storage:
        store = check_storage(pve, storage, node)
        if "images" not in store.content:
            raise param_error("storage", f"storage '{storage}' does not support vm images")
        if target:
            check_storage(pve, storage, target)
            if not store.is_shared():
                raise ApiError(500, f"can't clone to non-shared storage '{storage}'")
    check_cfs_quorum(pve)
    return target


def _shared_vm(pve: FakePVE, source: Vm) -> bool:
    """qemu-server API2/Qemu.pm, $check_storage_access_clone's $sharedvm: false as soon as
    one drive's volume, disk or CD-ROM alike (a cloud-init drive and an ISO included), is
    on a storage that is not shared; a drive without volume (`none`, `cdrom`) counts not.
    It looks at the source's storages only: `storage=` does not make a VM on local disks
    movable."""
    shared = True
    for key in sorted(source.config):
        volid = drive_options(str(source.config[key]))[0]
        if not DISK_KEYS.match(key) or volid in ("", "none", "cdrom"):
            continue
        # pve-storage Plugin.pm, parse_volume_id; Storage.pm, storage_config (cluster-wide).
        found = re.match(r"^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$", volid, re.IGNORECASE)
        if not found:
            raise ApiError(500, f"unable to parse volume ID '{volid}'")
        shared = storage_config(pve, found[1], source.node).is_shared() and shared
    return shared


def _disk_storage(source: Vm) -> str | None:
    """The storage of the source's first disk: a linked clone's new volume is made there
    (pve-storage Storage.pm, vdisk_clone), under that storage's lock."""
    for key in sorted(source.config):
        value = str(source.config[key])
        if DISK_KEYS.match(key) and not drive_is_cdrom(value, exclude_cloudinit=False):
            volid = drive_options(value)[0]
            if ":" in volid:
                return volid.split(":", 1)[0]
    return None


def storage_lock_timeout(storage: str, shared: bool) -> str:
    """The lock's timeout text: pve-common Tools.pm, lock_file_full, for a local storage;
    pve-cluster Cluster.pm, $cfs_lock ("cfs-lock '$lockid' error: ..." around its
    "got lock request timeout"), lockid storage-<id> (cfs_lock_storage), for a shared one."""
    if shared:
        return f"cfs-lock 'storage-{storage}' error: got lock request timeout"
    return f"can't lock file '/var/lock/pve-manager/pve-storage-{storage}' - got timeout"


def _clone_disks(source: Vm, full: bool) -> None:
    """qemu-server API2/Qemu.pm clone_vm ($load_and_check, after the target check):
    cd-roms are copied as they are, cloud-init drives are always copied, other disks are
    linked only if the storage can clone them (a base volume, pve-storage Plugin.pm
    volume_has_feature)."""
    for key in sorted(source.config):
        value = str(source.config[key])
        if not DISK_KEYS.match(key) or drive_is_cdrom(value, exclude_cloudinit=True):
            continue
        volid = drive_options(value)[0]
        linked = not full and not drive_is_cloudinit(value)
        if linked and not re.search(r"(^|[:/])base-\d+-", volid.split(":", 1)[-1]):
            raise ApiError(500, f"Linked clone feature is not supported for '{volid}' ({key})")


def _clone_checks(pve: FakePVE, req: Request) -> tuple[Vm, bool, str | None]:
    """qemu-server API2/Qemu.pm clone_vm, $load_and_check, in its order."""
    node, vmid, newid = req.params["node"], req.int("vmid"), req.int("newid")
    target = _clone_target(pve, req)
    source = pve.vm(node, vmid)
    check_lock(source)
    full = req.flag("full") if "full" in req.params else not source.is_template
    for name in ("storage", "format"):
        if name in req.params and not full:
            raise ApiError(500, f"parameter '{name}' not allowed for linked clones")
    if target and not _shared_vm(pve, source):
        raise ApiError(500, f"can't clone VM to node '{target}' (VM uses local storage)")
    if newid in pve.state.vms:
        raise ApiError(500, f"unable to create VM {newid}: config file already exists")
    _clone_disks(source, full)
    return source, full, target


def volume_name(store: Storage, vmid: int, number: int, fmt: str = "raw") -> str:
    """pve-storage: block storages name disks vm-<vmid>-disk-<n>; directory storages
    <vmid>/vm-<vmid>-disk-<n>.<fmt>."""
    name = f"vm-{vmid}-disk-{number}"
    return name if store.type in BLOCK_STORAGE else f"{vmid}/{name}.{fmt}"


def _cloned_drive(
    pve: FakePVE, source: Vm, value: str, newid: int, full: bool, storage: str | None
) -> str:
    """qemu-server QemuServer.pm clone_disk: a copy (full) or a linked clone of one disk,
    keeping the drive's options; linked clones stay on the base's storage."""
    volid, options = drive_options(value)
    sid = (storage if full else None) or volid.split(":", 1)[0]
    store = pve.state.nodes[source.node].storages[sid]
    if drive_is_cloudinit(value):
        # pve-storage Plugin.pm, alloc_image: a directory storage's file is <vmid>/<name>.
        block = store.type in BLOCK_STORAGE
        name = f"vm-{newid}-cloudinit" if block else f"{newid}/vm-{newid}-cloudinit.qcow2"
        return f"{sid}:{name}" + "".join(f",{k}={v}" for k, v in options.items())
    taken = {
        m[1]
        for vm in pve.state.vms.values()
        for v in vm.config.values()
        for m in re.finditer(rf"{sid}:.*vm-{newid}-disk-(\d+)", str(v))
    }
    number = next(n for n in range(1000) if str(n) not in taken)
    base = volid.split(":", 1)[1]
    # pve-storage Plugin.pm clone_image: a directory storage's linked clone is a qcow2
    # backed by its base; a full copy keeps the source's format (qemu-server
    # QemuServer.pm, resolve_dst_disk_format, the source's format as the hint).
    extension = re.search(r"\.(raw|qcow2|vmdk)$", base)
    name = volume_name(
        store, newid, number, "qcow2" if not full else extension[1] if extension else "raw"
    )
    # a linked clone names its base: zfspool and rbd base/vm... (RBDPlugin.pm,
    # clone_image: "$basename/$name"), dir base.qcow2/vmid/vm...
    if not full and (store.type in ("zfspool", "rbd") or store.type not in BLOCK_STORAGE):
        name = f"{base}/{name}"
    return f"{sid}:{name}" + "".join(f",{k}={v}" for k, v in options.items())


def _net_with_new_mac(value: str) -> str:
    """qemu-server API2/Qemu.pm clone_vm: "always change MAC! address"
    (pve-common Tools.pm random_ether_addr with PVE's BC:24:11 prefix)."""
    model, _, rest = str(value).partition(",")
    mac = "BC:24:11:" + ":".join(f"{b:02X}" for b in secrets.token_bytes(3))
    return f"{model.split('=')[0]}={mac}" + (f",{rest}" if rest else "")


# clone_vm copies no snapshot state and no unused disks.
_NOT_CLONED = {"snapshots", "parent", "snaptime", "vmstate", "snapstate", "runningcpu"}
_NOT_CLONED |= {"runningmachine", "running-nets-host-mtu", "template", "lock"}


def _clone_config(pve: FakePVE, req: Request, source: Vm, full: bool) -> dict[str, Any]:
    """qemu-server API2/Qemu.pm clone_vm ($clonefn): the new VM's config."""
    newid = req.int("newid")
    config: dict[str, Any] = {}
    for key, value in sorted(source.config.items()):
        if key in _NOT_CLONED or re.match(r"unused\d+$", key):
            continue
        if re.match(r"net\d+$", key):
            config[key] = _net_with_new_mac(value)
        elif DISK_KEYS.match(key) and not drive_is_cdrom(str(value), exclude_cloudinit=True):
            storage = req.params.get("storage")
            config[key] = _cloned_drive(pve, source, str(value), newid, full, storage)
        else:
            config[key] = value
    smbios = re.sub(r"(^|,)uuid=[^,]*", "", str(config.get("smbios1", ""))).strip(",")
    config["smbios1"] = ",".join(filter(None, [f"uuid={uuid.uuid4()}", smbios]))
    if config.get("vmgenid"):
        config["vmgenid"] = str(uuid.uuid4())
    config["name"] = (
        req.params.get("name") or f"Copy-of-VM-{source.config.get('name', source.vmid)}"
    )
    if req.params.get("description"):
        config["description"] = req.params["description"]
    return config


def clone(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm, clone_vm. check_running($vmid) comes first, then the
    early $load_and_check; the worker repeats the checks, writes the new config as
    `lock: clone`, copies the disks under the storage's lock and then drops the lock;
    a failure removes the new config and fails the task "clone failed: ..."."""
    node, newid = req.params["node"], req.int("newid")
    with pve.lock:
        exists_on_node(pve, node, req.int("vmid"))
        _clone_checks(pve, req)
    latency = pve.state.latency
    made: list[Vm] = []

    def body(warnings: list[str]) -> None:
        with pve.lock:
            source, full, target = in_task(lambda: _clone_checks(pve, req))
            vm = Vm(newid, node, {"lock": "clone"})
            pve.state.vms[newid] = vm
            made.append(vm)
        storage = req.params.get("storage") or _disk_storage(source) or "local-lvm"
        shared = storage_config(pve, storage, node).is_shared()
        # pve-storage Plugin.pm, cluster_lock_storage: a shared storage's lock is one
        # cluster-wide cfs lock; a local one's is a lock file on the host doing the work
        # (the clone's source host: the worker runs there, target= only moves the config).
        slots = pve.storage_slots(storage if shared else f"{node}/{storage}")
        if not slots.acquire(timeout=latency.lock_timeout):
            raise TaskFailed(f"clone failed: {storage_lock_timeout(storage, shared)}")
        try:
            time.sleep(latency.clone)
        finally:
            slots.release()
        with pve.lock:
            if source.pending or source.pending_delete:
                keys = [*source.pending, *(["delete"] if source.pending_delete else [])]
                warnings.append(
                    f"found pending changes for '{','.join(keys)}', discarding for clone"
                )
            vm.config = _clone_config(pve, req, source, full)
            vm.clone_of = None if full else source.vmid
            vm.node = target or node

    def undo() -> None:
        if made and pve.state.vms.get(newid) is made[0]:
            del pve.state.vms[newid]

    return run_task(pve, req, node, "qmclone", req.params["vmid"], body, on_fail=undo)


# -- config ------------------------------------------------------------------------------------
# Parameters of the config endpoints that are not VM options (qemu-server API2/Qemu.pm,
# update_vm_api's extract_param calls).
_NOT_OPTIONS = {"node", "vmid", "digest", "background_delay", "skip_cloud_init", "skiplock"}
_NOT_OPTIONS |= {"import-working-storage", "delete", "revert", "force"}
# qemu-server QemuServer.pm, $fast_plug_option (plus every cloud-init option): applied at
# once even while the VM runs.
FAST_PLUG = {"description", "hookscript", "lock", "migrate_downtime", "migrate_speed"}
FAST_PLUG |= {"name", "onboot", "protection", "shares", "startup", "tags", "vmstatestorage"}
FAST_PLUG |= {"citype", "ciuser", "cipassword", "ciupgrade", "cicustom", "searchdomain"}
FAST_PLUG |= {"nameserver", "sshkeys"}


def split_list(text: str) -> list[str]:
    """pve-common ParseUtils.pm, split_list."""
    if "\0" in text:
        return text.split("\0")
    return text.replace(",", " ").replace(";", " ").split()


def _fast_plug(opt: str) -> bool:
    return opt in FAST_PLUG or bool(re.match(r"ipconfig\d+$", opt))


def option_exists(pve: FakePVE, opt: str) -> bool:
    """qemu-server QemuServer.pm, option_exists: a key of the VM config schema."""
    spec = schema.spec_for("POST", "/nodes/{node}/qemu/{vmid}/config", major(pve)) or {}
    props = spec.get("properties") or {}
    if opt in _NOT_OPTIONS:
        return False
    indexed = re.fullmatch(r"([a-z]+)\d+", opt)
    return opt in props or bool(indexed and f"{indexed[1]}[n]" in props)


def with_mac(value: str) -> str:
    """qemu-server QemuServer/Network.pm parse_net/print_net: a NIC given without a MAC
    gets a random one (pve-common Tools.pm random_ether_addr, prefix BC:24:11)."""
    model, _, rest = value.partition(",")
    if "=" in model:
        return value
    mac = "BC:24:11:" + ":".join(f"{b:02X}" for b in secrets.token_bytes(3))
    return f"{model}={mac}" + (f",{rest}" if rest else "")


def _update_request(pve: FakePVE, req: Request) -> tuple[dict[str, str], list[str], list[str]]:
    """qemu-server API2/Qemu.pm update_vm_api, the checks before the config is read."""
    root_only(req, "skiplock")
    params = {k: v for k, v in req.params.items() if k not in _NOT_OPTIONS}
    delete_str, revert_str = req.params.get("delete", ""), req.params.get("revert", "")
    if not delete_str and not revert_str and not params:
        raise ApiError(500, "no options specified")
    revert: list[str] = []
    for opt in split_list(revert_str):
        if not option_exists(pve, opt):
            raise param_error("revert", f"unknown option '{opt}'")
        if opt in params:
            text = f"you can't use '-{opt}' and -revert {opt}' at the same time"
            raise param_error("delete", text)
        revert.append(opt)
    delete: list[str] = []
    for opt in split_list(delete_str):
        opt = "ide2" if opt == "cdrom" else opt
        if opt in params:
            raise param_error(
                "delete", f"you can't use '-{opt}' and -delete {opt}' at the same time"
            )
        if opt in revert:
            text = f"you can't use '-delete {opt}' and -revert {opt}' at the same time"
            raise param_error("revert", text)
        if not option_exists(pve, opt):
            raise param_error("delete", f"unknown option '{opt}'")
        delete.append(opt)
    for key, value in params.items():
        if re.match(r"net\d+$", key):
            params[key] = with_mac(value)
    return params, delete, revert


def _load_and_check(pve: FakePVE, req: Request) -> Vm:
    """qemu-server API2/Qemu.pm update_vm_api, $load_and_check_config."""
    vm = pve.vm(req.params["node"], req.int("vmid"))
    digest = req.params.get("digest")
    if digest and digest != config_digest(vm):
        raise ApiError(500, "checksum mismatch (file change by other user?)")
    if not req.flag("skiplock"):
        check_lock(vm)
    return vm


def _boot_order(value: str) -> list[str]:
    found = re.search(r"order=([^,]+)", value)
    return split_list(found[1]) if found else []


def _next_unused(vm: Vm) -> str:
    """pve-guest-common AbstractConfig.pm, add_unused_volume: the first free unusedN."""
    n = 0
    while f"unused{n}" in vm.config:
        n += 1
    return f"unused{n}"


def _detach(vm: Vm, opt: str) -> None:
    """qemu-server QemuServer.pm vmconfig_delete_or_detach_drive and
    vmconfig_register_unused_drive: a removed data disk stays as unusedN; cd-roms and
    cloud-init drives just go."""
    value = vm.config.get(opt)
    if value is not None and DISK_KEYS.match(opt) and not drive_is_cdrom(str(value)):
        vm.config[_next_unused(vm)] = drive_options(str(value))[0]


def _stage_deletes(vm: Vm, delete: list[str], warnings: list[str]) -> None:
    """qemu-server API2/Qemu.pm update_vm_api ($updatefn): deletions go to the pending
    section (tags at once); deleting what is not set only warns."""
    order = _boot_order(str(vm.pending.get("boot", vm.config.get("boot", ""))))
    for opt in delete:
        if vm.config.get(opt, vm.pending.get(opt)) is None:
            warnings.append(f"cannot delete '{opt}' - not set in current configuration!")
            continue
        vm.pending.pop(opt, None)
        if "bootorder" not in delete and opt in order:
            order = [d for d in order if d != opt]
            vm.pending["boot"] = f"order={';'.join(order)}" if order else ""
        if opt == "tags":
            vm.config.pop("tags", None)
        elif opt not in vm.pending_delete:
            vm.pending_delete.append(opt)


def _unique_tags(value: str) -> str:
    """pve-guest-common GuestHelpers.pm, get_unique_tags (sorted, as by default)."""
    return ";".join(sorted(set(split_list(value))))


def _stage_values(vm: Vm, params: dict[str, str], delete: list[str]) -> None:
    """qemu-server API2/Qemu.pm update_vm_api ($updatefn): new values go to the pending
    section; `boot` must only name devices that exist."""
    for opt, value in params.items():
        if vm.pending.get(opt) == value:
            continue
        if opt == "tags":
            value = _unique_tags(value)
        if opt == "boot":
            for dev in _boot_order(value):
                there = vm.config.get(dev) or vm.pending.get(dev) or params.get(dev)
                if not there or dev in delete:
                    raise ApiError(500, f"invalid bootorder: device '{dev}' does not exist'")
        vm.pending[opt] = value
        if opt in vm.pending_delete:
            vm.pending_delete.remove(opt)


def _cleanup_pending(vm: Vm) -> None:
    """pve-guest-common AbstractConfig.pm, cleanup_pending."""
    for opt in [k for k, v in vm.pending.items() if str(vm.config.get(k, "\0")) == str(v)]:
        del vm.pending[opt]
    vm.pending_delete[:] = [k for k in vm.pending_delete if k in vm.config]


def apply_pending(vm: Vm) -> None:
    """qemu-server QemuServer.pm, vmconfig_apply_pending (a stopped VM, or at start/stop)."""
    for opt in sorted(vm.pending_delete):
        _detach(vm, opt)
        vm.config.pop(opt, None)
    vm.pending_delete.clear()
    for opt, value in list(vm.pending.items()):
        old = vm.config.get(opt)
        replaced = old is not None and drive_options(str(old))[0] != drive_options(str(value))[0]
        if DISK_KEYS.match(opt) and replaced:
            _detach(vm, opt)
        vm.config[opt] = value
    vm.pending.clear()


def _hotpluggable(vm: Vm, opt: str, deleting: bool) -> bool:
    """qemu-server QemuServer.pm, vmconfig_hotplug_pending with the default hotplug
    "network,disk,usb": what a running VM takes at once; the rest stays pending."""
    features = str(vm.config.get("hotplug", "network,disk,usb"))
    if features == "1":
        features = "network,disk,usb"
    features_set = set() if features == "0" else set(split_list(features))
    if _fast_plug(opt) or opt in ("cpuunits", "cpulimit"):
        return True
    if re.match(r"net\d+$", opt):
        return "network" in features_set or not deleting
    if DISK_KEYS.match(opt):
        if opt in ("efidisk0", "tpmstate0"):
            return False
        if deleting:
            return "disk" in features_set and not re.match(r"(ide|sata)\d+$", opt)
        value = str(vm.pending.get(opt, ""))
        return drive_is_cdrom(value) or ("disk" in features_set and not opt.startswith("ide"))
    return opt in ("memory", "vcpus") and opt in features_set


def hotplug_pending(vm: Vm) -> None:
    """qemu-server QemuServer.pm, vmconfig_hotplug_pending."""
    for opt in sorted(vm.pending_delete):
        if _hotpluggable(vm, opt, deleting=True):
            _detach(vm, opt)
            vm.config.pop(opt, None)
            vm.pending_delete.remove(opt)
    for opt, value in list(vm.pending.items()):
        if _hotpluggable(vm, opt, deleting=False):
            vm.config[opt] = value
            del vm.pending[opt]


def _update(
    pve: FakePVE, req: Request, changes: tuple[dict[str, str], list[str], list[str]]
) -> list[str]:
    """qemu-server API2/Qemu.pm update_vm_api, $updatefn: stage, then apply (stopped) or
    hotplug (running). Returns the warnings."""
    params, delete, revert = changes
    warnings: list[str] = []
    vm = _load_and_check(pve, req)
    params = _new_cloudinit_drives(pve, vm, params)
    for opt in revert:
        if opt in vm.config:
            params = {**params, opt: vm.config[opt]}
        elif opt in vm.pending:
            delete = [*delete, opt]
    _stage_deletes(vm, delete, warnings)
    _stage_values(vm, params, delete)
    _cleanup_pending(vm)
    if vm.status == "running":
        hotplug_pending(vm)
    else:
        apply_pending(vm)
    return warnings


def _has_cloudinit(drives: dict[str, Any], skip: str) -> str | None:
    """qemu-server QemuConfig.pm, has_cloudinit: another drive that is a cloud-init one."""
    for key, value in sorted(drives.items()):
        if key != skip and DISK_KEYS.match(key) and drive_is_cloudinit(str(value)):
            return key
    return None


def _new_cloudinit_drives(pve: FakePVE, vm: Vm, params: dict[str, str]) -> dict[str, str]:
    """qemu-server API2/Qemu.pm $create_disks, its `cloudinit` volname branch, as
    update_vm_api runs it on new drive values: one cloud-init drive per VM, allocated as
    vm-<vmid>-cloudinit (qcow2 on a storage with a path) and attached as a CD."""
    out = dict(params)
    for key, value in params.items():
        volume = drive_options(str(value))[0]
        storage, _, volname = volume.partition(":")
        if not DISK_KEYS.match(key) or volname != "cloudinit":
            continue
        taken = _has_cloudinit(vm.config, key) or _has_cloudinit(vm.pending, key)
        if taken:
            raise ApiError(500, f"{key} - cloud-init drive is already attached at '{taken}'")
        store = pve.state.nodes[vm.node].storages.get(storage)
        if store is None:
            raise ApiError(500, f"storage '{storage}' does not exist")
        block = store.path is None
        name = f"vm-{vm.vmid}-cloudinit" if block else f"{vm.vmid}/vm-{vm.vmid}-cloudinit.qcow2"
        out[key] = f"{storage}:{name},media=cdrom"
    return out


def config_async(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm update_vm_async: early checks answer at once; the worker
    (type qmconfig) takes the config lock and does the update."""
    with pve.lock:
        changes = _update_request(pve, req)
        _load_and_check(pve, req)

    def body(warnings: list[str]) -> None:
        time.sleep(pve.state.latency.config)
        with pve.lock:
            warnings += in_task(lambda: _update(pve, req, changes))

    return run_task(pve, req, req.params["node"], "qmconfig", req.params["vmid"], body)


def config_sync(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm update_vm: the same update in the request; null answer."""
    with pve.lock:
        changes = _update_request(pve, req)
        _load_and_check(pve, req)
        if req.fail_task:
            raise ApiError(500, req.fail_task)
        _update(pve, req, changes)
    return None


# -- resize ------------------------------------------------------------------------------------
def _resize(pve: FakePVE, req: Request) -> None:
    """qemu-server API2/Qemu.pm resize_vm, $updatefn (all in the worker)."""
    disk, size_text = req.params["disk"], req.params["size"]
    vm = _load_and_check(pve, req)
    if not vm.config.get(disk):
        raise ApiError(500, f"disk '{disk}' does not exist")
    value = str(vm.config[disk])
    volid, options = drive_options(value)
    if not volid:
        raise ApiError(500, f"disk '{disk}' has no associated volume")
    if drive_is_cdrom(value):
        raise ApiError(500, "you can't resize a cdrom")
    size = parse_size(options.get("size", "")) if "size" in options else None
    if size is None:
        raise ApiError(500, f"Could not determine current size of volume '{volid}'")
    relative = size_text.startswith("+")
    new_size = int((parse_size(size_text.lstrip("+")) or 0) + (size if relative else 0))
    if new_size < size:
        raise ApiError(500, "shrinking disks is not supported")
    if new_size == size:
        return
    # print_drive: the volume, then the options sorted by key (pve-common JSONSchema.pm,
    # print_property_string)
    options["size"] = format_size(new_size)
    vm.config[disk] = volid + "".join(f",{k}={options[k]}" for k in sorted(options))


def resize(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm resize_vm: only skiplock is checked before the worker
    (type resize); every other rule fails the task. `size` is absolute or `+`relative
    bytes/K/M/G/T, against the volume's size."""
    root_only(req, "skiplock")

    def body(warnings: list[str]) -> None:
        time.sleep(pve.state.latency.resize)
        with pve.lock:
            in_task(lambda: _resize(pve, req))

    return run_task(pve, req, req.params["node"], "resize", req.params["vmid"], body)


# -- power, destroy ----------------------------------------------------------------------------
def _bridges_exist(pve: FakePVE, vm: Vm) -> None:
    """qemu-server QemuServer.pm print_netdevice_full -> pve-common Network.pm
    read_bridge_mtu: a NIC on a missing bridge fails the start, not the create."""
    facts = pve.state.nodes[vm.node]
    for key in sorted(vm.config):
        bridge = re.search(r"bridge=([^,]+)", str(vm.config[key]))
        if re.match(r"net\d+$", key) and bridge and bridge[1] not in facts.bridges:
            raise ApiError(500, f"bridge '{bridge[1]}' does not exist")


def _start(pve: FakePVE, req: Request) -> None:
    """qemu-server QemuServer.pm vm_start (in the worker, under the config lock): template,
    lock, already running; then vm_start_nolock applies pending changes."""
    vm = pve.vm(req.params["node"], req.int("vmid"))
    if vm.is_template:
        raise ApiError(500, "you can't start a vm if it's a template")
    if vm.config.get("lock") != "suspended":
        check_lock(vm)
    if vm.status == "running":
        raise ApiError(500, f"VM {vm.vmid} already running")
    apply_pending(vm)
    _bridges_exist(pve, vm)
    vm.status = "running"
    # vm_start_nolock generates the cloud-init drive from the config as it is now; the
    # guest reads that seed (or the seed CD) at this boot.
    vm.booted_user_data = guest_seed.booted_user_data(pve, vm)
    for hook in pve.state.on_start:
        hook(vm)


def start(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm vm_start: only the root-only parameters are checked before
    the worker (type qmstart) forks; everything else fails the task."""
    root_only(req, "skiplock", "stateuri", "migratedfrom", "migration_type")
    root_only(req, "migration_network", "targetstorage", "force-cpu", "nets-host-mtu")

    def body(warnings: list[str]) -> None:
        time.sleep(pve.state.latency.start)
        with pve.lock:
            in_task(lambda: _start(pve, req))

    return run_task(pve, req, req.params["node"], "qmstart", req.params["vmid"], body)


def _stop(pve: FakePVE, req: Request) -> None:
    """qemu-server QemuServer.pm vm_stop -> _do_vm_stop: check_running first (a stopped VM
    is a no-op, even if locked), then the lock; vm_stop_cleanup applies pending changes."""
    vm = exists_on_node(pve, req.params["node"], req.int("vmid"))
    if vm.status != "running":
        return
    check_lock(vm)
    vm.status = "stopped"
    apply_pending(vm)


def stop(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm vm_stop: root-only parameters, then the worker (qmstop)."""
    root_only(req, "skiplock", "keepActive", "migratedfrom")
    if f"vm:{req.params['vmid']}" in pve.state.ha_resources and "migratedfrom" not in req.params:
        # vm_stop of an HA-managed VM only runs `ha-manager crm-command stop` in a `hastop`
        # task; the HA manager stops the VM later. The fake has no CRM: it keeps running.
        return run_task(pve, req, req.params["node"], "hastop", req.params["vmid"], lambda w: None)

    def body(warnings: list[str]) -> None:
        time.sleep(pve.state.latency.stop)
        with pve.lock:
            in_task(lambda: _stop(pve, req))

    return run_task(pve, req, req.params["node"], "qmstop", req.params["vmid"], body)


def _destroy_checks(pve: FakePVE, req: Request) -> Vm:
    """qemu-server API2/Qemu.pm destroy_vm, $early_checks (no lock check there)."""
    vmid = req.int("vmid")
    vm = pve.vm(req.params["node"], vmid)
    if str(vm.config.get("protection", "0")) in ("1", "true", "yes", "on"):
        # qemu-server QemuConfig.pm, check_protection
        raise ApiError(500, f"can't remove VM {vmid} - protection mode enabled")
    exists_on_node(pve, req.params["node"], vmid)
    if f"vm:{vmid}" in pve.state.ha_resources and not req.flag("purge"):
        raise ApiError(
            500, f"unable to remove VM {vmid} - used in HA resources and purge parameter not set."
        )
    if vm.status == "running":
        raise ApiError(500, f"VM {vmid} is running - destroy failed")
    return vm


def _destroy(pve: FakePVE, req: Request) -> Vm:
    """qemu-server QemuServer.pm destroy_vm: the lock, and a template's base disks must
    not back a linked clone; the config becomes `lock: destroyed` until it is removed."""
    vm = _destroy_checks(pve, req)
    if vm.config.get("lock") != "suspended":
        check_lock(vm)
    if vm.is_template and any(v.clone_of == vm.vmid for v in pve.state.vms.values()):
        for key in sorted(vm.config):
            value = str(vm.config[key])
            if DISK_KEYS.match(key) and not drive_is_cdrom(value):
                volid = drive_options(value)[0]
                raise ApiError(500, f"base volume '{volid}' is still in use by linked cloned")
    vm.config = {"lock": "destroyed"}
    vm.pending, vm.pending_delete = {}, []
    return vm


def destroy(pve: FakePVE, req: Request) -> Any:
    """qemu-server API2/Qemu.pm destroy_vm: early checks answer at once, the worker
    (qmdestroy) repeats them under the config lock."""
    root_only(req, "skiplock")
    with pve.lock:
        _destroy_checks(pve, req)

    def body(warnings: list[str]) -> None:
        with pve.lock:
            vm = in_task(lambda: _destroy(pve, req))
        time.sleep(pve.state.latency.delete)
        with pve.lock:
            if pve.state.vms.get(vm.vmid) is vm:
                del pve.state.vms[vm.vmid]
            if req.flag("purge"):  # the worker's "purging VM ... from related configurations"
                delete_service(pve, f"vm:{vm.vmid}", purge=True)

    return run_task(pve, req, req.params["node"], "qmdestroy", req.params["vmid"], body)


# -- tasks -------------------------------------------------------------------------------------
UPID = re.compile(
    r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
    r"([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$"
)


def exit_status(task: Task) -> str | None:
    """pve-common UPID.pm read_status of the log's last line, as fork_worker writes it:
    "TASK OK" -> "OK", "TASK WARNINGS: n" -> "WARNINGS: n", "TASK ERROR: text" -> text."""
    if task.exitstatus == "OK" and task.warnings:
        return f"WARNINGS: {len(task.warnings)}"
    return task.exitstatus


def task_status(pve: FakePVE, req: Request) -> Any:
    """pve-manager API2/Tasks.pm read_task_status: the UPID's fields (pve-common UPID.pm
    decode), a token's task split into user and tokenid, and exitstatus once stopped."""
    upid = req.params["upid"]
    found = UPID.match(upid)
    if not found:
        raise param_error("upid", "unable to parse worker upid")
    with pve.lock:
        task = pve.state.tasks.get(upid)
        if task is None or task.node != req.params["node"]:
            raise param_error("upid", "no such task")
        out: dict[str, Any] = {
            "upid": upid,
            "node": found[1],
            "pid": int(found[3], 16),
            "pstart": int(found[4], 16),
            "starttime": int(found[5], 16),
            "type": found[6],
            "id": found[7],
            "user": found[8],
            "status": task.status,
        }
        if "!" in out["user"]:
            out["user"], out["tokenid"] = out["user"].split("!", 1)
        if task.status == "stopped":
            out["exitstatus"] = exit_status(task)
        return out


ROUTES: list[Route] = [
    *STORAGE_ROUTES,
    *HA_ROUTES,
    ("GET", "/version", version),
    ("GET", "/access/permissions", permissions),
    ("GET", "/cluster/nextid", nextid),
    ("GET", "/cluster/resources", resources),
    ("GET", "/nodes", nodes),
    ("GET", "/nodes/{node}/status", node_status),
    ("GET", "/nodes/{node}/network", network),
    ("GET", "/nodes/{node}/qemu", vm_list),
    ("GET", "/nodes/{node}/qemu/{vmid}/config", vm_config),
    ("GET", "/nodes/{node}/qemu/{vmid}/pending", vm_pending),
    ("POST", "/nodes/{node}/qemu/{vmid}/config", config_async),
    ("PUT", "/nodes/{node}/qemu/{vmid}/config", config_sync),
    ("POST", "/nodes/{node}/qemu/{vmid}/clone", clone),
    ("PUT", "/nodes/{node}/qemu/{vmid}/resize", resize),
    ("GET", "/nodes/{node}/qemu/{vmid}/status/current", vm_status),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/start", start),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/stop", stop),
    ("DELETE", "/nodes/{node}/qemu/{vmid}", destroy),
    ("GET", "/nodes/{node}/tasks/{upid}/status", task_status),
]
