"""The secrets on disk: the age key, the SOPS store git tracks, the move from the plain store
of earlier versions, and `homelab-gen secret` through the console script."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from generator import secrets, secretstore, sops, yamlio
from generator.errors import ConfigError, HomelabError, UsageError
from tests.conftest import fixture_text
from tests.test_cli import run_cli


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def test_create_makes_a_private_key_and_an_encrypted_store(tmp_path: Path) -> None:
    made = secretstore.create(tmp_path)
    key = tmp_path / secretstore.KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600
    assert made.age_key and made.age_key in key.read_text()
    assert len(made.k3s_token) == 64 and int(made.k3s_token, 16) >= 0
    assert made.agent_token and made.agent_token != made.k3s_token
    assert len(made.grafana_admin_password) >= 20
    store_text = (tmp_path / secretstore.STORE_FILE).read_text()
    for value in made.values():
        assert value not in store_text
    assert secretstore.load(tmp_path) == made
    assert sops.decrypt(store_text, [made.age_key])["k3s_token"] == made.k3s_token
    config = yamlio.load_text((tmp_path / secretstore.SOPS_CONFIG).read_text(), "sops config")
    assert sops.recipient_of(made.age_key) in str(config)


def test_an_existing_store_is_never_replaced(tmp_path: Path) -> None:
    made = secretstore.create(tmp_path)
    before = tree(tmp_path)
    with pytest.raises(HomelabError, match="already exists"):
        secretstore.create(tmp_path)
    assert tree(tmp_path) == before
    assert secretstore.load(tmp_path) == made


def test_saving_unchanged_values_keeps_the_files_bytes(tmp_path: Path) -> None:
    made = secretstore.create(tmp_path)
    before = (tmp_path / secretstore.STORE_FILE).read_bytes()
    secretstore.save(tmp_path, made)
    assert (tmp_path / secretstore.STORE_FILE).read_bytes() == before
    secretstore.save(tmp_path, dataclasses.replace(made, dns_api_token="cf-123"))
    assert (tmp_path / secretstore.STORE_FILE).read_bytes() != before
    assert secretstore.load(tmp_path).dns_api_token == "cf-123"


def test_seeds_without_a_store_mean_restore_not_regenerate(tmp_path: Path) -> None:
    with pytest.raises(HomelabError, match="restore it from your backup"):
        secretstore.load_or_create(tmp_path, seeds_exist=True)
    assert not (tmp_path / secretstore.STORE_FILE).exists()
    assert secretstore.load_or_create(tmp_path, seeds_exist=False).k3s_token


def test_without_the_key_the_store_is_refused_with_exit_2(tmp_path: Path) -> None:
    secretstore.create(tmp_path)
    (tmp_path / secretstore.KEY_FILE).unlink()
    with pytest.raises(UsageError) as caught:
        secretstore.load(tmp_path)
    assert caught.value.exit_code == 2
    assert secretstore.KEY_FILE in str(caught.value) and "backed-up" in str(caught.value)


def test_a_loose_key_file_is_tightened_and_unknown_names_refused(tmp_path: Path) -> None:
    made = secretstore.create(tmp_path)
    key = tmp_path / secretstore.KEY_FILE
    key.chmod(0o644)
    secretstore.load(tmp_path)
    assert key.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError) as caught:
        secrets.from_values({**secrets.to_values(made), "gitt_token": "abc"}, "store")
    assert caught.value.problems[0].startswith("gitt_token: unknown secret")


LEGACY = {
    "k3s_token": "legacy-token-0123456789",
    "grafana_admin_password": "legacy-grafana-pw",
    "git_token": "ghp_legacy",
    "datastore_password": "db:pass@x",
    "dns_api_token": "cf-legacy",
    "proxmox_token": "pve-legacy-uuid",
}


def write_legacy(directory: Path) -> Path:
    path = directory / secretstore.LEGACY_FILE
    path.parent.mkdir(parents=True)
    path.write_text("# old store\n" + yamlio.dump_text(LEGACY))
    path.chmod(0o600)
    return path


def test_migration_keeps_every_value_and_adds_no_agent_token(tmp_path: Path) -> None:
    legacy = write_legacy(tmp_path)
    migration = secretstore.migrate(tmp_path)
    assert migration is not None
    assert any("moved every value" in note for note in migration.notes)
    assert any("back it up" in note for note in migration.notes)
    store = secretstore.load(tmp_path)
    assert secrets.to_values(store) == LEGACY
    assert store.agent_token is None  # joined agents use k3s_token; servers know no other
    assert not legacy.exists() and (tmp_path / secretstore.MIGRATED_FILE).exists()
    assert secretstore.migrate(tmp_path) is None  # once only


def test_render_moves_a_labs_plain_store_and_keeps_its_seeds(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(fixture_text("valid/three-servers.yaml"))
    write_legacy(tmp_path)
    check = run_cli("render", "-C", str(tmp_path), "--check")
    assert check.returncode == 1 and not (tmp_path / secretstore.STORE_FILE).exists()
    result = run_cli("render", "-C", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "secrets: moved every value" in result.stdout
    seed = (tmp_path / "cloud-init/k3s-agent-1/user-data").read_text()
    assert LEGACY["k3s_token"] in seed
    assert secrets.to_values(secretstore.load(tmp_path)) == LEGACY


def test_a_clone_with_the_key_renders_the_same_bytes_and_without_it_writes_nothing(
    tmp_path: Path,
) -> None:
    lab, clone = tmp_path / "lab", tmp_path / "clone"
    lab.mkdir()
    (lab / "cluster.yaml").write_text(fixture_text("valid/three-servers.yaml"))
    assert run_cli("render", "-C", str(lab)).returncode == 0
    tracked = ["cluster.yaml", secretstore.STORE_FILE, secretstore.SOPS_CONFIG]
    tracked += [p for p in tree(lab) if p.startswith("gitops/") or p.endswith("network-config")]
    clone.mkdir()
    for path in tracked:
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_bytes((lab / path).read_bytes())
    before = tree(clone)
    refused = run_cli("render", "-C", str(clone))
    assert refused.returncode == 2
    assert secretstore.KEY_FILE in refused.stderr and "Traceback" not in refused.stderr
    assert tree(clone) == before
    (clone / ".homelab-gen").mkdir()
    (clone / secretstore.KEY_FILE).write_bytes((lab / secretstore.KEY_FILE).read_bytes())
    assert run_cli("render", "-C", str(clone)).returncode == 0
    ours, theirs = tree(lab), tree(clone)
    for path, data in ours.items():
        if path.startswith(("cloud-init/", "gitops/")) or path in tracked:
            assert theirs.get(path) == data, path


def secret_cli(repo: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator", "secret", *args, "-C", str(repo)],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_secret_set_reads_stdin_and_list_shows_names_only(tmp_path: Path) -> None:
    secretstore.create(tmp_path)
    result = secret_cli(tmp_path, "set", "apps/db-credentials/password", stdin="hunter2-xyz\n")
    assert result.returncode == 0, result.stderr
    assert "homelab-gen render" in result.stdout and "hunter2" not in result.stdout
    assert secret_cli(tmp_path, "set", "dns_api_token", stdin="cf-token-1").returncode == 0
    store = secretstore.load(tmp_path)
    assert store.kubernetes == {"apps/db-credentials": {"password": "hunter2-xyz"}}
    assert store.dns_api_token == "cf-token-1"
    listed = secret_cli(tmp_path, "list")
    assert "apps/db-credentials/password" in listed.stdout.splitlines()
    assert "dns_api_token" in listed.stdout.splitlines()
    assert "hunter2" not in listed.stdout and "cf-token-1" not in listed.stdout
    assert secret_cli(tmp_path, "unset", "apps/db-credentials/password").returncode == 0
    assert secretstore.load(tmp_path).kubernetes == {}


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (("set", "k3s_token"), "x", "does not rotate the K3s tokens"),
        (("set", "Apps/db/password"), "x", "NAMESPACE/SECRET/KEY"),
        (("set", "dns_api_tokn"), "x", "did you mean dns_api_token?"),
        (("set", "dns_api_token"), "", "no value for dns_api_token"),
        (("unset", "git_token"), "", "is not set"),
        (("unset", "k3s_token"), "", "does not rotate"),
    ],
)
def test_secret_mistakes_are_one_line_exit_2_and_change_nothing(
    tmp_path: Path, args: tuple[str, ...], stdin: str, expected: str
) -> None:
    secretstore.create(tmp_path)
    before = tree(tmp_path)
    result = secret_cli(tmp_path, *args, stdin=stdin)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert tree(tmp_path) == before


def test_the_value_is_never_taken_from_the_command_line(tmp_path: Path) -> None:
    secretstore.create(tmp_path)
    result = secret_cli(tmp_path, "set", "dns_api_token", "cf-on-argv", stdin="")
    assert result.returncode == 2
    assert secretstore.load(tmp_path).dns_api_token is None


def test_a_set_without_a_value_leaves_an_old_plain_store_unmoved(tmp_path: Path) -> None:
    write_legacy(tmp_path)
    before = tree(tmp_path)
    result = secret_cli(tmp_path, "set", "dns_api_token", stdin="")
    assert result.returncode == 2 and "no value" in result.stderr
    assert tree(tmp_path) == before
    moved = secret_cli(tmp_path, "set", "dns_api_token", stdin="cf-new")
    assert moved.returncode == 0 and "secrets: moved every value" in moved.stdout
    assert secretstore.load(tmp_path).dns_api_token == "cf-new"
    assert secretstore.load(tmp_path).git_token == LEGACY["git_token"]
