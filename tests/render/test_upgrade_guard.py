"""`render` and `validate` refuse a downgrade of cluster.k3s_version, and a skipped minor,
compared with the version the repo was last rendered with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator import cli
from generator.config.checks import k3s_version
from generator.render import system_upgrade, upgrade_guard
from generator.render.gitops import render_gitops
from generator.render.seeds import render_seeds
from tests.conftest import FIXTURES
from tests.render.test_gitops_cases import SECRETS, cluster_from, raw_fixture

OLD = "v1.33.4+k3s1"


def parsed(text: str) -> k3s_version.K3sVersion:
    found = k3s_version.parse(text)
    assert found is not None, text
    return found


# --- parsing and the rule --------------------------------------------------------------------


def test_parse_reads_release_candidates_and_builds() -> None:
    rc = parsed("v1.34.1-rc1+k3s1")
    assert (rc.major, rc.minor, rc.patch, rc.rc, rc.build) == (1, 34, 1, 1, 1)
    assert rc.line == "v1.34"
    assert parsed("v1.34.1-rc2+k3s1") < parsed("v1.34.1+k3s1") < parsed("v1.34.1+k3s2")
    assert parsed("v1.33.10+k3s1") > parsed("v1.33.9+k3s3")


@pytest.mark.parametrize(
    "text", ["1.33.4+k3s1", "v1.33.4", "v1.33+k3s1", "v1.33.4+k3s", "v1.33.4-rc+k3s1", ""]
)
def test_parse_refuses_what_is_not_a_k3s_release(text: str) -> None:
    assert k3s_version.parse(text) is None


@pytest.mark.parametrize(
    "new",
    [
        OLD,
        "v1.33.5+k3s1",  # patch
        "v1.33.4+k3s2",  # a K3s rebuild of the same Kubernetes
        "v1.33.12+k3s1",  # patches may be skipped
        "v1.34.0+k3s1",  # the next minor
        "v1.34.1-rc1+k3s1",  # a candidate of the next minor
        "v1.34.9+k3s3",
    ],
)
def test_forward_by_at_most_one_minor_is_fine(new: str) -> None:
    assert k3s_version.upgrade_problem(parsed(OLD), parsed(new)) is None


@pytest.mark.parametrize(
    "new", ["v1.33.3+k3s1", "v1.33.4-rc1+k3s1", "v1.32.9+k3s1", "v0.99.0+k3s1"]
)
def test_a_downgrade_is_refused_naming_the_field_and_both_versions(new: str) -> None:
    problem = k3s_version.upgrade_problem(parsed(OLD), parsed(new))
    assert problem == (
        f"cluster.k3s_version: {new} is older than {OLD}, the version the cluster was last "
        f"rendered with; K3s and Kubernetes do not support downgrades (keep {OLD} or choose "
        "a newer release)"
    )


def test_a_lower_k3s_build_of_the_same_kubernetes_is_a_downgrade() -> None:
    assert k3s_version.upgrade_problem(parsed("v1.33.4+k3s2"), parsed(OLD))


@pytest.mark.parametrize("new", ["v1.35.0+k3s1", "v1.35.0-rc1+k3s1", "v1.40.1+k3s1", "v2.0.0+k3s1"])
def test_skipping_a_minor_is_refused_with_the_next_step_as_hint(new: str) -> None:
    problem = k3s_version.upgrade_problem(parsed(OLD), parsed(new))
    assert problem == (
        f"cluster.k3s_version: {new} skips a minor version after {OLD}, the version the "
        "cluster was last rendered with (upgrade one minor at a time: go to v1.34.x first, "
        "render and push, let the upgrade Plans finish, then go on)"
    )


def test_the_config_check_accepts_release_candidates() -> None:
    raw = raw_fixture()
    raw["cluster"]["k3s_version"] = "v1.34.1-rc1+k3s1"
    assert cluster_from(raw).cluster.k3s_version == "v1.34.1-rc1+k3s1"


# --- the last rendered version, from disk ----------------------------------------------------


def write(directory: Path, version: str, *, plans: bool = True) -> None:
    raw = raw_fixture()
    raw["cluster"]["k3s_version"] = version
    cluster = cluster_from(raw)
    files = {**render_seeds(cluster, SECRETS), **render_gitops(cluster, SECRETS)}
    for rel, item in files.items():
        if not plans and rel.startswith(system_upgrade.PLAN_PATHS[system_upgrade.SERVER_PLAN]):
            continue
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item.text)


def test_the_server_plan_on_disk_is_the_last_rendered_version(tmp_path: Path) -> None:
    write(tmp_path, OLD)
    assert upgrade_guard.last_rendered(tmp_path) == parsed(OLD)
    assert upgrade_guard.upgrade_problems(tmp_path, cluster_from(raw_fixture())) == []


def test_the_plan_wins_over_the_seeds(tmp_path: Path) -> None:
    write(tmp_path, OLD)
    plan = tmp_path / system_upgrade.PLAN_PATHS[system_upgrade.SERVER_PLAN]
    plan.write_text(plan.read_text().replace(OLD, "v1.34.2+k3s1"))
    assert upgrade_guard.last_rendered(tmp_path) == parsed("v1.34.2+k3s1")


def test_a_lab_rendered_before_the_plans_is_judged_by_its_seeds(tmp_path: Path) -> None:
    write(tmp_path, OLD, plans=False)
    assert upgrade_guard.plan_version(tmp_path) is None
    assert upgrade_guard.last_rendered(tmp_path) == parsed(OLD)
    raw = raw_fixture()
    raw["cluster"]["k3s_version"] = "v1.35.1+k3s1"
    (problem,) = upgrade_guard.upgrade_problems(tmp_path, cluster_from(raw))
    assert problem.startswith("cluster.k3s_version: v1.35.1+k3s1 skips a minor version after ")


def test_nothing_rendered_refuses_nothing(tmp_path: Path) -> None:
    raw = raw_fixture()
    raw["cluster"]["k3s_version"] = "v1.20.0+k3s1"
    assert upgrade_guard.last_rendered(tmp_path) is None
    assert upgrade_guard.upgrade_problems(tmp_path, cluster_from(raw)) == []


# --- the commands agree ----------------------------------------------------------------------


@pytest.fixture
def lab(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    shutil.copy(FIXTURES / "valid" / "three-servers.yaml", tmp_path / "cluster.yaml")
    assert cli.main(["render", "-C", str(tmp_path)]) == 0
    capsys.readouterr()
    return tmp_path


def set_version(lab: Path, version: str) -> None:
    config = lab / "cluster.yaml"
    config.write_text(config.read_text().replace(f"k3s_version: {OLD}", f"k3s_version: {version}"))


@pytest.mark.parametrize(
    ("version", "says"),
    [("v1.35.0+k3s1", "go to v1.34.x first"), ("v1.33.2+k3s1", "do not support downgrades")],
)
def test_render_and_validate_refuse_the_same_change(
    lab: Path, capsys: pytest.CaptureFixture[str], version: str, says: str
) -> None:
    set_version(lab, version)
    before = {p: p.read_bytes() for p in lab.rglob("*") if p.is_file()}
    outputs = []
    for command in ("validate", "render"):
        assert cli.main([command, "-C", str(lab)]) == 2
        outputs.append(capsys.readouterr().err)
    assert outputs[0] == outputs[1]
    assert (
        f"cluster.k3s_version: {version}" in outputs[0] and OLD in outputs[0] and says in outputs[0]
    )
    after = {p: p.read_bytes() for p in lab.rglob("*") if p.is_file()}
    assert after == before  # render wrote nothing


def test_one_minor_up_renders_and_then_validates(
    lab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_version(lab, "v1.34.1+k3s1")
    assert cli.main(["validate", "-C", str(lab)]) in (0, 2)  # tree is stale, version is fine
    assert "k3s_version" not in capsys.readouterr().err
    assert cli.main(["render", "-C", str(lab)]) == 0
    assert upgrade_guard.last_rendered(lab) == parsed("v1.34.1+k3s1")
    assert cli.main(["validate", "-C", str(lab)]) == 0
