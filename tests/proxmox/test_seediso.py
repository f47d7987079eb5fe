"""The NoCloud seed ISO: label, exact file names for every reader, reproducible bytes."""

from __future__ import annotations

import io
import time

import pycdlib
import pytest

from generator.proxmox import seediso

SEED = {
    "user-data": "#cloud-config\nhostname: a\n",
    "meta-data": "instance-id: lab-a-201\n",
    "network-config": "network:\n  version: 2\n",
}


def read(iso: bytes, **path: str) -> bytes:
    image = pycdlib.PyCdlib()
    image.open_fp(io.BytesIO(iso))
    out = io.BytesIO()
    image.get_file_from_iso_fp(out, **path)
    image.close()
    return out.getvalue()


def test_label_and_files_for_rock_ridge_and_joliet_readers() -> None:
    iso = seediso.build_seed_iso(SEED)
    image = pycdlib.PyCdlib()
    image.open_fp(io.BytesIO(iso))
    assert image.pvd.volume_identifier.decode().strip() == "cidata"
    image.close()
    for name, text in SEED.items():
        assert read(iso, rr_path=f"/{name}") == text.encode()
        assert read(iso, joliet_path=f"/{name}") == text.encode()


def test_same_seed_same_bytes_at_any_time_in_any_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    first = seediso.build_seed_iso(SEED)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86_400 * 400)
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    try:
        assert seediso.build_seed_iso(SEED) == first
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_changed_seed_changes_bytes_and_digest() -> None:
    changed = {**SEED, "user-data": SEED["user-data"] + "locale: C.UTF-8\n"}
    assert seediso.build_seed_iso(changed) != seediso.build_seed_iso(SEED)
    assert seediso.seed_digest(changed) != seediso.seed_digest(SEED)


def test_a_seed_missing_a_file_is_refused() -> None:
    with pytest.raises(ValueError, match="network-config"):
        seediso.build_seed_iso({k: v for k, v in SEED.items() if k != "network-config"})
