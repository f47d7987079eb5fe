"""K3s upgrades as a commit: the system-upgrade-controller's Flux objects and the two Plans,
against the controller's own CRD, manifests and example in ../shared/upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generator import yamlio
from generator.render import layout, system_upgrade
from generator.render.gitops import render_gitops
from generator.render.output import RenderedFile
from generator.render.seeds import render_seeds
from tests.render.test_gitops_cases import (
    MATRIX,
    SECRETS,
    cluster_from,
    cluster_with,
    crd_problems,
    default_cluster,
    raw_fixture,
)
from tests.upstream import validate_custom_resource

SUC = "system-upgrade-controller-v0.20.1"
CLUSTER_FILE = "gitops/clusters/home/system-upgrade.yaml"
SERVER = f"{layout.SYSTEM_UPGRADE_DIR}/k3s-server.yaml"
AGENT = f"{layout.SYSTEM_UPGRADE_DIR}/k3s-agent.yaml"


def docs(rendered: dict[str, RenderedFile], path: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yamlio.load_all_plain(rendered[path].text)
    return loaded


def plan(rendered: dict[str, RenderedFile], path: str) -> dict[str, Any]:
    (found,) = docs(rendered, path)
    return found


def with_version(version: str) -> dict[str, RenderedFile]:
    raw = raw_fixture()
    raw["cluster"]["k3s_version"] = version
    cluster = cluster_from(raw)
    return {**render_seeds(cluster, SECRETS), **render_gitops(cluster, SECRETS)}


@pytest.fixture(scope="module")
def default() -> dict[str, RenderedFile]:
    return render_gitops(default_cluster(), SECRETS)


def upstream_docs(upstream: Path, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = yamlio.load_all_plain((upstream / SUC / name).read_text())
    return [d for d in found if d]


# --- the Plans -------------------------------------------------------------------------------


def test_plans_validate_against_the_plan_crd(
    default: dict[str, RenderedFile], upstream: Path
) -> None:
    for path in (SERVER, AGENT):
        validate_custom_resource(plan(default, path), upstream / SUC)


def test_upstream_example_passes_the_same_check(upstream: Path) -> None:
    example = upstream_docs(upstream, "k3s-upgrade.yaml")
    assert [d["metadata"]["name"] for d in example] == ["k3s-server", "k3s-agent"]
    for doc in example:
        validate_custom_resource(doc, upstream / SUC)


def test_the_crd_check_catches_a_misspelt_plan_field(
    default: dict[str, RenderedFile], upstream: Path
) -> None:
    broken = default[AGENT].text.replace("  drain:", "  drian:")
    assert crd_problems({AGENT: RenderedFile(broken)}, upstream)


def test_both_plans_carry_exactly_the_clusters_k3s_version(
    default: dict[str, RenderedFile],
) -> None:
    version = default_cluster().cluster.k3s_version
    assert [plan(default, p)["spec"]["version"] for p in (SERVER, AGENT)] == [version, version]


def test_server_plan_cordons_control_plane_nodes_one_at_a_time(
    default: dict[str, RenderedFile],
) -> None:
    spec = plan(default, SERVER)["spec"]
    assert spec["concurrency"] == 1
    assert spec["cordon"] is True
    assert "drain" not in spec
    assert spec["nodeSelector"] == {
        "matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]
    }
    assert spec["upgrade"] == {"image": "rancher/k3s-upgrade"}


def test_agent_plan_drains_one_at_a_time_after_the_servers(
    default: dict[str, RenderedFile],
) -> None:
    spec = plan(default, AGENT)["spec"]
    assert spec["concurrency"] == 1
    assert spec["nodeSelector"] == {
        "matchExpressions": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}
        ]
    }
    assert spec["prepare"] == {"image": "rancher/k3s-upgrade", "args": ["prepare", "k3s-server"]}
    # Evictions honour PodDisruptionBudgets; the timeout bounds how long one may block.
    assert spec["drain"]["disableEviction"] is False
    assert spec["drain"]["timeout"] == "10m"
    assert spec["upgrade"] == {"image": "rancher/k3s-upgrade"}


def test_plans_run_as_the_controllers_service_account_in_its_namespace(
    default: dict[str, RenderedFile], upstream: Path
) -> None:
    manifests = upstream_docs(upstream, "system-upgrade-controller.yaml")
    (account,) = [d for d in manifests if d["kind"] == "ServiceAccount"]
    (deployment,) = [d for d in manifests if d["kind"] == "Deployment"]
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )
    for path in (SERVER, AGENT):
        found = plan(default, path)
        assert found["spec"]["serviceAccountName"] == account["metadata"]["name"]
        assert found["metadata"]["namespace"] == account["metadata"]["namespace"]
    # Flux's `images:` override matches the image the upstream Deployment names.
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.partition(":")[0] == system_upgrade.SUC_IMAGE


def test_changing_k3s_version_changes_only_the_plans_and_the_seeds_install_version() -> None:
    old, new = with_version("v1.33.4+k3s1"), with_version("v1.34.1+k3s1")
    assert old.keys() == new.keys()
    changed = sorted(p for p in old if old[p].text != new[p].text)
    gitops = [p for p in changed if p.startswith("gitops/")]
    assert gitops == [AGENT, SERVER]
    for path in gitops:
        assert plan(new, path)["spec"]["version"] == "v1.34.1+k3s1"
    seeds = [p for p in changed if not p.startswith("gitops/")]
    assert seeds and all(p.endswith("/user-data") for p in seeds)
    for path in seeds:
        assert "INSTALL_K3S_VERSION='v1.34.1+k3s1'" in new[path].text
        assert "v1.33.4+k3s1" not in new[path].text


# --- the controller, delivered by Flux -------------------------------------------------------


def test_flux_objects_validate_against_the_flux_crds(
    default: dict[str, RenderedFile], upstream: Path
) -> None:
    assert crd_problems({CLUSTER_FILE: default[CLUSTER_FILE]}, upstream) == []


def test_controller_is_pinned_to_the_release_tag_and_its_commit(
    default: dict[str, RenderedFile],
) -> None:
    source, crds, controller, plans = docs(default, CLUSTER_FILE)
    assert source["kind"] == "GitRepository"
    assert source["spec"]["url"] == "https://github.com/rancher/system-upgrade-controller"
    assert source["spec"]["ref"] == {
        "tag": "v0.20.1",
        "commit": "f1362a3fe1a8d55a0c65847f7c2779909dc7ec95",
    }
    assert crds["spec"]["path"] == "./pkg/crds/yaml/generated"
    assert controller["spec"]["path"] == "./"
    assert controller["spec"]["images"] == [
        {"name": "rancher/system-upgrade-controller", "newTag": "v0.20.1"}
    ]
    for upstream_step in (crds, controller):
        assert upstream_step["spec"]["sourceRef"] == {
            "kind": "GitRepository",
            "name": "system-upgrade-controller",
        }
    assert plans["spec"]["path"] == f"./{layout.SYSTEM_UPGRADE_DIR}"
    assert plans["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}


@pytest.mark.parametrize("case", ["all-on", "all-off"])
def test_plans_wait_on_the_controller_only_never_on_components(case: str) -> None:
    rendered = render_gitops(cluster_with(MATRIX[case]), SECRETS)
    _, crds, controller, plans = docs(rendered, CLUSTER_FILE)
    assert "dependsOn" not in crds["spec"]
    assert controller["spec"]["dependsOn"] == [{"name": "system-upgrade-crds"}]
    assert plans["spec"]["dependsOn"] == [{"name": "system-upgrade-controller"}]
    assert SERVER in rendered and AGENT in rendered
    # Nothing of the component chain depends on the upgrade steps either.
    names = {"system-upgrade-crds", "system-upgrade-controller", "system-upgrade-plans"}
    for path in ("gitops/clusters/home/apps.yaml", "gitops/clusters/home/infrastructure.yaml"):
        for doc in docs(rendered, path) if path in rendered else []:
            assert not {d["name"] for d in doc["spec"].get("dependsOn", [])} & names
