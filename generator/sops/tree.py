"""The document as sops walks it: which leaves it encrypts, each leaf's key path (its
additional data), and the times that authenticate the MAC (sops.go Tree.Encrypt)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from generator.errors import HomelabError
from generator.sops.values import to_bytes

DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"
"""sops's rule when a file names no other: keys ending so stay plain (sops.go)."""


@dataclass(frozen=True)
class Rules:
    """Which leaves sops encrypts (sops.go shouldBeEncrypted): a rule tests every key on the
    leaf's path, and the last rule given wins."""

    unencrypted_suffix: str | None = None
    encrypted_suffix: str | None = None
    unencrypted_regex: str | None = None
    encrypted_regex: str | None = None

    def encrypts(self, path: Sequence[str]) -> bool:
        encrypted = True
        suffix, regex = self.unencrypted_suffix, self.unencrypted_regex
        if suffix and any(key.endswith(suffix) for key in path):
            encrypted = False
        if self.encrypted_suffix:
            encrypted = any(key.endswith(self.encrypted_suffix) for key in path)
        if regex and any(re.search(regex, key) for key in path):
            encrypted = False
        if self.encrypted_regex:
            encrypted = any(re.search(self.encrypted_regex, key) for key in path)
        return encrypted


def rules_for(encrypted_regex: str | None) -> Rules:
    if encrypted_regex is None:
        return Rules(unencrypted_suffix=DEFAULT_UNENCRYPTED_SUFFIX)
    try:
        re.compile(encrypted_regex)
    except re.error as exc:
        raise HomelabError(f"encrypted_regex {encrypted_regex!r} is not a regex: {exc}") from None
    return Rules(encrypted_regex=encrypted_regex)


def walk(node: Any, path: tuple[str, ...], on_leaf: Callable[[Any, tuple[str, ...]], Any]) -> Any:
    """A copy of `node` with each non-null leaf replaced by on_leaf(leaf, path): mappings
    add their key to the path, lists do not (sops.go walkBranch, walkSlice)."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise TypeError(f"sops keys must be strings, got {key!r} at {':'.join(path)}")
            out[key] = walk(value, (*path, key), on_leaf)
        return out
    if isinstance(node, list | tuple):
        return [walk(item, path, on_leaf) for item in node]
    if node is None:
        return None
    return on_leaf(node, path)


def additional_data(path: Sequence[str]) -> str:
    """A leaf's key path joined by ":" plus a trailing ":" (sops.go Tree.Encrypt)."""
    return ":".join(path) + ":"


def where(path: Sequence[str]) -> str:
    return ".".join(path) or "(top level)"


def typed(node: Any) -> Any:
    """A comparable form that tells 1, 1.0, True and "1" apart and keeps key order."""
    if isinstance(node, Mapping):
        return ("map", tuple((k, typed(v)) for k, v in node.items()))
    if isinstance(node, list | tuple):
        return ("list", tuple(typed(v) for v in node))
    if node is None:
        return ("null",)
    if isinstance(node, str | bool | int | float):
        plain, kind = to_bytes(node)
        return (kind, plain)
    return ("?", repr(node))


def lastmodified(now: datetime) -> str:
    """RFC 3339 in UTC, whole seconds, as sops writes time.Now().UTC()."""
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mac_additional_data(lastmodified: str) -> str:
    """lastmodified as sops re-formats it after parsing (Go's time.RFC3339: no fraction)."""
    try:
        moment = datetime.fromisoformat(lastmodified)
    except ValueError:
        raise HomelabError(f"SOPS file's lastmodified {lastmodified!r} is not a time") from None
    if moment.tzinfo is None:
        raise HomelabError(f"SOPS file's lastmodified {lastmodified!r} has no time zone")
    text = moment.replace(microsecond=0).isoformat()
    return text.removesuffix("+00:00") + "Z" if moment.utcoffset() == UTC.utcoffset(None) else text
