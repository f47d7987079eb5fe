"""Which failures are retried: the table at `classify`, then end to end through `boot`.

Transient (looked at again, then retried): a 5xx from the layers in front of an API handler
(502/503/504 from a reverse proxy, 595/596/597 from pveproxy relaying to pvedaemon), the
lock's "got timeout", "got no worker upid", a task that failed on the lock, and a network
failure once the host has answered. Permanent (reported once): every 4xx, 501, 506, a 500
that is any other handler `die`, 599, a network failure on first contact, a TLS verification
failure, and any exception of our own.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from proxmoxer.core import ResourceException

from generator.proxmox import seeds
from generator.proxmox.client import Client
from generator.proxmox.failures import (
    Attempt,
    PveError,
    Timeouts,
    classify,
    proxmox_text,
    task_failed,
    task_succeeded,
)
from tests.fakes.pve import Fault, make_tls, running_fake
from tests.fakes.pve.harness import FAST_RETRY, assert_converged, boot, make_cluster

LOCK_VM = "can't lock file '/var/lock/qemu-server/lock-201.conf' - got timeout"
LOCK_STORAGE = "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout"
LOCK_SHARED = "cfs-lock 'storage-ceph' error: got lock request timeout"


def http(status: int, reason: str, errors: Any = None) -> ResourceException:
    """What proxmoxer raises for an HTTP error answer: PVE's text is the HTTP reason."""
    return ResourceException(status, "", reason, errors=errors)


def refused() -> requests.RequestException:
    return requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))


def reset() -> requests.RequestException:
    return requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset"))


def unresolvable() -> requests.RequestException:
    return requests.exceptions.ConnectionError(socket.gaierror(-2, "Name or service not known"))


def bad_certificate() -> requests.RequestException:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    return requests.exceptions.SSLError(error)


@dataclass(frozen=True)
class Row:
    name: str
    error: Callable[[], Exception]
    transient: bool
    says: str
    answered_before: bool = True


TABLE = [
    # -- HTTP answers: the request reached Proxmox -------------------------------------------
    Row("400 parameter error", lambda: http(400, "Parameter verification failed."), False, "400"),
    Row("401 token refused", lambda: http(401, "authentication failure"), False, "API token"),
    Row("403 no permission", lambda: http(403, "Permission check failed"), False, "permission"),
    Row("404", lambda: http(404, "Not Found"), False, "404 Not Found"),
    Row("4xx never, whatever it says", lambda: http(400, "got timeout"), False, "400"),
    Row("500 die: running", lambda: http(500, "VM 105 already running"), False, "already"),
    Row(
        "500 die: create",
        lambda: http(500, "unable to create VM 201 - no space left"),
        False,
        "unable to create VM 201",
    ),
    Row(
        "500 die: bad upload",
        lambda: http(500, "wrong Content-Disposition 'file' in multipart, expected 'form-data'"),
        False,
        "expected 'form-data'",
    ),
    Row("500 die: missing", lambda: http(500, "VM 201 does not exist"), False, "does not exist"),
    Row(
        "500 die: a QMP timeout is not the lock",
        lambda: http(500, "VM 201 qmp command 'query-status' failed - got timeout"),
        False,
        "qmp",
    ),
    Row("501 no such path", lambda: http(501, "Method 'GET /x' not implemented"), False, "501"),
    Row(
        "506 upload type",
        lambda: http(506, "upload 'Content-Type 'x' not implemented"),
        False,
        "506",
    ),
    Row("599 AnyEvent other", lambda: http(599, "garbled URL"), False, "599"),
    Row("500 VM config lock", lambda: http(500, LOCK_VM), True, "got timeout"),
    Row("500 storage lock", lambda: http(500, LOCK_STORAGE), True, "got timeout"),
    Row("500 shared storage lock", lambda: http(500, LOCK_SHARED), True, "lock request timeout"),
    Row(
        "500 no worker",
        lambda: http(500, "got no worker upid - start worker failed"),
        True,
        "no worker upid",
    ),
    Row("502 proxy in front", lambda: http(502, "Bad Gateway"), True, "502"),
    Row("503 proxy in front", lambda: http(503, "Service Unavailable"), True, "503"),
    Row("504 proxy in front", lambda: http(504, "Gateway Timeout"), True, "504"),
    Row("595 pvedaemon down", lambda: http(595, "Connection refused"), True, "595"),
    Row("596 pvedaemon slow", lambda: http(596, "Connection timed out"), True, "596"),
    Row("597 answer cut off", lambda: http(597, "Broken pipe"), True, "597"),
    # -- no HTTP answer ---------------------------------------------------------------------
    Row("refused, first contact", refused, False, "connection refused", answered_before=False),
    Row("refused after answering", refused, True, "connection refused"),
    Row("reset, first contact", reset, False, "was reset", answered_before=False),
    Row("reset after answering", reset, True, "was reset"),
    Row("unresolvable", unresolvable, False, "does not resolve", answered_before=False),
    Row(
        "connect timeout, first contact",
        lambda: requests.exceptions.ConnectTimeout("timed out"),
        False,
        "no answer within 10 s",
        answered_before=False,
    ),
    Row(
        "connect timeout after answering",
        lambda: requests.exceptions.ConnectTimeout("timed out"),
        True,
        "no answer within 10 s",
    ),
    Row(
        "read timeout after answering",
        lambda: requests.exceptions.ReadTimeout("timed out"),
        True,
        "POST /nodes/pve/qemu/9000/clone got no answer within 60 s",
    ),
    Row("TLS verification", bad_certificate, False, "self-signed certificate"),
]


@pytest.mark.parametrize("row", TABLE, ids=lambda r: r.name)
def test_classify(row: Row) -> None:
    attempt = Attempt("POST", "nodes/pve/qemu/9000/clone", "pve.lan", 8006, row.answered_before)
    error = classify(row.error(), attempt)
    assert error.transient is row.transient
    assert row.says in str(error)
    assert "HTTPSConnectionPool" not in str(error) and "urllib3" not in str(error)


@pytest.mark.parametrize(
    ("exit_status", "transient"),
    [
        (LOCK_STORAGE, True),
        (f"clone failed: {LOCK_SHARED}", True),
        ("VM 201 already running", False),
        ("unknown", False),
    ],
)
def test_task_failures(exit_status: str, transient: bool) -> None:
    assert task_failed(exit_status).transient is transient
    assert not task_succeeded(exit_status)


@pytest.mark.parametrize("exit_status", ["OK", "WARNINGS: 1", "WARNINGS: 12"])
def test_tasks_that_only_warned_succeeded(exit_status: str) -> None:
    # pve-common RESTEnvironment.pm, fork_worker: warnings do not fail a task.
    assert task_succeeded(exit_status)


@pytest.mark.parametrize("bug", [TypeError("x"), KeyError("k"), AttributeError("a")])
def test_our_own_exceptions_are_not_wrapped(bug: Exception) -> None:
    with pytest.raises(type(bug)):
        classify(bug, Attempt("GET", "version", "pve.lan", 8006))


def test_a_bug_under_client_call_passes_through(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**params: Any) -> Any:
        return params["missing"]  # a KeyError in code of ours under Client.call

    client = Client(make_cluster(None).proxmox, "secret", warn=lambda _: None)
    monkeypatch.setattr(client, "_api", lambda: lambda path: SimpleNamespace(get=broken))
    monkeypatch.setattr(client, "_use_timeouts", lambda api: None)
    with pytest.raises(KeyError):
        client.call("GET", "version")


@pytest.mark.parametrize(
    ("reason", "body", "errors", "said"),
    [
        ("VM 201 already running", {"message": "VM 201 already running\n"}, None, None),
        ("unable to create VM 201", {"message": "unable to create VM 201\nfull"}, None, None),
        ("Bad Gateway", {"message": "upstream gone"}, None, "Bad Gateway: upstream gone"),
        ("Parameter verification failed.", {}, {"newid": "invalid format\n"}, None),
        ("no body", None, None, "no body"),
        # A 401 has no body; proxmoxer then hands over {"errors": b""}: nothing to show.
        ("Authentication failed!", None, {"errors": b""}, "Authentication failed!"),
    ],
)
def test_proxmox_text_prefers_the_bodys_whole_message(
    reason: str, body: dict[str, str] | None, errors: Any, said: str | None
) -> None:
    text = proxmox_text(reason, json.dumps(body) if body is not None else "", errors)
    if said is not None:
        assert text == said
    elif body and body.get("message"):
        assert text == body["message"].strip()
    else:
        assert text == "Parameter verification failed. 'newid': invalid format"


# -- end to end: boot against the fake ------------------------------------------------------
def _posts(fake: Any, suffix: str) -> int:
    return sum(1 for c in fake.state.mutating_calls() if c.path.endswith(suffix))


@pytest.mark.parametrize(
    ("step", "kind", "suffix", "text"),
    [
        ("upload", "500", "/upload", "upload failed: POST /nodes/pve/storage/local/upload: 500"),
        ("clone", "task", "/clone", "clone failed: task failed: injected task failure (clone)"),
        ("start", "500", "/status/start", "start failed: POST /nodes/pve/qemu/201/status/start"),
    ],
)
def test_permanent_failures_are_reported_once(
    tmp_path: Path, step: str, kind: str, suffix: str, text: str
) -> None:
    with running_fake(tmp_path) as fake:
        fake.state.faults.append(Fault(step, kind))
        run = boot(fake, make_cluster(fake, 1, 0))
        (error,) = run.errors
        assert error.startswith(f"k3s-server-1 (VM 201): {text}"), error
        assert _posts(fake, suffix) == 1  # not retried
        assert not any(e.state == "retry" for e in run.events)


@pytest.mark.parametrize(
    ("step", "kind", "suffix"),
    [("clone", "lock", "/clone"), ("start", "noupid", "/status/start"), ("config", "reset", "")],
)
def test_transient_failures_are_retried_after_a_fresh_look(
    tmp_path: Path, step: str, kind: str, suffix: str
) -> None:
    with running_fake(tmp_path) as fake:
        cluster = make_cluster(fake, 1, 0)
        fake.state.faults.append(Fault(step, kind))
        run = boot(fake, cluster)
        assert not run.errors
        assert [e.step for e in run.events if e.state == "retry"] == [
            "configure" if step == "config" else step
        ]
        if suffix:
            assert _posts(fake, suffix) == 2
        fake.wait_idle()
        assert_converged(fake, cluster)


def test_a_bug_fails_its_vm_with_a_crash_log_and_the_others_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = seeds.upload_iso

    def broken(client: Any, node: str, ref: Any, texts: Any) -> None:
        if "k3s-server-1" in str(ref):
            raise KeyError("oops")
        real(client, node, ref, texts)

    monkeypatch.setattr(seeds, "upload_iso", broken)
    with running_fake(tmp_path) as fake:
        cluster = make_cluster(fake, 1, 1)
        run = boot(fake, cluster)
        (error,) = run.errors
        prefix = "k3s-server-1 (VM 201): upload failed: homelab-gen bug (KeyError); details are in "
        assert error.startswith(prefix), error
        assert error.endswith(" (please report it with that file)")
        log = Path(error.removeprefix(prefix).split(" ")[0])
        assert "KeyError: 'oops'" in log.read_text() and "Traceback" in log.read_text()
        log.unlink()
        assert fake.state.vms[301].status == "running"


# -- end to end: answers the fake cannot give, from a tiny stub ------------------------------
@dataclass
class Stub:
    """An HTTPS stand-in for pveproxy: /version answers 200; other paths answer the queued
    statuses in turn, then 200."""

    answers: list[tuple[int, str]]
    calls: int = 0


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[tuple[Stub, int, Path]]:
    tls = make_tls(tmp_path / "stub-tls")
    state = Stub([])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            status, reason = (200, "OK")
            if not self.path.endswith("/version"):
                state.calls += 1
                if state.answers:
                    status, reason = state.answers.pop(0)
            body = json.dumps({"data": {"version": "9.1"}} if status == 200 else {"data": None})
            self.send_response(status, reason)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, server.server_address[1], tls.ca_file
    finally:
        server.shutdown()
        server.server_close()


def _stub_client(port: int, ca_file: Path) -> Client:
    pve = make_cluster(None, port=port, ca_file=str(ca_file)).proxmox
    return Client(pve, "secret", retry=FAST_RETRY, timeouts=Timeouts(2, 2), warn=lambda _: None)


@pytest.mark.parametrize(
    ("status", "reason", "retried"),
    [
        (503, "Service Unavailable", True),
        (502, "Bad Gateway", True),
        (595, "Connection refused", True),
        (596, "Connection timed out", True),
        (501, "Method 'GET /cluster/resources' not implemented", False),
        (506, "unable to parse request header", False),
        (500, "VM 105 already running", False),
    ],
)
def test_client_get_retries_only_transient_answers(
    stub: tuple[Stub, int, Path], status: int, reason: str, retried: bool
) -> None:
    state, port, ca_file = stub
    state.answers = [(status, reason)] * 2
    client = _stub_client(port, ca_file)
    client.get("version")
    if retried:
        assert client.get("cluster/resources") == {"version": "9.1"}
        assert state.calls == 3
    else:
        with pytest.raises(PveError, match=f"{status} {reason}"):
            client.get("cluster/resources")
        assert state.calls == 1
