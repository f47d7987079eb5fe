"""Day 2 through git (issue 13's table): on a running cluster, a change is a commit that Flux
completes alone. A node keeps the seed it booted with, so any change that would alter a seed
cannot reach the cluster; each switch below must change files under gitops/ only."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from generator.config.model import COMPONENT_NAMES, Cluster
from generator.render import render_all
from generator.render.output import RenderedFile
from generator.secrets import Secrets
from tests.render.test_gitops_cases import SECRETS, cluster_with

ACME = {
    "enabled": True,
    "issuer": "acme",
    "acme_email": "me@example.com",
    "dns_provider": "cloudflare",
}
ALL = set(COMPONENT_NAMES)


def changed(before: dict[str, RenderedFile], after: dict[str, RenderedFile]) -> set[str]:
    """Paths added, removed or with other bytes between two renders."""
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


# name -> (first render's cluster, the cluster after the switch, a file the switch must add)
COMPONENT_SWITCHES: dict[str, tuple[Cluster, Cluster, str]] = {
    **{
        name: (
            cluster_with(ALL - {name}),
            cluster_with(ALL),
            f"gitops/infrastructure/controllers/{name}/release.yaml",
        )
        for name in ("metallb", "longhorn")
    },
    # whoami needs an ingress controller, so it stays off across this switch.
    "traefik": (
        cluster_with(ALL - {"traefik", "whoami"}),
        cluster_with(ALL - {"whoami"}),
        "gitops/infrastructure/controllers/traefik/release.yaml",
    ),
    "monitoring": (
        cluster_with(ALL - {"monitoring"}),
        cluster_with(ALL),
        "gitops/infrastructure/controllers/monitoring/grafana-admin.sops.yaml",
    ),
    "cert_manager": (
        cluster_with(ALL - {"cert_manager"}),
        cluster_with(ALL),
        "gitops/infrastructure/configs/cert-manager/ca-issuer.yaml",
    ),
    "cert_manager.issuer: acme": (
        cluster_with(ALL),
        cluster_with(ALL, cert_manager=ACME),
        "gitops/infrastructure/configs/cert-manager/cloudflare-api-token.sops.yaml",
    ),
    "whoami": (
        cluster_with(ALL - {"whoami"}),
        cluster_with(ALL),
        "gitops/apps/whoami/ingress.yaml",
    ),
}


@pytest.mark.parametrize("switch", sorted(COMPONENT_SWITCHES))
def test_switching_a_component_on_changes_only_gitops(switch: str) -> None:
    first, then, added = COMPONENT_SWITCHES[switch]
    before, after = render_all(first, SECRETS), render_all(then, SECRETS)
    diff = changed(before, after)
    assert added not in before and added in after
    assert sorted(p for p in diff if not p.startswith("gitops/")) == [], "a seed changed"


def with_user_secret(store: Secrets, ref: str, data: dict[str, Any]) -> Secrets:
    return dataclasses.replace(store, kubernetes={**store.kubernetes, ref: data})


# name -> (secrets after `homelab-gen secret set ...`, a file that must change)
SECRET_CHANGES: dict[str, tuple[Secrets, str]] = {
    "grafana_admin_password": (
        dataclasses.replace(SECRETS, grafana_admin_password="rotated-pw-Yy5"),
        "gitops/infrastructure/controllers/monitoring/grafana-admin.sops.yaml",
    ),
    "dns_api_token": (
        dataclasses.replace(SECRETS, dns_api_token="rotated-token-Kk2"),
        "gitops/infrastructure/configs/cert-manager/cloudflare-api-token.sops.yaml",
    ),
    "a new user Secret": (
        with_user_secret(SECRETS, "blog/smtp", {"password": "smtp-pw-Nn4"}),
        "gitops/apps/secrets/blog/smtp.sops.yaml",
    ),
}


@pytest.mark.parametrize("name", sorted(SECRET_CHANGES))
def test_setting_a_secret_changes_only_gitops(name: str) -> None:
    cluster = cluster_with(ALL, cert_manager=ACME)
    store, touched = SECRET_CHANGES[name]
    before, after = render_all(cluster, SECRETS), render_all(cluster, store)
    diff = changed(before, after)
    assert touched in diff
    assert sorted(p for p in diff if not p.startswith("gitops/")) == [], "a seed changed"
