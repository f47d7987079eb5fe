"""Input and usage errors through the real CLI: each exits 2 with a message that names the
thing, what was expected and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.cli import main
from tests.conftest import FIXTURES

TOKEN = "HOMELAB_GEN_PVE_TOKEN"


def lab(tmp_path: Path, text: str | None = None) -> Path:
    directory = tmp_path / "lab"
    directory.mkdir(exist_ok=True)
    if text is None:
        text = (FIXTURES / "valid/three-servers.yaml").read_text()
    (directory / "cluster.yaml").write_text(text)
    return directory


def test_missing_cluster_yaml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-C", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'cluster.yaml'}: no cluster.yaml here" in err
    assert "homelab-gen new DIR" in err


def test_non_utf8_bytes_are_reported_by_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "lab"
    directory.mkdir()
    (directory / "cluster.yaml").write_bytes("cluster:\n  name: hömé".encode() + b"\xff\n")
    assert main(["validate", "-C", str(directory)]) == 2
    err = capsys.readouterr().err
    # "  name: hömé" is 12 characters (14 bytes): the bad byte is character 13 of line 2.
    assert "line 2, column 13: byte(s) ff are not UTF-8 text (save the file as UTF-8" in err
    assert "offset" not in err and "position" not in err


def test_missing_token_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TOKEN, raising=False)
    directory = lab(tmp_path)
    assert main(["render", "-C", str(directory)]) == 0
    capsys.readouterr()
    assert main(["plan", "-C", str(directory)]) == 2
    err = capsys.readouterr().err
    assert f"no Proxmox API token secret: {TOKEN} is unset" in err
    assert "homelab-gen secret set proxmox_token" in err


def test_missing_ca_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(TOKEN, "secret")
    text = (FIXTURES / "valid/three-servers.yaml").read_text()
    missing = tmp_path / "pve-root-ca.pem"
    text = text.replace("  verify_tls: true\n", f"  verify_tls: true\n  ca_file: {missing}\n")
    directory = lab(tmp_path, text)
    assert main(["render", "-C", str(directory)]) == 0
    capsys.readouterr()
    assert main(["plan", "-C", str(directory)]) == 2
    err = capsys.readouterr().err
    assert f"proxmox.ca_file: {missing} does not exist; expected the PEM file" in err
    assert "/etc/pve/pve-root-ca.pem" in err
