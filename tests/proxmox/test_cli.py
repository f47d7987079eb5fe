"""plan / boot / destroy through the CLI, with seeds rendered on disk."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.cli import main
from tests.fakes.pve import FakePVE, running_fake
from tests.fakes.pve.harness import cluster_yaml
from tests.fakes.pve.state import revoke


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FakePVE]]:
    with running_fake(tmp_path) as fake:
        directory = tmp_path / "lab"
        directory.mkdir()
        (directory / "cluster.yaml").write_text(cluster_yaml(fake, 1, 1))
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", fake.state.token_secret)
        assert main(["render", "-C", str(directory)]) == 0
        yield directory, fake


def test_plan_boot_again_destroy(
    repo: tuple[Path, FakePVE], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, fake = repo
    capsys.readouterr()
    assert main(["plan", "-C", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "k3s-server-1 (201): upload, clone, configure, resize, start" in out
    assert not fake.state.mutating_calls()
    assert main(["boot", "-C", str(directory), "--dry-run"]) == 0
    assert not fake.state.mutating_calls()

    assert main(["boot", "-C", str(directory), "--yes", "--parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert "k3s-agent-1: start done" in out and "next: homelab-gen status --wait" in out
    assert fake.state.vms[301].status == "running"

    count = len(fake.state.mutating_calls())
    assert main(["boot", "-C", str(directory), "--yes"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(fake.state.mutating_calls()) == count

    assert main(["destroy", "-C", str(directory), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "removed k3s-server-1" in out and "removed homelab-gen-home-k3s-server-1-" in out
    assert set(fake.state.vms) == {100, 9000}
    assert not fake.state.storage("pve", "local").volumes


def test_boot_without_yes_off_a_terminal_refuses(repo: tuple[Path, FakePVE]) -> None:
    directory, fake = repo
    assert main(["boot", "-C", str(directory)]) == 2
    assert not fake.state.mutating_calls()


def test_stale_or_missing_seeds_are_refused(
    repo: tuple[Path, FakePVE], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, fake = repo
    seed = directory / "cloud-init" / "k3s-agent-1" / "user-data"
    seed.write_text(seed.read_text() + "# edited by hand\n")
    assert main(["plan", "-C", str(directory)]) == 1
    assert "out of date" in capsys.readouterr().err
    seed.unlink()
    assert main(["boot", "-C", str(directory), "--yes"]) == 1
    err = capsys.readouterr().err
    assert "missing" in err and "homelab-gen render" in err
    assert not fake.state.calls


def test_preflight_problem_exits_1_and_changes_nothing(
    repo: tuple[Path, FakePVE], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, fake = repo
    del fake.state.vms[9000]
    assert main(["boot", "-C", str(directory), "--yes"]) == 1
    assert "homelab-gen template" in capsys.readouterr().err
    assert not fake.state.mutating_calls()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_rich_table_and_live_progress() -> None:
    from generator.proxmox.actions import Action, Plan, VMPlan
    from generator.proxmox.apply import Event
    from generator.proxmox.view import print_plan, progress

    plan = Plan((VMPlan("k3s-server-1", 201, (Action("start", 201, "pve"),), "update"),))
    out = _Terminal()
    print_plan(plan, out)
    assert "homelab-gen plan" in out.getvalue() and "k3s-server-1" in out.getvalue()
    live = _Terminal()
    with progress(plan, live) as update:
        update(Event("k3s-server-1", "start", "done"))
    assert "start: done" in live.getvalue()


def test_destroy_without_the_seed_privilege_keeps_seeds_and_says_how(
    repo: tuple[Path, FakePVE], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, fake = repo
    assert main(["boot", "-C", str(directory), "--yes"]) == 0
    revoke(fake.state.permissions, "Datastore.Allocate")
    capsys.readouterr()
    assert main(["destroy", "-C", str(directory), "--yes"]) == 0
    captured = capsys.readouterr()
    assert "2 unused seed file(s) stay on local" in captured.err
    assert "--roles PVEDatastoreAdmin" in captured.err
    assert set(fake.state.vms) == {100, 9000}
    assert len(fake.state.storage("pve", "local").volumes) == 2
    # Real PVE answers 403 to a content DELETE without Datastore.Allocate: none was sent.
    assert not [c for c in fake.state.calls if c.status == 403]
