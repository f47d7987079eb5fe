"""`new`: check one answer as it is typed, in the prompt's own terms.

Each check takes the typed text and the answers given so far, and returns what is wrong
with a hint, or None. The rules are cluster.yaml's own (generator/config/checks), reused
here so `new` never accepts what `validate` would refuse.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from generator.config.checks.cluster import DNS_LABEL, SCP_GIT_URL
from generator.config.checks.k3s_version import K3S_VERSION
from generator.config.checks.network import ipv4, ipv4_network, parse_range
from generator.config.checks.nodes import VMID_MAX, VMID_MIN, ssh_key_problem
from generator.config.checks.proxmox import PVE_ID, TOKEN_ID

Check = Callable[[str, dict[str, Any]], "str | None"]

DNS_LABEL_HINT = "use lowercase letters, digits and '-', at most 63 characters"


def dns_label(text: str, _: dict[str, Any]) -> str | None:
    if DNS_LABEL.match(text):
        return None
    return f"{text!r} is not a DNS label: {DNS_LABEL_HINT}, e.g. 'home'"


def domain(text: str, _: dict[str, Any]) -> str | None:
    if len(text) <= 253 and all(DNS_LABEL.match(label) for label in text.split(".")):
        return None
    return (
        f"{text!r} is not a DNS domain:"
        " use lowercase DNS labels joined by dots, e.g. lab.example.com"
    )


def k3s_version(text: str, _: dict[str, Any]) -> str | None:
    if K3S_VERSION.match(text):
        return None
    return f"{text!r} is not a K3s release: use vX.Y.Z+k3sN, e.g. v1.33.4+k3s1"


def network(text: str, _: dict[str, Any]) -> str | None:
    if ipv4_network(text) is not None:
        return None
    try:
        loose = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        return f"{text!r} is not a network: write ADDRESS/PREFIX, e.g. 10.0.0.0/24"
    return f"{text} has host bits set: did you mean {loose}?"


def _net(answers: dict[str, Any]) -> ipaddress.IPv4Network:
    net = ipv4_network(answers["network_cidr"])
    assert net is not None, "network_cidr is checked before any address"
    return net


def _host_problem(text: str, answers: dict[str, Any]) -> str | None:
    address, net = ipv4(text), _net(answers)
    if address is None:
        return f"{text!r} is not an IPv4 address: e.g. {net.network_address + 1}"
    if address not in net:
        return f"{address} is outside the network {net}: pick an address in it"
    if address in (net.network_address, net.broadcast_address):
        return f"{address} is not a host address of {net}: pick one inside it"
    return None


def host_in_network(text: str, answers: dict[str, Any]) -> str | None:
    return _host_problem(text, answers)


def dns_servers(text: str, answers: dict[str, Any]) -> str | None:
    servers = [part.strip() for part in text.split(",")]
    bad = [s for s in servers if ipv4(s) is None]
    if bad:
        return f"{', '.join(map(repr, bad))} is not an IPv4 address: e.g. 10.0.0.1, 1.1.1.1"
    # A resolver may be anywhere; inside the node network it must be a host address.
    inside = [s for s in servers if ipaddress.IPv4Address(s) in _net(answers)]
    return next(filter(None, (_host_problem(s, answers) for s in inside)), None)


def _count(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def servers(text: str, _: dict[str, Any]) -> str | None:
    count = _count(text)
    if count is None or count == 0:
        return f"{text!r} is not a server count: type 1, or an odd number such as 3 for HA"
    if count % 2 == 0:
        return (
            f"{count} servers add no fault tolerance (etcd needs a majority):"
            " type 1, or an odd number such as 3"
        )
    return None


def agents(text: str, _: dict[str, Any]) -> str | None:
    if _count(text) is None:
        return f"{text!r} is not a count: type a whole number, 0 or more"
    return None


def node_addresses(answers: dict[str, Any], first: ipaddress.IPv4Address) -> list[str]:
    """Servers count up from the first node IP, agents from first + 10 (as cluster.yaml)."""
    count_servers, count_agents = int(answers["servers"]), int(answers["agents"])
    return [str(first + i) for i in range(count_servers)] + [
        str(first + 10 + i) for i in range(count_agents)
    ]


def first_node_ip(text: str, answers: dict[str, Any]) -> str | None:
    problem = _host_problem(text, answers)
    if problem:
        return problem
    first = ipaddress.IPv4Address(text)
    try:
        addresses = node_addresses(answers, first)
    except ipaddress.AddressValueError:
        addresses = []
    for address in addresses or [text]:
        if _host_problem(address, answers):
            return (
                f"the nodes from {text} would reach {address}, outside the hosts of"
                f" {_net(answers)}: pick a lower first address"
            )
    if answers.get("gateway") in addresses:
        return f"the gateway {answers['gateway']} would be a node's address: pick another"
    return None


def api_vip(text: str, answers: dict[str, Any]) -> str | None:
    if not text:
        if int(answers["servers"]) > 1:
            return f"{answers['servers']} servers need an API VIP: give a free address"
        return None
    problem = _host_problem(text, answers)
    if problem:
        return problem
    nodes = node_addresses(answers, ipaddress.IPv4Address(answers["first_node_ip"]))
    if text in nodes or text == answers.get("gateway"):
        return f"{text} is already a node's or the gateway's address: pick a free one"
    return None


def metallb_range(text: str, answers: dict[str, Any]) -> str | None:
    bounds = parse_range(text)
    if bounds is None:
        return f"{text!r} is not an address range: write FIRST-LAST, e.g. 10.0.0.200-10.0.0.250"
    first, last = bounds
    if first > last:
        return f"{text} starts after it ends: put the lower address first"
    for address in (first, last):
        problem = _host_problem(str(address), answers)
        if problem:
            return problem
    taken = node_addresses(answers, ipaddress.IPv4Address(answers["first_node_ip"]))
    taken += [answers.get("gateway", ""), answers.get("api_vip", "")]
    inside = [a for a in taken if a and first <= ipaddress.IPv4Address(a) <= last]
    if inside:
        return f"{', '.join(inside)} would be in the range: keep the nodes, gateway and VIP out"
    return None


def proxmox_host(text: str, _: dict[str, Any]) -> str | None:
    if text and not any(c.isspace() or c in "/:" for c in text):
        return None
    return f"{text!r} is not a host name or address: give the host only, e.g. pve.lan"


def proxmox_id(text: str, _: dict[str, Any]) -> str | None:
    if PVE_ID.match(text):
        return None
    return (
        f"{text!r} is not a Proxmox name: start with a letter; use letters, digits, '-', '_', '.'"
    )


def token_id(text: str, _: dict[str, Any]) -> str | None:
    if TOKEN_ID.match(text):
        return None
    return (
        f"{text!r} is not an API token id: use user@realm!tokenname, e.g. homelab@pve!homelab-gen"
    )


def vmid(text: str, answers: dict[str, Any]) -> str | None:
    number = _count(text)
    if number is None or not VMID_MIN <= number <= VMID_MAX:
        return f"{text!r} is not a VMID: type a number from {VMID_MIN} to {VMID_MAX}"
    template = answers.get("template_vmid")
    if template is not None:
        count_servers, count_agents = int(answers["servers"]), int(answers["agents"])
        used = [number + i for i in range(count_servers)]
        used += [number + 10 + i for i in range(count_agents)]
        if int(template) in used:
            return f"the VMs from {number} would take the template's VMID {template}: pick another"
    return None


def git_url(text: str, _: dict[str, Any]) -> str | None:
    if text.startswith(("https://", "ssh://")) and text.split("://", 1)[1]:
        return None
    if SCP_GIT_URL.match(text):
        return None
    return (
        f"{text!r} is neither an https nor an ssh git URL:"
        " e.g. https://github.com/me/home-ops.git or git@github.com:me/home-ops.git"
    )


def git_branch(text: str, _: dict[str, Any]) -> str | None:
    if text and not any(c in text for c in " ~^:?*[\\"):
        return None
    return f"{text!r} is not a branch name: use a plain name such as main"


def ssh_key(text: str, _: dict[str, Any]) -> str | None:
    problem = ssh_key_problem(text) if text else None
    if problem is None:
        return None
    return f"{problem}: paste one line of a .pub file (cat ~/.ssh/id_ed25519.pub), or nothing"


# The question names are those in templates/cluster/cookiecutter.json.
CHECKS: dict[str, Check] = {
    "cluster_name": dns_label,
    "domain": domain,
    "k3s_version": k3s_version,
    "network_cidr": network,
    "gateway": host_in_network,
    "dns": dns_servers,
    "servers": servers,
    "agents": agents,
    "first_node_ip": first_node_ip,
    "api_vip": api_vip,
    "metallb_range": metallb_range,
    "proxmox_host": proxmox_host,
    "proxmox_node": proxmox_id,
    "proxmox_token_id": token_id,
    "template_vmid": vmid,
    "first_vmid": vmid,
    "vm_storage": proxmox_id,
    "seed_storage": proxmox_id,
    "bridge": proxmox_id,
    "git_url": git_url,
    "git_branch": git_branch,
    "ssh_public_key": ssh_key,
}

# The earlier answers each check reads: while one of them is wrong, a later check would
# only repeat the same mistake, so `new --answers` leaves it until that one is fixed.
READS: dict[str, tuple[str, ...]] = {
    "gateway": ("network_cidr",),
    "dns": ("network_cidr",),
    "first_node_ip": ("network_cidr", "servers", "agents", "gateway"),
    "api_vip": ("network_cidr", "servers", "agents", "gateway", "first_node_ip"),
    "metallb_range": ("network_cidr", "servers", "agents", "gateway", "first_node_ip", "api_vip"),
    "first_vmid": ("servers", "agents", "template_vmid"),
    "git_url": ("cluster_name",),
}
