"""Reading and writing files, with no knowledge of what they hold: friendly read errors,
atomic writes. The cluster repo's own state folder and its files are named here, since the
secrets store (below the repo's other code) keeps its files there too; the repo's other
paths (seeds, gitops tree, kubeconfig) are named in generator/naming.py."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from generator.errors import ConfigError, HomelabError, UsageError

STATE_DIR = ".homelab-gen"
SECRETS_FILE = f"{STATE_DIR}/secrets.yaml"  # mode 0600, git-ignored
DEPLOY_KEY_FILE = f"{STATE_DIR}/deploy-key.pub"  # the public half, for the git host
# What render wrote last, by digest: finds hand edits and orphans. It is tracked in git, so a
# fresh clone still tells a hand edit from an out-of-date file; it holds no secret.
RENDERED_FILE = ".homelab-gen-rendered.json"
LEGACY_RENDERED_FILE = f"{STATE_DIR}/rendered.json"  # where it was kept, untracked, before


def read_text(path: Path, what: str, hint: str) -> str:
    """The file's UTF-8 text. A missing file is a usage error and bytes that are not UTF-8
    are an input error (both exit 2), reported by line and column; other read failures
    (permissions, I/O) are plain errors."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no {what} here", hint) from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, expected the {what} file", hint) from None
    except OSError as exc:
        raise HomelabError(f"{path}: cannot read {what}: {exc}", "check the file") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([_not_utf8(data, exc)], source=str(path)) from None


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where the first bad byte is, as a line and column an editor shows (counted in the
    characters before it), not as a byte offset."""
    before = data[: exc.start].decode("utf-8", errors="replace")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    bad = data[exc.start : exc.end].hex(" ")
    return (
        f"line {line}, column {column}: byte(s) {bad} are not UTF-8 text"
        " (save the file as UTF-8, or retype the character there)"
    )


def _public_mode() -> int:
    """0666 less the user's umask: the mode a file holding no secret gets, as from `touch`.
    os.umask can only be read by setting it, so this happens once, at import, before any
    thread runs."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


PUBLIC_MODE = _public_mode()  # files holding no secret; secret files are 0600 always


def write_atomic(
    path: Path, data: str | bytes, mode: int = PUBLIC_MODE, durable: bool = True
) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file.

    durable=False skips the fsync: right for output that a re-render recreates, where an
    fsync per file would dominate the render time of a large cluster.
    """
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
