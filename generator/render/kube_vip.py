"""kube-vip on the first server: RBAC and a control-plane DaemonSet that announces the API VIP."""

from __future__ import annotations

from typing import Any

from generator.config.model import Cluster
from generator.render.k3s import API_PORT

Manifest = dict[str, Any]


KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip"
KUBE_VIP_VERSION = "v1.0.4"


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "kube-vip", "app.kubernetes.io/version": KUBE_VIP_VERSION}


def kube_vip(cluster: Cluster) -> list[Manifest]:
    """RBAC and a control-plane DaemonSet announcing the API VIP by ARP, one leader at a time."""
    rules = [
        {"apiGroups": [""], "resources": ["services/status"], "verbs": ["update"]},
        {
            "apiGroups": [""],
            "resources": ["services", "endpoints"],
            "verbs": ["list", "get", "watch", "update"],
        },
        {
            "apiGroups": [""],
            "resources": ["nodes"],
            "verbs": ["list", "get", "watch", "update", "patch"],
        },
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["list", "get", "watch", "update", "create"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["list", "get", "watch", "update"],
        },
    ]
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "kube-vip", "namespace": "kube-system"},
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:kube-vip-role"},
        "rules": rules,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:kube-vip-binding"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:kube-vip-role",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "kube-vip", "namespace": "kube-system"}],
    }
    return [account, role, binding, kube_vip_daemonset(cluster)]


def kube_vip_env(cluster: Cluster) -> list[dict[str, Any]]:
    # No vip_interface: kube-vip picks the interface of the default route, which is the
    # only NIC here, whatever name the image gives it.
    plain = {
        "address": str(cluster.network.api_vip),
        "port": str(API_PORT),
        "vip_arp": "true",
        # kube-vip v1.0.4 reads the VIP's mask from vip_subnet (pkg/kubevip/config_envvar.go
        # `vipSubnet = "vip_subnet"`, read in config_environment.go ParseEnvironment); it has
        # no vip_cidr at all, so that name was silently ignored.
        "vip_subnet": "32",
        "cp_enable": "true",
        "cp_namespace": "kube-system",
        "svc_enable": "false",  # MetalLB owns Service addresses
        "vip_leaderelection": "true",
        "vip_leasename": "plndr-cp-lock",
        "vip_leaseduration": "5",
        "vip_renewdeadline": "3",
        "vip_retryperiod": "1",
    }
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in plain.items()]
    env.append({"name": "vip_nodename", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    return env


def kube_vip_daemonset(cluster: Cluster) -> Manifest:
    control_plane = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}
    pod_spec = {
        "serviceAccountName": "kube-vip",
        "hostNetwork": True,
        "priorityClassName": "system-node-critical",
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [control_plane]}]
                }
            }
        },
        "tolerations": [
            {"effect": "NoSchedule", "operator": "Exists"},
            {"effect": "NoExecute", "operator": "Exists"},
        ],
        "containers": [
            {
                "name": "kube-vip",
                "image": f"{KUBE_VIP_IMAGE}:{KUBE_VIP_VERSION}",
                "imagePullPolicy": "IfNotPresent",
                "args": ["manager"],
                "env": kube_vip_env(cluster),
                "securityContext": {
                    "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}
                },
            }
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "kube-vip", "namespace": "kube-system", "labels": _labels()},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "kube-vip"}},
            "template": {"metadata": {"labels": _labels()}, "spec": pod_spec},
        },
    }
