"""The filesystem: reading inputs, and diff-then-apply writing of rendered trees."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from generator.errors import HomelabError

STATE_DIR = ".homelab-gen"
MANIFEST = f"{STATE_DIR}/rendered.json"


def read_text(path: Path, what: str, hint: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HomelabError(f"{path}: no {what} here", hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HomelabError(f"{path}: cannot read {what}: {exc}", "check the file") from None


def write_atomic(path: Path, data: str | bytes, mode: int = 0o644, durable: bool = True) -> None:
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


@dataclass(frozen=True)
class RenderedFile:
    text: str
    secret: bool = False

    @property
    def mode(self) -> int:
        return 0o600 if self.secret else 0o644


class Change(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    IDENTICAL = "identical"
    ORPHAN = "orphan"


@dataclass(frozen=True)
class FileDiff:
    path: str
    change: Change


def diff(root: Path, rendered: Mapping[str, RenderedFile]) -> list[FileDiff]:
    """Classify each rendered path against the disk; orphans are files we made before."""
    out = []
    for rel, item in sorted(rendered.items()):
        target = root / rel
        if not target.exists():
            change = Change.CREATE
        elif target.read_bytes() != item.text.encode() or _mode(target) != item.mode:
            change = Change.UPDATE
        else:
            change = Change.IDENTICAL
        out.append(FileDiff(rel, change))
    for rel in sorted(set(_previous(root)) - set(rendered)):
        if (root / rel).exists():
            out.append(FileDiff(rel, Change.ORPHAN))
    return out


def apply(root: Path, rendered: Mapping[str, RenderedFile], changes: list[FileDiff]) -> None:
    """Write created and updated files atomically; remove orphans we made and nobody edited."""
    previous = _previous(root)
    writes = {item.path for item in changes if item.change in (Change.CREATE, Change.UPDATE)}
    for folder in sorted({(root / path).parent for path in writes}):
        folder.mkdir(parents=True, exist_ok=True)
    for item in changes:
        target = root / item.path
        if item.path in writes:
            write_atomic(target, rendered[item.path].text, rendered[item.path].mode, durable=False)
        elif item.change is Change.ORPHAN and _digest(target) == previous.get(item.path):
            target.unlink()
    kept = {
        rel: digest
        for rel, digest in previous.items()
        if rel not in rendered and (root / rel).exists()
    }
    kept.update({rel: _text_digest(f.text) for rel, f in rendered.items()})
    write_atomic(
        root / MANIFEST, json.dumps(dict(sorted(kept.items())), indent=1) + "\n", durable=False
    )


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _previous(root: Path) -> dict[str, str]:
    try:
        data = json.loads((root / MANIFEST).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
