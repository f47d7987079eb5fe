"""Meaning checks on a schema-valid cluster.yaml (plain data, defaults filled in).

Each check returns messages shaped `field.path: what is wrong (hint)`, naming every offender.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
K3S_VERSION = re.compile(r"^v\d+\.\d+\.\d+\+k3s\d+$")
TOKEN_ID = re.compile(r"^[^\s@!]+@[A-Za-z][A-Za-z0-9.\-_]*![A-Za-z][A-Za-z0-9.\-_]*$")
PVE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.]*$")
SCP_GIT_URL = re.compile(r"^[\w.\-]+@[\w.\-]+:[\w./\-~]+$")
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
VMID_MIN, VMID_MAX = 100, 999_999_999

# K3s's documented requirements: servers need 2 GiB, agents 512 MiB; below that it will not
# run. Below the recommended sizes it runs, but the monitoring and storage add-ons struggle.
MEMORY_MIN = {"server": 2048, "agent": 512}
MEMORY_RECOMMENDED = {"server": 4096, "agent": 2048}
DISK_MIN, DISK_RECOMMENDED = 10, 20


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, where: str, what: str, hint: str) -> None:
        self.problems.append(f"{where}: {what} ({hint})")

    def warn(self, where: str, what: str, hint: str) -> None:
        self.warnings.append(f"{where}: {what} ({hint})")


def check(data: dict[str, Any]) -> Findings:
    """Run every meaning check; data is schema-valid with defaults applied."""
    found = Findings()
    for rule in RULES:
        rule(data, found)
    return found


def _ip(text: Any) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(str(text))
    except ValueError:
        return None


def _net(text: Any) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(str(text), strict=True)
    except ValueError:
        return None


def parse_range(text: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None:
    start, sep, end = text.partition("-")
    first, last = _ip(start.strip()), _ip(end.strip())
    if not sep or first is None or last is None:
        return None
    return first, last


def _nodes(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for index, node in enumerate(data["nodes"]):
        yield f"nodes[{index}]", node


def check_cluster_identity(data: dict[str, Any], found: Findings) -> None:
    cluster = data["cluster"]
    if not DNS_LABEL.match(cluster["name"]):
        found.error(
            "cluster.name",
            f"{cluster['name']!r} is not a DNS label",
            "use lowercase letters, digits and '-', at most 63 characters, e.g. 'home'",
        )
    labels = cluster["domain"].split(".")
    if len(cluster["domain"]) > 253 or not all(DNS_LABEL.match(label) for label in labels):
        found.error(
            "cluster.domain",
            f"{cluster['domain']!r} is not a valid DNS domain",
            "use lowercase DNS labels joined by dots, e.g. 'lab.example.com'",
        )
    if not K3S_VERSION.match(cluster["k3s_version"]):
        found.error(
            "cluster.k3s_version",
            f"{cluster['k3s_version']!r} is not a K3s release",
            "use the form vX.Y.Z+k3sN, e.g. 'v1.33.4+k3s1'",
        )


def check_git(data: dict[str, Any], found: Findings) -> None:
    git = data["cluster"]["git"]
    url = git["url"]
    if not (
        url.startswith(("https://", "ssh://")) and len(url.split("://", 1)[1]) > 0
    ) and not SCP_GIT_URL.match(url):
        found.error(
            "cluster.git.url",
            f"{url!r} is neither an https nor an ssh git URL",
            "use https://host/owner/repo.git or ssh://git@host/owner/repo.git",
        )
    if not git["branch"] or any(c in git["branch"] for c in " ~^:?*[\\"):
        found.error(
            "cluster.git.branch",
            f"{git['branch']!r} is not a valid branch name",
            "use a plain branch name such as 'main'",
        )


def check_datastore(data: dict[str, Any], found: Findings) -> None:
    endpoint = data["cluster"].get("datastore_endpoint")
    if endpoint is None:
        return
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in ("postgres", "mysql", "https", "http"):
        found.error(
            "cluster.datastore_endpoint",
            f"{endpoint!r} is not a K3s datastore endpoint",
            "use postgres://user@host:5432/db, mysql://user@tcp(host:3306)/db or https://etcd:2379",
        )
    elif ":" in rest.split("@", 1)[0] and "@" in rest:
        found.error(
            "cluster.datastore_endpoint",
            "contains a password",
            "remove it; put it in the secrets store as 'datastore_password'; render adds it",
        )


def check_pod_networks(data: dict[str, Any], found: Findings) -> None:
    node_net = _net(data["network"]["cidr"])
    nets = {}
    for key in ("cluster_cidr", "service_cidr"):
        value = data["cluster"][key]
        net = _net(value)
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
    found += [(f"{where}.ip", node["ip"]) for where, node in _nodes(data)]
    return found


def check_addresses(data: dict[str, Any], found: Findings) -> None:
    network = data["network"]
    cidr = _net(network["cidr"])
    if cidr is None:
        found.error(
            "network.cidr",
            f"{network['cidr']!r} is not an IPv4 network",
            "write it as address/prefix with the host bits zero, e.g. 10.0.0.0/24",
        )
    if not network["dns"]:
        found.error("network.dns", "is empty", "list at least one DNS server, e.g. [10.0.0.1]")
    for where, value in _addresses(data):
        address = _ip(value)
        if address is None:
            found.error(where, f"{value!r} is not an IPv4 address", "e.g. 10.0.0.11")
        elif cidr is not None:
            _check_inside(where, address, cidr, found)


def _check_inside(
    where: str, address: ipaddress.IPv4Address, cidr: ipaddress.IPv4Network, found: Findings
) -> None:
    if address not in cidr:
        found.error(
            where, f"{address} is outside network.cidr {cidr}", f"pick an address in {cidr}"
        )
    elif address == cidr.network_address:
        found.error(where, f"{address} is the network address of {cidr}", "use a host address")
    elif address == cidr.broadcast_address and cidr.prefixlen < 31:
        found.error(where, f"{address} is the broadcast address of {cidr}", "use a host address")


def check_unique_addresses(data: dict[str, Any], found: Findings) -> None:
    users: dict[ipaddress.IPv4Address, list[str]] = defaultdict(list)
    network = data["network"]
    candidates = [("network.gateway", network["gateway"])]
    if network.get("api_vip") is not None:
        candidates.append(("network.api_vip", network["api_vip"]))
    candidates += [(f"{where}.ip", node["ip"]) for where, node in _nodes(data)]
    for where, value in candidates:
        address = _ip(value)
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
    cidr = _net(network["cidr"])
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
        if (address := _ip(value)) is not None and first <= address <= last
    ]
    if clashes:
        found.error(
            "network.metallb_range",
            f"{first}-{last} overlaps {', '.join(clashes)}",
            "move the range or those addresses so they do not overlap",
        )


def check_nodes(data: dict[str, Any], found: Findings) -> None:
    if not data["nodes"]:
        found.error("nodes", "is empty", "add at least one node with role: server")
        return
    names: dict[str, str] = {}
    vmids: dict[int, str] = {}
    template = data["proxmox"]["template_vmid"]
    for where, node in _nodes(data):
        name = node["name"]
        if not DNS_LABEL.match(name):
            found.error(
                f"{where}.name",
                f"{name!r} is not a DNS-1123 label",
                "use lowercase letters, digits and '-', e.g. 'k3s-server-1'",
            )
        if name in names:
            found.error(f"{where}.name", f"{name!r} is also {names[name]}.name", "rename one")
        names.setdefault(name, where)
        _check_vmid(where, node["vmid"], template, vmids, found)
        _check_size(where, node, found)


def _check_vmid(
    where: str, vmid: int, template: int, seen: dict[int, str], found: Findings
) -> None:
    if not VMID_MIN <= vmid <= VMID_MAX:
        found.error(
            f"{where}.vmid",
            f"{vmid} is outside Proxmox's VMID range",
            f"use {VMID_MIN}..{VMID_MAX}",
        )
    if vmid == template:
        found.error(
            f"{where}.vmid",
            f"{vmid} is proxmox.template_vmid",
            "the template must not be overwritten; pick another VMID",
        )
    if vmid in seen:
        found.error(
            f"{where}.vmid", f"{vmid} is also {seen[vmid]}.vmid", "give each VM its own VMID"
        )
    seen.setdefault(vmid, where)


def _check_size(where: str, node: dict[str, Any], found: Findings) -> None:
    role = node["role"]
    memory, disk = node["memory"], node["disk"]
    if memory < MEMORY_MIN[role]:
        found.error(
            f"{where}.memory",
            f"{memory} MiB is below K3s's minimum of {MEMORY_MIN[role]} MiB for {_article(role)}",
            f"give it at least {MEMORY_RECOMMENDED[role]} MiB",
        )
    elif memory < MEMORY_RECOMMENDED[role]:
        found.warn(
            f"{where}.memory",
            f"{memory} MiB is below the recommended {MEMORY_RECOMMENDED[role]} MiB"
            f" for {_article(role)}",
            "the add-ons may be evicted under memory pressure",
        )
    if disk < DISK_MIN:
        found.error(
            f"{where}.disk",
            f"{disk} GiB is below the minimum of {DISK_MIN} GiB",
            f"give it at least {DISK_RECOMMENDED} GiB",
        )
    elif disk < DISK_RECOMMENDED:
        found.warn(
            f"{where}.disk",
            f"{disk} GiB is below the recommended {DISK_RECOMMENDED} GiB",
            "images and logs fill small disks quickly",
        )


def _article(role: str) -> str:
    return "a server" if role == "server" else "an agent"


def check_topology(data: dict[str, Any], found: Findings) -> None:
    servers = [node for node in data["nodes"] if node["role"] == "server"]
    if data["nodes"] and not servers:
        found.error("nodes", "has no server", "set role: server on at least one node")
    elif (
        len(servers) > 1 and len(servers) % 2 == 0 and not data["cluster"].get("datastore_endpoint")
    ):
        found.error(
            "nodes",
            f"has {len(servers)} servers",
            "use 1 or an odd number: etcd needs a majority to keep quorum, so an even count "
            "adds no fault tolerance",
        )
    if len(servers) > 1 and data["network"].get("api_vip") is None:
        found.error(
            "network.api_vip",
            f"is required with {len(servers)} servers",
            "set a free address in network.cidr for the HA API, e.g. 10.0.0.10",
        )


def check_ssh_keys(data: dict[str, Any], found: Findings) -> None:
    keys = data["ssh_authorized_keys"]
    if not keys:
        found.warn(
            "ssh_authorized_keys",
            "is empty",
            "nobody can log in to the VMs; add your public key for debugging",
        )
    for index, key in enumerate(keys):
        problem = ssh_key_problem(key)
        if problem:
            found.error(
                f"ssh_authorized_keys[{index}]",
                problem,
                "paste one line of a .pub file, e.g. the output of 'cat ~/.ssh/id_ed25519.pub'",
            )


def ssh_key_problem(key: str) -> str | None:
    parts = key.split()
    if len(parts) < 2:
        return "is not an OpenSSH public key"
    kind, blob = parts[0], parts[1]
    if kind not in SSH_KEY_TYPES:
        return f"key type {kind!r} is not one OpenSSH accepts"
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return "the key data is not valid base64"
    length = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    if raw[4 : 4 + length].decode("ascii", "replace") != kind:
        return f"the key data does not hold a {kind} key"
    return None


def check_proxmox(data: dict[str, Any], found: Findings) -> None:
    pve = data["proxmox"]
    if not TOKEN_ID.match(pve["token_id"]):
        found.error(
            "proxmox.token_id",
            f"{pve['token_id']!r} is not an API token id",
            "use user@realm!tokenname, e.g. 'homelab@pve!homelab-gen'",
        )
    if not VMID_MIN <= pve["template_vmid"] <= VMID_MAX:
        found.error(
            "proxmox.template_vmid",
            f"{pve['template_vmid']} is outside Proxmox's VMID range",
            f"use {VMID_MIN}..{VMID_MAX}",
        )
    for key in ("node", "storage", "seed_storage", "bridge"):
        if not PVE_ID.match(pve[key]):
            found.error(
                f"proxmox.{key}",
                f"{pve[key]!r} is not a Proxmox identifier",
                "start with a letter; use letters, digits, '-', '_' and '.'",
            )
    if not pve["host"] or any(c.isspace() or c in "/:" for c in pve["host"]):
        found.error(
            "proxmox.host",
            f"{pve['host']!r} is not a host name or address",
            "give the host only, e.g. pve.lan; the port goes in proxmox.port",
        )
    if pve.get("ca_file") and not pve["verify_tls"]:
        found.error(
            "proxmox.ca_file",
            "is set while verify_tls is false",
            "keep verify_tls: true to pin the CA, or drop ca_file",
        )


def check_components(data: dict[str, Any], found: Findings) -> None:
    comps = data["components"]
    for name, comp in comps.items():
        if "version" in comp and not str(comp["version"]).strip():
            found.error(f"components.{name}.version", "is empty", "remove it to use the pinned one")
    if comps["whoami"]["enabled"] and not comps["traefik"]["enabled"]:
        found.error(
            "components.whoami",
            "needs traefik to be reachable",
            "enable components.traefik or set components.whoami: false",
        )
    _check_traefik_ip(data, found)
    _check_cert_manager(comps["cert_manager"], found)
    if comps["longhorn"]["enabled"] and len(data["nodes"]) < 3:
        found.warn(
            "components.longhorn",
            f"runs on {len(data['nodes'])} node(s)",
            "volumes get fewer than 3 replicas and lose data if that node's disk fails",
        )


def _check_traefik_ip(data: dict[str, Any], found: Findings) -> None:
    traefik = data["components"]["traefik"]
    bounds = parse_range(data["network"]["metallb_range"])
    if "ip" not in traefik or not traefik["enabled"]:
        return
    address = _ip(traefik["ip"])
    if address is None:
        found.error(
            "components.traefik.ip", f"{traefik['ip']!r} is not an IPv4 address", "e.g. 10.0.0.200"
        )
    elif bounds is not None and not bounds[0] <= address <= bounds[1]:
        found.error(
            "components.traefik.ip",
            f"{address} is outside network.metallb_range",
            f"pick an address in {bounds[0]}-{bounds[1]}",
        )


def _check_cert_manager(cert: dict[str, Any], found: Findings) -> None:
    if not cert["enabled"] or cert.get("issuer") != "acme":
        return
    email = cert.get("acme_email", "")
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
        found.error(
            "components.cert_manager.acme_email",
            "is required for the ACME issuer"
            if not email
            else f"{email!r} is not an email address",
            "Let's Encrypt needs a contact address, e.g. you@example.com",
        )
    if "dns_provider" not in cert:
        found.error(
            "components.cert_manager.dns_provider",
            "is required for the ACME issuer",
            "set dns_provider: cloudflare and put its API token in the secrets store",
        )


RULES: tuple[Callable[[dict[str, Any], Findings], None], ...] = (
    check_cluster_identity,
    check_git,
    check_datastore,
    check_pod_networks,
    check_addresses,
    check_unique_addresses,
    check_metallb_range,
    check_nodes,
    check_topology,
    check_ssh_keys,
    check_proxmox,
    check_components,
)
