"""The nodes: names, VMIDs, sizes, the server/agent topology and the login keys."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any

from generator.config.checks.cluster import DNS_LABEL
from generator.config.checks.findings import Findings

VMID_MIN, VMID_MAX = 100, 999_999_999
# K3s's documented requirements: servers need 2 GiB, agents 512 MiB; below that it will not
# run. Below the recommended sizes it runs, but the monitoring and storage add-ons struggle.
MEMORY_MIN = {"server": 2048, "agent": 512}
MEMORY_RECOMMENDED = {"server": 4096, "agent": 2048}
DISK_MIN, DISK_RECOMMENDED = 10, 20
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def node_entries(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for index, node in enumerate(data["nodes"]):
        yield f"nodes[{index}]", node


def check_nodes(data: dict[str, Any], found: Findings) -> None:
    if not data["nodes"]:
        found.error("nodes", "is empty", "add at least one node with role: server")
        return
    names: dict[str, str] = {}
    vmids: dict[int, str] = {}
    template = data["proxmox"]["template_vmid"]
    for where, node in node_entries(data):
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
