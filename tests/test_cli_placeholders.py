"""The scaffold's example values (cluster.git.url, cluster.domain) warn at plan and boot:
one line each on stderr, naming the field and what to put there, never an error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.cli import main
from tests.fakes.pve import FakePVE, running_fake
from tests.fakes.pve.harness import cluster_yaml

GIT = "warning: cluster.git.url: https://github.com/me/home-ops.git is the example from 'new'"
DOMAIN = "warning: cluster.domain: lab.example.com is the example from 'new'"


def rendered_lab(tmp_path: Path, fake: FakePVE, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "lab"
    directory.mkdir()
    (directory / "cluster.yaml").write_text(cluster_yaml(fake, 1, 0))
    monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", fake.state.token_secret)
    assert main(["render", "-C", str(directory)]) == 0
    return directory


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FakePVE]]:
    with running_fake(tmp_path) as fake:
        yield rendered_lab(tmp_path, fake, monkeypatch), fake


@pytest.mark.parametrize("argv", [["plan"], ["boot", "--dry-run"]])
def test_placeholders_warn(
    lab: tuple[Path, FakePVE], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    directory, fake = lab
    capsys.readouterr()
    assert main([*argv, "-C", str(directory)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "is the example from 'new'" in line] == [
        f"{GIT}; put the URL of your own Git repo there (Flux clones it),"
        " e.g. git@github.com:YOU/home-ops.git",
        f"{DOMAIN}; put a DNS domain you own or use at home there, e.g. lab.home.arpa",
    ]
    assert not fake.state.mutating_calls()


def test_real_values_do_not_warn(
    lab: tuple[Path, FakePVE], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _ = lab
    path = directory / "cluster.yaml"
    text = path.read_text().replace("me/home-ops.git", "alice/lab-ops.git")
    path.write_text(text.replace("lab.example.com", "lab.home.arpa"))
    assert main(["render", "-C", str(directory)]) == 0
    capsys.readouterr()
    assert main(["plan", "-C", str(directory)]) == 0
    assert "is the example from 'new'" not in capsys.readouterr().err


def test_placeholders_warn_before_proxmox_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user with no Proxmox reachable yet still learns what to fix in cluster.yaml."""
    with running_fake(tmp_path) as fake:
        directory = rendered_lab(tmp_path, fake, monkeypatch)
    capsys.readouterr()  # the fake has stopped: its port now refuses connections
    assert main(["boot", "--dry-run", "-C", str(directory)]) != 0
    err = capsys.readouterr().err
    assert GIT in err and DOMAIN in err
    assert err.index(GIT) < err.index("error:")
