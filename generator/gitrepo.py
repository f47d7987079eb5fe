"""Git: the only module that runs git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from generator import environment
from generator.errors import HomelabError

_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "homelab-gen",
    "GIT_AUTHOR_EMAIL": "homelab-gen@localhost",
    "GIT_COMMITTER_NAME": "homelab-gen",
    "GIT_COMMITTER_EMAIL": "homelab-gen@localhost",
}


def available() -> bool:
    return shutil.which("git") is not None


def _git(directory: Path, *args: str) -> str:
    env = environment.for_child({} if _has_identity(directory) else _FALLBACK_IDENTITY)
    result = subprocess.run(
        ["git", *args], cwd=directory, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise HomelabError(
            f"git {' '.join(args)} failed in {directory}: {result.stderr.strip()}",
            "fix git there and commit by hand",
        )
    return result.stdout


def _has_identity(directory: Path) -> bool:
    result = subprocess.run(
        ["git", "config", "user.email"], cwd=directory, capture_output=True, text=True, check=False
    )
    return bool(result.stdout.strip())


def init_and_commit(directory: Path, message: str) -> None:
    _git(directory, "init", "--quiet", "--initial-branch=main")
    _git(directory, "add", "--all")
    _git(directory, "commit", "--quiet", "--message", message)
