"""Build a NoCloud seed ISO (volume label `cidata`) in memory with pycdlib."""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys
import threading
import time
import types
from collections.abc import Iterator, Mapping
from typing import Any

from generator.config.checks.k3s_version import without_versions
from generator.naming import SEED_FILES

FIXED_INSTANT = 946684800.0  # 2000-01-01T00:00:00Z
_CLOCK_LOCK = threading.Lock()


def build_seed_iso(seed: Mapping[str, str]) -> bytes:
    """ISO9660 with Joliet and Rock Ridge, so every cloud-init sees the exact file names.

    Deterministic: the same seed gives the same bytes (fixed dates), so its checksum can
    tell whether Proxmox already holds it.
    """
    import pycdlib

    missing = [name for name in SEED_FILES if name not in seed]
    if missing:
        raise ValueError(f"seed lacks {', '.join(missing)}")
    with _pinned_clock():
        return _build(pycdlib.PyCdlib(), seed)


def _build(iso: Any, seed: Mapping[str, str]) -> bytes:
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata", sys_ident="LINUX")
    for name in SEED_FILES:
        data = seed[name].encode("utf-8")
        iso_name = name.upper().replace("-", "_")[:8] + ".;1"
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            f"/{iso_name}",
            rr_name=name,
            joliet_path=f"/{name}",
        )
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


class _FixedClock:
    """Stands in for the `time` module inside pycdlib: a fixed instant in UTC."""

    def __init__(self, real: types.ModuleType, instant: float) -> None:
        self._real = real
        self._instant = instant

    def time(self) -> float:
        return self._instant

    def localtime(self, seconds: float | None = None) -> Any:
        return self._real.gmtime(self._instant if seconds is None else seconds)

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


@contextlib.contextmanager
def _pinned_clock() -> Iterator[None]:
    """pycdlib stamps 'now' (local time) into every record; pin it for reproducible bytes.

    The caller has imported pycdlib, so all its modules are in sys.modules here.
    """
    modules = [
        module
        for name, module in sys.modules.items()
        if name.startswith("pycdlib") and getattr(module, "time", None) is time
    ]
    clock = _FixedClock(time, FIXED_INSTANT)
    with _CLOCK_LOCK:
        for module in modules:
            module.time = clock  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for module in modules:
                module.time = time  # type: ignore[attr-defined]


def _hash(seed: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in SEED_FILES:
        digest.update(name.encode() + b"\0" + seed[name].encode() + b"\0")
    return digest.hexdigest()


SETTINGS_DIGITS = 6  # how much of a seed's name tells its settings apart


def seed_digest(seed: Mapping[str, str]) -> str:
    """A short content hash of a seed, used in the uploaded file's name: 6 hex digits of
    its settings (the seed with K3s versions left out), then 6 of the whole. Two seeds of a
    node that differ only in the K3s version share the first part: the upgrade Plans change
    the version of a running node, so only the settings part tells a node that needs a
    rebuild."""
    settings = {name: without_versions(text) for name, text in seed.items()}
    return _hash(settings)[:SETTINGS_DIGITS] + _hash(seed)[: 12 - SETTINGS_DIGITS]
