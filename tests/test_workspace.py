"""`homelab-gen render` through the CLI: create/identical reports, --check, --dry-run, safety."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

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
    assert second.stdout.strip().splitlines() == ["58 unchanged"]
    verbose = run_cli("render", "-C", str(repo), "-v")
    assert "identical gitops/clusters/home/infrastructure.yaml" in verbose.stdout
    assert run_cli("render", "-C", str(repo), "--check").returncode == 0


def test_check_reports_drift_and_writes_nothing(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    text = (repo / "cluster.yaml").read_text().replace("monitoring: true", "monitoring: false")
    (repo / "cluster.yaml").write_text(text)
    release = repo / "gitops/infrastructure/controllers/monitoring/release.yaml"
    before = release.read_bytes()
    result = run_cli("render", "-C", str(repo), "--check")
    assert result.returncode == 1
    assert "remove    gitops/infrastructure/controllers/monitoring/release.yaml" in result.stdout
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


RELEASE = "gitops/infrastructure/controllers/monitoring/release.yaml"


def test_a_hand_edit_is_kept_with_its_diff_until_forced(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    release = repo / RELEASE
    rendered = release.read_text()
    release.write_text(rendered.replace("namespace: monitoring", "namespace: mine", 1))
    text = (repo / "cluster.yaml").read_text()
    (repo / "cluster.yaml").write_text(text.replace("me@laptop", "me@desktop"))
    result = run_cli("render", "-C", str(repo))
    assert result.returncode == 1
    assert f"edited    {RELEASE} (edited by hand: kept)" in result.stdout
    assert "-  namespace: mine\n+  namespace: monitoring" in result.stdout
    assert "update    cloud-init/k3s-server-1/user-data" in result.stdout  # the rest is written
    assert "render --force" in result.stderr and RELEASE in result.stderr
    assert "namespace: mine" in release.read_text()
    check = run_cli("render", "-C", str(repo), "--check")
    assert check.returncode == 1 and f"edited    {RELEASE}" in check.stdout
    forced = run_cli("render", "-C", str(repo), "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"overwrite {RELEASE}" in forced.stdout
    assert release.read_text() == rendered
    again = run_cli("render", "-C", str(repo))
    assert again.returncode == 0 and again.stdout.strip().splitlines() == ["58 unchanged"]


def test_undoing_a_hand_edit_settles_render(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    release = repo / RELEASE
    rendered = release.read_text()
    release.write_text(rendered + "# mine\n")
    assert run_cli("render", "-C", str(repo)).returncode == 1
    release.write_text(rendered)
    assert run_cli("render", "-C", str(repo)).returncode == 0
    assert run_cli("render", "-C", str(repo), "--check").returncode == 0


def test_an_edited_orphan_is_kept_until_forced_then_render_settles(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    release = repo / RELEASE
    release.write_text(release.read_text() + "# mine\n")
    text = (repo / "cluster.yaml").read_text().replace("monitoring: true", "monitoring: false")
    (repo / "cluster.yaml").write_text(text)
    kept = run_cli("render", "-C", str(repo))
    assert kept.returncode == 1
    assert f"edited    {RELEASE} (edited by hand, no longer rendered: kept)" in kept.stdout
    assert "remove    gitops/infrastructure/controllers/monitoring/namespace.yaml" in kept.stdout
    assert release.exists()
    forced = run_cli("render", "-C", str(repo), "--force")
    assert forced.returncode == 0, forced.stderr
    assert not release.parent.exists()  # its folder went with it
    again = run_cli("render", "-C", str(repo))
    assert again.returncode == 0 and "remove" not in again.stdout
    assert run_cli("render", "-C", str(repo), "--check").returncode == 0


def test_sops_files_are_not_hand_edits_after_a_normal_render(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    text = (repo / "cluster.yaml").read_text()
    (repo / "cluster.yaml").write_text(text.replace("me@laptop", "me@desktop"))
    assert run_cli("render", "-C", str(repo)).returncode == 0
    again = run_cli("render", "-C", str(repo), "--check")
    assert again.returncode == 0, again.stdout
    assert "edited" not in again.stdout


def test_a_removed_node_leaves_no_empty_seed_folder(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    assert (repo / "cloud-init/k3s-agent-2").is_dir()
    text = (repo / "cluster.yaml").read_text()
    line = next(n for n in text.splitlines(keepends=True) if "{name: k3s-agent-2" in n)
    (repo / "cluster.yaml").write_text(text.replace(line, ""))
    result = run_cli("render", "-C", str(repo))
    assert result.returncode == 0, result.stderr
    assert "remove    cloud-init/k3s-agent-2/user-data" in result.stdout
    assert not (repo / "cloud-init/k3s-agent-2").exists()


def test_render_prints_only_changes_and_a_summary(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    text = (repo / "cluster.yaml").read_text()
    (repo / "cluster.yaml").write_text(text.replace("v1.33.4+k3s1", "v1.33.5+k3s1"))
    result = run_cli("render", "-C", str(repo))
    lines = result.stdout.strip().splitlines()
    assert all(line.startswith("update    ") for line in lines[:-1])
    assert lines[-1] == f"{len(lines) - 1} updated, {58 - len(lines) + 1} unchanged"


def test_check_and_dry_run_show_diffs_but_never_secrets(repo: Path) -> None:
    run_cli("render", "-C", str(repo))
    text = (repo / "cluster.yaml").read_text()
    (repo / "cluster.yaml").write_text(text.replace("v1.33.4+k3s1", "v1.33.5+k3s1"))
    (repo / "gitops/apps/secrets").mkdir(exist_ok=True)
    sops_file = "gitops/infrastructure/controllers/monitoring/grafana-admin.sops.yaml"
    (repo / sops_file).write_text("broken\n")
    store = secretstore.load(repo)
    for mode in ("--check", "--dry-run"):
        result = run_cli("render", "-C", str(repo), mode, "--diff")
        assert "-  version: v1.33.4+k3s1" in result.stdout or "v1.33.4+k3s1" in result.stdout
        assert "+" in result.stdout and "@@" in result.stdout
        assert f"({sops_file} is SOPS-encrypted: its changes are not shown)" in result.stdout
        assert all(value not in result.stdout for value in store.values())
    assert (repo / sops_file).read_text() == "broken\n"
    plain = run_cli("render", "-C", str(repo), "--check")
    assert "@@" not in plain.stdout
    assert run_cli("render", "-C", str(repo), "--diff").returncode == 2


def test_a_fresh_clone_keeps_a_committed_hand_edit(repo: Path, tmp_path_factory: Any) -> None:
    """The record of what render wrote travels in git, so on another machine a committed
    hand edit is still a hand edit (kept, with its diff), not an out-of-date file."""
    assert run_cli("render", "-C", str(repo)).returncode == 0
    release = repo / RELEASE
    release.write_text(release.read_text() + "# mine\n")
    scaffold = Path(__file__).parents[1] / "templates/cluster/{{cookiecutter.cluster_name}}"
    shutil.copy(scaffold / ".gitignore", repo / ".gitignore")  # as `new` writes it
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "lab with an edit")
    assert ".homelab-gen-rendered.json" in git(repo, "ls-files")
    clone = tmp_path_factory.mktemp("elsewhere") / "lab"
    git(repo.parent, "clone", "-q", str(repo), str(clone))
    (clone / ".homelab-gen").mkdir(mode=0o700)
    shutil.copy(repo / secretstore.KEY_FILE, clone / secretstore.KEY_FILE)  # the backed-up key
    result = run_cli("render", "-C", str(clone))
    assert result.returncode == 1, result.stderr
    assert f"edited    {RELEASE} (edited by hand: kept)" in result.stdout
    assert "create    cloud-init/k3s-server-1/user-data" in result.stdout  # git-ignored
    assert (clone / RELEASE).read_text().endswith("# mine\n")


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_record_moves_out_of_the_ignored_state_folder(repo: Path) -> None:
    """Repos rendered before the record was tracked keep their hand edits on the move."""
    assert run_cli("render", "-C", str(repo)).returncode == 0
    (repo / ".homelab-gen-rendered.json").rename(repo / ".homelab-gen/rendered.json")
    release = repo / RELEASE
    release.write_text(release.read_text() + "# mine\n")
    result = run_cli("render", "-C", str(repo))
    assert result.returncode == 1 and f"edited    {RELEASE}" in result.stdout
    assert (repo / ".homelab-gen-rendered.json").is_file()
    assert not (repo / ".homelab-gen/rendered.json").exists()
