"""Jinja filters for the cookiecutter scaffold: propose addresses from the network CIDR.

Loaded by cookiecutter through `_extensions` in templates/cluster/cookiecutter.json. Bad
input yields '' rather than an exception, so the prompt still shows and validation explains.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension


def _network(cidr: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(cidr.strip(), strict=False)
    except ValueError:
        return None


def host(cidr: str, index: int) -> str:
    """The index-th address of the network (1 = first host), or '' if it does not fit."""
    net = _network(cidr)
    if net is None or not 0 < index < net.num_addresses - 1:
        return ""
    return str(net.network_address + index)


def ip_add(address: str, offset: int) -> str:
    try:
        return str(ipaddress.IPv4Address(address.strip()) + int(offset))
    except (ValueError, ipaddress.AddressValueError):
        return ""


def pool_range(cidr: str, size: int = 51) -> str:
    """A MetalLB pool near the top of the network: .200-.250 for a /24."""
    net = _network(cidr)
    if net is None or net.num_addresses < 16:
        return ""
    size = min(size, net.num_addresses // 4)
    last = net.broadcast_address - 5
    return f"{last - (size - 1)}-{last}"


class NetworkExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        filters: dict[str, Any] = environment.filters
        filters["host"] = host
        filters["ip_add"] = ip_add
        filters["pool_range"] = pool_range
