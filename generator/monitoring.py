"""What K3s exposes for Prometheus, shared by the K3s config (seeds) and the chart values.

K3s runs every control-plane component in one process, so kube-prometheus-stack's default
targets (pods on localhost) are dead; we bind the metrics listeners on the node instead and
point the chart's endpoint lists at the servers.
"""

from __future__ import annotations

# K3s server config keys -> values, added on servers when monitoring is on.
SERVER_METRICS_CONFIG: dict[str, object] = {
    "etcd-expose-metrics": True,
    "kube-controller-manager-arg": ["bind-address=0.0.0.0"],
    "kube-scheduler-arg": ["bind-address=0.0.0.0"],
}
# On every node (server and agent).
NODE_METRICS_CONFIG: dict[str, object] = {
    "kube-proxy-arg": ["metrics-bind-address=0.0.0.0"],
}

CONTROLLER_MANAGER_PORT = 10257  # https, self-signed
SCHEDULER_PORT = 10259  # https, self-signed
ETCD_METRICS_PORT = 2381  # http, served when etcd-expose-metrics is true
KUBE_PROXY_PORT = 10249  # http
