"""The pure parts of --allow-move: which VMID and host a moved node gets, and the edit of
cluster.yaml that records it (a pin follows the node; every comment stays)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from generator.config import edit
from generator.config.load import load, parse
from generator.lifecycle import moving, steps
from generator.proxmox.observe import NodeFacts, Observed
from tests.fakes.pve.harness import cluster_yaml

HOSTS = ["pve1", "pve2", "pve3"]


def _pinned_yaml() -> str:
    text = cluster_yaml(None, 3, 0, nodes=HOSTS, node="pve1")
    old = "    vmid: 202\n"
    assert old in text
    return text.replace(old, old + "    proxmox_node: pve2  # the box with the GPU\n")


def _observed(up: list[str], unreachable: dict[int, str]) -> Observed:
    nodes = {h: NodeFacts(h, {}, frozenset(), 8 * 2**30) for h in up}
    offline = frozenset(set(HOSTS) - set(up))
    return Observed("9.1.1", {}, nodes, None, {}, {}, frozenset(), offline, unreachable)


def test_first_free_vmid_after_the_old_one() -> None:
    assert steps.new_vmid(202, {201, 202, 203, 204, 300}) == 205
    assert steps.new_vmid(202, {100}) == 203


def test_a_pinned_server_moves_to_the_host_without_a_server() -> None:
    cluster = parse(_pinned_yaml()).cluster
    # pve1 holds server 1; server 3 sits on pve3 too, so pve1 and pve3 tie on servers
    cluster = replace(
        cluster,
        nodes=tuple(
            replace(n, proxmox_node="pve3") if n.name == "k3s-server-3" else n
            for n in cluster.nodes
        ),
    )
    observed = _observed(["pve1", "pve3"], {202: "pve2"})
    node = cluster.nodes[1]
    found = moving.plan_moves(cluster, observed, [node], {100, 201, 202, 203, 9000})
    move = found["k3s-server-2"]
    assert (move.old_vmid, move.old_host, move.vmid, move.pinned) == (202, "pve2", 204, True)
    assert move.host in {"pve1", "pve3"}
    moved = moving.moved_cluster(cluster, found.values())
    assert (moved.nodes[1].vmid, moved.nodes[1].proxmox_node) == (204, move.host)


def test_cluster_yaml_gets_the_new_vmid_and_pin_with_comments_kept(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("# my lab\n" + _pinned_yaml())
    assert edit.set_node_vmid(tmp_path, "k3s-server-2", 204, "pve3", "pve2")
    text = path.read_text()
    assert text.startswith("# my lab\n")
    assert re.search(r"vmid: 204 +# set by homelab-gen boot --allow-move: was VM 202 on pve2", text)
    assert "proxmox_node: pve3  # the box with the GPU" in text
    node = load(tmp_path).cluster.nodes[1]
    assert (node.name, node.vmid, node.proxmox_node) == ("k3s-server-2", 204, "pve3")
    assert not edit.set_node_vmid(tmp_path, "k3s-server-2", 204, "pve3", "pve2")  # no-op
