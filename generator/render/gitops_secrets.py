"""The Kubernetes Secrets of the Flux tree: Grafana's admin login, the Traefik dashboard's
htpasswd, the ACME DNS token and the user's own Secrets, each a `*.sops.yaml` file.

Render emits their plain YAML marked `sops=True` and stays pure; the workspace encrypts
data/stringData before writing, so git only ever holds ciphertext. Flux's kustomize-controller
decrypts them with the `sops-age` Secret that every Flux Kustomization names in `decryption`.
"""

from __future__ import annotations

from typing import Any

from generator import naming
from generator import secrets as secret_values
from generator.config.model import Cluster
from generator.errors import EXIT_BAD_INPUT, HomelabError
from generator.render import charts, layout
from generator.render import components as comps
from generator.render.kustomize import kustomization
from generator.secrets import Secrets

# The name Flux's SOPS guide uses; the first server's seed creates it in flux-system
# (render/bootstrap.py), so every Kustomization may name it whether or not it holds a file.
SOPS_SECRET = naming.SOPS_AGE_SECRET
DECRYPTION = {"provider": "sops", "secretRef": {"name": SOPS_SECRET}}
SUFFIX = ".sops.yaml"
# The user's Secrets: secrets/<namespace>/<name>.sops.yaml under gitops/apps. Its own
# kustomization.yaml lists them, so Flux takes the folder in as one resource whatever else the
# user puts in apps/, `kubectl kustomize` builds it, and validate checks every entry.
USER_SECRETS_DIR = f"{layout.APPS_DIR}/secrets"
GRAFANA_ADMIN_USER = "admin"

Manifest = dict[str, Any]


def is_sops_file(path: str) -> bool:
    return path.endswith(SUFFIX)


def opaque_secret(name: str, namespace: str, data: dict[str, str]) -> Manifest:
    # stringData, not data: the plaintext stays readable for review before encryption, and
    # SOPS encrypts stringData's values just the same.
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": data,
    }


def grafana_admin(secrets: Secrets) -> Manifest:
    """The login kube-prometheus-stack's Grafana reads through `admin.existingSecret`."""
    return opaque_secret(
        comps.GRAFANA_ADMIN_SECRET,
        charts.SPEC_BY_KEY["monitoring"].namespace,
        {"admin-user": GRAFANA_ADMIN_USER, "admin-password": secrets.grafana_admin_password},
    )


def traefik_dashboard_auth(secrets: Secrets) -> Manifest:
    """The users the dashboard's basicAuth Middleware reads: one htpasswd line, bcrypt."""
    password = secret_values.traefik_dashboard_password(secrets)
    line = secret_values.htpasswd_line(comps.TRAEFIK_DASHBOARD_USER, password)
    return opaque_secret(
        comps.TRAEFIK_DASHBOARD_AUTH,
        charts.SPEC_BY_KEY["traefik"].namespace,
        {"users": line + "\n"},
    )


def controller_secrets(cluster: Cluster, key: str, secrets: Secrets) -> dict[str, Manifest]:
    """Secrets a chart's values name, beside its release so both arrive in one apply; by
    file stem (`<name>.sops`). Nothing for a dashboard that is off, so its file goes away."""
    if key == "monitoring":
        return {f"{comps.GRAFANA_ADMIN_SECRET}.sops": grafana_admin(secrets)}
    if key == "traefik" and comps.traefik_dashboard(cluster):
        return {f"{comps.TRAEFIK_DASHBOARD_AUTH}.sops": traefik_dashboard_auth(secrets)}
    return {}


class MissingSecretError(HomelabError):
    """cluster.yaml needs a secret the store lacks: bad input, as validate reports it."""

    exit_code = EXIT_BAD_INPUT


def dns_api_token(secrets: Secrets) -> Manifest:
    """The token the ACME ClusterIssuer's DNS-01 solver names in `apiTokenSecretRef`."""
    if not secrets.dns_api_token:
        raise MissingSecretError(
            "the ACME issuer needs a DNS API token, and the secrets store has no dns_api_token",
            "run 'homelab-gen secret set dns_api_token' (a Cloudflare token allowed to edit DNS),"
            " or set components.cert_manager.issuer: selfsigned",
        )
    return opaque_secret(
        comps.CLOUDFLARE_TOKEN_SECRET,
        charts.SPEC_BY_KEY["cert_manager"].namespace,
        {comps.CLOUDFLARE_TOKEN_KEY: secrets.dns_api_token},
    )


def user_secret_path(ref: str) -> str:
    namespace, _, name = ref.partition("/")
    return f"{USER_SECRETS_DIR}/{namespace}/{name}{SUFFIX}"


def user_secrets(secrets: Secrets) -> dict[str, list[Manifest]]:
    """Each "namespace/name" of the store as its own file, and the kustomization.yaml listing
    them; nothing at all when the user has none."""
    out: dict[str, list[Manifest]] = {}
    for ref, data in sorted(secrets.kubernetes.items()):
        namespace, _, name = ref.partition("/")
        out[user_secret_path(ref)] = [opaque_secret(name, namespace, dict(sorted(data.items())))]
    if out:
        entries = [path.removeprefix(f"{USER_SECRETS_DIR}/") for path in out]
        out[f"{USER_SECRETS_DIR}/kustomization.yaml"] = [kustomization(entries)]
    return out


def acme_enabled(cluster: Cluster) -> bool:
    return cluster.components.cert_manager.enabled and comps.issuer_kind(cluster) == "acme"
