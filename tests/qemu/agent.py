"""A small client for qemu-guest-agent over QEMU's unix-socket chardev.

The agent speaks JSON lines on a virtio-serial port. A client syncs first with
`guest-sync-delimited`, whose answer is preceded by a 0xFF byte, so stale replies left in
the channel from an earlier connection are skipped.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class AgentError(Exception):
    pass


@dataclass(frozen=True)
class Exec:
    exitcode: int
    out: str
    err: str


class GuestAgent:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._sock: socket.socket | None = None
        self._buffer = b""

    def close(self) -> None:
        if self._sock:
            self._sock.close()
            self._sock = None
        self._buffer = b""

    def wait_ready(self, deadline: float) -> None:
        """Return once the agent in the guest answers a sync, or raise at the deadline."""
        while True:
            try:
                self._connect()
                self._sync(timeout=3.0)
                return
            except (OSError, AgentError, TimeoutError):
                self.close()
                if time.monotonic() > deadline:
                    raise AgentError("the guest agent did not answer before the deadline") from None
                time.sleep(2)

    def call(
        self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 30
    ) -> Any:
        message: dict[str, Any] = {"execute": command}
        if arguments is not None:
            message["arguments"] = arguments
        self._send(message)
        reply = self._receive(timeout)
        if "error" in reply:
            raise AgentError(f"{command}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def exec(self, command: str, timeout: float = 60) -> Exec:
        """Run a shell command in the guest and wait for it."""
        started = self.call(
            "guest-exec", {"path": "/bin/sh", "arg": ["-c", command], "capture-output": True}
        )
        deadline = time.monotonic() + timeout
        while True:
            status = self.call("guest-exec-status", {"pid": started["pid"]})
            if status.get("exited"):
                return Exec(
                    exitcode=int(status.get("exitcode", -1)),
                    out=_decode(status.get("out-data")),
                    err=_decode(status.get("err-data")),
                )
            if time.monotonic() > deadline:
                raise AgentError(f"{command!r} still running after {timeout} s")
            time.sleep(0.5)

    def read_file(self, path: str) -> bytes:
        handle = self.call("guest-file-open", {"path": path, "mode": "r"})
        try:
            chunks = []
            while True:
                part = self.call("guest-file-read", {"handle": handle, "count": 1 << 16})
                chunks.append(base64.b64decode(part.get("buf-b64", "")))
                if part.get("eof") or not part.get("count"):
                    return b"".join(chunks)
        finally:
            self.call("guest-file-close", {"handle": handle})

    def shutdown(self) -> None:
        """Ask the guest to power off; no reply comes back when it does."""
        self._send({"execute": "guest-shutdown", "arguments": {"mode": "powerdown"}})

    def _connect(self) -> None:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(self._path))
            self._sock = sock

    def _sync(self, timeout: float) -> None:
        token = random.randint(1, 2**31)
        self._send({"execute": "guest-sync-delimited", "arguments": {"id": token}})
        deadline = time.monotonic() + timeout
        while True:
            self._skip_to_delimiter(deadline)
            reply = self._receive(deadline - time.monotonic())
            if reply.get("return") == token:
                return

    def _send(self, message: dict[str, Any]) -> None:
        assert self._sock is not None
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    def _skip_to_delimiter(self, deadline: float) -> None:
        while b"\xff" not in self._buffer:
            self._buffer = b""
            self._fill(deadline)
        self._buffer = self._buffer[self._buffer.index(b"\xff") + 1 :]

    def _receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            self._fill(deadline)
        line, _, self._buffer = self._buffer.partition(b"\n")
        line = line.replace(b"\xff", b"").strip()
        if not line:
            return self._receive(deadline - time.monotonic())
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise AgentError(f"unexpected reply {line!r}")
        return reply

    def _fill(self, deadline: float) -> None:
        assert self._sock is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the guest agent did not answer in time")
        self._sock.settimeout(left)
        data = self._sock.recv(1 << 16)
        if not data:
            raise AgentError("the guest agent channel closed")
        self._buffer += data


def _decode(data: str | None) -> str:
    return base64.b64decode(data).decode("utf-8", "replace") if data else ""
