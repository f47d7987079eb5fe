"""cluster.yaml: every invalid fixture gets its exact messages; valid ones build the model."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from generator import config
from generator.config import schema
from generator.errors import ConfigError
from tests.conftest import FIXTURES, fixture_text

INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def expected_messages(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect: ")
        for line in path.read_text().splitlines()
        if line.startswith("# expect: ")
    ]


def test_there_are_enough_invalid_fixtures() -> None:
    assert len(INVALID) >= 25


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_gives_its_exact_messages(path: Path) -> None:
    expected = expected_messages(path)
    assert expected, f"{path.name} has no '# expect:' lines"
    with pytest.raises(ConfigError) as caught:
        config.parse(path.read_text(), source=path.name)
    assert list(caught.value.problems) == expected
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_every_message_names_a_field_and_gives_a_hint(path: Path) -> None:
    for message in expected_messages(path):
        field, _, rest = message.partition(": ")
        assert field and rest, message
        assert rest.endswith(")") and " (" in rest, f"no hint in {message!r}"


def test_one_server_defaults_fill_every_optional_field() -> None:
    cluster = config.parse(fixture_text("valid/one-server.yaml")).cluster
    assert cluster.network.api_vip is None
    assert cluster.api_host == ipaddress.IPv4Address("10.0.0.11")
    assert cluster.proxmox.seed_method == "iso"
    assert cluster.proxmox.clone == "linked"
    assert cluster.proxmox.parallel == 16
    assert cluster.cluster.git.branch == "main"
    assert cluster.cluster.git.private is False
    assert cluster.network.search_domain == "lab.example.com"
    assert cluster.vm.locale == "C.UTF-8"
    assert cluster.vm.upgrade_packages is False
    assert cluster.components.enabled_names() == (
        "traefik",
        "metallb",
        "monitoring",
        "cert_manager",
        "whoami",
    )


def test_three_servers_with_agents() -> None:
    loaded = config.parse(fixture_text("valid/three-servers.yaml"))
    cluster = loaded.cluster
    assert [n.name for n in cluster.servers] == ["k3s-server-1", "k3s-server-2", "k3s-server-3"]
    assert [n.name for n in cluster.agents] == ["k3s-agent-1", "k3s-agent-2"]
    assert cluster.first_server.name == "k3s-server-1"
    assert cluster.api_host == ipaddress.IPv4Address("10.0.0.10")
    assert cluster.network.metallb_range == "10.0.0.200-10.0.0.250"
    assert loaded.warnings == ()


def test_components_switched_off() -> None:
    cluster = config.parse(fixture_text("valid/components-off.yaml")).cluster
    assert cluster.components.enabled_names() == ()


def test_component_mapping_form_keeps_version_values_and_options() -> None:
    text = fixture_text("valid/one-server.yaml").replace(
        "traefik: true",
        "traefik: {enabled: true, version: '41.0.0', values: {logs: {general: {level: DEBUG}}},"
        " ip: 10.0.0.201}",
    )
    traefik = config.parse(text).cluster.components.traefik
    assert traefik.enabled and traefik.version == "41.0.0"
    assert traefik.values == {"logs": {"general": {"level": "DEBUG"}}}
    assert traefik.options == {"ip": "10.0.0.201"}


def test_model_is_frozen() -> None:
    cluster = config.parse(fixture_text("valid/one-server.yaml")).cluster
    with pytest.raises(AttributeError):
        cluster.nodes[0].memory = 1  # type: ignore[misc]


def test_small_vm_and_few_longhorn_nodes_warn_but_pass() -> None:
    text = (
        fixture_text("valid/one-server.yaml")
        .replace("longhorn: false", "longhorn: true")
        .replace(
            "ip: 10.0.0.22, cores: 2, memory: 4096, disk: 32",
            "ip: 10.0.0.22, memory: 1024, disk: 16",
        )
    )
    warnings = config.parse(text).warnings
    assert not any(w.startswith("components.longhorn") for w in warnings)
    two_nodes = "\n".join(line for line in text.splitlines() if "k3s-agent-1" not in line)
    assert any(
        w.startswith("components.longhorn: runs on 2 node(s)")
        for w in config.parse(two_nodes).warnings
    )
    assert "nodes[2].memory: 1024 MiB is below the recommended 2048 MiB for an agent" in "".join(
        warnings
    )
    assert any(w.startswith("nodes[2].disk: 16 GiB is below the recommended") for w in warnings)


def test_even_server_count_is_fine_with_an_external_datastore() -> None:
    text = "\n".join(
        line
        for line in fixture_text("valid/three-servers.yaml").splitlines()
        if "k3s-server-3" not in line
    )
    text = text.replace(
        "  git: {", "  datastore_endpoint: postgres://k3s@db.lan:5432/k3s\n  git: {"
    )
    assert len(config.parse(text).cluster.servers) == 2


def test_vip_with_a_single_server_is_the_api_address() -> None:
    text = fixture_text("valid/one-server.yaml").replace(
        "  metallb_range:", "  api_vip: 10.0.0.10\n  metallb_range:"
    )
    assert config.parse(text).cluster.api_host == ipaddress.IPv4Address("10.0.0.10")


def test_every_problem_is_reported_at_once() -> None:
    text = (
        fixture_text("valid/three-servers.yaml")
        .replace("gateway: 10.0.0.1", "gateway: 192.168.0.1")
        .replace("vmid: 212", "vmid: 211")
        .replace("v1.33.4+k3s1", "latest")
    )
    with pytest.raises(ConfigError) as caught:
        config.parse(text)
    fields = sorted(p.split(":")[0] for p in caught.value.problems)
    assert fields == ["cluster.k3s_version", "network.gateway", "nodes[4].vmid"]


def test_ssh_scp_style_git_url_is_accepted_and_private() -> None:
    text = fixture_text("valid/one-server.yaml").replace(
        "https://github.com/me/home-ops.git", "git@github.com:me/home-ops.git"
    )
    assert config.parse(text).cluster.cluster.git.private is True


def test_schema_lists_exactly_the_seed_methods() -> None:
    """The schema keeps its own enum list; it must name SeedMethod's members, no more."""
    from generator.config.model import SeedMethod

    rule = schema.rules()["mapping"]["proxmox"]["mapping"]["seed_method"]
    assert rule["enum"] == [m.value for m in SeedMethod]


def test_one_component_table() -> None:
    """config.model.COMPONENTS is the list; the model's fields, the schema's keys and the
    chart table follow it."""
    from dataclasses import fields

    from generator.config.model import COMPONENT_NAMES, Components
    from generator.render.charts import SPECS

    assert tuple(f.name for f in fields(Components)) == COMPONENT_NAMES
    assert tuple(schema.rules()["mapping"]["components"]["mapping"]) == COMPONENT_NAMES
    assert {spec.key for spec in SPECS} <= set(COMPONENT_NAMES)
