"""Networks and addresses: pod and service ranges, the node network, unique addresses, MetalLB."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import Any

from generator.config.checks.findings import Findings
from generator.config.checks.nodes import node_entries


def ipv4(text: Any) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(str(text))
    except ValueError:
        return None


def ipv4_network(text: Any) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(str(text), strict=True)
    except ValueError:
        return None


def parse_range(text: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None:
    start, sep, end = text.partition("-")
    first, last = ipv4(start.strip()), ipv4(end.strip())
    if not sep or first is None or last is None:
        return None
    return first, last


def check_pod_networks(data: dict[str, Any], found: Findings) -> None:
    node_net = ipv4_network(data["network"]["cidr"])
    nets = {}
    for key in ("cluster_cidr", "service_cidr"):
        value = data["cluster"][key]
        net = ipv4_network(value)
        if net is None:
            found.error(f"cluster.{key}", f"{value!r} is not an IPv4 network", "e.g. 10.42.0.0/16")
            continue
        nets[key] = net
        if node_net is not None and net.overlaps(node_net):
            found.error(
                f"cluster.{key}",
                f"{net} overlaps network.cidr {node_net}",
                "pick a range that the node network does not use",
            )
    if len(nets) == 2 and nets["cluster_cidr"].overlaps(nets["service_cidr"]):
        found.error(
            "cluster.service_cidr",
            f"{nets['service_cidr']} overlaps cluster.cluster_cidr {nets['cluster_cidr']}",
            "pods and services need separate ranges, e.g. 10.42.0.0/16 and 10.43.0.0/16",
        )


def _addresses(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Every single address in the config with the field that holds it."""
    network = data["network"]
    found: list[tuple[str, str]] = [("network.gateway", network["gateway"])]
    found += [(f"network.dns[{i}]", value) for i, value in enumerate(network["dns"])]
    if network.get("api_vip") is not None:
        found.append(("network.api_vip", network["api_vip"]))
    found += [(f"{where}.ip", node["ip"]) for where, node in node_entries(data)]
    return found


def check_addresses(data: dict[str, Any], found: Findings) -> None:
    network = data["network"]
    cidr = ipv4_network(network["cidr"])
    if cidr is None:
        found.error(
            "network.cidr",
            f"{network['cidr']!r} is not an IPv4 network",
            "write it as address/prefix with the host bits zero, e.g. 10.0.0.0/24",
        )
    if not network["dns"]:
        found.error("network.dns", "is empty", "list at least one DNS server, e.g. [10.0.0.1]")
    for where, value in _addresses(data):
        address = ipv4(value)
        if address is None:
            found.error(where, f"{value!r} is not an IPv4 address", "e.g. 10.0.0.11")
        elif cidr is None:
            continue
        elif where.startswith("network.dns["):
            # A resolver may live anywhere (1.1.1.1, a Pi-hole on another subnet); only
            # inside the node network must it be a host address.
            if address in cidr:
                _check_host_address(where, address, cidr, found)
        else:
            _check_inside(where, address, cidr, found)


def _check_inside(
    where: str, address: ipaddress.IPv4Address, cidr: ipaddress.IPv4Network, found: Findings
) -> None:
    if address not in cidr:
        found.error(
            where, f"{address} is outside network.cidr {cidr}", f"pick an address in {cidr}"
        )
    else:
        _check_host_address(where, address, cidr, found)


def _check_host_address(
    where: str, address: ipaddress.IPv4Address, cidr: ipaddress.IPv4Network, found: Findings
) -> None:
    if address == cidr.network_address:
        found.error(where, f"{address} is the network address of {cidr}", "use a host address")
    elif address == cidr.broadcast_address and cidr.prefixlen < 31:
        found.error(where, f"{address} is the broadcast address of {cidr}", "use a host address")


def check_unique_addresses(data: dict[str, Any], found: Findings) -> None:
    users: dict[ipaddress.IPv4Address, list[str]] = defaultdict(list)
    network = data["network"]
    candidates = [("network.gateway", network["gateway"])]
    if network.get("api_vip") is not None:
        candidates.append(("network.api_vip", network["api_vip"]))
    candidates += [(f"{where}.ip", node["ip"]) for where, node in node_entries(data)]
    for where, value in candidates:
        address = ipv4(value)
        if address is not None:
            users[address].append(where)
    for address, places in users.items():
        if len(places) > 1:
            found.error(
                places[-1],
                f"{address} is already used by {', '.join(places[:-1])}",
                "every node, the VIP and the gateway need their own address",
            )


def check_metallb_range(data: dict[str, Any], found: Findings) -> None:
    network = data["network"]
    bounds = parse_range(network["metallb_range"])
    if bounds is None:
        found.error(
            "network.metallb_range",
            f"{network['metallb_range']!r} is not an address range",
            "write it as FIRST-LAST, e.g. 10.0.0.200-10.0.0.250",
        )
        return
    first, last = bounds
    if first > last:
        found.error(
            "network.metallb_range",
            f"starts at {first} after it ends at {last}",
            "put the lower address first",
        )
        return
    cidr = ipv4_network(network["cidr"])
    if cidr is not None:
        outside = [str(a) for a in (first, last) if a not in cidr]
        if outside:
            found.error(
                "network.metallb_range",
                f"{', '.join(outside)} outside network.cidr {cidr}",
                f"MetalLB answers ARP only on the node network; pick a range inside {cidr}",
            )
        elif first == cidr.network_address or last == cidr.broadcast_address:
            found.error(
                "network.metallb_range",
                "includes the network or broadcast address",
                "start above the network address and end below the broadcast address",
            )
    clashes = [
        f"{where} ({value})"
        for where, value in _addresses(data)
        if (address := ipv4(value)) is not None and first <= address <= last
    ]
    if clashes:
        found.error(
            "network.metallb_range",
            f"{first}-{last} overlaps {', '.join(clashes)}",
            "move the range or those addresses so they do not overlap",
        )
