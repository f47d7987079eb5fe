"""Terminal chatter shared by the commands: warnings and yes/no confirmation."""

from __future__ import annotations

import sys

from generator.errors import UsageError


def warn(message: str) -> None:
    print(message if message.startswith("warning:") else f"warning: {message}", file=sys.stderr)


def confirm(question: str) -> bool:
    """Ask on a terminal; refuse rather than hang when nobody can answer."""
    if not sys.stdin.isatty():
        raise UsageError("not a terminal: pass --yes to apply without confirmation")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
