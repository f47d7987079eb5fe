"""What the first server drops into K3s's manifests folder: kube-vip, Flux, and bootstrap Secrets.

K3s applies every file there and retries failures every 15 s, so objects whose CRDs or
namespaces arrive later converge on their own. The Secrets here are delivered once through
the seed and never live in git.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from generator import yamlio
from generator.config.model import Cluster
from generator.errors import HomelabError
from generator.render import kube_vip, layout
from generator.render.templating import render_template
from generator.secrets import Secrets

MANIFESTS_DIR = "/var/lib/rancher/k3s/server/manifests"

FLUX_OPERATOR_CHART = "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"
FLUX_OPERATOR_VERSION = "0.49.0"
# The operator resolves a semver range from the manifests bundled in its own (pinned) image,
# so the minor range below resolves to one fixed Flux release per operator version.
FLUX_VERSION = "2.8.x"
FLUX_NAMESPACE = "flux-system"
GIT_SECRET = "flux-system"
FLUX_COMPONENTS = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
]

# Flux refuses SSH hosts it cannot verify; these are the hosts' published ed25519 keys.
KNOWN_SSH_HOSTS = {
    "github.com": "ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "gitlab.com": "ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf",
}
SCP_LIKE = re.compile(r"^(?P<user>[^@/]+)@(?P<host>[^:/]+):(?P<path>.+)$")

Manifest = dict[str, Any]


def first_server_manifests(cluster: Cluster, secrets: Secrets) -> dict[str, str]:
    """File name (a valid Kubernetes name) -> text, for the first server's manifests folder."""
    groups: dict[str, list[Manifest]] = {}
    if cluster.network.api_vip is not None:
        groups["homelab-kube-vip"] = kube_vip.kube_vip(cluster)
    groups["homelab-flux-operator"] = [flux_operator_chart()]
    groups["homelab-flux-instance"] = [namespace(FLUX_NAMESPACE), flux_instance(cluster)]
    if cluster.cluster.git.private:
        groups["homelab-flux-git-auth"] = [namespace(FLUX_NAMESPACE), git_secret(cluster, secrets)]
    if cluster.components.monitoring.enabled:
        groups["homelab-grafana-admin"] = [namespace("monitoring"), grafana_admin(secrets)]
    if acme_enabled(cluster):
        groups["homelab-cloudflare-token"] = [namespace("cert-manager"), cloudflare_token(secrets)]
    return {
        f"{name}.yaml": render_template("cloud-init", "manifest.yaml.j2", documents=docs)
        for name, docs in groups.items()
    }


def acme_enabled(cluster: Cluster) -> bool:
    cert = cluster.components.cert_manager
    return cert.enabled and cert.options.get("issuer") == "acme"


def namespace(name: str) -> Manifest:
    # Flux creates these namespaces later; K3s would retry anyway, but this converges at once.
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def opaque_secret(name: str, ns: str, data: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "type": "Opaque",
        "stringData": data,
    }


def flux_operator_values() -> dict[str, Any]:
    # The FluxInstance in the next file needs the operator's CRDs.
    return {"installCRDs": True}


def flux_operator_chart() -> Manifest:
    return {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "flux-operator", "namespace": "kube-system"},
        "spec": {
            "chart": FLUX_OPERATOR_CHART,
            "version": FLUX_OPERATOR_VERSION,
            "targetNamespace": FLUX_NAMESPACE,
            "createNamespace": True,
            "valuesContent": yamlio.dump_text(flux_operator_values()),
        },
    }


def flux_git_url(url: str) -> str:
    """Flux takes ssh:// URLs only; turn git@host:path into ssh://git@host/path."""
    match = SCP_LIKE.match(url)
    if match and "://" not in url:
        return f"ssh://{match['user']}@{match['host']}/{match['path']}"
    return url


def flux_instance(cluster: Cluster) -> Manifest:
    git = cluster.cluster.git
    sync: dict[str, Any] = {
        "kind": "GitRepository",
        "url": flux_git_url(git.url),
        "ref": f"refs/heads/{git.branch}",
        "path": layout.flux_cluster_dir(cluster.name),
    }
    if git.private:
        sync["pullSecret"] = GIT_SECRET
    return {
        "apiVersion": "fluxcd.controlplane.io/v1",
        "kind": "FluxInstance",
        "metadata": {"name": "flux", "namespace": FLUX_NAMESPACE},
        "spec": {
            "distribution": {"version": FLUX_VERSION, "registry": "ghcr.io/fluxcd"},
            "components": list(FLUX_COMPONENTS),
            "cluster": {"type": "kubernetes", "networkPolicy": True},
            "sync": sync,
        },
    }


def git_secret(cluster: Cluster, secrets: Secrets) -> Manifest:
    """Credentials for a private repo, from the secrets store: a deploy key (ssh) or a token."""
    url = flux_git_url(cluster.cluster.git.url)
    if url.startswith("ssh://"):
        return opaque_secret(GIT_SECRET, FLUX_NAMESPACE, ssh_credentials(url, secrets))
    if not secrets.git_token:
        raise HomelabError(
            f"cluster.git is private but the secrets store has no git_token for {url}",
            "add git_token (a read-only access token) to .homelab-gen/secrets.yaml, "
            "or set cluster.git.private: false",
        )
    return opaque_secret(
        GIT_SECRET, FLUX_NAMESPACE, {"username": "git", "password": secrets.git_token}
    )


def ssh_credentials(url: str, secrets: Secrets) -> dict[str, str]:
    if not secrets.git_deploy_key:
        raise HomelabError(
            f"cluster.git is private but the secrets store has no git_deploy_key for {url}",
            "add git_deploy_key (the private half of a read-only deploy key) to "
            ".homelab-gen/secrets.yaml, or set cluster.git.private: false",
        )
    host = urlsplit(url).hostname or ""
    if host not in KNOWN_SSH_HOSTS:
        raise HomelabError(
            f"no known SSH host key for {host!r}, so Flux could not verify it",
            f"use an https URL with git_token, or a repo on {' or '.join(KNOWN_SSH_HOSTS)}",
        )
    identity = secrets.git_deploy_key.strip() + "\n"
    return {"identity": identity, "known_hosts": f"{host} {KNOWN_SSH_HOSTS[host]}\n"}


def grafana_admin(secrets: Secrets) -> Manifest:
    return opaque_secret(
        "grafana-admin",
        "monitoring",
        {"admin-user": "admin", "admin-password": secrets.grafana_admin_password},
    )


def cloudflare_token(secrets: Secrets) -> Manifest:
    if not secrets.dns_api_token:
        raise HomelabError(
            "the ACME issuer needs a DNS API token, and the secrets store has no dns_api_token",
            "add dns_api_token (a Cloudflare token allowed to edit DNS) to"
            " .homelab-gen/secrets.yaml",
        )
    return opaque_secret(
        "cloudflare-api-token", "cert-manager", {"api-token": secrets.dns_api_token}
    )
