"""Helm values of the monitoring component (kube-prometheus-stack): Prometheus, its storage,
the K3s control-plane scrapes, Grafana.
"""

from __future__ import annotations

import re
from typing import Any

from generator.config.model import Cluster
from generator.render import k3s
from generator.render.components import GRAFANA_ADMIN_SECRET, issuer_annotations, option, tls_entry

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
