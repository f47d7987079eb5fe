"""The HTTPS server: token check, schema check, faults, latency and the call log around
the route table in routes.py."""

from __future__ import annotations

import json
import re
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from tests.fakes.pve import schema
from tests.fakes.pve.multipart import HttpFailure, boundary_of, parse_upload
from tests.fakes.pve.state import Call, Fault, NodeState, PveState, Task, Vm
from tests.fakes.tls import TLSFiles


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


class _Server(ThreadingHTTPServer):
    """A client that hangs up mid-answer is normal (a caller's timeout); any other exception
    in a handler is a bug of the fake, kept on `pve.crashes` so the test that caused it
    fails (tests/conftest.py) instead of a traceback landing in a later test's output."""

    # pveproxy listens with the kernel's largest backlog (pve-common src/PVE/Daemon.pm,
    # create_reusable_socket: Listen => SOMAXCONN). socketserver's 5 drops the SYNs of a
    # burst of new connections, which the client resends only after a 1 s timeout.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, pve: FakePVE, *args: Any) -> None:
        super().__init__(*args)
        self.pve = pve

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | ssl.SSLError | TimeoutError):
            return
        self.pve.crashes.append("".join(traceback.format_exc()))


class FakePVE:
    """Serve PVE's API for `state` on https://127.0.0.1:<port>/api2/json."""

    def __init__(self, state: PveState, tls: TLSFiles, routes: list[Route] | None = None) -> None:
        from tests.fakes.pve.routes import ROUTES

        self.state = state
        self.tls = tls
        self.lock = threading.RLock()
        self.routes = [(m, t, _pattern(t), h) for m, t, h in (routes or ROUTES)]
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._pid = 0x1000
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.crashes: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------
    # Every fake started in this process, so tests/conftest.py can check the calls the
    # project made against tests/proxmox/pve_endpoints.py.
    started: ClassVar[list[FakePVE]] = []

    def start(self) -> FakePVE:
        FakePVE.started.append(self)
        server = _Server(self, ("127.0.0.1", 0), _handler_class(self))
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
            # pve-manager PVE/API2Tools.pm, resolve_proxyto, then HTTPServer.pm's
            # remote_node_ip: a name that is no cluster node is looked up in DNS
            # (pve-common PVE/Network.pm, get_ip_from_hostname), and the die is a 500.
            raise ApiError(
                500,
                f"hostname lookup '{name}' failed - failed to get address info for: {name}:"
                " Name or service not known",
            )
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
                # pve-common RESTEnvironment.pm, fork_worker: the die text, chomped, its
                # newlines made spaces; UPID.pm read_status drops the log's "TASK ERROR: ".
                exit_status = str(exc).rstrip("\n").replace("\n", " ")
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
    """pve-common Tools.pm, lock_file_full's timeout text for the lock this call takes:
    the storage's for a clone (pve-storage Storage.pm, cluster_lock_storage), the VM
    config's for the rest (AbstractConfig.pm, lock_config). An upload takes no lock."""
    assert not template.endswith("/upload"), "PVE's upload takes no lock to time out"
    if template.endswith("/clone"):
        storage = params.get("storage") or "local-lvm"
        return f"can't lock file '/var/lock/pve-manager/pve-storage-{storage}' - got timeout"
    return f"can't lock file '/var/lock/qemu-server/lock-{params.get('vmid')}.conf' - got timeout"


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Repeated form keys (array parameters such as exec's `command`) joined by NUL. PVE's
    decode_urlencoded (AnyEvent.pm) makes them an array; the routes here read the array
    as one NUL-joined string."""
    out: dict[str, str] = {}
    for key, value in pairs:
        out[key] = f"{out[key]}\0{value}" if key in out else value
    return out


def decode_urlencoded(data: str) -> dict[str, str]:
    """AnyEvent.pm, sub decode_urlencoded: pairs split on `&` or `;`, `+` is a space, a
    key's value ends at its second `=` (Perl's split), repeated keys gather."""
    pairs: list[tuple[str, str]] = []
    for item in re.split(r"[&;]", data):
        if not item:
            continue
        key, *values = item.split("=")
        value = values[0] if values else ""
        pairs.append((_unquote(key), _unquote(value)))
    return _joined(pairs)


def _unquote(text: str) -> str:
    return urllib.parse.unquote(text.replace("+", " "))


# -- what pve-http-server answers --------------------------------------------------------
# Its version decides two things (libpve-http-server-perl 5.2.0, shipped from PVE 8.4 on:
# commits "use HTTP_INTERNAL_SERVER_ERROR were appropriate instead of '501'", "add error
# message into http body", "fix #6503: return api handler errors in the json body").
def modern_http_server(version: str) -> bool:
    major, minor = (int(x) for x in version.split(".")[:2])
    return (major, minor) >= (8, 4)


def major_of(version: str) -> int:
    return int(version.split(".")[0])


@dataclass
class Answer:
    """One HTTP answer as pve-http-server would send it."""

    status: int
    message: str
    body: bytes = b""
    content_type: str | None = None
    hang_up: bool = False  # the server dies outside any eval and never answers

    def status_line(self) -> tuple[int, str, bytes]:
        """AnyEvent.pm, sub response: the reason is the message's first line; a reason that
        still holds a CR or LF turns the answer into "400 Bad Request" with no body."""
        reason = self.message.split("\n", 1)[0] or HTTPStatus(self.status).phrase
        if "\r" in reason:
            return 400, "Bad Request", b""
        return self.status, reason, self.body


def server_error(version: str, status: int, message: str) -> Answer:
    """AnyEvent.pm, sub error: the HTTP server's own failures; since 5.2.0 the message is
    the (plain text) body too."""
    body = message.encode() if modern_http_server(version) else b""
    return Answer(status, message, body)


def die_status(version: str) -> int:
    """A die() inside handle_api2_request or file_upload_multipart: 500 since 5.2.0,
    501 before."""
    return 500 if modern_http_server(version) else 501


def handler_error(version: str, status: int, message: str, errors: dict[str, str] | None) -> Answer:
    """pve-manager PVE/HTTPServer.pm, rest_handler, then the json formatter
    (PVE/APIServer/Formatter/Standard.pm, prepare_response_data): data null, the
    errors map, and since 5.2.0 the message."""
    text = message if message.endswith("\n") else message + "\n"
    body: dict[str, Any] = {"data": None}
    if errors:
        body["errors"] = errors
    if modern_http_server(version):
        body["message"] = text
    return Answer(status, text, json.dumps(body).encode(), "application/json;charset=UTF-8")


# -- permissions (pve-access-control src/PVE/RPCEnvironment.pm) ----------------------------
def has_privilege(perms: dict[str, dict[str, int]], path: str, priv: str) -> bool:
    """RPCEnvironment.pm, permissions/compile_acl_path: the most specific ACL on the way
    from / to `path` wins; an ACL on a parent counts only where it propagates."""
    parts = [p for p in path.split("/") if p]
    found: dict[str, int] | None = None
    for depth in range(len(parts) + 1):
        at = "/" + "/".join(parts[:depth])
        acl = perms.get(at)
        if acl is None:
            continue
        exact = depth == len(parts)
        usable = {k: v for k, v in acl.items() if exact or v}
        if usable:
            found = usable
    return found is not None and priv in found


def perm_denied(what: str | None = None) -> ApiError:
    # pve-common src/PVE/Exception.pm, raise_perm_exc.
    return ApiError(403, "Permission check failed" + (f" ({what})" if what else ""))


def _template_replace(template: str, params: dict[str, str]) -> str:
    # pve-common src/PVE/Tools.pm, template_replace; then AccessControl normalize_path.
    path = re.sub(r"\{(\w+)\}", lambda m: params.get(m[1], ""), template)
    return "/" + "/".join(p for p in path.split("/") if p)


def run_perm_check(
    perms: dict[str, dict[str, int]], check: list[Any], params: dict[str, str], noerr: bool
) -> bool:
    """RPCEnvironment.pm, exec_api2_perm_check: `and`, `or` and `perm` tests."""
    test, *rest = check
    if test == "and":
        return all(run_perm_check(perms, sub, params, False) for sub in rest)
    if test == "or":
        if any(run_perm_check(perms, sub, params, True) for sub in rest):
            return True
        if noerr:
            return False
        raise perm_denied()
    if test == "perm":
        template, privs, *flat = rest
        options = dict(zip(flat[::2], flat[1::2], strict=True))
        needed = options.get("require_param")
        if needed and needed not in params:
            if noerr:
                return False
            raise perm_denied()
        path = _template_replace(template, params)
        held = [p for p in privs if has_privilege(perms, path, p)]
        enough = bool(held) if options.get("any") else len(held) == len(privs)
        if enough:
            return True
        if noerr:
            return False
        # RPCEnvironment.pm, check_any names all privileges; check names the first missing.
        missing = [p for p in privs if p not in held]
        raise perm_denied(f"{path}, " + ("|".join(privs) if options.get("any") else missing[0]))
    raise AssertionError(f"permission test {test!r} is not modelled")


def check_api2_permissions(pve: FakePVE, info: dict[str, Any], params: dict[str, str]) -> None:
    """RPCEnvironment.pm, check_api2_permissions, for an API token of a non-root user."""
    perm = info.get("permissions")
    if not perm:
        raise perm_denied("user != root@pam")
    if perm.get("user") == "all":
        return
    if perm.get("check"):
        run_perm_check(pve.state.permissions, perm["check"], params, False)
        return
    raise perm_denied()


# -- several hosts: pveproxy's proxy to the node a call names -----------------------------
# pve-manager PVE/HTTPServer.pm, rest_handler: an upload that would be proxied dies
# without a newline, so Perl appends where (the line is HTTPServer.pm's at pve-manager
# 14a22df3, 2026-08).
NO_UPLOAD_PROXY = "unable to proxy file uploads at /usr/share/perl5/PVE/HTTPServer.pm line 185."


def proxy_to_node(pve: FakePVE, template: str, params: dict[str, str]) -> None:
    """pve-manager PVE/HTTPServer.pm, rest_handler, after check_api2_permissions: a call
    whose `node` (every /nodes/{node}/... method has proxyto => 'node') is not the host
    answering is proxied to that host (pve-http-server AnyEvent.pm, proxy_request); an
    offline host never answers, and pveproxy relays AnyEvent::HTTP's status 595 ("errors
    during connection establishment") with the connect error as its reason. The schema
    check runs on the target host, so it comes after. `state.entry` None (the one-box
    world): uploads count as local; a host set offline is still one proxied to."""
    node = params.get("node")
    if not template.startswith("/nodes/{node}") or node not in pve.state.nodes:
        return
    if node == pve.state.entry:
        return
    if template.endswith("/upload") and pve.state.entry is not None:
        raise ApiError(500, NO_UPLOAD_PROXY)
    facts = pve.state.nodes[node]
    if not facts.online:
        raise Refused(Answer(595, facts.unreachable_reason))


def check_cfs_quorum(pve: FakePVE) -> None:
    """pve-cluster src/PVE/Cluster.pm, check_cfs_quorum: /etc/pve is read-only without
    quorum (corosync votequorum, one vote per node: see PveState.quorate)."""
    if not pve.state.quorate:
        raise ApiError(500, "cluster not ready - no quorum?")


# -- the request path -----------------------------------------------------------------------
API_BASE = "/api2/json"
UPLOAD_PATH = re.compile(r"^/nodes/([^/]+)/storage/([^/]+)/upload$")
# AnyEvent.pm: $known_methods, $limit_max_post.
DUPLICATE_PARAM = "duplicate parameter (already defined in URI) with conflicting values!"
KNOWN_METHODS = ("GET", "POST", "PUT", "DELETE")
LIMIT_MAX_POST = 512 * 1024


class Refused(Exception):
    """The request ends here with `answer`."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.message)
        self.answer = answer


def token_of(header: str | None) -> str | None:
    """pve-http-server Formatter.pm, extract_auth_value for `PVEAPIToken`."""
    found = re.search(r"(?:^|\s)PVEAPIToken(?:=|%3D)([^;]*)", header or "")
    return found[1] if found else None


@dataclass
class Incoming:
    """A request as the handler thread read it: method, path, headers and raw body."""

    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _version(pve: FakePVE) -> str:
    return pve.state.version


def read_params(
    pve: FakePVE, req: Incoming, rel: str
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """AnyEvent.pm, authenticate_and_handle_request after authentication: an upload's
    multipart body through file_upload_multipart, other bodies by Content-Type."""
    version = _version(pve)
    query = decode_urlencoded(req.query)
    content_type = req.header("Content-Type") or ""
    upload = req.method == "POST" and UPLOAD_PATH.match(rel)
    if upload:
        # HTTPServer.pm, auth_handler: uploads skip CSRF, so it checks the storage privilege
        # before any byte of the body is read; an error there has no body.
        store = upload[2]
        if not has_privilege(
            pve.state.permissions, f"/storage/{store}", "Datastore.AllocateTemplate"
        ):
            raise Refused(
                Answer(
                    403, f"Permission check failed (/storage/{store}, Datastore.AllocateTemplate)\n"
                )
            )
    if not req.body:
        return query, {}
    if req.method not in ("PUT", "POST"):
        raise Refused(server_error(version, 501, f"Unexpected content for method '{req.method}'"))
    if upload:
        kind, boundary = boundary_of(content_type)
        # These two die outside any eval: pveproxy logs them and never answers.
        if not (boundary and kind == "multipart/form-data") or "tmpfilename" in query:
            raise Refused(Answer(0, "", hang_up=True))
        try:
            parsed = parse_upload(req.body, boundary, query, major_of(version))
        except HttpFailure as exc:
            raise Refused(server_error(version, die_status(version), exc.text)) from exc
        return parsed.params, {"filename": (parsed.filename, parsed.data)}
    if len(req.body) > LIMIT_MAX_POST:
        raise Refused(server_error(version, 501, "for data too large"))
    kind = boundary_of(content_type)[0] if content_type else ""
    if kind not in ("", "application/x-www-form-urlencoded", "application/json"):
        raise Refused(
            server_error(version, 506, f"upload 'Content-Type '{content_type}' not implemented")
        )
    if kind == "application/json":
        params = {k: str(v) for k, v in json.loads(req.body).items()}
    else:
        params = decode_urlencoded(req.body.decode("utf-8", "replace"))
    # extract_params: query parameters win over the body's.
    return {**params, **query}, {}


def transport_checks(pve: FakePVE, req: Incoming) -> str:
    """AnyEvent.pm, process_header and authenticate_and_handle_request up to the handler:
    method, transfer encoding, the /api2/json prefix and the API token. Returns the path
    below /api2/json."""
    version = _version(pve)
    if req.method not in KNOWN_METHODS:
        raise Refused(Answer(501, f"method '{req.method}' not available"))
    encoding = req.header("Transfer-Encoding")
    if encoding and encoding.lower() == "chunked":
        raise Refused(server_error(version, 501, "chunked transfer encoding not supported"))
    if encoding:
        raise Refused(server_error(version, 501, f"Unknown transfer encoding '{encoding}'"))
    if not req.path.startswith(API_BASE + "/") and req.path != API_BASE:
        raise Refused(server_error(version, die_status(version), f"no such file '{req.path}'\n"))
    expected = f"{pve.state.token_id}={pve.state.token_secret}"
    if token_of(req.header("Authorization")) != expected:
        # HTTPServer.pm, auth_handler dies "Authentication failed!"; AnyEvent.pm answers
        # 401 with that reason, no body, after a 3 s delay (Latency.unauthorized here).
        time.sleep(pve.state.latency.unauthorized)
        raise Refused(Answer(401, "Authentication failed!\n"))
    return req.path[len(API_BASE) :] or "/"


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

        def handle_one_request(self) -> None:
            # Every method reaches _serve, so unknown ones get PVE's answer.
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._serve(self.command)
            self.wfile.flush()

        def _incoming(self) -> Incoming:
            url = urllib.parse.urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            chunked = (headers.get("transfer-encoding") or "").lower() == "chunked"
            length = 0 if chunked else int(headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            return Incoming(self.command, urllib.parse.unquote(url.path), url.query, headers, body)

        def _serve(self, method: str) -> None:
            req = self._incoming()
            call = Call(method, req.path.removeprefix(API_BASE), decode_urlencoded(req.query))
            call.user_agent = req.header("User-Agent") or ""
            with pve.lock:
                pve.state.calls.append(call)
            if pve.state.latency.request:
                time.sleep(pve.state.latency.request)
            entry = pve.state.nodes.get(pve.state.entry or "")
            if entry is not None and not entry.online:
                # The host the client talks to is down: no HTTP answer at all.
                call.status = -1
                self._reset()
                return
            try:
                rel = transport_checks(pve, req)
                params, files = read_params(pve, req, rel)
                call.params = dict(params)
                self._dispatch(call, method, rel, params, files)
            except Refused as refused:
                call.status = refused.answer.status_line()[0]
                if refused.answer.hang_up:
                    call.status = -1
                    self._reset()
                    return
                self._answer(refused.answer)

        def _dispatch(
            self,
            call: Call,
            method: str,
            rel: str,
            params: dict[str, str],
            files: dict[str, tuple[str, bytes]],
        ) -> None:
            version = _version(pve)
            try:
                template, handler, path_params = pve.match(method, rel)
                call.template = template
                # HTTPServer.pm, rest_handler: a body parameter may repeat a path one
                # only with the same value.
                for name in sorted(params):
                    if name in path_params and params[name] != path_params[name]:
                        raise ApiError(
                            400,
                            "Parameter verification failed.",
                            {name: DUPLICATE_PARAM},
                        )
                merged = {**params, **path_params}
                info = schema.endpoint_info(method, template, major_of(version))
                if info is not None:
                    check_api2_permissions(pve, info, merged)
                proxy_to_node(pve, template, merged)
                # RESTHandler.pm, handle: the schema check comes after the permissions.
                errors = schema.validate(method, template, merged, major_of(version))
                if errors:
                    raise ApiError(400, "Parameter verification failed.", errors)
                fault = pve.take_fault(method, template, merged)
                req = Request(method, template, rel, merged, files)
                if fault and fault.kind == "500":
                    raise ApiError(500, "injected internal server error")
                if fault and fault.kind == "lock":
                    raise ApiError(500, lock_text(template, merged))
                if fault and fault.kind == "noupid":
                    raise ApiError(500, "got no worker upid - start worker failed")
                if fault and fault.kind == "task":
                    req.fail_task = f"injected task failure ({template.rsplit('/', 1)[-1]})"
                if fault and fault.kind == "task-lock":
                    req.fail_task = lock_text(template, merged)
                data = handler(pve, req)
                if fault and fault.kind == "reset":
                    call.status = -1
                    self._reset()
                    return
                if fault and fault.kind == "relay":
                    # AnyEvent.pm, proxy_request: pvedaemon did the work, but its answer did
                    # not reach pveproxy within AnyEvent::HTTP's 30 s; pveproxy relays
                    # AnyEvent::HTTP's own status 596 and reason.
                    raise Refused(Answer(596, "Connection timed out"))
                call.status = 200
                payload = json.dumps({"data": data}).encode()
                self._answer(Answer(200, "OK", payload, "application/json;charset=UTF-8"))
            except ApiError as exc:
                answer = handler_error(version, exc.status, exc.message, exc.errors)
                call.status = answer.status_line()[0]
                self._answer(answer)

        def _answer(self, answer: Answer) -> None:
            status, reason, body = answer.status_line()
            self.send_response(status, reason)
            if body and answer.content_type:
                self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(body)))
            if status >= 400:
                # AnyEvent.pm, sub response: no keep-alive after an error.
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def _reset(self) -> None:
            # SO_LINGER 0 makes close() send a TCP RST: the client sees a reset connection.
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    return Handler
