"""K3s's install.sh is checked against the sha256 pinned with the version pins before it runs."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from generator.config.checks.k3s_version import parse, without_versions
from generator.render import k3s, versions
from tests.render.seed_clusters import cluster_from, fixture_cluster, fixture_data

FAKE = b"#!/bin/sh\necho not the real install.sh\n"
START = "# --- installer check ---\n"
END = "# --- end installer check ---\n"
CALL = 'check_installer "$workdir/install.sh"\n'


def script_with(monkeypatch: pytest.MonkeyPatch, digest: str | None) -> str:
    monkeypatch.setattr(k3s, "K3S_INSTALLER_SHA256", digest)
    cluster = fixture_cluster("seeds-ha")
    return k3s.install_script(cluster, cluster.nodes[-1])


def check_block(script: str) -> str:
    """The rendered check between its markers, then the line that calls it on the download."""
    start = script.index(START)
    end = script.index(END, start) + len(END)
    assert script.index(CALL) > end
    return script[start:end] + CALL


def run_check(
    script: str, installer: bytes, tmp_path: Path, shell: str
) -> subprocess.CompletedProcess[str]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "install.sh").write_bytes(installer)
    ran = tmp_path / "ran"
    program = f"set -eu\nworkdir='{workdir}'\n{check_block(script)}echo ran > '{ran}'\n"
    return subprocess.run(
        [shell, "-c", program], capture_output=True, text=True, timeout=30, check=False
    )


def test_the_rendered_script_checks_install_sh_before_running_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = hashlib.sha256(b"pinned").hexdigest()
    script = script_with(monkeypatch, digest)
    check = check_block(script)
    assert f"expected='{digest}'" in check
    assert 'sha256sum "$1"' in check
    assert f"exit {k3s.INSTALLER_MISMATCH_EXIT}" in check
    # The check comes after the download and before install.sh runs.
    run = 'run_installer "$workdir/install.sh"'
    assert script.index("curl ") < script.index(CALL) < script.index(run)
    assert k3s.installer_url(k3s.K3S_INSTALLER_TAG) in script
    cluster = fixture_cluster("seeds-ha")
    unit = k3s.install_unit(cluster, cluster.nodes[-1])
    assert f"RestartPreventExitStatus={k3s.INSTALLER_MISMATCH_EXIT}\n" in unit


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_a_wrong_install_sh_is_refused_and_never_run(
    shell: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    pinned = hashlib.sha256(b"the real install.sh\n").hexdigest()
    result = run_check(script_with(monkeypatch, pinned), FAKE, tmp_path, shell)
    assert result.returncode == k3s.INSTALLER_MISMATCH_EXIT, result.stderr
    assert not (tmp_path / "ran").exists()
    assert "refusing to run" in result.stderr
    assert hashlib.sha256(FAKE).hexdigest() in result.stderr and pinned in result.stderr
    assert "K3s is not installed" in result.stderr


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_the_pinned_install_sh_goes_on(
    shell: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    result = run_check(
        script_with(monkeypatch, hashlib.sha256(FAKE).hexdigest()), FAKE, tmp_path, shell
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ran").read_text() == "ran\n"
    assert result.stderr == ""


def test_without_a_pinned_digest_it_says_so_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = run_check(script_with(monkeypatch, None), FAKE, tmp_path, "sh")
    assert result.returncode == 0, result.stderr
    assert "no sha256 is pinned" in result.stderr


def test_a_k3s_version_change_keeps_the_installer_and_its_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Upgrades come from the Plans; the seed's installer stays the pinned one, so a
    version-only change is still no seed drift."""
    monkeypatch.setattr(k3s, "K3S_INSTALLER_SHA256", hashlib.sha256(b"x").hexdigest())
    data = fixture_data("seeds-ha")
    old = cluster_from(data)
    data["cluster"]["k3s_version"] = "v1.34.1+k3s1"
    new = cluster_from(data)
    for node in old.nodes:
        before, after = k3s.install_script(old, node), k3s.install_script(new, node)
        assert "INSTALL_K3S_VERSION='v1.34.1+k3s1'" in after
        assert check_block(before) == check_block(after)
        assert without_versions(before) == without_versions(after)


def test_the_pin_is_a_k3s_release_and_shown_by_versions() -> None:
    assert parse(k3s.K3S_INSTALLER_TAG) is not None
    digest = k3s.K3S_INSTALLER_SHA256
    assert digest is None or (len(digest) == 64 and int(digest, 16) >= 0)
    (pin,) = [p for p in versions.pins(None, "v1.33.4+k3s1") if p.name == "k3s install.sh"]
    assert pin.used == k3s.K3S_INSTALLER_TAG
    assert ("not pinned" in pin.note) if digest is None else (digest in pin.note)
