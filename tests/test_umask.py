"""Files that hold no secret follow the user's umask; secret files stay 0600 and their folder
0700, whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import fixture_text


def _render(repo: Path, umask: int) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "generator", "render", "-C", str(repo)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(umask),
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("umask", "public"), [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_render_follows_the_umask_but_never_for_secrets(
    tmp_path: Path, umask: int, public: int
) -> None:
    (tmp_path / "cluster.yaml").write_text(fixture_text("valid/three-servers.yaml"))
    _render(tmp_path, umask)
    assert _mode(tmp_path / "gitops/clusters/home/apps.yaml") == public
    assert _mode(tmp_path / "cloud-init/k3s-server-1/network-config") == public
    assert _mode(tmp_path / "cloud-init/k3s-server-1/user-data") == 0o600  # the K3s token
    assert _mode(tmp_path / ".homelab-gen/age.key") == 0o600
    assert _mode(tmp_path / ".homelab-gen") == 0o700
    # a second render under the same umask has nothing to change
    again = _render(tmp_path, umask)
    assert "update" not in again and "create" not in again, again
