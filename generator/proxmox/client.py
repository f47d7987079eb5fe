"""A proxmoxer connection with the timeouts, TLS rules, retries and task checks PVE needs."""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generator.errors import HomelabError
from generator.model import Proxmox

TOKEN_ENV = "HOMELAB_GEN_PVE_TOKEN"
# Slow home hardware answers a clone or an upload well after proxmoxer's 5 s default.
DEFAULT_TIMEOUT = 60.0
# PVE's known transient failures: its storage/config lock wait, and a busy pvedaemon.
TRANSIENT_TEXTS = ("got timeout", "got no worker upid", "connection reset", "temporarily")


class PveError(HomelabError):
    """A call PVE refused or a task that failed; `transient` errors are worth retrying."""

    def __init__(self, message: str, hint: str | None = None, transient: bool = False) -> None:
        super().__init__(message, hint)
        self.transient = transient


@dataclass(frozen=True)
class Retry:
    """Backoff for transient errors: base * 2^n seconds, capped, with jitter."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 20.0
    task_poll: float = 0.25
    task_poll_cap: float = 1.0
    task_timeout: float = 900.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.base * 2**attempt) * random.uniform(0.5, 1.0))


BeforeCall = Callable[[str, str], None]


def token_secret(stored: str | None) -> str:
    secret = os.environ.get(TOKEN_ENV) or stored
    if not secret:
        raise HomelabError(
            "no Proxmox API token secret",
            f"set {TOKEN_ENV}, or add proxmox_token to .homelab-gen/secrets.yaml",
        )
    return secret


def tls_verify(pve: Proxmox, warn: Callable[[str], None]) -> bool | str:
    """requests' `verify`: the pinned CA file, the system CAs, or off with a loud warning."""
    if not pve.verify_tls:
        warn(
            f"warning: TLS verification is OFF for {pve.host}:{pve.port}; anyone on the path"
            " can read your API token (set proxmox.ca_file to /etc/pve/pve-root-ca.pem instead)"
        )
        return False
    if pve.ca_file:
        path = os.path.expanduser(pve.ca_file)
        if not os.path.isfile(path):
            raise HomelabError(
                f"proxmox.ca_file {pve.ca_file} does not exist",
                "copy /etc/pve/pve-root-ca.pem from the Proxmox host",
            )
        return path
    return True


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


class Client:
    """GETs retry by themselves; a mutating call runs once and raises PveError, because only
    a fresh look at Proxmox can tell whether a failed change took effect."""

    def __init__(
        self,
        pve: Proxmox,
        secret: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        before_call: BeforeCall | None = None,
        warn: Callable[[str], None] = _stderr,
    ) -> None:
        self.pve = pve
        self.retry = retry or Retry()
        self.before_call = before_call
        self._secret = secret
        self._timeout = timeout
        self._verify = tls_verify(pve, warn)
        self._local = threading.local()
        self.base_url = f"https://{pve.host}:{pve.port}/api2/json"

    def _api(self) -> Any:
        # One session per thread: requests' Session is not documented as thread-safe.
        api = getattr(self._local, "api", None)
        if api is None:
            from proxmoxer import ProxmoxAPI

            user, _, name = self.pve.token_id.partition("!")
            api = ProxmoxAPI(
                self.pve.host,
                port=self.pve.port,
                user=user,
                token_name=name,
                token_value=self._secret,
                verify_ssl=self._verify,
                timeout=self._timeout,
                backend="https",
            )
            self._local.api = api
        return api

    def call(self, method: str, path: str, **params: Any) -> Any:
        """One request; errors come back as PveError (transient or not)."""
        if self.before_call:
            self.before_call(method, path)
        resource = self._api()(path)
        try:
            return getattr(resource, method.lower())(**params)
        except Exception as exc:  # proxmoxer and requests raise many kinds; classify them
            raise classify(exc, method, path, self.base_url) from exc

    def get(self, path: str, **params: Any) -> Any:
        for attempt in range(self.retry.attempts):
            try:
                return self.call("GET", path, **params)
            except PveError as exc:
                if not exc.transient or attempt == self.retry.attempts - 1:
                    raise
                time.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    def task(self, method: str, path: str, **params: Any) -> None:
        """A mutating call; if it answers a UPID, wait for the task and demand exitstatus OK."""
        answer = self.call(method, path, **params)
        if isinstance(answer, str) and answer.startswith("UPID:"):
            self.wait(answer)

    def wait(self, upid: str) -> None:
        node = upid.split(":")[1]
        delay = self.retry.task_poll
        deadline = time.monotonic() + self.retry.task_timeout
        while True:
            status = self.get(f"nodes/{node}/tasks/{upid}/status")
            if status.get("status") == "stopped":
                break
            if time.monotonic() > deadline:
                raise PveError(f"task {upid} still running after {self.retry.task_timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 1.5, self.retry.task_poll_cap)
        # blocking_status-style helpers return None on timeout; only "OK" means it worked.
        exit_status = str(status.get("exitstatus") or "unknown")
        if exit_status != "OK":
            raise PveError(f"task failed: {exit_status}", transient=True)


def classify(exc: Exception, method: str, path: str, base_url: str) -> PveError:
    import requests
    from proxmoxer.core import ResourceException

    where = f"{method} /{path}"
    if isinstance(exc, requests.exceptions.SSLError):
        return PveError(
            f"TLS verification of {base_url} failed: {_short(exc)}",
            "set proxmox.ca_file to Proxmox's CA (/etc/pve/pve-root-ca.pem on the host)",
        )
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return PveError(f"{where}: connection failed: {_short(exc)}", transient=True)
    if isinstance(exc, ResourceException):
        text = f"{exc.status_code} {exc.content}"
        if exc.errors:
            text += f" {exc.errors}"
        if exc.status_code == 401:
            return PveError(
                f"{where}: Proxmox refused the API token ({text})",
                f"check proxmox.token_id and the secret ({TOKEN_ENV} or secrets.yaml)",
            )
        if exc.status_code == 403:
            return PveError(f"{where}: permission denied ({text})", "see README: API token")
        # PVE answers 500 for a missing VM or volume too: a fact, not a hiccup.
        missing = "does not exist" in text
        transient = not missing and (
            exc.status_code >= 500 or any(t in text.lower() for t in TRANSIENT_TEXTS)
        )
        return PveError(f"{where}: {text}", transient=transient)
    return PveError(f"{where}: {_short(exc)}", transient=True)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."
