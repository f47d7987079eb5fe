"""The platform components' Helm values (all but monitoring's) and what they share.

Values are plain data built from the Cluster; the user's `components.<name>.values` are
deep-merged over ours, so anything we choose can be overridden from cluster.yaml.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from generator.config.model import Cluster, Component

# Labels that let privileged pods (host networking, host paths, raw sockets) run even where
# Pod Security admission enforces a stricter default.
PRIVILEGED_LABELS = {
    f"pod-security.kubernetes.io/{mode}": "privileged" for mode in ("enforce", "audit", "warn")
}

GRAFANA_ADMIN_SECRET = "grafana-admin"
CLOUDFLARE_TOKEN_SECRET = "cloudflare-api-token"
CLOUDFLARE_TOKEN_KEY = "api-token"


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
    values["ingressRoute"] = {"dashboard": traefik_dashboard_route(cluster)}
    if traefik_dashboard(cluster):
        values["extraObjects"] = [traefik_dashboard_middleware(cluster)]
    return values


# The dashboard is served only behind basic auth: the chart's IngressRoute (api@internal) on
# websecure names a Middleware that the chart itself creates (extraObjects, so its CRD,
# from the chart's crds/, exists first), and the Middleware reads the htpasswd line from a
# SOPS-encrypted Secret beside the release (render/gitops_secrets.py). Off, nothing routes to
# it: the chart's IngressRoute is off (its default too, said explicitly) and no Middleware
# or Secret is rendered.
TRAEFIK_NAMESPACE = "traefik"  # the chart's release namespace (charts.SPECS)
TRAEFIK_DASHBOARD_AUTH = "traefik-dashboard-auth"  # the Middleware and its Secret
TRAEFIK_DASHBOARD_USER = "admin"
TRAEFIK_DASHBOARD_TLS = "traefik-dashboard-tls"  # cert-manager's Certificate lands here


def traefik_dashboard(cluster: Cluster) -> bool:
    traefik = cluster.components.traefik
    return bool(traefik.enabled and option(traefik, "dashboard", False))


def traefik_dashboard_host(cluster: Cluster) -> str:
    return f"traefik.{cluster.cluster.domain}"


def traefik_dashboard_route(cluster: Cluster) -> dict[str, Any]:
    if not traefik_dashboard(cluster):
        return {"enabled": False}
    # cert-manager's ingress-shim reads Ingress annotations, not IngressRoutes: the
    # certificate comes from traefik_dashboard_certificate; without cert-manager, Traefik's
    # default certificate serves the host.
    tls = {"secretName": TRAEFIK_DASHBOARD_TLS} if cluster.components.cert_manager.enabled else {}
    return {
        "enabled": True,
        "matchRule": f"Host(`{traefik_dashboard_host(cluster)}`)",
        "entryPoints": ["websecure"],
        "middlewares": [{"name": TRAEFIK_DASHBOARD_AUTH}],
        "tls": tls,
    }


def traefik_dashboard_middleware(cluster: Cluster) -> dict[str, Any]:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {"name": TRAEFIK_DASHBOARD_AUTH, "namespace": TRAEFIK_NAMESPACE},
        # removeHeader: the dashboard never needs the credentials passed on.
        "spec": {"basicAuth": {"secret": TRAEFIK_DASHBOARD_AUTH, "removeHeader": True}},
    }


def traefik_dashboard_certificate(cluster: Cluster) -> dict[str, Any] | None:
    """The dashboard host's certificate from the cluster's issuer; a configs object (it needs
    cert-manager's CRDs). None when there is no dashboard or no cert-manager."""
    if not (traefik_dashboard(cluster) and cluster.components.cert_manager.enabled):
        return None
    host = traefik_dashboard_host(cluster)
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": TRAEFIK_DASHBOARD_TLS, "namespace": TRAEFIK_NAMESPACE},
        "spec": {
            "secretName": TRAEFIK_DASHBOARD_TLS,
            "dnsNames": [host],
            "issuerRef": {
                "name": cluster_issuer_name(cluster),
                "kind": "ClusterIssuer",
                "group": "cert-manager.io",
            },
        },
    }


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
