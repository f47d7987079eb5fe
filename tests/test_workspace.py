"""`homelab-gen render` through the CLI: create/identical reports, --check, --dry-run, safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import secretstore
from tests.conftest import fixture_text
from tests.test_cli import run_cli


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "cluster.yaml").write_text(fixture_text("valid/three-servers.yaml"))
    return tmp_path


def test_render_twice_then_nothing_changes(repo: Path) -> None:
    first = run_cli("render", "-C", str(repo))
    assert first.returncode == 0, first.stderr
    assert "create    cloud-init/k3s-server-1/user-data" in first.stdout
    second = run_cli("render", "-C", str(repo))
    assert second.returncode == 0
    assert "create" not in second.stdout and "update" not in second.stdout
    assert second.stdout.strip().splitlines()[-1].endswith("identical")
    assert run_cli("render", "-C", str(repo), "--check").returncode == 0


def test_check_reports_drift_and_writes_nothing(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    text = (repo / "cluster.yaml").read_text().replace("monitoring: true", "monitoring: false")
    (repo / "cluster.yaml").write_text(text)
    release = repo / "gitops/infrastructure/controllers/monitoring/release.yaml"
    before = release.read_bytes()
    result = run_cli("render", "-C", str(repo), "--check")
    assert result.returncode == 1
    assert "orphan    gitops/infrastructure/controllers/monitoring/release.yaml" in result.stdout
    assert "would change" in result.stdout
    assert release.read_bytes() == before


def test_dry_run_shows_changes_and_writes_nothing(repo: Path) -> None:
    result = run_cli("render", "-C", str(repo), "--dry-run")
    assert result.returncode == 0
    assert "create    gitops/clusters/home/infrastructure.yaml" in result.stdout
    assert not (repo / "gitops").exists() and not (repo / "cloud-init").exists()


def test_switching_a_component_off_removes_only_what_render_made(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    own = repo / "gitops/infrastructure/controllers/monitoring/notes.md"
    own.write_text("my notes\n")
    text = (repo / "cluster.yaml").read_text().replace("monitoring: true", "monitoring: false")
    (repo / "cluster.yaml").write_text(text)
    assert run_cli("render", "-C", str(repo)).returncode == 0
    assert not (repo / "gitops/infrastructure/controllers/monitoring/release.yaml").exists()
    assert own.read_text() == "my notes\n"


def test_render_keeps_the_existing_token(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    token = secretstore.load(repo).k3s_token
    (repo / "cluster.yaml").write_text(
        (repo / "cluster.yaml")
        .read_text()
        .replace(
            "memory: 4096, disk: 32}\n  - {name: k3s-agent-2",
            "memory: 8192, disk: 32}\n  - {name: k3s-agent-2",
        )
    )
    assert run_cli("render", "-C", str(repo)).returncode == 0
    assert secretstore.load(repo).k3s_token == token
    assert token in (repo / "cloud-init/k3s-server-2/user-data").read_text()
    agent_token = secretstore.load(repo).agent_token
    assert agent_token and agent_token in (repo / "cloud-init/k3s-agent-1/user-data").read_text()


def test_lost_secrets_store_with_seeds_is_refused(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    (repo / secretstore.STORE_FILE).unlink()
    result = run_cli("render", "-C", str(repo))
    assert result.returncode == 1
    assert "restore it from your backup" in result.stderr
    assert not (repo / secretstore.STORE_FILE).exists()


def test_check_on_a_new_lab_lists_the_first_render_and_makes_no_secrets(repo: Path) -> None:
    result = run_cli("render", "-C", str(repo), "--check")
    assert result.returncode == 1, result.stderr
    assert "create    cloud-init/k3s-server-1/user-data" in result.stdout
    assert "made on the first render" in result.stdout
    assert sorted(p.name for p in repo.iterdir()) == ["cluster.yaml"]


def test_a_changed_seed_is_named_per_node_with_what_it_means(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    text = (repo / "cluster.yaml").read_text()
    (repo / "cluster.yaml").write_text(text.replace("me@laptop", "me@desktop"))
    result = run_cli("render", "-C", str(repo), "--check")
    notes = [line for line in result.stdout.splitlines() if line.startswith("note:")]
    named = {n.split(":")[1].strip() for n in notes}
    assert named == {n.split(",")[0].split(": ")[-1] for n in text.splitlines() if "{name:" in n}
    assert all("keeps the settings it booted with" in n for n in notes)
    unchanged = run_cli("render", "-C", str(repo))
    again = run_cli("render", "-C", str(repo))
    assert "note:" in unchanged.stdout and "note:" not in again.stdout
    # A new K3s version alone is no such change: the upgrade Plans move running nodes.
    text = (repo / "cluster.yaml").read_text()
    (repo / "cluster.yaml").write_text(text.replace("v1.33.4+k3s1", "v1.33.5+k3s1"))
    bumped = run_cli("render", "-C", str(repo))
    assert bumped.returncode == 0, bumped.stderr
    assert "update    cloud-init/k3s-server-1/user-data" in bumped.stdout
    assert "note:" not in bumped.stdout
