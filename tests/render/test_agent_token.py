"""Least privilege for agents: they join with K3s's agent token, never the server token,
while labs made before the agent token existed keep joining with the server token."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from generator import yamlio
from generator.config.model import Cluster
from generator.render.k3s import CONFIG_PATH
from generator.render.seeds import render_seeds
from generator.secrets import Secrets
from tests.render.seed_clusters import SECRETS, sized, topologies
from tests.upstream import k3s_flags

LEGACY = dataclasses.replace(SECRETS, agent_token=None)
CLUSTERS = {
    **topologies(),
    "datastore-3-servers-2-agents": sized(
        3, 2, datastore_endpoint="postgres://k3s@db.lan:5432/k3s"
    ),
}


def user_data_of(cluster: Cluster, secrets: Secrets) -> dict[str, str]:
    rendered = render_seeds(cluster, secrets)
    return {n.name: rendered[f"cloud-init/{n.name}/user-data"].text for n in cluster.nodes}


def config_of(user_data: str) -> dict[str, Any]:
    files = yamlio.load_all_plain(user_data)[0]["write_files"]
    (config,) = [f["content"] for f in files if f["path"] == CONFIG_PATH]
    data = yamlio.load_all_plain(config)[0]
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("name", sorted(CLUSTERS))
def test_agents_never_see_the_server_token_when_there_is_an_agent_token(name: str) -> None:
    cluster = CLUSTERS[name]
    texts = user_data_of(cluster, SECRETS)
    agent_tokens = set()
    for node in cluster.nodes:
        config = config_of(texts[node.name])
        if node.is_server:
            assert config["token"] == SECRETS.k3s_token, node.name
            agent_tokens.add(config["agent-token"])
        else:
            assert config["token"] == SECRETS.agent_token, node.name
            assert "agent-token" not in config, node.name
            # Not in config.yaml, nor anywhere else in the agent's user-data.
            assert SECRETS.k3s_token not in texts[node.name], node.name
    assert agent_tokens == {SECRETS.agent_token}  # every server carries the same one


@pytest.mark.parametrize("name", sorted(CLUSTERS))
def test_labs_without_an_agent_token_keep_joining_agents_with_the_server_token(
    name: str,
) -> None:
    cluster = CLUSTERS[name]
    texts = user_data_of(cluster, LEGACY)
    for node in cluster.nodes:
        config = config_of(texts[node.name])
        assert config["token"] == SECRETS.k3s_token, node.name
        # A server without agent-token lets agents in with the server token, as before.
        assert "agent-token" not in config, node.name
        assert SECRETS.agent_token not in texts[node.name], node.name


def test_agent_token_is_a_server_flag_and_token_an_agent_flag(upstream: Path) -> None:
    flags = k3s_flags(upstream)
    assert "agent-token" in flags["server"]
    assert "token" in flags["agent"]
