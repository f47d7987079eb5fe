"""The Flux tree under gitops/: what the first server's FluxInstance syncs after boot.

Layout (Flux's canonical example): clusters/<name>/ holds the Flux Kustomizations,
infrastructure/controllers/<component>/ a namespace, a HelmRepository and a HelmRelease,
infrastructure/configs/ the objects that need the controllers' CRDs, and apps/ the user's own
apps plus a demo. Each component has its own Flux Kustomizations (render/flux_graph.py), so
one failing component holds back no other. Disabled components leave no file, no entry and
no dependsOn behind. The K3s upgrade Plans and their controller (render/system_upgrade.py)
are always there, beside that graph.
Kubernetes Secrets are `*.sops.yaml` files (render/gitops_secrets.py) marked for encryption.
"""

from __future__ import annotations

import copy
from typing import Any

from generator.config.model import Cluster
from generator.render import (
    calico,
    charts,
    flux_graph,
    gitops_apps,
    gitops_configs,
    gitops_secrets,
    layout,
    system_upgrade,
)
from generator.render.charts import Spec
from generator.render.kustomize import (
    flux_sync,
    folder,
    index,
    meta,
    namespace,
)
from generator.render.output import RenderedFile
from generator.render.templating import render_template
from generator.secrets import Secrets

TEMPLATES = "gitops"  # the tree templates' folder (see resources), not the output's
FLUX_SOURCE = {"kind": "GitRepository", "name": "flux-system"}  # made by the FluxInstance
APPS = flux_graph.APPS
RETIRED_FILE = "retired.yaml"  # flux_graph.RETIRED's Kustomizations, beside the live ones


def render_gitops(cluster: Cluster, secrets: Secrets) -> dict[str, RenderedFile]:
    files: dict[str, list[dict[str, Any]]] = {}
    files.update(controllers(cluster, secrets))
    files.update(gitops_configs.configs(cluster, layout.CONFIGS_DIR, secrets))
    files.update(gitops_apps.apps(cluster, layout.APPS_DIR))
    files.update(system_upgrade.plans(cluster))
    files.update(gitops_secrets.user_secrets(secrets))
    files.update(cluster_kustomizations(cluster, files))
    files.update(calico_files(cluster))
    out = {path: rendered(path, docs) for path, docs in sorted(files.items())}
    readme = render_template(TEMPLATES, "apps-README.md.j2")
    out[f"{layout.APPS_DIR}/README.md"] = RenderedFile(readme)
    return out


def calico_files(cluster: Cluster) -> dict[str, list[dict[str, Any]]]:
    """Calico's folder and its own Kustomization, beside the graph: nothing waits on it (no pod
    runs without it anyway) and it waits on nothing (render/calico.py)."""
    found = calico.gitops_folder(cluster)
    if found:
        sync = flux_kustomization(calico.CALICO, calico.CALICO_DIR, [], "10m")
        found[f"{layout.flux_cluster_dir(cluster.cluster.name)}/calico.yaml"] = [sync]
    return found


def emit(documents: list[dict[str, Any]]) -> str:
    return render_template(TEMPLATES, "object.yaml.j2", documents=documents)


def rendered(path: str, documents: list[dict[str, Any]]) -> RenderedFile:
    # A *.sops.yaml holds a Secret's plain values until the workspace encrypts it.
    sops = gitops_secrets.is_sops_file(path)
    return RenderedFile(emit(documents), secret=sops, sops=sops)


# --- infrastructure/controllers --------------------------------------------------------------


def helm_repository(spec: Spec) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": meta(spec.chart.repository, spec.namespace),
        "spec": charts.repository_spec(spec.chart),
    }


def helm_release(cluster: Cluster, spec: Spec) -> dict[str, Any]:
    remediation = {"retries": 3}
    install: dict[str, Any] = {"crds": "CreateReplace", "remediation": remediation}
    upgrade: dict[str, Any] = {"crds": "CreateReplace", "remediation": dict(remediation)}
    if spec.key == "traefik":
        # Its LoadBalancer Service gets an address only once the MetalLB pool (config-metallb,
        # after MetalLB's controller) exists: waiting for it would tie Traefik's readiness to
        # MetalLB's, which infra-traefik deliberately does not depend on.
        install["disableWait"] = True
        upgrade["disableWait"] = True
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": meta(spec.chart.name, spec.namespace),
        "spec": {
            "interval": "30m",
            "timeout": "10m",
            "chart": {
                "spec": {
                    "chart": spec.chart.name,
                    "version": charts.chart_version(cluster, spec),
                    "sourceRef": {
                        "kind": "HelmRepository",
                        "name": spec.chart.repository,
                        "namespace": spec.namespace,
                    },
                    "interval": "12h",
                }
            },
            "install": install,
            "upgrade": upgrade,
            "values": charts.release_values(cluster, spec),
        },
    }


def controllers(cluster: Cluster, secrets: Secrets) -> dict[str, list[dict[str, Any]]]:
    base = layout.CONTROLLERS_DIR
    out: dict[str, list[dict[str, Any]]] = {}
    enabled = charts.enabled_specs(cluster)
    for spec in enabled:
        out.update(
            folder(
                f"{base}/{spec.folder}",
                {
                    "namespace": namespace(spec.namespace, spec.privileged),
                    **gitops_secrets.controller_secrets(cluster, spec.key, secrets),
                    "repository": helm_repository(spec),
                    "release": helm_release(cluster, spec),
                },
            )
        )
    # Only the retired infra-controllers (flux_graph.RETIRED) points at this index now; should it
    # reconcile once more before it is suspended, it applies the very same objects.
    out.update(index(base, [spec.folder for spec in enabled]))
    return out


# --- clusters/<name> -------------------------------------------------------------------------


def flux_kustomization(name: str, path: str, depends_on: list[str], timeout: str) -> dict[str, Any]:
    """One Kustomization of this repo's graph. Every one decrypts, not only those holding a
    *.sops.yaml today: a user's Secret may land in any of them, and the sops-age Secret
    always exists (the first server's seed)."""
    decryption = copy.deepcopy(gitops_secrets.DECRYPTION)
    return flux_sync(name, FLUX_SOURCE, f"./{path}", depends_on, timeout, decryption=decryption)


def retired_kustomization(name: str, path: str) -> dict[str, Any]:
    """A name the tree used before (flux_graph.RETIRED), kept so that its removal never prunes
    what the per-component Kustomizations adopt: suspended, not pruning, orphaning on delete."""
    doc = flux_kustomization(name, path, [], "5m")
    doc["spec"] = {"suspend": True, **doc["spec"], "prune": False, "deletionPolicy": "Orphan"}
    return doc


def component_kustomizations(
    cluster: Cluster, files: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Per enabled component: its controller, then its configs (if it has any) depending on
    that controller, and on the issuers when they hold a certificate. No controller waits on
    another component."""
    out: list[dict[str, Any]] = []
    for spec in charts.enabled_specs(cluster):
        controller = flux_graph.controller_name(spec.folder)
        path = f"{layout.CONTROLLERS_DIR}/{spec.folder}"
        out.append(flux_kustomization(controller, path, [], "15m"))
        configs = f"{layout.CONFIGS_DIR}/{spec.folder}"
        if f"{configs}/kustomization.yaml" in files:
            name = flux_graph.config_name(spec.folder)
            needs = [controller, *flux_graph.config_needs(spec.folder, in_folder(files, configs))]
            out.append(flux_kustomization(name, configs, needs, "5m"))
    return out


def in_folder(files: dict[str, list[dict[str, Any]]], path: str) -> list[dict[str, Any]]:
    return [doc for name, docs in files.items() if name.startswith(f"{path}/") for doc in docs]


def apps_depends_on(files: dict[str, list[dict[str, Any]]], defined: set[str]) -> list[str]:
    """What the rendered apps reference (flux_graph.app_needs), among the Kustomizations that
    exist: the demo waits for Traefik and, when it asks for a certificate, the issuers."""
    prefix = f"{layout.APPS_DIR}/"
    docs = [
        doc for path, found in sorted(files.items()) if path.startswith(prefix) for doc in found
    ]
    return [name for name in flux_graph.app_needs(docs) if name in defined]


def cluster_kustomizations(
    cluster: Cluster, files: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """The components' Kustomizations, the apps', and the retired names kept suspended."""
    base = layout.flux_cluster_dir(cluster.name)
    infra = component_kustomizations(cluster, files)
    defined = {doc["metadata"]["name"] for doc in infra}
    needs = apps_depends_on(files, defined)
    out = {f"{base}/apps.yaml": [flux_kustomization(APPS, layout.APPS_DIR, needs, "5m")]}
    if infra:
        out[f"{base}/infrastructure.yaml"] = infra
    retired = [
        retired_kustomization(name, path)
        for name, path in flux_graph.RETIRED.items()
        if f"{path}/kustomization.yaml" in files
    ]
    if retired:
        out[f"{base}/{RETIRED_FILE}"] = retired
    # Beside the graph, not in it: K3s upgrades never wait on an optional component.
    plans = flux_kustomization(
        system_upgrade.PLANS, layout.SYSTEM_UPGRADE_DIR, [system_upgrade.CONTROLLER], "5m"
    )
    out[f"{base}/system-upgrade.yaml"] = [*system_upgrade.controller_objects(), plans]
    return out
