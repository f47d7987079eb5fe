"""network.dns: resolvers may live anywhere; inside the node network they must be host addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import config
from generator.errors import ConfigError
from tests.conftest import fixture_text
from tests.test_cli import run_cli

THREE_SERVERS = fixture_text("valid/three-servers.yaml")


def with_dns(dns: str) -> str:
    assert "  dns: [10.0.0.1]\n" in THREE_SERVERS
    return THREE_SERVERS.replace("  dns: [10.0.0.1]\n", f"  dns: {dns}\n")


@pytest.mark.parametrize("dns", ["[1.1.1.1]", "[192.168.1.53, 10.0.0.1]", "[8.8.8.8, 9.9.9.9]"])
def test_resolvers_outside_the_node_network_are_accepted(dns: str) -> None:
    cluster = config.parse(with_dns(dns)).cluster
    assert [str(a) for a in cluster.network.dns] == dns.strip("[]").split(", ")


@pytest.mark.parametrize(
    ("dns", "message"),
    [
        ("[1.1.1.1, 10.0.0.0]", "network.dns[1]: 10.0.0.0 is the network address of 10.0.0.0/24"),
        ("[dns.google]", "network.dns[0]: 'dns.google' is not an IPv4 address"),
    ],
)
def test_resolvers_must_still_be_host_addresses(dns: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse(with_dns(dns))
    assert [p for p in caught.value.problems if p.startswith(message)], caught.value.problems


def test_validate_accepts_a_public_resolver(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(with_dns("[1.1.1.1]"))
    result = run_cli("validate", "-C", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "outside network.cidr" not in result.stdout + result.stderr
