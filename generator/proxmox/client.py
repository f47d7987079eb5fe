"""A proxmoxer connection with the timeouts, TLS rules, retries and task checks PVE needs.

What a failure means and whether it is worth retrying is failures.py's business."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from generator import __version__
from generator.config.model import Proxmox
from generator.errors import ConfigError
from generator.proxmox.failures import (
    Attempt,
    PveError,
    Timeouts,
    classify,
    task_failed,
    task_succeeded,
)
from generator.waiting import waiting_for

USER_AGENT = f"homelab-gen/{__version__}"


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
            raise ConfigError(
                [
                    f"proxmox.ca_file: {pve.ca_file} does not exist; expected the PEM file"
                    " of Proxmox's CA (copy /etc/pve/pve-root-ca.pem from the Proxmox host"
                    " there, or fix the path)"
                ]
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
        timeouts: Timeouts | None = None,
        retry: Retry | None = None,
        before_call: BeforeCall | None = None,
        warn: Callable[[str], None] = _stderr,
    ) -> None:
        self.pve = pve
        self.retry = retry or Retry()
        self.before_call = before_call
        self.timeouts = timeouts or Timeouts()
        self._secret = secret
        self._verify = tls_verify(pve, warn)
        self._local = threading.local()
        # Set by the first HTTP answer of any kind: from then on the host is known to exist,
        # so a refused or reset connection is a restart or a hiccup, not a wrong address.
        self.answered = False
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
                timeout=(self.timeouts.connect, self.timeouts.read),
                backend="https",
            )
            # proxmoxer keeps an error's reason and `errors` but drops the body's `message`,
            # which holds the whole text (the reason is only its first line).
            api._store["session"].hooks["response"].append(self._keep_error_body)
            # Names us in pveproxy's access log (and lets the test fakes tell our calls apart).
            api._store["session"].headers["User-Agent"] = USER_AGENT
            self._local.api = api
        return api

    def _keep_error_body(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._local.error_body = response.text[:4000] if response.status_code >= 400 else ""

    def _use_timeouts(self, api: Any) -> None:
        """Per call: the thread's deadline (see `until`) may shorten them."""
        deadline = getattr(self._local, "deadline", None)
        remaining = None if deadline is None else deadline - time.monotonic()
        now = self.timeouts.capped(remaining)
        # proxmoxer reads the timeout from the session's auth object on every request.
        api._store["session"].auth.timeout = (now.connect, now.read)

    @contextlib.contextmanager
    def until(self, deadline: float) -> Iterator[None]:
        """Calls from this thread inside the block give up by `deadline` (time.monotonic())."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = previous

    def call(self, method: str, path: str, **params: Any) -> Any:
        """One request; Proxmox's refusals and network failures come back as PveError
        (transient or not). Anything else is a bug and is not caught here."""
        import requests
        from proxmoxer.core import ResourceException

        if self.before_call:
            self.before_call(method, path)
        waiting_for(f"Proxmox at {self.pve.host}:{self.pve.port} ({method} /{path.lstrip('/')})")
        api = self._api()
        self._use_timeouts(api)
        self._local.error_body = ""
        try:
            answer = getattr(api(path), method.lower())(**params)
        except ResourceException as exc:
            self.answered = True
            raise classify(exc, self._attempt(method, path, answered=True)) from exc
        except requests.RequestException as exc:
            raise classify(exc, self._attempt(method, path, answered=self.answered)) from exc
        self.answered = True
        return answer

    def _attempt(self, method: str, path: str, answered: bool) -> Attempt:
        body = str(getattr(self._local, "error_body", ""))
        timeouts = Timeouts(*api_timeout(self._local.api))
        return Attempt(method, path, self.pve.host, self.pve.port, answered, timeouts, body)

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
        started, kind = time.monotonic(), upid.split(":")[5:7]
        while True:
            status = self.get(f"nodes/{node}/tasks/{upid}/status")
            if status.get("status") == "stopped":
                break
            waited = time.monotonic() - started
            waiting_for(f"Proxmox task {' '.join(kind)} on {node} ({waited:.0f} s)")
            if time.monotonic() > deadline:
                raise PveError(f"task {upid} still running after {self.retry.task_timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 1.5, self.retry.task_poll_cap)
        # blocking_status-style helpers return None on timeout, so read exitstatus ourselves.
        exit_status = str(status.get("exitstatus") or "unknown")
        if not task_succeeded(exit_status):
            raise task_failed(exit_status)


def api_timeout(api: Any) -> tuple[float, float]:
    connect, read = api._store["session"].auth.timeout
    return float(connect), float(read)
