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


# Every K3s metrics endpoint serves the whole registry of its one process (k3s-io/k3s#2262):
# apiserver, controller-manager, scheduler, kube-proxy and kubelet on a server, kubelet and
# kube-proxy on an agent, and etcd's listener serves them too (k3s-io/k3s#2921). Scraped as is,
# every job would ingest every component's series again. Each job keeps only the families its
# component owns, plus the few process-wide series its default dashboard panels read (the same
# numbers on every endpoint of a process). tests/render/test_monitoring_relabel.py holds the
# metric names the chart's default rules and dashboards read per job;
# benchmarks/monitoring_metrics.py counts them from the chart's sources.
_PANEL_PROCESS_SERIES = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "go_goroutines",
    "rest_client_requests_total",
    "rest_client_request_duration_seconds_bucket",
)
# The controllers' own families (workqueue_ is shared with the apiserver's in-process queues).
_CONTROLLER_FAMILIES = (
    "workqueue_.*",
    "node_collector_.*",
    "node_ipam_controller_.*",
    "endpoint_slice_controller_.*",
    "endpoint_slice_mirroring_controller_.*",
    "replicaset_controller_.*",
    "job_controller_.*",
    "cronjob_controller_.*",
    "garbage_collector_.*",
    "ttl_after_finished_controller_.*",
    "root_ca_cert_publisher_.*",
    "service_controller_.*",
    "attachdetach_controller_.*",
    "ephemeral_volume_controller_.*",
    "taint_eviction_controller_.*",
    "disruption_controller_.*",
    "horizontal_pod_autoscaler_controller_.*",
    "pv_collector_.*",
)
_APISERVER_FAMILIES = (
    "apiserver_.*",
    "aggregator_.*",
    "authenticated_.*",
    "authentication_.*",
    "authorization_.*",
    # its storage client, not the etcd server (etcd_server_, etcd_mvcc_, etcd_disk_...)
    "etcd_(request|requests|bookmark|lease|db_total_size)_.*",
    "watch_cache_.*",
    "field_validation_.*",
    "kube_apiserver_.*",
    "serviceaccount_.*",
    "node_authorizer_.*",
    "workqueue_.*",
    "kubernetes_.*",
    # the apiserver job stands for the process: all of its Go runtime and client series
    "rest_client_.*",
    "process_.*",
    "go_.*",
)
_KUBELET_FAMILIES = (
    "kubelet_.*",
    "volume_manager_.*",
    "storage_operation_.*",
    "csi_operations_.*",
    "kubernetes_build_info",  # one per node: KubeVersionMismatch sees a half-upgraded cluster
)
_ETCD_FAMILIES = (
    "etcd_(server|mvcc|disk|network|snap|cluster|debugging)_.*",
    "grpc_server_.*",
    "os_fd_.*",
    "process_resident_memory_bytes",
)

# job label (as the chart's ServiceMonitors set it) -> the regex its metric names must match
JOB_KEEP_REGEX: dict[str, str] = {
    "apiserver": "|".join(_APISERVER_FAMILIES),
    "kubelet": "|".join((*_KUBELET_FAMILIES, *_PANEL_PROCESS_SERIES)),
    "kube-scheduler": "|".join(("scheduler_.*", *_PANEL_PROCESS_SERIES)),
    "kube-controller-manager": "|".join((*_CONTROLLER_FAMILIES, *_PANEL_PROCESS_SERIES)),
    "kube-proxy": "|".join(("kubeproxy_.*", *_PANEL_PROCESS_SERIES)),
    "kube-etcd": "|".join(_ETCD_FAMILIES),
}


def _bucket_drop(histograms: str, bounds: str) -> dict[str, Any]:
    """Drop some buckets (upper bounds, space-separated) of busy histograms, as the chart's
    defaults for this job do: our metricRelabelings replace the chart's list, so it is restated."""
    alternatives = "|".join(re.escape(bound) for bound in bounds.split())
    return {
        "action": "drop",
        "sourceLabels": ["__name__", "le"],
        "regex": f"({histograms})_seconds_bucket;({alternatives})(\\.0)?",
    }


def metric_relabelings(job: str) -> list[dict[str, Any]]:
    """Keep what the job's component owns; for the apiserver and the kubelet, the chart's
    bucket trimming too."""
    rules: list[dict[str, Any]] = [
        {"action": "keep", "sourceLabels": ["__name__"], "regex": JOB_KEEP_REGEX[job]}
    ]
    if job == "apiserver":
        histograms = "etcd_request|apiserver_request_slo|apiserver_request_sli|apiserver_request"
        bounds = "0.15 0.2 0.3 0.35 0.4 0.45 0.6 0.7 0.8 0.9 1.25 1.5 1.75 2 3 3.5 4 4.5 6 7 8 9"
        rules.append(_bucket_drop(f"({histograms})_duration", f"{bounds} 15 20 40 45 50"))
    elif job == "kubelet":
        histograms = "csi_operations|storage_operation_duration"
        rules.append(_bucket_drop(histograms, "0.25 2.5 15 25 120 600"))
    return rules


def _service_monitor(job: str, **settings: Any) -> dict[str, Any]:
    return {**settings, "metricRelabelings": metric_relabelings(job)}


def _https_component(endpoints: list[str], port: int, job: str) -> dict[str, Any]:
    """A K3s control-plane listener on the servers: https with its self-signed certificate."""
    return {
        "endpoints": endpoints,
        "service": {"port": port, "targetPort": port},
        "serviceMonitor": _service_monitor(job, https=True, insecureSkipVerify=True),
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
        "kubeApiServer": {"serviceMonitor": _service_monitor("apiserver")},
        "kubelet": {"serviceMonitor": _service_monitor("kubelet")},
        "kubeControllerManager": _https_component(
            servers, k3s.CONTROLLER_MANAGER_PORT, "kube-controller-manager"
        ),
        "kubeScheduler": _https_component(servers, k3s.SCHEDULER_PORT, "kube-scheduler"),
        "kubeEtcd": _etcd_values(cluster, servers),
        "kubeProxy": {
            "endpoints": nodes,
            "service": {
                "port": k3s.KUBE_PROXY_PORT,
                "targetPort": k3s.KUBE_PROXY_PORT,
            },
            "serviceMonitor": _service_monitor("kube-proxy"),
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
        "serviceMonitor": _service_monitor("kube-etcd", scheme="http"),
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
