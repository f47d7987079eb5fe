"""gitops/infrastructure/configs/: what needs the controllers' CRDs, the MetalLB pool and the
cert-manager issuers.
"""

from __future__ import annotations

from typing import Any

from generator.config.model import Cluster
from generator.render import charts, gitops_secrets
from generator.render import components as comps
from generator.render.kustomize import folder, index, meta
from generator.secrets import Secrets


def metallb_configs(cluster: Cluster) -> dict[str, dict[str, Any]]:
    ns = charts.SPEC_BY_KEY["metallb"].namespace
    return {
        "ipaddresspool": {
            "apiVersion": "metallb.io/v1beta1",
            "kind": "IPAddressPool",
            "metadata": meta("default", ns),
            "spec": {"addresses": [cluster.network.metallb_range]},
        },
        "l2advertisement": {
            "apiVersion": "metallb.io/v1beta1",
            "kind": "L2Advertisement",
            "metadata": meta("default", ns),
            "spec": {"ipAddressPools": ["default"]},
        },
    }


def cluster_issuer(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": meta(name),
        "spec": spec,
    }


def selfsigned_chain(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """A self-signed root signs one CA certificate; the CA issuer signs every ingress's."""
    ns = charts.SPEC_BY_KEY["cert_manager"].namespace
    return {
        "selfsigned-issuer": cluster_issuer("selfsigned", {"selfSigned": {}}),
        "root-ca": {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": meta("homelab-root-ca", ns),
            "spec": {
                "isCA": True,
                "commonName": f"{cluster.name} home lab CA",
                "secretName": "homelab-root-ca",
                "duration": "87600h",  # ten years: re-trusting a new root is a chore
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {
                    "name": "selfsigned",
                    "kind": "ClusterIssuer",
                    "group": "cert-manager.io",
                },
            },
        },
        "ca-issuer": cluster_issuer(
            comps.cluster_issuer_name(cluster), {"ca": {"secretName": "homelab-root-ca"}}
        ),
    }


def acme_issuer(cluster: Cluster, secrets: Secrets) -> dict[str, dict[str, Any]]:
    """The Let's Encrypt ClusterIssuer, listed after the DNS token Secret its solver reads."""
    cert = cluster.components.cert_manager
    server = comps.ACME_SERVERS[comps.option(cert, "acme_server", "production")]
    solver = {
        "dns01": {
            "cloudflare": {
                "apiTokenSecretRef": {
                    "name": comps.CLOUDFLARE_TOKEN_SECRET,
                    "key": comps.CLOUDFLARE_TOKEN_KEY,
                }
            }
        }
    }
    spec = {
        "acme": {
            "server": server,
            "email": comps.option(cert, "acme_email", ""),
            "privateKeySecretRef": {"name": "letsencrypt-account-key"},
            "solvers": [solver],
        }
    }
    return {
        f"{comps.CLOUDFLARE_TOKEN_SECRET}.sops": gitops_secrets.dns_api_token(secrets),
        "acme-issuer": cluster_issuer(comps.cluster_issuer_name(cluster), spec),
    }


def configs(cluster: Cluster, base: str, secrets: Secrets) -> dict[str, list[dict[str, Any]]]:
    parts: dict[str, dict[str, dict[str, Any]]] = {}
    if cluster.components.metallb.enabled:
        parts["metallb"] = metallb_configs(cluster)
    if cluster.components.cert_manager.enabled:
        parts["cert-manager"] = (
            acme_issuer(cluster, secrets)
            if comps.issuer_kind(cluster) == "acme"
            else selfsigned_chain(cluster)
        )
    # The Traefik dashboard's certificate: an IngressRoute gets none from ingress-shim. It lives
    # in Traefik's namespace, so it is Traefik's config (config-traefik), which also waits for
    # the issuers (flux_graph.config_needs): the issuers never wait for Traefik.
    certificate = comps.traefik_dashboard_certificate(cluster)
    if certificate:
        parts["traefik"] = {"dashboard-certificate": certificate}
    out: dict[str, list[dict[str, Any]]] = {}
    for name, objects in parts.items():
        out.update(folder(f"{base}/{name}", objects))
    out.update(index(base, list(parts)))
    return out
