"""Clusters and secrets the seed tests share: fixtures on disk, plus larger ones built here."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from generator import config, yamlio
from generator.config.model import Cluster
from generator.secrets import Secrets
from tests import clusters
from tests.conftest import fixture_text

GOLDEN_FIXTURES = ("seeds-ha", "seeds-single")

SECRETS = Secrets(
    k3s_token="k3s-token-5f0c2b9e8d7a41c6b3e2f1a0",
    grafana_admin_password="grafana-pw-Qm7xT2vL9pR4",
    git_deploy_key=(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "deploy-key-body-not-a-real-key-8Kq3Zr\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    ),
    git_token="git-token-ghp_0a1b2c3d4e5f",
    datastore_password="db-pass/with:odd@chars",
    dns_api_token="cf-dns-token-Zx81Lm",
    agent_token="agent-token-9c4e1d7b2a6f03e5",
    # Over 64 characters like a real one, so a 64-character prefix is a real leak check.
    age_key="AGE-SECRET-KEY-1TESTVALUEN0TAREA1KEYF0RHOMELABGENSEEDTESTSQQQQQQQQQQQQQQQQ",
)
# Every kind of secret set, the user's own too, for checks that none leaks.
EVERY_SECRET = dataclasses.replace(
    SECRETS,
    proxmox_token="root@pam!homelab=0b7c9e4f-proxmox-token-3d2a",
    kubernetes={"apps/db-credentials": {"password": "user-db-password-Lk29xQ"}},
)


def fixture_data(name: str) -> dict[str, Any]:
    data = yamlio.to_plain(yamlio.load_text(fixture_text(f"valid/{name}.yaml"), name))
    assert isinstance(data, dict)
    return data


def cluster_from(data: dict[str, Any]) -> Cluster:
    return config.from_data(copy.deepcopy(data)).cluster


def fixture_cluster(name: str) -> Cluster:
    return cluster_from(fixture_data(name))


def sized(servers: int, agents: int, **cluster_keys: Any) -> Cluster:
    """The HA fixture grown (or shrunk) to N servers and M agents on a /16."""
    data = fixture_data("seeds-ha")
    data["network"] = {**clusters.wide_network(servers), "dns": data["network"]["dns"]}
    data["cluster"].update(cluster_keys)
    data["nodes"] = clusters.wide_nodes(servers, agents)
    return cluster_from(data)


def topologies() -> dict[str, Cluster]:
    return {
        "1-server": sized(1, 0),
        "3-servers-2-agents": sized(3, 2),
        "5-servers-20-agents": sized(5, 20),
    }
