"""The QEMU guest agent endpoints for the fake PVE, with answers scripted per VM and per
moment.

    guests = Guests()
    guests.vm(201).interfaces = [AGENT_DOWN, ["10.0.0.11"]]   # down once, then up
    guests.vm(201).files["/etc/rancher/k3s/k3s.yaml"] = [None, text]  # missing, then there
    guests.vm(201).commands["cloud-init status --format json"] = [ExecScript(out=...)]
    fake = FakePVE(state, tls, routes=ROUTES + agent_routes(guests))

Each list is consumed one answer per call and its last answer repeats, so "per poll"
scripts need no clock. A VM that is not running, or has no Guest entry, answers like PVE
does when its agent is not there. Privileges are checked like PVE 9's permission rules
(from the API schema) against PveState.permissions on /vms or /vms/<vmid>.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tests.fakes.pve import guest_seed, schema
from tests.fakes.pve.server import ApiError, FakePVE, Request, Route

T = TypeVar("T")
AGENT_DOWN = "QEMU guest agent is not running"
NO_AGENT_CONFIGURED = "No QEMU guest agent configured"


class Script(Generic[T]):
    """Answers consumed one per call; the last one repeats."""

    def __init__(self, answers: list[T]) -> None:
        if not answers:
            raise ValueError("a script needs at least one answer")
        self.answers = answers  # the test's own list: appending to it extends the script
        self.calls = 0

    def next(self) -> T:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer


@dataclass
class ExecScript:
    """One run of a command: `running` exec-status polls say "not exited" first."""

    out: str = ""
    err: str = ""
    exitcode: int = 0
    running: int = 0


@dataclass
class Guest:
    # Each answer: a list of IPv4 addresses (agent up) or an error text (agent down).
    interfaces: list[list[str] | str] = field(default_factory=lambda: [AGENT_DOWN])
    # path -> answers: the content, or None while the file does not exist.
    files: dict[str, list[str | None]] = field(default_factory=dict)
    # "program arg ..." -> runs; an unknown program fails like a missing binary.
    commands: dict[str, list[ExecScript]] = field(default_factory=dict)
    _scripts: dict[str, Script[Any]] = field(default_factory=dict, repr=False)
    _pids: dict[int, list[Any]] = field(default_factory=dict, repr=False)

    def script(self, key: str, answers: list[Any]) -> Script[Any]:
        """The script for `key`; a list the test replaced starts over."""
        current = self._scripts.get(key)
        if current is None or current.answers is not answers:
            current = self._scripts[key] = Script(answers)
        return current


@dataclass
class Guests:
    guests: dict[int, Guest] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_pid: int = 1000

    def vm(self, vmid: int) -> Guest:
        return self.guests.setdefault(vmid, Guest())


# The endpoints' parameters for the fallback schema (used when ../shared is absent).
_NODE = {"type": "string"}
_VMID = {"type": "integer", "minimum": 100, "maximum": 999999999}
schema.FALLBACK.update(
    {
        ("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces"): {
            "node": _NODE,
            "vmid": _VMID,
        },
        ("GET", "/nodes/{node}/qemu/{vmid}/agent/file-read"): {
            "node": _NODE,
            "vmid": _VMID,
            "file": {"type": "string"},
            "count": {"type": "integer", "optional": 1, "minimum": 1, "maximum": 16777216},
            "decode": {"type": "boolean", "optional": 1},
        },
        ("POST", "/nodes/{node}/qemu/{vmid}/agent/exec"): {
            "node": _NODE,
            "vmid": _VMID,
            "command": {"type": "array"},
            "input-data": {"type": "string", "optional": 1, "maxLength": 65536},
        },
        ("GET", "/nodes/{node}/qemu/{vmid}/agent/exec-status"): {
            "node": _NODE,
            "vmid": _VMID,
            "pid": {"type": "integer"},
        },
    }
)


def _guest(pve: FakePVE, guests: Guests, req: Request, endpoint: str) -> Guest:
    # The privileges (VM.GuestAgent.* on PVE 9, VM.Monitor on 8) are the schema's
    # `permissions`, checked for every endpoint in server.py.
    vmid = req.int("vmid")
    with pve.lock:
        # qemu-server API2/Qemu/Agent.pm: load_config first ("Configuration file ... does
        # not exist"), then QemuServer/Agent.pm assert_agent_available: only a missing
        # `agent` key is "not configured"; agent: 0 on a running VM fails the guest-ping.
        vm = pve.vm(req.params["node"], vmid)
        agent = vm.config.get("agent")
        if agent is None:
            raise ApiError(500, NO_AGENT_CONFIGURED)
        if vm.status != "running":
            raise ApiError(500, f"VM {vmid} is not running")
        enabled = str(agent).split(",")[0].removeprefix("enabled=")
        if enabled not in ("1", "on", "yes", "true"):
            raise ApiError(500, AGENT_DOWN)
    guest = guests.guests.get(vmid)
    if guest is None:
        raise ApiError(500, AGENT_DOWN)
    return guest


def _interface_list(ips: list[str]) -> list[dict[str, Any]]:
    loopback = {
        "name": "lo",
        "hardware-address": "00:00:00:00:00:00",
        "ip-addresses": [
            {"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8},
            {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128},
        ],
    }
    ens18 = {
        "name": "ens18",
        "hardware-address": "bc:24:11:00:00:02",
        "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": ip, "prefix": 24} for ip in ips]
        + [{"ip-address-type": "ipv6", "ip-address": "fe80::be24:11ff:fe00:2", "prefix": 64}],
    }
    return [loopback, ens18]


def _sha256sum(pve: FakePVE, req: Request, path: str) -> ExecScript:
    """An unscripted `sha256sum FILE`: the user-data the VM booted with is the one file the
    fake's guests hold (tests/fakes/pve/guest_seed.py)."""
    with pve.lock:
        vm = pve.vm(req.params["node"], req.int("vmid"))
        out, err, code = guest_seed.sha256sum(vm, path)
    return ExecScript(out=out, err=err, exitcode=code)


def agent_routes(guests: Guests) -> list[Route]:
    def interfaces(pve: FakePVE, req: Request) -> Any:
        guest = _guest(pve, guests, req, "network-get-interfaces")
        with guests.lock:
            answer = guest.script("interfaces", guest.interfaces).next()
        if isinstance(answer, str):
            raise ApiError(500, answer)
        return {"result": _interface_list(answer)}

    def file_read(pve: FakePVE, req: Request) -> Any:
        guest = _guest(pve, guests, req, "file-read")
        path = req.params["file"]
        with guests.lock:
            content = guest.script(f"file:{path}", guest.files.get(path, [None])).next()
        if content is None and path not in guest.files:
            content = guest_seed.booted_text(pve, req, path)
        if content is None:
            raise ApiError(
                500,
                f"Agent error: Failed to open file '{path}' (mode: 'r'): No such file or directory",
            )
        return {"content": content}

    def exec_(pve: FakePVE, req: Request) -> Any:
        guest = _guest(pve, guests, req, "exec")
        command = req.params["command"].split("\0")
        key = " ".join(command)
        with guests.lock:
            if key in guest.commands:
                run = guest.script(f"exec:{key}", guest.commands[key]).next()
            elif command[0] == "sha256sum" and len(command) == 2:
                run = _sha256sum(pve, req, command[1])
            else:
                run = ExecScript(err=f"{command[0]}: not scripted in the fake", exitcode=127)
            guests.next_pid += 1
            pid = guests.next_pid
            guest._pids[pid] = [run, run.running]
        return {"pid": pid}

    def exec_status(pve: FakePVE, req: Request) -> Any:
        guest = _guest(pve, guests, req, "exec-status")
        with guests.lock:
            entry = guest._pids.get(req.int("pid"))
            if entry is None:
                raise ApiError(500, "Agent error: Invalid parameter 'pid'")
            run, running = entry
            if running > 0:
                entry[1] = running - 1
                return {"exited": 0}
        out: dict[str, Any] = {"exited": 1, "exitcode": run.exitcode}
        if run.out:
            out["out-data"] = run.out
        if run.err:
            out["err-data"] = run.err
        return out

    base = "/nodes/{node}/qemu/{vmid}/agent"
    return [
        ("GET", f"{base}/network-get-interfaces", interfaces),
        ("GET", f"{base}/file-read", file_read),
        ("POST", f"{base}/exec", exec_),
        ("GET", f"{base}/exec-status", exec_status),
    ]


# -- cloud-init outputs as each version prints them ----------------------------------------
JSON_COMMAND = "cloud-init status --format json"
LONG_COMMAND = "cloud-init status --long"
# 22.4's argparse, given a flag it does not know.
NO_FORMAT_FLAG = (
    "usage: /usr/bin/cloud-init [-h] [--version] [--file FILES] [--debug] [--force]\n"
    "                           {init,modules,single,query,dhclient-hook,features,analyze,"
    "devel,collect-logs,clean,status,schema} ...\n"
    "/usr/bin/cloud-init: error: unrecognized arguments: --format json\n"
)


def cloud_init_json(status: str, errors: tuple[str, ...] = (), degraded: bool = False) -> str:
    """What `cloud-init status --format json` prints (25.1)."""
    extended = f"degraded {status}" if degraded else status
    if status == "error":
        extended = "error - done"
    return json.dumps(
        {
            "boot_status_code": "enabled-by-generator",
            "datasource": "nocloud",
            "detail": "DataSourceNoCloud [seed=/dev/sr0]",
            "errors": list(errors),
            "extended_status": extended,
            "last_update": "Thu, 26 Nov 2026 08:00:00 +0000",
            "recoverable_errors": {"WARNING": ["x"]} if degraded else {},
            "status": status,
        },
        indent=2,
    )


def cloud_init_long(status: str, detail: str = "DataSourceNoCloud [seed=/dev/sr0]") -> str:
    """What 22.4's `cloud-init status --long` prints."""
    return f"status: {status}\ntime: Thu, 26 Nov 2026 08:00:00 +0000\ndetail:\n{detail}\n"


def exec_for_json(status: str, errors: tuple[str, ...] = (), running: int = 0) -> ExecScript:
    code = 1 if status == "error" else 0
    return ExecScript(out=cloud_init_json(status, errors), exitcode=code, running=running)
