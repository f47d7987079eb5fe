"""The proxmox section: token id, identifiers, host, TLS."""

from __future__ import annotations

import re
from typing import Any

from generator.config.checks.findings import Findings
from generator.config.checks.nodes import VMID_MAX, VMID_MIN

TOKEN_ID = re.compile(r"^[^\s@!]+@[A-Za-z][A-Za-z0-9.\-_]*![A-Za-z][A-Za-z0-9.\-_]*$")
PVE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.]*$")


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
