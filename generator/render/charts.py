"""The platform components' table: each one's chart, namespace and values builder, and the
lookups the Flux tree uses (enabled ones, chart version, merged values).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generator.config.model import Cluster, Component
from generator.render.components import (
    cert_manager_values,
    deep_merge,
    longhorn_values,
    metallb_values,
    traefik_values,
)
from generator.render.monitoring import monitoring_values


@dataclass(frozen=True)
class Chart:
    name: str
    repository: str  # the HelmRepository's name
    url: str  # https:// for a Helm repository's index, oci:// for an OCI registry
    version: str

    @property
    def oci(self) -> bool:
        return self.url.startswith("oci://")


def repository_spec(chart: Chart) -> dict[str, Any]:
    """The HelmRepository's spec: an oci:// URL needs `type: oci` (Flux's CRD: "the URL
    field value must be prefixed with oci://" exactly when type is oci). The HelmRelease's
    chart.spec.sourceRef names it the same way either way."""
    spec: dict[str, Any] = {"interval": "12h", "url": chart.url}
    if chart.oci:
        spec["type"] = "oci"
    return spec


# cert-manager from its OCI registry: cert-manager.io/docs/installation/helm (website repo,
# 2026-08) says "We recommend using the OCI Helm chart for any recent version of
# cert-manager. The OCI Helm charts are the source of truth and are published immediately
# upon release"; https://charts.jetstack.io is "legacy", updated hours later. The chart
# (>= v1.6.0) is signed with Helm's PGP provenance (cert-manager.io/docs/installation/
# code-signing), not cosign; Flux's chart `verify` takes cosign or notation only, so it is
# not set. The version stays pinned (v1.21.1, chart versions carry the v).
CERT_MANAGER_OCI = "oci://quay.io/jetstack/charts"


@dataclass(frozen=True)
class Spec:
    key: str  # attribute of model.Components
    folder: str  # folder under gitops/infrastructure/controllers (and configs)
    namespace: str
    chart: Chart
    privileged: bool
    values: Callable[[Cluster], dict[str, Any]]


SPECS: tuple[Spec, ...] = (
    Spec(
        "metallb",
        "metallb",
        "metallb-system",
        Chart("metallb", "metallb", "https://metallb.github.io/metallb", "0.16.1"),
        True,
        metallb_values,
    ),
    Spec(
        "cert_manager",
        "cert-manager",
        "cert-manager",
        Chart("cert-manager", "jetstack", CERT_MANAGER_OCI, "v1.21.1"),
        False,
        cert_manager_values,
    ),
    Spec(
        "traefik",
        "traefik",
        "traefik",
        Chart("traefik", "traefik", "https://traefik.github.io/charts", "41.3.0"),
        False,
        traefik_values,
    ),
    Spec(
        "longhorn",
        "longhorn",
        "longhorn-system",
        Chart("longhorn", "longhorn", "https://charts.longhorn.io", "1.12.1"),
        True,
        longhorn_values,
    ),
    Spec(
        "monitoring",
        "monitoring",
        "monitoring",
        Chart(
            "kube-prometheus-stack",
            "prometheus-community",
            "https://prometheus-community.github.io/helm-charts",
            "88.5.3",
        ),
        True,
        monitoring_values,
    ),
)
SPEC_BY_KEY = {spec.key: spec for spec in SPECS}


def component(cluster: Cluster, spec: Spec) -> Component:
    comp: Component = getattr(cluster.components, spec.key)
    return comp


def enabled_specs(cluster: Cluster) -> tuple[Spec, ...]:
    return tuple(spec for spec in SPECS if component(cluster, spec).enabled)


def chart_version(cluster: Cluster, spec: Spec) -> str:
    return component(cluster, spec).version or spec.chart.version


def release_values(cluster: Cluster, spec: Spec) -> dict[str, Any]:
    merged: dict[str, Any] = deep_merge(spec.values(cluster), component(cluster, spec).values)
    return merged


def longhorn_is_default(cluster: Cluster) -> bool:
    """True when the Flux tree makes Longhorn's StorageClass the default: the switch is on and
    the chart's merged values (cluster.yaml's included) create a default class."""
    spec = SPEC_BY_KEY["longhorn"]
    if not component(cluster, spec).enabled:
        return False
    persistence = release_values(cluster, spec).get("persistence") or {}
    # The chart's own defaults (values.yaml) are true for both.
    return bool(persistence.get("createStorageClass", True)) and bool(
        persistence.get("defaultClass", True)
    )
