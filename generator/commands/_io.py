"""Terminal chatter shared by the commands: warnings, yes/no confirmation, and the spinner
line that shows what a long network wait is for."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from generator.errors import UsageError


def warn(message: str) -> None:
    print(message if message.startswith("warning:") else f"warning: {message}", file=sys.stderr)


def confirm(question: str) -> bool:
    """Ask on a terminal; refuse rather than hang when nobody can answer."""
    if not sys.stdin.isatty():
        raise UsageError("not a terminal: pass --yes to apply without confirmation")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


@contextmanager
def spinner() -> Iterator[None]:
    """Inside the block, a spinner line on stderr says what the network is being waited for
    (generator.waiting), on a terminal only: piped output stays free of it. It is gone when
    the block ends, so prompts, tables and errors come after it on a clean line."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    from generator.waiting import LOGGER

    with Console(stderr=True).status("starting", spinner="dots") as status:
        handler = _SpinnerText(status)
        LOGGER.addHandler(handler)
        try:
            yield
        finally:
            LOGGER.removeHandler(handler)


class _SpinnerText(logging.Handler):
    def __init__(self, status: Any) -> None:
        super().__init__()
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        self.status.update(f"waiting for {record.getMessage()}")
