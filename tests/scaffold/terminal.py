"""Drive a command through a pseudo-terminal, as a user at a keyboard would (stdlib pty).

pty.fork gives the child the terminal as its controlling tty, so Ctrl-C (\\x03) becomes a
SIGINT and Ctrl-D (\\x04) an end of file, just as on a real terminal.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import time
from pathlib import Path

CTRL_C = "\x03"
CTRL_D = "\x04"


class Terminal:
    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: never returns
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = ""
        self.status: int | None = None

    def expect(self, text: str, timeout: float = 10.0) -> str:
        """Read until TEXT shows; return everything read up to it (and drop that part)."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if not self._read(deadline - time.monotonic()):
                raise AssertionError(f"{text!r} never came; the terminal shows:\n{self.output}")
        before, _, self.output = self.output.partition(text)
        return before + text

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def line(self, text: str) -> None:
        self.send(text + "\r")

    def interrupt(self, tries: int = 3) -> None:
        """Ctrl-C at a prompt. CPython's input() checks for a signal only when its read is
        interrupted: a SIGINT that lands after the prompt is written but before the read
        starts is noticed at the next key. No person types that fast, a test under load
        does: so wait a moment, and press Ctrl-C again while nothing happens."""
        for _ in range(tries):
            time.sleep(0.2)
            self.send(CTRL_C)
            deadline = time.monotonic() + 2
            while "interrupted" not in self.output and time.monotonic() < deadline:
                self._read(min(0.1, deadline - time.monotonic()))
            if "interrupted" in self.output:
                return

    def wait(self, timeout: float = 30.0) -> int:
        """Read everything to the end and return the exit code (or 128+signal)."""
        deadline = time.monotonic() + timeout
        while self._read(deadline - time.monotonic()):
            pass
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                self.status = os.waitstatus_to_exitcode(status)
                return self.status if self.status >= 0 else 128 - self.status
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"no exit after {timeout}s; the terminal shows:\n{self.output}")

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except ProcessLookupError:
                pass
            self.status = -9

    def _read(self, timeout: float) -> bool:
        if timeout <= 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.output += data.decode(errors="replace").replace("\r\n", "\n")
        return True
