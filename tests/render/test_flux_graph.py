"""The Flux Kustomizations' dependsOn graph, walked as Flux walks it: a Kustomization becomes
Ready only when it is healthy itself and everything it dependsOn is Ready. One failing
optional component must leave the MetalLB pool, the issuers, Traefik and the apps reachable.
"""

from __future__ import annotations

from typing import Any

import pytest

from generator.config.model import COMPONENT_NAMES, Cluster
from generator.render import charts, flux_graph, layout
from generator.render.gitops import render_gitops
from generator.render.output import RenderedFile
from tests.render.test_gitops_cases import MATRIX, SECRETS, cluster_with, documents

VARIANTS: dict[str, Cluster] = {
    **{name: cluster_with(on) for name, on in MATRIX.items()},
    "all-but-cert-manager": cluster_with(set(COMPONENT_NAMES) - {"cert_manager"}),
    "all-but-metallb": cluster_with(set(COMPONENT_NAMES) - {"metallb"}),
    "acme": cluster_with(
        cert_manager={
            "enabled": True,
            "issuer": "acme",
            "acme_email": "me@example.com",
            "dns_provider": "cloudflare",
        },
    ),
    # The dashboard's certificate is Traefik's config, waiting for the issuers too.
    "dashboard": cluster_with(traefik={"enabled": True, "dashboard": True}),
}
CASES = sorted(VARIANTS)
# What a home lab cannot do without: an address for Traefik, certificates, the ingress, apps.
ESSENTIAL = (
    "infra-metallb",
    "config-metallb",
    "infra-cert-manager",
    "config-cert-manager",
    "infra-traefik",
    "apps",
)
OPTIONAL = ("longhorn", "monitoring")  # folders


@pytest.fixture(scope="module")
def renders() -> dict[str, dict[str, RenderedFile]]:
    return {name: render_gitops(cluster, SECRETS) for name, cluster in VARIANTS.items()}


def kustomizations(rendered: dict[str, RenderedFile]) -> dict[str, dict[str, Any]]:
    """Every Flux Kustomization in the tree by name, the retired ones too."""
    return {
        doc["metadata"]["name"]: doc
        for _, doc in documents(rendered)
        if doc["kind"] == "Kustomization" and "fluxcd" in doc["apiVersion"]
    }


def depends_on(doc: dict[str, Any]) -> list[str]:
    return [d["name"] for d in doc["spec"].get("dependsOn", [])]


def ready_after(graph: dict[str, dict[str, Any]], unhealthy: set[str]) -> set[str]:
    """Flux's fixed point: Ready once healthy and all of dependsOn are Ready. Suspended ones
    never reconcile, so never become Ready (and nothing may wait on them)."""
    ready: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, doc in graph.items():
            if name in ready or name in unhealthy or doc["spec"].get("suspend"):
                continue
            if all(dep in ready for dep in depends_on(doc)):
                ready.add(name)
                changed = True
    return ready


@pytest.mark.parametrize("case", CASES)
def test_every_depends_on_names_a_kustomization_that_exists(
    case: str, renders: dict[str, dict[str, RenderedFile]]
) -> None:
    graph = kustomizations(renders[case])
    dangling = {(n, d) for n, doc in graph.items() for d in depends_on(doc) if d not in graph}
    assert dangling == set()


@pytest.mark.parametrize("case", CASES)
def test_everything_becomes_ready_when_everything_is_healthy(
    case: str, renders: dict[str, dict[str, RenderedFile]]
) -> None:
    graph = kustomizations(renders[case])
    live = {n for n, doc in graph.items() if not doc["spec"].get("suspend")}
    assert ready_after(graph, set()) == live


@pytest.mark.parametrize("folder", OPTIONAL)
@pytest.mark.parametrize("case", ["all-on", "acme", "all-but-cert-manager", "all-but-metallb"])
def test_a_failing_optional_component_blocks_nothing_else(
    case: str, folder: str, renders: dict[str, dict[str, RenderedFile]]
) -> None:
    graph = kustomizations(renders[case])
    failing = {n for n in graph if n.endswith(f"-{folder}")}
    assert failing, f"{case} has no Kustomization for {folder}"
    ready = ready_after(graph, failing)
    present = [n for n in ESSENTIAL if n in graph]
    assert "infra-traefik" in present and "apps" in present
    assert [n for n in present if n not in ready] == []


def component_of(name: str) -> str:
    return name.removeprefix("infra-").removeprefix("config-")


@pytest.mark.parametrize("case", CASES)
def test_any_failing_component_blocks_only_its_own_config_and_the_apps_using_it(
    case: str, renders: dict[str, dict[str, RenderedFile]]
) -> None:
    """Whatever component fails, no other component waits: only its own config Kustomization,
    and apps when the apps use it (Traefik's class, cert-manager's issuers)."""
    graph = kustomizations(renders[case])
    live = {n for n, doc in graph.items() if not doc["spec"].get("suspend")}
    for failing in live - {"apps"} - {n for n in live if n.startswith("system-upgrade")}:
        folder = component_of(failing)
        blocked = live - ready_after(graph, {failing}) - {failing}
        allowed = {flux_graph.config_name(folder)}
        if folder in ("traefik", "cert-manager"):
            allowed.add("apps")
        if folder == "cert-manager":  # the dashboard's certificate needs an issuer
            allowed.add(flux_graph.config_name("traefik"))
        assert blocked <= allowed, (failing, blocked - allowed)


@pytest.mark.parametrize("case", CASES)
def test_configs_wait_for_their_own_controller_and_certificates_for_the_issuers(
    case: str, renders: dict[str, dict[str, RenderedFile]]
) -> None:
    for name, doc in kustomizations(renders[case]).items():
        if name.startswith("config-"):
            folder = name.removeprefix("config-")
            issuers = [flux_graph.config_name("cert-manager")] if folder == "traefik" else []
            assert depends_on(doc) == [flux_graph.controller_name(folder), *issuers]
            assert doc["spec"]["path"] == f"./{layout.CONFIGS_DIR}/{folder}"
        if name.startswith("infra-") and name not in flux_graph.RETIRED:
            assert depends_on(doc) == [], name


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("all-on", ["infra-traefik", "config-cert-manager"]),
        ("acme", ["infra-traefik", "config-cert-manager"]),
        ("all-but-cert-manager", ["infra-traefik"]),  # no issuer annotation, no certificate
        ("all-but-metallb", ["infra-traefik", "config-cert-manager"]),
        ("only-whoami", ["infra-traefik"]),
        ("only-traefik", []),  # no demo: the apps folder holds only the user's own
        ("all-off", []),
    ],
)
def test_apps_wait_for_what_the_demo_references(
    case: str, expected: list[str], renders: dict[str, dict[str, RenderedFile]]
) -> None:
    assert depends_on(kustomizations(renders[case])["apps"]) == expected


def test_app_needs_reads_the_objects() -> None:
    ingress = {
        "kind": "Ingress",
        "metadata": {"annotations": {"cert-manager.io/issuer": "mine"}},
        "spec": {"ingressClassName": "traefik"},
    }
    other_class = {"kind": "Ingress", "spec": {"ingressClassName": "nginx"}}
    certificate_ask = {"kind": "Service", "metadata": ingress["metadata"]}
    assert flux_graph.app_needs([ingress]) == ["infra-traefik", "config-cert-manager"]
    assert flux_graph.app_needs([other_class, {"kind": "Deployment"}]) == []
    assert flux_graph.app_needs([certificate_ask, certificate_ask]) == ["config-cert-manager"]


@pytest.mark.parametrize("case", CASES)
def test_a_disabled_component_leaves_no_kustomization_and_no_depends_on(
    case: str, renders: dict[str, dict[str, RenderedFile]]
) -> None:
    cluster = VARIANTS[case]
    graph = kustomizations(renders[case])
    mentioned = set(graph) | {d for doc in graph.values() for d in depends_on(doc)}
    paths = {doc["spec"]["path"] for doc in graph.values()}
    for spec in charts.SPECS:
        if getattr(cluster.components, spec.key).enabled:
            assert flux_graph.controller_name(spec.folder) in graph
            continue
        names = {flux_graph.controller_name(spec.folder), flux_graph.config_name(spec.folder)}
        assert not names & mentioned, (spec.key, names & mentioned)
        assert not [p for p in paths if p.endswith(f"/{spec.folder}")], spec.key


# --- day 2: the retired one-chain names ------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_retired_names_stay_suspended_never_pruning(
    case: str, renders: dict[str, dict[str, RenderedFile]]
) -> None:
    """A cluster synced from the old tree keeps its infra-controllers and infra-configs: were
    they deleted with prune on, their finaliser would delete the namespaces and HelmReleases
    the new Kustomizations are about to adopt (flux_graph.RETIRED says why and where)."""
    rendered = renders[case]
    graph = kustomizations(rendered)
    for name, path in flux_graph.RETIRED.items():
        if f"{path}/kustomization.yaml" not in rendered:
            assert name not in graph  # nothing of it could be left to protect
            continue
        spec = graph[name]["spec"]
        assert (spec["suspend"], spec["prune"], spec["deletionPolicy"]) == (True, False, "Orphan")
        assert spec["path"] == f"./{path}"  # should it reconcile once more: the same objects
        assert not any(name in depends_on(doc) for doc in graph.values())


def test_retired_paths_hold_exactly_what_the_new_kustomizations_apply(
    renders: dict[str, dict[str, RenderedFile]],
) -> None:
    """Same objects, same names: the new per-component Kustomizations adopt what the old
    chain applied (kustomize-controller re-labels them on apply), nothing is recreated."""
    rendered = renders["all-on"]
    graph = kustomizations(rendered)
    for old_path in flux_graph.RETIRED.values():
        index = documents(
            {p: i for p, i in rendered.items() if p == f"{old_path}/kustomization.yaml"}
        )
        listed = {f"./{old_path}/{folder}" for folder in index[0][1]["resources"]}
        new_paths = {
            doc["spec"]["path"]
            for name, doc in graph.items()
            if name not in flux_graph.RETIRED and doc["spec"]["path"].startswith(f"./{old_path}/")
        }
        assert listed == new_paths


def test_the_dashboard_certificate_waits_for_traefik_and_the_issuers_only(
    renders: dict[str, dict[str, RenderedFile]],
) -> None:
    graph = kustomizations(renders["dashboard"])
    assert depends_on(graph["config-traefik"]) == ["infra-traefik", "config-cert-manager"]
    # a failing Traefik never holds back the issuers
    assert "config-cert-manager" in ready_after(graph, {"infra-traefik"})
    assert "config-traefik" not in kustomizations(renders["all-on"])
