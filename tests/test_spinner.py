"""A long wait on the network shows, on a terminal, one spinner line naming what it waits
for; piped, nothing. Driven through the real console script against a loopback port that
accepts connections and never answers, as a Proxmox host behind a stuck proxy would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.pve.harness import cluster_yaml
from tests.scaffold.terminal import Terminal
from tests.test_cli import run_cli


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshake; nobody ever reads
        yield int(listener.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path, silent_port: int) -> Path:
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(None, 1, 0, port=silent_port))
    assert run_cli("render", "-C", str(tmp_path)).returncode == 0
    return tmp_path


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "HOMELAB_GEN_PVE_TOKEN": "not-used-by-a-silent-port",
        "HOMELAB_GEN_PVE_CONNECT_TIMEOUT": "1.5",
    }


def test_a_terminal_shows_what_the_wait_is_for(lab: Path, silent_port: int) -> None:
    term = Terminal([sys.executable, "-m", "generator", "plan"], lab, environment())
    try:
        code = term.wait(60)
    finally:
        term.kill()
    assert code == 1, term.output
    waiting = f"waiting for Proxmox at 127.0.0.1:{silent_port} (GET /version)"
    assert waiting in term.output
    # the spinner line is wiped before the error, which starts on a clean line
    after = term.output[term.output.rindex(waiting) :]
    assert "\x1b[2Kerror: cannot reach" in after
    assert "no TLS handshake within 1.5 s" in after


def test_piped_output_has_no_spinner(lab: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "generator", "plan"],
        cwd=lab,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "waiting for" not in done.stderr and "\x1b" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: cannot reach 127.0.0.1:")
    assert done.stdout == ""
