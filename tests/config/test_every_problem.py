"""One run lists every problem: schema and meaning together, each field reported once."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from generator import config, yamlio
from generator.errors import ConfigError
from tests.conftest import FIXTURES, fixture_text
from tests.test_cli import run_cli

TYPOS = FIXTURES / "invalid/typo-hides-nothing.yaml"
BASE: dict[str, Any] = yamlio.to_plain(
    yamlio.load_text(fixture_text("valid/three-servers.yaml"), "base")
)


def problems(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.from_data(data)
    return list(caught.value.problems)


def test_validate_lists_key_typos_with_a_duplicate_ip_and_an_even_server_count(
    tmp_path: Path,
) -> None:
    (tmp_path / "cluster.yaml").write_text(TYPOS.read_text())
    result = run_cli("validate", "-C", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].endswith("cluster.yaml: 4 problem(s)")
    assert lines[1:] == [
        "nodes: has 2 servers (use 1 or an odd number: etcd needs a majority to keep quorum,"
        " so an even count adds no fault tolerance)",
        "nodes[3].memroy: unknown key (did you mean 'memory'?)",
        "nodes[4].ip: 10.0.0.21 is already used by nodes[3].ip"
        " (every node, the VIP and the gateway need their own address)",
        "proxmox.verfiy_tls: unknown key (did you mean 'verify_tls'?)",
    ]


def test_a_value_of_the_wrong_type_is_reported_once_and_other_checks_still_run() -> None:
    data = copy.deepcopy(BASE)
    data["nodes"][0]["ip"] = [10]
    data["nodes"][4]["vmid"] = 211
    found = problems(data)
    assert [p for p in found if p.startswith("nodes[0].ip")] == [
        "nodes[0].ip: expected a string, got [10] (quote it)"
    ]
    assert any(p.startswith("nodes[4].vmid: 211 is also nodes[3].vmid") for p in found), found


def test_a_missing_key_skips_only_the_checks_that_need_it() -> None:
    data = copy.deepcopy(BASE)
    del data["network"]["cidr"]
    data["nodes"][2]["role"] = "agent"
    found = problems(data)
    assert found[0].startswith("network.cidr: is required")
    assert any(p.startswith("nodes: has 2 servers") for p in found), found
    assert len(found) == 2, found


def test_a_top_level_list_gives_only_the_schema_problem() -> None:
    found = problems(["not", "a", "mapping"])
    assert len(found) == 1 and found[0].startswith("(top level)"), found
