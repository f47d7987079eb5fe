"""Placement is pure: {cluster.yaml, observed hosts and VMs} in, {node: host} out."""

from __future__ import annotations

from collections import Counter
from typing import Any

from generator.config.model import Cluster
from generator.proxmox.observe import NodeFacts, Observed, VMFacts
from generator.proxmox.placement import place, placement_findings
from tests.clusters import build, cluster_data, small_network, small_nodes

GIB = 2**30
HOSTS = ["pve1", "pve2", "pve3"]


def _cluster(
    servers: int, agents: int, hosts: list[str] = HOSTS, pins: dict[str, str] | None = None
) -> Cluster:
    nodes = small_nodes(servers, agents)
    for row in nodes:
        if pins and row["name"] in pins:
            row["proxmox_node"] = pins[row["name"]]
    pve: dict[str, Any] = {"node": hosts[0], "nodes": hosts}
    return build(cluster_data(nodes, small_network(servers), proxmox=pve))


def _observed(free_gib: dict[str, int | None], vms: dict[int, str] | None = None) -> Observed:
    """Hosts with their free memory (None: unknown), and VMs already there {vmid: host}."""
    nodes = {
        h: NodeFacts(h, {}, frozenset({"vmbr0"}), None if gib is None else gib * GIB)
        for h, gib in free_gib.items()
    }
    facts = {vmid: VMFacts(vmid, host, "running", {}) for vmid, host in (vms or {}).items()}
    return Observed("9.1.1", {}, nodes, None, facts, {})


def _per_host(hosts: dict[str, str], prefix: str) -> Counter[str]:
    return Counter(h for name, h in hosts.items() if name.startswith(prefix))


def test_three_servers_six_agents_spread_servers_apart_and_agents_by_free_memory() -> None:
    hosts = place(_cluster(3, 6), _observed({"pve1": 64, "pve2": 32, "pve3": 32}))
    assert [hosts[f"k3s-server-{i}"] for i in (1, 2, 3)] == HOSTS
    # pve1 has twice the free memory of each other host: it takes about half of the VMs.
    assert _per_host(hosts, "k3s-agent") == {"pve1": 4, "pve2": 1, "pve3": 1}


def test_equal_hosts_take_agents_round_robin_in_list_order() -> None:
    hosts = place(_cluster(3, 6), _observed({"pve1": 32, "pve2": 32, "pve3": 32}))
    agents = [hosts[f"k3s-agent-{i}"] for i in range(1, 7)]
    assert agents == HOSTS + HOSTS


def test_a_host_of_unknown_memory_counts_as_average() -> None:
    hosts = place(_cluster(3, 6), _observed({"pve1": 16, "pve2": None, "pve3": 48}))
    # unknown pve2 counts as 32 GiB: with the servers, the hosts hold 1, 3 and 5 VMs
    assert _per_host(hosts, "k3s-agent") == {"pve3": 4, "pve2": 2}


def test_placement_is_reproducible() -> None:
    cluster, observed = _cluster(3, 6), _observed({"pve1": 40, "pve2": 33, "pve3": 17})
    assert place(cluster, observed) == place(cluster, observed)


def _booted(cluster: Cluster, free: dict[str, int | None]) -> dict[int, str]:
    hosts = place(cluster, _observed(free))
    return {n.vmid: hosts[n.name] for n in cluster.nodes}


def test_adding_a_fourth_host_moves_nothing() -> None:
    free: dict[str, int | None] = {"pve1": 32, "pve2": 32, "pve3": 32}
    existing = _booted(_cluster(3, 6), free)
    bigger = _cluster(3, 6, [*HOSTS, "pve4"])
    hosts = place(bigger, _observed({**free, "pve4": 128}, existing))
    assert {n.vmid: hosts[n.name] for n in bigger.nodes} == existing


def test_an_added_node_fills_the_emptiest_host() -> None:
    free: dict[str, int | None] = {"pve1": 32, "pve2": 32, "pve3": 32, "pve4": 32}
    existing = _booted(_cluster(3, 6), {k: v for k, v in free.items() if k != "pve4"})
    hosts = place(_cluster(3, 7, [*HOSTS, "pve4"]), _observed(free, existing))
    assert hosts["k3s-agent-7"] == "pve4"


def test_an_added_server_goes_where_no_server_is() -> None:
    free: dict[str, int | None] = {"pve1": 32, "pve2": 32, "pve3": 32}
    existing = _booted(_cluster(3, 0), free)
    existing.pop(203)  # k3s-server-3's VM is gone: pve3 holds no server any more
    hosts = place(_cluster(3, 0), _observed(free, existing))
    assert hosts["k3s-server-3"] == "pve3"


def test_a_pinned_node_goes_where_pinned_and_counts() -> None:
    cluster = _cluster(3, 2, pins={"k3s-server-1": "pve3", "k3s-agent-1": "pve3"})
    hosts = place(cluster, _observed({"pve1": 32, "pve2": 32, "pve3": 32}))
    assert hosts["k3s-server-1"] == "pve3"
    assert {hosts["k3s-server-2"], hosts["k3s-server-3"]} == {"pve1", "pve2"}
    assert hosts["k3s-agent-1"] == "pve3"
    assert hosts["k3s-agent-2"] != "pve3"  # pve3 already holds two VMs


def test_a_vm_that_exists_stays_where_proxmox_has_it() -> None:
    # Moved by HA onto pve2, even against its pin: it is found there and stays there.
    cluster = _cluster(3, 1, pins={"k3s-agent-1": "pve3"})
    hosts = place(cluster, _observed({h: 32 for h in HOSTS}, {301: "pve2", 201: "pve2"}))
    assert hosts["k3s-agent-1"] == "pve2"
    assert hosts["k3s-server-1"] == "pve2"
    assert {hosts["k3s-server-2"], hosts["k3s-server-3"]} == {"pve1", "pve3"}


def test_five_servers_on_three_hosts_are_two_two_one() -> None:
    hosts = place(_cluster(5, 0), _observed({h: 32 for h in HOSTS}))
    assert sorted(Counter(hosts.values()).values()) == [1, 2, 2]


def test_a_host_proxmox_does_not_show_gets_nothing_new() -> None:
    cluster = _cluster(3, 3)
    observed = _observed({"pve1": 32, "pve3": 32})
    hosts = place(cluster, observed)
    assert "pve2" not in hosts.values()
    (crowded,), (offline,) = placement_findings(cluster, observed, hosts)
    assert offline.startswith("proxmox.nodes lists pve2, which Proxmox does not show")
    # spread cannot keep the new servers apart: the plan refuses rather than make them
    assert crowded.startswith(
        "2 of the 3 servers are on pve1 (k3s-server-1, k3s-server-3) with pve2 not seen"
    )


def test_servers_crowded_before_spread_are_only_a_warning() -> None:
    cluster = _cluster(3, 0)
    observed = _observed({h: 32 for h in HOSTS}, {201: "pve1", 202: "pve1", 203: "pve2"})
    problems, warnings = placement_findings(cluster, observed, place(cluster, observed))
    assert problems == []
    assert warnings == ["2 of the 3 servers are on pve1: losing it loses etcd's quorum"]


def test_pack_puts_every_new_vm_on_proxmox_node() -> None:
    data = cluster_data(
        small_nodes(3, 2), small_network(3), proxmox={"node": "pve1", "nodes": HOSTS}
    )
    data["proxmox"]["placement"] = "pack"
    cluster = build(data)
    assert set(place(cluster, _observed({h: 32 for h in HOSTS})).values()) == {"pve1"}


def test_a_lab_without_listed_hosts_places_as_before() -> None:
    nodes = small_nodes(1, 2)
    nodes[2]["proxmox_node"] = "pve2"
    cluster = build(cluster_data(nodes, small_network(1)))
    assert cluster.proxmox.nodes == ("pve", "pve2")
    assert cluster.proxmox.placement == "pack"
    hosts = place(cluster, _observed({"pve": 32, "pve2": 32}))
    assert hosts == {"k3s-server-1": "pve", "k3s-agent-1": "pve", "k3s-agent-2": "pve2"}
