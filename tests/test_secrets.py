"""The secrets store: generated once, 0600, never replaced, validated on load."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import secrets
from generator.errors import ConfigError, HomelabError


def test_create_makes_a_private_store_with_strong_values(tmp_path: Path) -> None:
    made = secrets.create(tmp_path)
    path = secrets.store_path(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(made.k3s_token) == 64 and int(made.k3s_token, 16) >= 0
    assert len(made.grafana_admin_password) >= 20
    assert secrets.load(tmp_path) == made
    assert secrets.create(Path(tmp_path / "other")).k3s_token != made.k3s_token


def test_an_existing_store_is_never_replaced(tmp_path: Path) -> None:
    made = secrets.create(tmp_path)
    with pytest.raises(HomelabError, match="already exists"):
        secrets.create(tmp_path)
    assert secrets.load(tmp_path) == made


def test_seeds_without_a_store_mean_restore_not_regenerate(tmp_path: Path) -> None:
    with pytest.raises(HomelabError, match="restore it from your backup"):
        secrets.load_or_create(tmp_path, seeds_exist=True)
    assert not secrets.store_path(tmp_path).exists()
    assert secrets.load_or_create(tmp_path, seeds_exist=False).k3s_token


def test_loose_mode_is_tightened_and_unknown_keys_refused(tmp_path: Path) -> None:
    secrets.create(tmp_path)
    path = secrets.store_path(tmp_path)
    path.chmod(0o644)
    secrets.load(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text(path.read_text() + "gitt_token: abc\n")
    with pytest.raises(ConfigError) as caught:
        secrets.load(tmp_path)
    assert caught.value.problems[0].startswith("gitt_token: unknown secret")
