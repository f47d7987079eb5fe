"""The one error type users see, and its exit codes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class HomelabError(Exception):
    """An error the user can act on. The CLI prints it without a traceback."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(HomelabError):
    """cluster.yaml (or another input) is wrong; carries every problem found at once."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: Iterable[str], source: str = "cluster.yaml") -> None:
        self.problems = tuple(problems)
        self.source = source
        super().__init__(f"{source} has {len(self.problems)} problem(s)")

    def __str__(self) -> str:
        return "\n".join([f"{self.source}: {len(self.problems)} problem(s)", *self.problems])


class UsageError(HomelabError):
    """A command was called in a way that cannot work (bad flag combination, wrong folder)."""

    exit_code = EXIT_BAD_INPUT


def write_crash_log() -> Path:
    """The traceback of the exception being handled, in a file a user can attach to a report.
    Call it from an `except` block."""
    # Imported here: every command imports this module, and only a crash needs these.
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="homelab-gen-crash-", suffix=".log", delete=False
    ) as handle:
        traceback.print_exc(file=handle)
    return Path(handle.name)


def bug(context: str, exc: BaseException) -> HomelabError:
    """An exception homelab-gen did not expect (a bug, not the user's doing) as one line that
    points at its crash log. Call it from the `except` block that caught `exc`."""
    log = write_crash_log()
    return HomelabError(
        f"{context}: homelab-gen bug ({type(exc).__name__}); details are in {log}",
        "please report it with that file",
    )
