"""Proxmox unreachable: every command says so in one line with a hint, through the real
console script, and gives up at once (or after the short connect timeout), never after
minutes. Only loopback is ever contacted: the `.invalid` name is refused by a
sitecustomize in the child process, before any DNS query could leave the machine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator import cli
from tests.conftest import REPO
from tests.fakes.pve.harness import cluster_yaml

CONSOLE_SCRIPT = Path(sys.executable).parent / "homelab-gen"
NO_DNS = """\
import socket

_real = socket.getaddrinfo


def _no_dns(host, *args, **kwargs):
    if isinstance(host, str) and host.endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _real(host, *args, **kwargs)


socket.getaddrinfo = _no_dns
"""
# Every command that talks to Proxmox, with what makes it go ahead without asking.
COMMANDS = (
    ("plan",),
    ("boot", "--yes"),
    ("destroy", "--yes"),
    ("template", "--yes"),
    ("kubeconfig", "--timeout", "600"),
)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str
    seconds: float


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    message: str  # the one line every command prints


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Accepts TCP connections (the kernel's backlog does) but never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def _lab(tmp_path: Path, host: str, port: int) -> Path:
    directory = tmp_path / "lab"
    directory.mkdir()
    text = cluster_yaml(None, 1, 1, host=host, port=port)  # TLS verified, no ca_file
    # real values, so plan and boot have no placeholder to warn about: stderr is the error
    text = text.replace("me/home-ops.git", "alice/lab-ops.git")
    text = text.replace("lab.example.com", "lab.home.arpa")
    (directory / "cluster.yaml").write_text(text)
    assert cli.main(["render", "-C", str(directory)]) == 0
    return directory


def _run(tmp_path: Path, directory: Path, *args: str) -> Result:
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(NO_DNS)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(shim), str(REPO)]),
        "HOMELAB_GEN_PVE_TOKEN": "not-a-real-secret",
        "HOMELAB_GEN_PVE_CONNECT_TIMEOUT": "1",
    }
    start = time.monotonic()
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), *args, "-C", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def _no_library_text(text: str) -> None:
    for leak in ("Traceback", "HTTPSConnectionPool", "urllib3", "Max retries", "Errno"):
        assert leak not in text, text


def _check_every_command(tmp_path: Path, target: Target, limit: float) -> None:
    directory = _lab(tmp_path, target.host, target.port)
    for args in COMMANDS:
        result = _run(tmp_path, directory, *args)
        assert result.err == f"error: {target.message}\n", (args, result.err)
        assert result.code == 1, args
        assert result.seconds < limit, (args, result.seconds)
        _no_library_text(result.out + result.err)
    status = _run(tmp_path, directory, "status")
    assert status.code == 1
    assert status.seconds < limit
    _no_library_text(status.out + status.err)
    lines = status.out.splitlines()
    assert f"not ready: Proxmox: {target.message}" in lines
    assert "note: K3s and Flux unknown: no home.kubeconfig and Proxmox cannot be asked" in (
        status.out
    )
    assert "guest agent" not in status.out


def test_an_unresolvable_name(tmp_path: Path) -> None:
    target = Target(
        "pve.invalid",
        8006,
        "cannot reach pve.invalid:8006: the name does not resolve"
        " (check proxmox.host in cluster.yaml, and DNS)",
    )
    _check_every_command(tmp_path, target, limit=10.0)


def test_a_refused_port(tmp_path: Path) -> None:
    port = _refused_port()
    target = Target(
        "127.0.0.1",
        port,
        f"cannot reach 127.0.0.1:{port}: connection refused"
        " (is pveproxy running? check proxmox.port)",
    )
    _check_every_command(tmp_path, target, limit=10.0)


def test_a_server_that_never_answers(tmp_path: Path, silent_port: int) -> None:
    """HOMELAB_GEN_PVE_CONNECT_TIMEOUT=1: each command gives up after about a second."""
    target = Target(
        "127.0.0.1",
        silent_port,
        f"cannot reach 127.0.0.1:{silent_port}: connected, but no TLS handshake within 1 s"
        " (is proxmox.port pveproxy's port? it listens on 8006)",
    )
    _check_every_command(tmp_path, target, limit=10.0)


def test_a_bad_timeout_setting_is_one_line(tmp_path: Path) -> None:
    directory = _lab(tmp_path, "127.0.0.1", _refused_port())
    env = {**os.environ, "HOMELAB_GEN_PVE_CONNECT_TIMEOUT": "soon"}
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "plan", "-C", str(directory)],
        env={**env, "PYTHONPATH": str(REPO), "HOMELAB_GEN_PVE_TOKEN": "x"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stderr == (
        "error: HOMELAB_GEN_PVE_CONNECT_TIMEOUT=soon is not a number of seconds above 0\n"
    )
    assert done.returncode == 1


def test_kubeconfig_timeout_bounds_a_call_that_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Proxmox accepts the call but answers after 3 s; --timeout 1 ends it after ~1 s, not
    after the 60 s read timeout."""
    from tests.labfakes import lab

    with lab(tmp_path, agents=0) as made:
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", made.pve.state.token_secret)
        made.pve.state.latency.request = 3.0
        start = time.monotonic()
        assert cli.main(made.cli("kubeconfig", "--timeout", "1")) == 1
        elapsed = time.monotonic() - start
        err = capsys.readouterr().err
        assert err == (
            f"error: cannot reach 127.0.0.1:{made.pve.port}: connected, but GET"
            " /nodes/pve/qemu/201/agent/file-read got no answer within 1 s"
            " (pveproxy is slow or stuck; HOMELAB_GEN_PVE_READ_TIMEOUT allows longer)\n"
        )
        assert elapsed < 2.5
        made.pve.state.latency.request = 0.0
