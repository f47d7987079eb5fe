"""The HTTPS server: token check, schema check, faults, latency and the call log around
the route table in routes.py."""

from __future__ import annotations

import json
import re
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakepve import schema
from tests.fakepve.certs import TLSFiles
from tests.fakepve.state import Call, Fault, NodeState, PveState, Task, Vm


class ApiError(Exception):
    """An answer PVE gives with a non-2xx status; the message goes in the reason line."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


class TaskFailed(Exception):
    """Raised inside a task body: the task ends with this text as its exitstatus."""


@dataclass
class Request:
    method: str
    template: str
    path: str
    params: dict[str, str]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    fail_task: str | None = None

    def int(self, name: str) -> int:
        return int(self.params[name])

    def flag(self, name: str) -> bool:
        return self.params.get(name, "0").lower() in ("1", "true", "yes", "on")


Handler = Callable[["FakePVE", Request], Any]
Route = tuple[str, str, Handler]


def _pattern(template: str) -> re.Pattern[str]:
    # The last segment may hold slashes (volume ids like local:iso/x.iso).
    out = re.sub(r"\{volume\}$", r"(?P<volume>.+)", template)
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", out) + "$")


# Which mutating step a request is, for fault injection: (method, template suffix) -> step.
STEPS = (
    ("POST", "/upload", "upload"),
    ("POST", "/clone", "clone"),
    ("POST", "/config", "config"),
    ("PUT", "/config", "config"),
    ("PUT", "/resize", "resize"),
    ("POST", "/status/start", "start"),
    ("POST", "/status/stop", "stop"),
    ("DELETE", "/qemu/{vmid}", "delete"),
    ("DELETE", "/content/{volume}", "delete"),
)


def step_of(method: str, template: str) -> str | None:
    for verb, suffix, step in STEPS:
        if method == verb and template.endswith(suffix):
            return step
    return None


class FakePVE:
    """Serve PVE's API for `state` on https://127.0.0.1:<port>/api2/json."""

    def __init__(self, state: PveState, tls: TLSFiles, routes: list[Route] | None = None) -> None:
        from tests.fakepve.routes import ROUTES

        self.state = state
        self.tls = tls
        self.lock = threading.RLock()
        self.routes = [(m, t, _pattern(t), h) for m, t, h in (routes or ROUTES)]
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._pid = 0x1000
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakePVE:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FakePVE:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Let running tasks finish (a killed client leaves its tasks running, as on PVE)."""
        deadline = time.monotonic() + timeout
        while any(t.status == "running" for t in list(self.state.tasks.values())):
            if time.monotonic() > deadline:
                raise AssertionError("fake PVE tasks still running")
            time.sleep(0.005)

    # -- helpers for routes ------------------------------------------------------------------
    def vm(self, node: str, vmid: int) -> Vm:
        vm = self.state.vms.get(vmid)
        if vm is None or vm.node != node:
            raise ApiError(
                500, f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
            )
        return vm

    def node_state(self, name: str) -> NodeState:
        node = self.state.nodes.get(name)
        if node is None:
            raise ApiError(595, f"no such cluster node '{name}'")
        return node

    def storage_slots(self, storage: str) -> threading.BoundedSemaphore:
        with self.lock:
            if storage not in self._slots:
                self._slots[storage] = threading.BoundedSemaphore(self.state.latency.clone_slots)
            return self._slots[storage]

    def run_task(
        self,
        req: Request,
        node: str,
        kind: str,
        ident: str,
        body: Callable[[], None],
        on_fail: Callable[[], None] | None = None,
    ) -> str:
        """Start a worker like pvedaemon's fork_worker and answer its UPID at once."""
        with self.lock:
            self._pid += 1
            now = int(time.time())
            user = self.state.token_id
            upid = (
                f"UPID:{node}:{self._pid:08X}:{self._pid * 7:08X}:{now:08X}:{kind}:{ident}:{user}:"
            )
            task = Task(upid, node, kind, ident, user, now)
            self.state.tasks[upid] = task

        def work() -> None:
            try:
                if req.fail_task:
                    raise TaskFailed(req.fail_task)
                body()
                exit_status = "OK"
            except TaskFailed as exc:
                exit_status = str(exc)
                if on_fail:
                    with self.lock:
                        on_fail()
            with self.lock:
                task.exitstatus = exit_status
                task.status = "stopped"

        thread = threading.Thread(target=work, daemon=True)
        self._threads.append(thread)
        thread.start()
        return upid

    # -- dispatch ----------------------------------------------------------------------------
    def match(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]]:
        for verb, template, pattern, handler in self.routes:
            found = pattern.match(path)
            if found and verb == method:
                return (
                    template,
                    handler,
                    {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()},
                )
        raise ApiError(501, f"Method '{method} {path}' not implemented")

    def take_fault(self, method: str, template: str, params: dict[str, str]) -> Fault | None:
        step = step_of(method, template)
        if step is None:
            return None
        vmid = params.get("vmid")
        with self.lock:
            for fault in self.state.faults:
                if fault.times <= 0 or fault.step not in (step, "any"):
                    continue
                if fault.vmid is not None and str(fault.vmid) != vmid:
                    continue
                fault.times -= 1
                return fault
        return None


def lock_text(template: str, params: dict[str, str]) -> str:
    if template.endswith(("/clone", "/upload")):
        storage = params.get("storage") or "local-lvm"
        return f"can't lock file '/var/lock/pve-manager/pve-storage-{storage}' - got timeout"
    return f"can't lock file '/var/lock/qemu-server/lock-{params.get('vmid')}.conf' - got timeout"


def _parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in body.split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, _, data = part.partition(b"\r\n\r\n")
        data = data[:-2] if data.endswith(b"\r\n") else data
        disposition = next(
            (
                line
                for line in head.decode().split("\r\n")
                if line.lower().startswith("content-disposition")
            ),
            "",
        )
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if not name:
            continue
        if filename:
            files[name[1]] = (filename[1], data)
        else:
            fields[name[1]] = data.decode()
    return fields, files


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Repeated form keys (array parameters such as exec's `command`) joined by NUL, as
    PVE's HTTP server does before its schema splits them again."""
    out: dict[str, str] = {}
    for key, value in pairs:
        out[key] = f"{out[key]}\0{value}" if key in out else value
    return out


def _handler_class(pve: FakePVE) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without NODELAY each answer
            # waits ~40 ms for the client's delayed ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _read_params(self) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            kind = self.headers.get("Content-Type") or ""
            files: dict[str, tuple[str, bytes]] = {}
            if kind.startswith("multipart/form-data"):
                fields, files = _parse_multipart(body, kind)
                params.update(fields)
            elif body:
                pairs = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
                params.update(_joined(pairs))
            return params, files

        def _serve(self, method: str) -> None:
            params, files = self._read_params()
            raw_path = urllib.parse.urlsplit(self.path).path
            path = raw_path.removeprefix("/api2/json")
            call = Call(method, path, dict(params))
            with pve.lock:
                pve.state.calls.append(call)
            if pve.state.latency.request:
                time.sleep(pve.state.latency.request)
            try:
                self._authorize()
                template, handler, path_params = pve.match(method, path)
                for name, (filename, _) in files.items():
                    params[name] = filename
                errors = schema.validate(method, template, {**params, **path_params})
                if errors:
                    raise ApiError(400, "Parameter verification failed.", errors)
                params.update(path_params)
                fault = pve.take_fault(method, template, params)
                req = Request(method, template, path, params, files)
                if fault and fault.kind == "500":
                    raise ApiError(500, "injected internal server error")
                if fault and fault.kind == "lock":
                    raise ApiError(500, lock_text(template, params))
                if fault and fault.kind == "noupid":
                    raise ApiError(500, "got no worker upid - start worker failed")
                if fault and fault.kind == "task":
                    req.fail_task = f"injected task failure ({template.rsplit('/', 1)[-1]})"
                data = handler(pve, req)
                if fault and fault.kind == "reset":
                    call.status = -1
                    self._reset()
                    return
                call.status = 200
                self._send(200, "OK", {"data": data})
            except ApiError as exc:
                call.status = exc.status
                body: dict[str, Any] = {"data": None}
                if exc.errors:
                    body["errors"] = exc.errors
                self._send(exc.status, exc.message, body)

        def _authorize(self) -> None:
            expected = f"PVEAPIToken={pve.state.token_id}={pve.state.token_secret}"
            if self.headers.get("Authorization") != expected:
                raise ApiError(401, "authentication failure")

        def _send(self, status: int, reason: str, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status, reason.replace("\n", " "))
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _reset(self) -> None:
            # SO_LINGER 0 makes close() send a TCP RST: the client sees a reset connection.
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    return Handler
