"""`validate` through the CLI agrees with `render --check` and boot: missing, stale and
hand-edited files, a fresh clone's git-ignored seeds, and the secrets render needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import config, workspace
from generator.errors import HomelabError
from tests.conftest import fixture_text
from tests.test_cli import run_cli

RELEASE = "gitops/infrastructure/controllers/monitoring/release.yaml"
ACME = (
    "cert_manager: {enabled: true, issuer: acme, acme_email: me@example.com,"
    " dns_provider: cloudflare}"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "cluster.yaml").write_text(fixture_text("valid/three-servers.yaml"))
    assert run_cli("render", "-C", str(tmp_path)).returncode == 0
    return tmp_path


def problems(result: object) -> list[str]:
    return str(getattr(result, "stderr", "")).splitlines()[1:]


def test_a_fresh_render_is_current(repo: Path) -> None:
    result = run_cli("validate", "-C", str(repo))
    assert result.returncode == 0, result.stderr
    assert "the rendered files are current and consistent" in result.stdout


def test_a_node_added_without_rendering_fails_like_render_check_and_boot(repo: Path) -> None:
    text = (repo / "cluster.yaml").read_text()
    line = next(n for n in text.splitlines(keepends=True) if "{name: k3s-agent-2" in n)
    new = line.replace("k3s-agent-2", "k3s-agent-3").replace("212", "213")
    (repo / "cluster.yaml").write_text(text.replace(line, line + new.replace(".22,", ".23,")))
    result = run_cli("validate", "-C", str(repo))
    assert result.returncode == 2
    found = problems(result)
    for name in ("user-data", "meta-data", "network-config"):
        assert f"cloud-init/k3s-agent-3/{name}: missing (run homelab-gen render)" in found
    assert any(": out of date with cluster.yaml" in p for p in found)
    check = run_cli("render", "-C", str(repo), "--check")
    assert check.returncode == 1
    assert "create    cloud-init/k3s-agent-3/user-data" in check.stdout
    with pytest.raises(HomelabError, match="missing"):
        workspace.load_seed_texts(repo, config.load(repo).cluster)


def test_a_hand_edit_fails_validate_until_settled(repo: Path) -> None:
    (repo / RELEASE).write_text((repo / RELEASE).read_text() + "# mine\n")
    result = run_cli("validate", "-C", str(repo))
    assert result.returncode == 2
    assert problems(result) == [
        f"{RELEASE}: edited by hand (run 'homelab-gen render --force' to overwrite it,"
        " or undo your edit)"
    ]
    assert run_cli("render", "-C", str(repo), "--force").returncode == 0
    assert run_cli("validate", "-C", str(repo)).returncode == 0


def test_a_fresh_clone_without_the_ignored_seeds_says_to_render(repo: Path) -> None:
    for seed in repo.glob("cloud-init/*/user-data"):
        seed.unlink()
    result = run_cli("validate", "-C", str(repo))
    assert result.returncode == 2
    assert "cloud-init/k3s-server-1/user-data: missing (run homelab-gen render)" in problems(result)
    assert run_cli("render", "-C", str(repo)).returncode == 0
    assert run_cli("validate", "-C", str(repo)).returncode == 0


def test_validate_keeps_the_tree_checks(repo: Path) -> None:
    (repo / "gitops/apps/extra").mkdir(parents=True)
    (repo / "gitops/apps/extra/kustomization.yaml").write_text("resources: [gone.yaml]\n")
    result = run_cli("validate", "-C", str(repo))
    assert result.returncode == 2
    assert any("lists gone.yaml, which does not exist" in p for p in problems(result))


@pytest.mark.parametrize("rendered_before", [False, True])
def test_acme_without_its_token_fails_validate_as_render_fails(
    tmp_path: Path, rendered_before: bool
) -> None:
    text = fixture_text("valid/three-servers.yaml")
    (tmp_path / "cluster.yaml").write_text(text)
    if rendered_before:
        assert run_cli("render", "-C", str(tmp_path)).returncode == 0
    (tmp_path / "cluster.yaml").write_text(text.replace("cert_manager: true", ACME))
    result = run_cli("validate", "-C", str(tmp_path))
    assert result.returncode == 2
    assert "the secrets store has no dns_api_token" in result.stderr
    assert "homelab-gen secret set dns_api_token" in result.stderr
    render = run_cli("render", "-C", str(tmp_path))
    assert render.returncode == 2
    assert "dns_api_token" in render.stderr
