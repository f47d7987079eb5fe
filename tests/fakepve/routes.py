"""The route table: (method, PVE path template, handler). Add a row to serve more of PVE.

A handler reads `req.params` (strings, path parameters included, already checked against
the schema), changes `pve.state` under `pve.lock`, and returns the `data` PVE would answer.
Slow operations return `pve.run_task(...)`'s UPID; their body sleeps for the step's
latency and then changes the state.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from tests.fakepve.server import ApiError, FakePVE, Request, Route, TaskFailed
from tests.fakepve.state import Vm
from tests.fakepve.storage_routes import STORAGE_ROUTES

DISK_KEYS = re.compile(r"^(scsi|virtio|sata|ide)\d+$")


# -- reading ---------------------------------------------------------------------------------
def version(pve: FakePVE, req: Request) -> Any:
    return {"version": pve.state.version, "release": pve.state.release, "repoid": "fake0000"}


def permissions(pve: FakePVE, req: Request) -> Any:
    perms = pve.state.permissions
    wanted = req.params.get("path")
    return {p: dict(v) for p, v in perms.items() if wanted is None or p == wanted}


def nextid(pve: FakePVE, req: Request) -> Any:
    # Racy like PVE: it reserves nothing, so two callers may get the same id.
    with pve.lock:
        if "vmid" in req.params:
            if req.int("vmid") in pve.state.vms:
                raise ApiError(
                    400,
                    "Parameter verification failed.",
                    {"vmid": f"VM {req.params['vmid']} already exists"},
                )
            return req.params["vmid"]
        vmid = 100
        while vmid in pve.state.vms:
            vmid += 1
        return str(vmid)


def _resource(vm: Vm) -> dict[str, Any]:
    out = {
        "id": f"qemu/{vm.vmid}",
        "type": "qemu",
        "vmid": vm.vmid,
        "node": vm.node,
        "name": vm.config.get("name", f"VM {vm.vmid}"),
        "status": vm.status,
        "template": 1 if vm.is_template else 0,
        "maxmem": int(str(vm.config.get("memory", 512))) * 2**20,
    }
    for key in ("tags", "lock"):
        if key in vm.config:
            out[key] = vm.config[key]
    return out


def resources(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        kind = req.params.get("type")
        out: list[dict[str, Any]] = []
        if kind in (None, "vm"):
            out += [_resource(vm) for vm in sorted(pve.state.vms.values(), key=lambda v: v.vmid)]
        if kind in (None, "node"):
            out += [
                {"id": f"node/{n}", "type": "node", "node": n, "status": "online"}
                for n in pve.state.nodes
            ]
        return out


def nodes(pve: FakePVE, req: Request) -> Any:
    return [
        {
            "node": name,
            "status": "online",
            "maxmem": n.memory_total,
            "mem": n.memory_total - n.memory_free,
        }
        for name, n in pve.state.nodes.items()
    ]


def _node(pve: FakePVE, req: Request) -> Any:
    return pve.node_state(req.params["node"])


def node_status(pve: FakePVE, req: Request) -> Any:
    node = _node(pve, req)
    used = node.memory_total - node.memory_free
    return {"memory": {"total": node.memory_total, "free": node.memory_free, "used": used}}


def network(pve: FakePVE, req: Request) -> Any:
    return [{"iface": b, "type": "bridge", "active": 1} for b in _node(pve, req).bridges]


def vm_list(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        return [_resource(vm) for vm in pve.state.vms.values() if vm.node == req.params["node"]]


def vm_config(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        return {
            **vm.config,
            "digest": hashlib.sha1(repr(sorted(vm.config.items())).encode()).hexdigest(),
        }


def vm_status(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        out = {"vmid": vm.vmid, "status": vm.status, "name": vm.config.get("name")}
        if "lock" in vm.config:
            out["lock"] = vm.config["lock"]
        return out


# -- changing ------------------------------------------------------------------------------
def _unlocked(vm: Vm) -> None:
    if "lock" in vm.config:
        raise ApiError(500, f"VM is locked ({vm.config['lock']})")


def clone(pve: FakePVE, req: Request) -> Any:
    node, newid = req.params["node"], req.int("newid")
    with pve.lock:
        source = pve.vm(node, req.int("vmid"))
        if newid in pve.state.vms:
            raise ApiError(500, f"unable to create VM {newid}: config file already exists")
        if not source.is_template and not req.flag("full"):
            raise ApiError(
                500, "Linked clone feature is not supported for this VM (not a template)"
            )
        # Like create_and_lock_config: the new VM exists at once, empty and locked.
        vm = Vm(newid, node, {"lock": "clone"})
        pve.state.vms[newid] = vm
    disk_storage = req.params.get("storage") or "local-lvm"
    latency = pve.state.latency

    def body() -> None:
        slots = pve.storage_slots(disk_storage)
        if not slots.acquire(timeout=latency.lock_timeout):
            raise TaskFailed(
                "clone failed: can't lock file "
                f"'/var/lock/pve-manager/pve-storage-{disk_storage}' - got timeout"
            )
        try:
            time.sleep(latency.clone)
        finally:
            slots.release()
        with pve.lock:
            config = {
                k: v for k, v in source.config.items() if k not in ("template", "description")
            }
            for key, value in list(config.items()):
                if DISK_KEYS.match(key) and isinstance(value, str) and "cloudinit" in value:
                    config[key] = f"{disk_storage}:vm-{newid}-cloudinit,media=cdrom"
                elif DISK_KEYS.match(key) and "media=cdrom" not in str(value):
                    size = re.search(r"size=(\w+)", str(value))
                    config[key] = f"{disk_storage}:base-{source.vmid}-disk-0/vm-{newid}-disk-0" + (
                        f",size={size[1]}" if size else ""
                    )
            config["name"] = req.params.get("name", f"Copy-of-VM-{source.config.get('name')}")
            if "description" in req.params:
                config["description"] = req.params["description"]
            vm.config = config

    def undo() -> None:
        # PVE removes the half-made config when the clone worker fails.
        if pve.state.vms.get(newid) is vm:
            del pve.state.vms[newid]

    return pve.run_task(req, node, "qmclone", str(source.vmid), body, on_fail=undo)


def _apply_config(vm: Vm, params: dict[str, str]) -> None:
    for key in re.split(r"[,;\s]+", params.get("delete", "")):
        if key:
            vm.config.pop(key, None)
    skip = {"node", "vmid", "delete", "digest", "skiplock", "background_delay"}
    for key, value in params.items():
        if key not in skip:
            vm.config[key] = value


def config_async(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        _unlocked(vm)

    def body() -> None:
        time.sleep(pve.state.latency.config)
        with pve.lock:
            _apply_config(vm, req.params)

    return pve.run_task(req, req.params["node"], "qmconfig", str(vm.vmid), body)


def config_sync(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        _unlocked(vm)
        if req.fail_task:
            raise ApiError(500, req.fail_task)
        _apply_config(vm, req.params)
    return None


_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "": 1}


def _bytes(size: str) -> int:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", size)
    if not found:
        raise ApiError(400, "Parameter verification failed.", {"size": "bad size"})
    return int(float(found[1]) * _UNITS[found[2]])


def resize(pve: FakePVE, req: Request) -> Any:
    disk = req.params["disk"]
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        _unlocked(vm)
        current = str(vm.config.get(disk, ""))
        if not current:
            raise ApiError(500, f"disk '{disk}' does not exist")
    old = re.search(r"size=(\w+)", current)
    new_size = req.params["size"]
    if new_size.startswith("+"):
        raise ApiError(500, "relative sizes are not modelled by the fake")
    if old and _bytes(new_size) < _bytes(old[1]):
        raise ApiError(500, "shrinking disks is not supported")

    def body() -> None:
        time.sleep(pve.state.latency.resize)
        with pve.lock:
            value = str(vm.config[disk])
            value = re.sub(r",size=\w+", "", value) + f",size={new_size}"
            vm.config[disk] = value

    return pve.run_task(req, req.params["node"], "resize", str(vm.vmid), body)


def _power(target: str, kind: str, seconds: str) -> Any:
    def handler(pve: FakePVE, req: Request) -> Any:
        with pve.lock:
            vm = pve.vm(req.params["node"], req.int("vmid"))
            _unlocked(vm)
            if vm.is_template:
                raise ApiError(500, "you can't start a vm if it's a template")

        def body() -> None:
            time.sleep(getattr(pve.state.latency, seconds))
            with pve.lock:
                if target == "running" and vm.status == "running":
                    raise TaskFailed(f"VM {vm.vmid} already running")
                vm.status = target

        return pve.run_task(req, req.params["node"], kind, str(vm.vmid), body)

    return handler


def destroy(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        _unlocked(vm)
        if vm.status == "running":
            raise ApiError(500, f"VM {vm.vmid} is running - destroy failed")

    def body() -> None:
        time.sleep(pve.state.latency.delete)
        with pve.lock:
            if pve.state.vms.get(vm.vmid) is vm:
                del pve.state.vms[vm.vmid]

    return pve.run_task(req, req.params["node"], "qmdestroy", str(vm.vmid), body)


def task_status(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        task = pve.state.tasks.get(req.params["upid"])
        if task is None:
            raise ApiError(500, f"no such task '{req.params['upid']}'")
        out = {
            "upid": task.upid,
            "node": task.node,
            "type": task.type,
            "id": task.id,
            "user": task.user,
            "starttime": task.starttime,
            "status": task.status,
            "pid": 1,
            "pstart": 1,
        }
        if task.exitstatus is not None:
            out["exitstatus"] = task.exitstatus
        return out


ROUTES: list[Route] = [
    *STORAGE_ROUTES,
    ("GET", "/version", version),
    ("GET", "/access/permissions", permissions),
    ("GET", "/cluster/nextid", nextid),
    ("GET", "/cluster/resources", resources),
    ("GET", "/nodes", nodes),
    ("GET", "/nodes/{node}/status", node_status),
    ("GET", "/nodes/{node}/network", network),
    ("GET", "/nodes/{node}/qemu", vm_list),
    ("GET", "/nodes/{node}/qemu/{vmid}/config", vm_config),
    ("POST", "/nodes/{node}/qemu/{vmid}/config", config_async),
    ("PUT", "/nodes/{node}/qemu/{vmid}/config", config_sync),
    ("POST", "/nodes/{node}/qemu/{vmid}/clone", clone),
    ("PUT", "/nodes/{node}/qemu/{vmid}/resize", resize),
    ("GET", "/nodes/{node}/qemu/{vmid}/status/current", vm_status),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/start", _power("running", "qmstart", "start")),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/stop", _power("stopped", "qmstop", "stop")),
    ("DELETE", "/nodes/{node}/qemu/{vmid}", destroy),
    ("GET", "/nodes/{node}/tasks/{upid}/status", task_status),
]
