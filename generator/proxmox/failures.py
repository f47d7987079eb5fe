"""Why a Proxmox call failed, in a user's words, and whether it is worth retrying.

`classify` turns a proxmoxer or requests exception into a PveError: an HTTP answer keeps
Proxmox's own text, a call that got no answer at all names the likely cause.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
import traceback
from dataclasses import dataclass, field
from typing import Any

from generator.environment import CONNECT_TIMEOUT_ENV, READ_TIMEOUT_ENV, TOKEN_ENV, Environment
from generator.errors import HomelabError

# -- what is worth retrying ------------------------------------------------------------------
# Every `die` in an API handler reaches us as a 500 whose reason is the die's text
# (pve-manager PVE/HTTPServer.pm, sub rest_handler: a plain die becomes
# HTTP_INTERNAL_SERVER_ERROR with message $err). Nearly all of them are facts ("VM 105
# already running", "unable to create VM ..."), so a 500 is permanent unless its text is one
# of these, which say "busy, try again":
TRANSIENT_DIES = (
    # pve-common src/PVE/Tools.pm, sub lock_file_full: "can't lock file '$filename' - $@"
    # where $@ is run_with_timeout's "got timeout" (the storage or VM config lock).
    re.compile(r"can't lock file '[^']*' - got timeout"),
    # pve-cluster src/PVE/Cluster.pm, $cfs_lock: a shared storage's lock is a cluster-wide
    # one (pve-storage Plugin.pm, cluster_lock_storage), and its timeout reads so.
    re.compile(r"cfs-lock '[^']*' error: got lock request timeout"),
    # pve-common src/PVE/RESTEnvironment.pm, sub fork_worker: the worker did not start.
    re.compile(r"got no worker upid"),
)
# pveproxy hands each API call to pvedaemon (http://localhost:85) or to another cluster
# node (https://<ip>:8006) with AnyEvent::HTTP, and passes AnyEvent::HTTP's own status on
# (pve-http-server src/PVE/APIServer/AnyEvent.pm, sub proxy_request). 595: connecting failed
# (pvedaemon restarting or overloaded), 596: sending the request or reading the header failed
# (including its 30 s timeout), 597: the body was cut off. The handler may or may not have
# run, so the caller looks again before retrying. 599 ("other, usually nonretryable") is not
# retried.
PROXY_CONNECT_FAILED = 595
PROXY_RELAY_FAILED = frozenset({PROXY_CONNECT_FAILED, 596, 597})
# pveproxy itself never sends these (no 502/503/504 in pve-http-server or pve-manager); a
# reverse proxy in front of it (nginx, HAProxy, Caddy) does when pveproxy is busy or down.
GATEWAY_BUSY = frozenset({502, 503, 504})
# Left permanent on purpose: every 4xx (the request is wrong; parameter errors are 400),
# 501 (no such API path, or a request pve-http-server cannot parse: AnyEvent.pm
# handle_request / authenticate_and_handle_request) and 506 (an upload it cannot take:
# AnyEvent.pm, sub file_upload_multipart and process_header).


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `connect` covers TCP and the TLS handshake: pveproxy on a LAN does both in
    milliseconds, so 10 s of silence means nothing answers there. `read` is the longest
    silence while waiting for an answer: PVE answers a clone or an upload only once it has
    handled it, which slow home hardware can take well over proxmoxer's 5 s."""

    connect: float = 10.0
    read: float = 60.0

    @classmethod
    def from_environment(cls, env: Environment) -> Timeouts:
        return cls(
            connect=_seconds(env.pve_connect_timeout, CONNECT_TIMEOUT_ENV, cls.connect),
            read=_seconds(env.pve_read_timeout, READ_TIMEOUT_ENV, cls.read),
        )

    def capped(self, remaining: float | None) -> Timeouts:
        """No call outlives a caller's deadline by more than a second."""
        if remaining is None:
            return self
        limit = max(1.0, remaining)
        return Timeouts(min(self.connect, limit), min(self.read, limit))


def _seconds(text: str | None, name: str, default: float) -> float:
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise HomelabError(f"{name}={text} is not a number of seconds above 0")
    return value


class PveError(HomelabError):
    """A call PVE refused or a task that failed; `transient` errors are worth retrying."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        transient: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.transient = transient
        self.status = status  # the HTTP status of PVE's answer; None for a task or no answer


class Unreachable(PveError):
    """No HTTP answer at all: the name, the network, the port or TLS. Permanent when the host
    never answered (nothing to wait for), transient once it has (a restart, a hiccup)."""


@dataclass(frozen=True)
class Attempt:
    """The call that failed, as `classify` needs it."""

    method: str
    path: str
    host: str
    port: int
    answered_before: bool = True
    timeouts: Timeouts = field(default_factory=Timeouts)
    body: str = ""  # the error answer's body: newer PVE puts the whole message there

    @property
    def where(self) -> str:
        return f"{self.method} /{self.path}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


WRONG_PORT_HINT = "is proxmox.port pveproxy's port? it listens on 8006"


def task_succeeded(exit_status: str) -> bool:
    """pve-common src/PVE/RESTEnvironment.pm, fork_worker: a worker that ends without dying
    writes "OK", or "WARNINGS: n" when it logged warnings (e.g. a `delete` of an option
    that was not set); anything else is its die text."""
    return exit_status == "OK" or re.fullmatch(r"WARNINGS: \d+", exit_status) is not None


def task_failed(exit_status: str) -> PveError:
    """A task's exit status is its worker's die text; only a lock wait is worth retrying."""
    return PveError(f"task failed: {exit_status}", transient=is_transient_die(exit_status))


def is_transient_die(text: str) -> bool:
    return any(pattern.search(text) for pattern in TRANSIENT_DIES)


def is_transient_status(status: int, text: str) -> bool:
    """An HTTP error answer: retry only what says "busy" rather than "wrong"."""
    if status in GATEWAY_BUSY or status in PROXY_RELAY_FAILED:
        return True
    return status == 500 and is_transient_die(text)


def classify(exc: Exception, attempt: Attempt) -> PveError:
    """A failed call as the PveError users see. Exceptions that are neither an HTTP answer
    nor a network failure are bugs (ours or a library's): re-raised unchanged, so the CLI's
    boundary writes a crash log."""
    import requests
    from proxmoxer.core import ResourceException

    if isinstance(exc, ResourceException):
        return _http_error(exc, attempt)
    if isinstance(exc, requests.RequestException):
        return _network_error(exc, attempt)
    raise exc


# -- HTTP answers ------------------------------------------------------------------------------
def proxmox_text(reason: str, body: str, errors: Any) -> str:
    """Proxmox's own words: the body's `message` (complete) or else the HTTP reason (its
    first line), then per-parameter `errors`."""
    data = _body_json(body)
    message = str(data.get("message") or "").strip()
    text = message if message.startswith(reason.strip()) else reason.strip()
    if message and text != message:
        text = f"{text}: {message}"
    # The body's own `errors` map; proxmoxer's stand-in for a body that is not JSON
    # ({"errors": b"..."}, e.g. a 401's empty body) says nothing a user can act on.
    found = data.get("errors") if data else errors
    if isinstance(found, dict):
        found = {k: v for k, v in found.items() if isinstance(v, str) and v.strip()}
        if found:
            text += " " + "; ".join(f"'{k}': {v.strip()}" for k, v in found.items())
    return text


def _body_json(body: str) -> dict[str, Any]:
    import json

    try:
        data = json.loads(body) if body else None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _http_error(exc: Any, attempt: Attempt) -> PveError:
    status = int(exc.status_code)
    text = f"{status} {proxmox_text(str(exc.content or ''), attempt.body, exc.errors)}"
    where = attempt.where
    if status == 401:
        return PveError(
            f"{where}: Proxmox refused the API token ({text})",
            f"check proxmox.token_id and the secret ({TOKEN_ENV} or the secrets store)",
        )
    if status == 403:
        return PveError(f"{where}: permission denied ({text})", "see README: API token")
    return PveError(f"{where}: {text}", transient=is_transient_status(status, text), status=status)


# -- no answer at all --------------------------------------------------------------------------
def causes(exc: BaseException) -> list[BaseException]:
    """`exc` and everything it wraps: requests wraps urllib3, which wraps the socket's error."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)
        wrapped = [a for a in current.args if isinstance(a, BaseException)]
        todo += [reason if isinstance(reason, BaseException) else None, *wrapped]
        todo += [current.__cause__, current.__context__]
    return seen


def _has(chain: list[BaseException], *kinds: type[BaseException]) -> bool:
    return any(isinstance(c, kinds) for c in chain)


def _errno(chain: list[BaseException]) -> int | None:
    return next((c.errno for c in chain if isinstance(c, OSError) and c.errno), None)


def _in_tls_handshake(chain: list[BaseException]) -> bool:
    """urllib3 reports a stalled handshake as a read timeout; its frames tell them apart."""
    for cause in chain:
        frames = traceback.extract_tb(cause.__traceback__)
        if any(f.name in ("do_handshake", "_validate_conn") for f in frames):
            return True
    return False


def network_reason(exc: BaseException, attempt: Attempt) -> tuple[str, str]:
    """(why, hint) for a request that got no HTTP answer, in a user's words."""
    import requests
    from urllib3.exceptions import NameResolutionError

    chain = causes(exc)
    number = _errno(chain)
    timeouts = attempt.timeouts
    if _has(chain, ssl.SSLCertVerificationError):
        detail = next(
            c.verify_message for c in chain if isinstance(c, ssl.SSLCertVerificationError)
        )
        return (
            detail,
            "set proxmox.ca_file to Proxmox's CA, /etc/pve/pve-root-ca.pem on the host",
        )
    if _has(chain, socket.gaierror, NameResolutionError):
        return "the name does not resolve", "check proxmox.host in cluster.yaml, and DNS"
    if _has(chain, ConnectionRefusedError):
        return "connection refused", "is pveproxy running? check proxmox.port"
    if _has(chain, requests.exceptions.ConnectTimeout):
        return (
            f"no answer within {timeouts.connect:g} s",
            "is the host up and proxmox.host right? a firewall may drop the packets",
        )
    if _has(chain, requests.exceptions.Timeout, TimeoutError, socket.timeout):
        if _in_tls_handshake(chain):
            return (
                f"connected, but no TLS handshake within {timeouts.connect:g} s",
                WRONG_PORT_HINT,
            )
        return (
            f"connected, but {attempt.where} got no answer within {timeouts.read:g} s",
            f"pveproxy is slow or stuck; {READ_TIMEOUT_ENV} allows longer",
        )
    if _has(chain, ssl.SSLError):
        detail = next((str(c.reason) for c in chain if isinstance(c, ssl.SSLError)), "")
        return f"TLS handshake failed ({detail})", WRONG_PORT_HINT
    if _has(chain, ConnectionResetError):
        return "the connection was reset", "pveproxy restarting?"
    if number == errno.EHOSTUNREACH:
        return "no route to host", "is the host up? check proxmox.host"
    if number == errno.ENETUNREACH:
        return "the network is unreachable", "check this machine's network"
    if _has(chain, requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return "the connection closed without an answer", "pveproxy restarting?"
    return f"the request failed ({type(exc).__name__})", "check proxmox.host and proxmox.port"


def _network_error(exc: Exception, attempt: Attempt) -> PveError:
    why, hint = network_reason(exc, attempt)
    if _has(causes(exc), ssl.SSLCertVerificationError):
        # A wrong certificate stays wrong: never worth a retry.
        return Unreachable(f"TLS verification of {attempt.address} failed: {why}", hint)
    if not attempt.answered_before:
        # First contact: a wrong name, port or host; waiting does not fix it.
        return Unreachable(f"cannot reach {attempt.address}: {why}", hint)
    return Unreachable(
        f"{attempt.where}: connection to {attempt.address} failed: {why}", transient=True
    )
