"""Each K3s metrics job keeps only what its component owns (k3s-io/k3s#2262: every endpoint
serves the whole process registry), and no default rule or dashboard of kube-prometheus-stack
loses a metric it reads.

READ_BY_DEFAULT lists, per job label, the metric names kube-prometheus-stack 88.5.3 reads with a
`job` matcher for that job, from charts/kube-prometheus-stack/templates/ in
prometheus-community/helm-charts at tag kube-prometheus-stack-88.5.3:
  apiserver: dashboards-1.14/apiserver.yaml; rules-1.14/kube-apiserver-availability.rules.yaml,
    kube-apiserver-burnrate.rules.yaml, kube-apiserver-histogram.rules.yaml,
    kubernetes-system-apiserver.yaml, kubernetes-system.yaml
  kubelet (/metrics only; /metrics/cadvisor and /metrics/probes have their own registries):
    dashboards-1.14/kubelet.yaml, k8s-resources-nodes-overview.yaml, persistentvolumesusage.yaml;
    rules-1.14/kubelet.rules.yaml, kubernetes-storage.yaml, kubernetes-system-kubelet.yaml
  kube-scheduler: dashboards-1.14/scheduler.yaml; rules-1.14/kube-scheduler.rules.yaml
  kube-controller-manager: dashboards-1.14/controller-manager.yaml
  kube-proxy: dashboards-1.14/proxy.yaml
  kube-etcd (job=~".*etcd.*"): dashboards-1.14/etcd.yaml; rules-1.14/etcd.yaml
READ_WITHOUT_JOB are read with no job matcher (rules-1.14/kubernetes-system-kubelet.yaml,
kubernetes-system.yaml): K3s serves them on every endpoint, so some job must keep them.
`python3 benchmarks/monitoring_metrics.py --charts-repo <clone> --names` prints the lists again.
`up` and `scrape_*` are left out: Prometheus makes them, metric relabeling never sees them.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from generator.render.monitoring import JOB_KEEP_REGEX, monitoring_values
from tests.render.test_gitops_cases import cluster_with
from tests.upstream import chart_defaults

READ_BY_DEFAULT: dict[str, tuple[str, ...]] = {
    "apiserver": (
        "aggregator_unavailable_apiservice",
        "aggregator_unavailable_apiservice_total",
        "apiserver_client_certificate_expiration_seconds_bucket",
        "apiserver_client_certificate_expiration_seconds_count",
        "apiserver_request_sli_duration_seconds_bucket",
        "apiserver_request_sli_duration_seconds_count",
        "apiserver_request_terminations_total",
        "apiserver_request_total",
        "go_goroutines",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "rest_client_requests_total",
        "workqueue_adds_total",
        "workqueue_depth",
        "workqueue_queue_duration_seconds_bucket",
    ),
    "kubelet": (
        "go_goroutines",
        "kubelet_cgroup_manager_duration_seconds_bucket",
        "kubelet_cgroup_manager_duration_seconds_count",
        "kubelet_evictions",
        "kubelet_node_config_error",
        "kubelet_node_name",
        "kubelet_pleg_relist_duration_seconds_bucket",
        "kubelet_pleg_relist_duration_seconds_count",
        "kubelet_pleg_relist_interval_seconds_bucket",
        "kubelet_pod_start_duration_seconds_bucket",
        "kubelet_pod_start_duration_seconds_count",
        "kubelet_pod_worker_duration_seconds_bucket",
        "kubelet_pod_worker_duration_seconds_count",
        "kubelet_running_containers",
        "kubelet_running_pods",
        "kubelet_runtime_operations_duration_seconds_bucket",
        "kubelet_runtime_operations_errors_total",
        "kubelet_runtime_operations_total",
        "kubelet_volume_stats_available_bytes",
        "kubelet_volume_stats_capacity_bytes",
        "kubelet_volume_stats_inodes",
        "kubelet_volume_stats_inodes_free",
        "kubelet_volume_stats_inodes_used",
        "kubelet_volume_stats_used_bytes",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "rest_client_request_duration_seconds_bucket",
        "rest_client_requests_total",
        "storage_operation_duration_seconds_bucket",
        "storage_operation_duration_seconds_count",
        "storage_operation_errors_total",
        "volume_manager_total_volumes",
    ),
    "kube-scheduler": (
        "go_goroutines",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "rest_client_request_duration_seconds_bucket",
        "rest_client_requests_total",
        "scheduler_pod_scheduling_sli_duration_seconds_bucket",
        "scheduler_pod_scheduling_sli_duration_seconds_count",
        "scheduler_scheduling_algorithm_duration_seconds_bucket",
        "scheduler_scheduling_algorithm_duration_seconds_count",
        "scheduler_scheduling_attempt_duration_seconds_bucket",
        "scheduler_scheduling_attempt_duration_seconds_count",
        "scheduler_volume_scheduling_duration_seconds_bucket",
        "scheduler_volume_scheduling_duration_seconds_count",
    ),
    "kube-controller-manager": (
        "go_goroutines",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "rest_client_request_duration_seconds_bucket",
        "rest_client_requests_total",
        "workqueue_adds_total",
        "workqueue_depth",
        "workqueue_queue_duration_seconds_bucket",
    ),
    "kube-proxy": (
        "go_goroutines",
        "kubeproxy_network_programming_duration_seconds_bucket",
        "kubeproxy_network_programming_duration_seconds_count",
        "kubeproxy_sync_proxy_rules_duration_seconds_bucket",
        "kubeproxy_sync_proxy_rules_duration_seconds_count",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "rest_client_request_duration_seconds_bucket",
        "rest_client_requests_total",
    ),
    "kube-etcd": (
        "etcd_disk_backend_commit_duration_seconds_bucket",
        "etcd_disk_wal_fsync_duration_seconds_bucket",
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "etcd_network_client_grpc_received_bytes_total",
        "etcd_network_client_grpc_sent_bytes_total",
        "etcd_network_peer_received_bytes_total",
        "etcd_network_peer_round_trip_time_seconds_bucket",
        "etcd_network_peer_sent_bytes_total",
        "etcd_network_peer_sent_failures_total",
        "etcd_server_has_leader",
        "etcd_server_leader_changes_seen_total",
        "etcd_server_proposals_failed_total",
        "etcd_server_quota_backend_bytes",
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "grpc_server_started_total",
        "process_resident_memory_bytes",
    ),
}
READ_WITHOUT_JOB: dict[str, tuple[str, ...]] = {
    "kubelet": (
        "kubelet_certificate_manager_client_expiration_renew_errors",
        "kubelet_certificate_manager_client_ttl_seconds",
        "kubelet_certificate_manager_server_ttl_seconds",
        "kubelet_server_expiration_renew_errors",
        "kubernetes_build_info",
    ),
    "apiserver": ("kubernetes_build_info",),
}
# A few names only one component exports: every other job must drop them.
OWNED_ONLY_BY: dict[str, tuple[str, ...]] = {
    "apiserver": (
        "apiserver_request_total",
        "apiserver_request_duration_seconds_bucket",
        "apiserver_storage_objects",
        "aggregator_unavailable_apiservice",
        "etcd_request_duration_seconds_bucket",
    ),
    "kubelet": (
        "kubelet_running_pods",
        "kubelet_pleg_relist_duration_seconds_bucket",
        "storage_operation_duration_seconds_bucket",
        "volume_manager_total_volumes",
    ),
    "kube-scheduler": (
        "scheduler_scheduling_attempt_duration_seconds_bucket",
        "scheduler_pending_pods",
    ),
    "kube-controller-manager": ("node_collector_evictions_total", "job_controller_job_sync_total"),
    "kube-proxy": (
        "kubeproxy_sync_proxy_rules_duration_seconds_bucket",
        "kubeproxy_sync_full_proxy_rules_duration_seconds_bucket",
    ),
    "kube-etcd": (
        "etcd_server_has_leader",
        "etcd_mvcc_db_total_size_in_bytes",
        "grpc_server_handled_total",
    ),
}
VALUES_KEY = {
    "apiserver": "kubeApiServer",
    "kubelet": "kubelet",
    "kube-scheduler": "kubeScheduler",
    "kube-controller-manager": "kubeControllerManager",
    "kube-proxy": "kubeProxy",
    "kube-etcd": "kubeEtcd",
}
JOBS = sorted(VALUES_KEY)


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return monitoring_values(cluster_with(monitoring={"enabled": True}))


def relabelings(values: dict[str, Any], job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = values[VALUES_KEY[job]]["serviceMonitor"]["metricRelabelings"]
    return found


def kept(rules: list[dict[str, Any]], name: str, le: str = "") -> bool:
    """Prometheus' keep/drop on a sample with this __name__ (and le), regexes anchored."""
    labels = {"__name__": name, "le": le}
    for rule in rules:
        value = ";".join(labels[label] for label in rule["sourceLabels"])
        matches = re.fullmatch(rule["regex"], value) is not None
        if matches != (rule["action"] == "keep"):
            return False
    return True


def test_every_job_has_a_keep_rule_over_the_metric_name(values: dict[str, Any]) -> None:
    assert sorted(JOB_KEEP_REGEX) == JOBS
    for job in JOBS:
        first = relabelings(values, job)[0]
        assert first == {
            "action": "keep",
            "sourceLabels": ["__name__"],
            "regex": JOB_KEEP_REGEX[job],
        }


@pytest.mark.parametrize("job", JOBS)
def test_the_job_keeps_every_name_the_default_rules_and_dashboards_read(
    job: str, values: dict[str, Any]
) -> None:
    rules = relabelings(values, job)
    needed = READ_BY_DEFAULT[job] + READ_WITHOUT_JOB.get(job, ())
    assert [name for name in needed if not kept(rules, name)] == []


@pytest.mark.parametrize("job", JOBS)
def test_the_job_drops_what_other_components_own(job: str, values: dict[str, Any]) -> None:
    rules = relabelings(values, job)
    foreign = [name for other in JOBS if other != job for name in OWNED_ONLY_BY[other]]
    assert [name for name in foreign if kept(rules, name)] == []
    for name in OWNED_ONLY_BY[job]:
        assert kept(rules, name), name


def test_the_scheduler_job_drops_the_apiserver_requests(values: dict[str, Any]) -> None:
    assert not kept(relabelings(values, "kube-scheduler"), "apiserver_request_total")
    assert kept(relabelings(values, "kube-scheduler"), "scheduler_pending_pods")


# Upper bounds a client_golang or component-base histogram may carry, for the drop-rule check.
BOUNDS = [
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.1",
    "0.15",
    "0.2",
    "0.25",
    "0.3",
    "0.35",
    "0.4",
    "0.45",
    "0.5",
    "0.6",
    "0.7",
    "0.8",
    "0.9",
    "1",
    "1.0",
    "1.25",
    "1.5",
    "1.75",
    "2",
    "2.0",
    "2.5",
    "3",
    "3.5",
    "4",
    "4.5",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "15",
    "20",
    "25",
    "30",
    "40",
    "45",
    "50",
    "60",
    "120",
    "600",
    "+Inf",
]
HISTOGRAMS = (
    "apiserver_request_duration_seconds_bucket",
    "apiserver_request_slo_duration_seconds_bucket",
    "apiserver_request_sli_duration_seconds_bucket",
    "etcd_request_duration_seconds_bucket",
    "csi_operations_seconds_bucket",
    "storage_operation_duration_seconds_bucket",
    "apiserver_watch_events_sizes_bucket",
)


@pytest.mark.parametrize("job", ["apiserver", "kubelet"])
def test_the_charts_bucket_trimming_still_applies(
    job: str, values: dict[str, Any], upstream: Path
) -> None:
    """Our list replaces the chart's default metricRelabelings: what they dropped stays dropped."""
    defaults = chart_defaults(upstream, "kube-prometheus-stack", "88.5.3")
    chart_rules = defaults[VALUES_KEY[job]]["serviceMonitor"]["metricRelabelings"]
    assert chart_rules, "the chart no longer trims buckets for this job: drop ours too"
    ours = relabelings(values, job)[1:]
    for name, le in itertools.product(HISTOGRAMS, BOUNDS):
        assert kept(ours, name, le) == kept(chart_rules, name, le), (name, le)


def test_the_values_we_set_are_chart_keys(values: dict[str, Any], upstream: Path) -> None:
    defaults = chart_defaults(upstream, "kube-prometheus-stack", "88.5.3")
    for job in JOBS:
        assert "metricRelabelings" in defaults[VALUES_KEY[job]]["serviceMonitor"], job
