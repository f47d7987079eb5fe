"""proxmox.nodes, proxmox.placement and the pins, through `homelab-gen validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.clusters import build, cluster_data, small_network, small_nodes, text_of
from tests.test_cli import run_cli

HOSTS = ["pve1", "pve2", "pve3"]


def _data(servers: int, pins: dict[int, str] | None = None, **pve: Any) -> dict[str, Any]:
    nodes = small_nodes(servers, 2)
    for index, host in (pins or {}).items():
        nodes[index]["proxmox_node"] = host
    proxmox = {"node": "pve1", "nodes": HOSTS, **pve}
    return cluster_data(nodes, small_network(servers), proxmox=proxmox)


def _validate(tmp_path: Path, data: dict[str, Any], render: bool = False) -> tuple[int, str]:
    (tmp_path / "cluster.yaml").write_text(text_of(data))
    if render:
        assert run_cli("render", "-C", str(tmp_path)).returncode == 0
    result = run_cli("validate", "-C", str(tmp_path))
    return result.returncode, result.stdout + result.stderr


def test_five_servers_on_three_hosts_at_two_two_one_is_valid(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, _data(5, {0: "pve1", 1: "pve1"}), render=True)
    assert code == 0, out


def test_three_servers_pinned_to_one_host_are_refused(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, _data(5, {0: "pve2", 1: "pve2", 2: "pve2"}))
    assert code == 2
    assert (
        "nodes: 3 servers pinned to pve2: more than quorum can lose (at most 2 of the 5"
        " servers on one host) (add hosts to proxmox.nodes, pin servers to other hosts with"
        " proxmox_node, or set proxmox.placement: pack to accept the risk)"
    ) in out


def test_too_few_hosts_for_the_servers_are_refused(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, _data(5, nodes=["pve1", "pve2"]))
    assert code == 2
    assert "proxmox.placement: spread cannot place 5 servers on 2 host(s) (pve1, pve2)" in out


def test_pack_accepts_the_risk(tmp_path: Path) -> None:
    _, out = _validate(tmp_path, _data(5, {0: "pve2", 1: "pve2", 2: "pve2"}, placement="pack"))
    assert "quorum" not in out and "placement" not in out, out


def test_a_pin_to_an_unlisted_host_names_the_field_and_the_nearest(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, _data(3, {3: "pve-2"}))
    assert code == 2
    assert (
        "nodes[3].proxmox_node: 'pve-2' is not one of proxmox.nodes (pve1, pve2, pve3)"
        " (pin it to a listed host, or add 'pve-2' to proxmox.nodes; did you mean 'pve2'?)"
    ) in out


@pytest.mark.parametrize(
    ("pve", "expected"),
    [
        ({"node": "pve"}, "proxmox.node: 'pve' is not one of proxmox.nodes (pve1, pve2, pve3)"),
        ({"nodes": ["pve1", "pve1"]}, "proxmox.nodes[1]: 'pve1' is listed twice (list it once)"),
        ({"nodes": []}, "proxmox.nodes: is empty"),
        ({"placement": "ha"}, "proxmox.placement"),
    ],
)
def test_bad_host_lists_are_refused(tmp_path: Path, pve: dict[str, Any], expected: str) -> None:
    code, out = _validate(tmp_path, _data(3, **pve))
    assert code == 2
    assert expected in out, out


def test_several_listed_hosts_spread_by_default_and_one_packs() -> None:
    assert build(_data(3)).proxmox.placement == "spread"
    assert build(_data(1, nodes=["pve1"])).proxmox.placement == "pack"
    assert build(_data(1, nodes=["pve1"])).proxmox.hosts == ("pve1",)
