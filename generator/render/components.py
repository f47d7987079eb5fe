"""What each platform component is in the Flux tree: its chart, namespace and Helm values.

Values are plain data built from the Cluster; the user's `components.<name>.values` are
deep-merged over ours, so anything we choose can be overridden from cluster.yaml.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generator.config.model import Cluster, Component
from generator.render import k3s

# Labels that let privileged pods (host networking, host paths, raw sockets) run even where
# Pod Security admission enforces a stricter default.
PRIVILEGED_LABELS = {
    f"pod-security.kubernetes.io/{mode}": "privileged" for mode in ("enforce", "audit", "warn")
}

GRAFANA_ADMIN_SECRET = "grafana-admin"
CLOUDFLARE_TOKEN_SECRET = "cloudflare-api-token"
CLOUDFLARE_TOKEN_KEY = "api-token"


@dataclass(frozen=True)
class Chart:
    name: str
    repository: str  # the HelmRepository's name
    url: str
    version: str


@dataclass(frozen=True)
class Spec:
    key: str  # attribute of model.Components
    folder: str  # folder under gitops/infrastructure/controllers (and configs)
    namespace: str
    chart: Chart
    privileged: bool
    values: Callable[[Cluster], dict[str, Any]]


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's rule: maps merge key by key; anything else in override replaces base."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def option(component: Component, name: str, default: Any) -> Any:
    return component.options.get(name, default)


# --- Traefik ---------------------------------------------------------------------------------


def traefik_ip(cluster: Cluster) -> str:
    """The fixed LoadBalancer address DNS can point at: traefik.ip, else the pool's first."""
    return str(option(cluster.components.traefik, "ip", cluster.network.metallb_start))


def traefik_values(cluster: Cluster) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ports": {
            "web": {
                "http": {
                    "redirections": {
                        "entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}
                    }
                }
            }
        },
    }
    if cluster.components.metallb.enabled:
        values["service"] = {"annotations": {"metallb.io/loadBalancerIPs": traefik_ip(cluster)}}
    if option(cluster.components.traefik, "dashboard", False):
        values["ingressRoute"] = {
            "dashboard": {
                "enabled": True,
                "matchRule": f"Host(`traefik.{cluster.cluster.domain}`)",
                "entryPoints": ["websecure"],
            }
        }
    return values


# --- MetalLB ---------------------------------------------------------------------------------


def metallb_values(cluster: Cluster) -> dict[str, Any]:
    # L2 only: the frr-k8s BGP backend would add a DaemonSet a home lab never uses.
    return {"frrk8s": {"enabled": False}}


# --- Longhorn --------------------------------------------------------------------------------


def longhorn_replicas(cluster: Cluster) -> int:
    return int(option(cluster.components.longhorn, "replicas", min(3, len(cluster.nodes))))


def longhorn_values(cluster: Cluster) -> dict[str, Any]:
    replicas = longhorn_replicas(cluster)
    per_engine = json.dumps({"v1": str(replicas), "v2": str(replicas)}, separators=(",", ":"))
    return {
        # Under GitOps the pre-upgrade hook Job blocks Helm; Flux drives upgrades instead.
        "preUpgradeChecker": {"jobEnabled": False},
        "persistence": {
            "defaultClass": bool(
                option(cluster.components.longhorn, "default_storage_class", False)
            ),
            "defaultClassReplicaCount": replicas,
        },
        "defaultSettings": {"defaultReplicaCount": per_engine},
    }


# --- Monitoring (kube-prometheus-stack) ------------------------------------------------------

DEFAULT_RETENTION = "7d"
DEFAULT_STORAGE_SIZE = "10Gi"


def _https_component(endpoints: list[str], port: int) -> dict[str, Any]:
    """A K3s control-plane listener on the servers: https with its self-signed certificate."""
    return {
        "endpoints": endpoints,
        "service": {"port": port, "targetPort": port},
        "serviceMonitor": {"https": True, "insecureSkipVerify": True},
    }


def retention_size(storage_size: str) -> str | None:
    """80% of the volume, so Prometheus trims old blocks before the disk fills up."""
    match = re.fullmatch(r"(\d+)(Gi|Mi)", storage_size)
    if match is None:
        return None
    mebibytes = int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)
    return f"{mebibytes * 8 // 10}MB"


def monitoring_values(cluster: Cluster) -> dict[str, Any]:
    comp = cluster.components.monitoring
    servers = [str(n.ip) for n in cluster.servers]
    nodes = [str(n.ip) for n in cluster.nodes]
    storage_size = str(option(comp, "storage_size", DEFAULT_STORAGE_SIZE))
    spec: dict[str, Any] = {
        "retention": str(option(comp, "retention", DEFAULT_RETENTION)),
        "resources": {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "storageSpec": {
            "volumeClaimTemplate": {
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": storage_size}},
                }
            }
        },
        # Pick up ServiceMonitors and rules from the user's own apps, not only the chart's.
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
    }
    size = retention_size(storage_size)
    if size is not None:
        spec["retentionSize"] = size
    values: dict[str, Any] = {
        # No receiver is configured in a fresh lab; Grafana shows the alerts instead.
        "alertmanager": {"enabled": False},
        "kubeControllerManager": _https_component(servers, k3s.CONTROLLER_MANAGER_PORT),
        "kubeScheduler": _https_component(servers, k3s.SCHEDULER_PORT),
        "kubeEtcd": _etcd_values(cluster, servers),
        "kubeProxy": {
            "endpoints": nodes,
            "service": {
                "port": k3s.KUBE_PROXY_PORT,
                "targetPort": k3s.KUBE_PROXY_PORT,
            },
        },
        "prometheus": {"prometheusSpec": spec},
        "grafana": _grafana_values(cluster),
    }
    return values


def _etcd_values(cluster: Cluster, servers: list[str]) -> dict[str, Any]:
    if cluster.cluster.datastore_endpoint:
        return {"enabled": False}  # an external datastore: K3s runs no etcd to scrape
    port = k3s.ETCD_METRICS_PORT
    return {
        "endpoints": servers,
        "service": {"port": port, "targetPort": port},
        "serviceMonitor": {"scheme": "http"},
    }


def _grafana_values(cluster: Cluster) -> dict[str, Any]:
    grafana: dict[str, Any] = {
        "admin": {
            "existingSecret": GRAFANA_ADMIN_SECRET,
            "userKey": "admin-user",
            "passwordKey": "admin-password",
        }
    }
    if cluster.components.traefik.enabled:
        host = f"grafana.{cluster.cluster.domain}"
        grafana["ingress"] = {
            "enabled": True,
            "hosts": [host],
            "tls": [tls_entry(cluster, host, "grafana-tls")],
        }
        annotations = issuer_annotations(cluster)
        if annotations:
            grafana["ingress"]["annotations"] = annotations
    return grafana


# --- cert-manager ----------------------------------------------------------------------------

ACME_SERVERS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}
# Public resolvers for the DNS-01 self-check: a home DNS often answers for the lab's own
# domain itself and never shows the TXT record, so the check would wait forever.
ACME_RECURSIVE_NAMESERVERS = "1.1.1.1:53,9.9.9.9:53"


def issuer_kind(cluster: Cluster) -> str:
    return str(option(cluster.components.cert_manager, "issuer", "selfsigned"))


def cluster_issuer_name(cluster: Cluster) -> str:
    """The ClusterIssuer that ingresses use."""
    return "letsencrypt" if issuer_kind(cluster) == "acme" else "homelab-ca"


def issuer_annotations(cluster: Cluster) -> dict[str, str]:
    if not cluster.components.cert_manager.enabled:
        return {}
    return {"cert-manager.io/cluster-issuer": cluster_issuer_name(cluster)}


def tls_entry(cluster: Cluster, host: str, secret_name: str) -> dict[str, Any]:
    """With cert-manager a certificate lands in secret_name; without, Traefik's default one."""
    if cluster.components.cert_manager.enabled:
        return {"hosts": [host], "secretName": secret_name}
    return {"hosts": [host]}


def cert_manager_values(cluster: Cluster) -> dict[str, Any]:
    values: dict[str, Any] = {"crds": {"enabled": True}}
    if issuer_kind(cluster) == "acme":
        values["dns01RecursiveNameservers"] = ACME_RECURSIVE_NAMESERVERS
        values["dns01RecursiveNameserversOnly"] = True
    return values


# --- the table -------------------------------------------------------------------------------

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
        Chart("cert-manager", "jetstack", "https://charts.jetstack.io", "v1.21.1"),
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
