"""The Flux tree under gitops/: what the first server's FluxInstance syncs after boot.

Layout (Flux's canonical example): clusters/<name>/ holds the Flux Kustomizations,
infrastructure/controllers/<component>/ a namespace, a HelmRepository and a HelmRelease,
infrastructure/configs/ the objects that need the controllers' CRDs, and apps/ the user's own
apps plus a demo. Disabled components leave no file, no entry and no dependsOn behind.
The K3s upgrade Plans and their controller (render/system_upgrade.py) are always there,
beside that chain.
Kubernetes Secrets are `*.sops.yaml` files (render/gitops_secrets.py) marked for encryption.
"""

from __future__ import annotations

import copy
from typing import Any

from generator.config.model import Cluster
from generator.render import (
    charts,
    gitops_apps,
    gitops_configs,
    gitops_secrets,
    layout,
    system_upgrade,
)
from generator.render import components as comps
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
CONTROLLERS = "infra-controllers"
CONFIGS = "infra-configs"
APPS = "apps"


def render_gitops(cluster: Cluster, secrets: Secrets) -> dict[str, RenderedFile]:
    files: dict[str, list[dict[str, Any]]] = {}
    files.update(controllers(cluster, secrets))
    files.update(gitops_configs.configs(cluster, layout.CONFIGS_DIR, secrets))
    files.update(gitops_apps.apps(cluster, layout.APPS_DIR))
    files.update(system_upgrade.plans(cluster))
    files.update(gitops_secrets.user_secrets(secrets))
    files.update(cluster_kustomizations(cluster, files))
    out = {path: rendered(path, docs) for path, docs in sorted(files.items())}
    readme = render_template(TEMPLATES, "apps-README.md.j2")
    out[f"{layout.APPS_DIR}/README.md"] = RenderedFile(readme)
    return out


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
        "spec": {"interval": "12h", "url": spec.chart.url},
    }


def helm_release(cluster: Cluster, spec: Spec) -> dict[str, Any]:
    remediation = {"retries": 3}
    install: dict[str, Any] = {"crds": "CreateReplace", "remediation": remediation}
    upgrade: dict[str, Any] = {"crds": "CreateReplace", "remediation": dict(remediation)}
    if spec.key == "traefik":
        # Its LoadBalancer Service gets an address only once the MetalLB pool (in configs,
        # applied after the controllers are Ready) exists: waiting for it would deadlock.
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


def controller_secrets(spec: Spec, secrets: Secrets) -> dict[str, dict[str, Any]]:
    """Secrets a chart's values name, beside its release so both arrive in one apply."""
    if spec.key == "monitoring":
        return {f"{comps.GRAFANA_ADMIN_SECRET}.sops": gitops_secrets.grafana_admin(secrets)}
    return {}


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
                    **controller_secrets(spec, secrets),
                    "repository": helm_repository(spec),
                    "release": helm_release(cluster, spec),
                },
            )
        )
    out.update(index(base, [spec.folder for spec in enabled]))
    return out


# --- clusters/<name> -------------------------------------------------------------------------


def flux_kustomization(
    name: str, path: str, depends_on: str | None, timeout: str
) -> dict[str, Any]:
    """One step of this repo's chain. Every step decrypts, not only those holding a
    *.sops.yaml today: a user's Secret may land in any of them, and the sops-age Secret
    always exists (the first server's seed)."""
    decryption = copy.deepcopy(gitops_secrets.DECRYPTION)
    return flux_sync(name, FLUX_SOURCE, f"./{path}", depends_on, timeout, decryption=decryption)


def cluster_kustomizations(
    cluster: Cluster, files: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """controllers -> configs -> apps, each step only if its folder has anything in it."""
    base = layout.flux_cluster_dir(cluster.name)
    infra: list[dict[str, Any]] = []
    last: str | None = None
    steps = ((CONTROLLERS, layout.CONTROLLERS_DIR, "15m"), (CONFIGS, layout.CONFIGS_DIR, "5m"))
    for name, path, timeout in steps:
        if f"{path}/kustomization.yaml" in files:
            infra.append(flux_kustomization(name, path, last, timeout))
            last = name
    out = {f"{base}/apps.yaml": [flux_kustomization(APPS, layout.APPS_DIR, last, "5m")]}
    if infra:
        out[f"{base}/infrastructure.yaml"] = infra
    # Beside the chain, not in it: K3s upgrades never wait on an optional component.
    plans = flux_kustomization(
        system_upgrade.PLANS, layout.SYSTEM_UPGRADE_DIR, system_upgrade.CONTROLLER, "5m"
    )
    out[f"{base}/system-upgrade.yaml"] = [*system_upgrade.controller_objects(), plans]
    return out
