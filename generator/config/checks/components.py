"""The components: versions, what needs what, Traefik's address, cert-manager's ACME settings."""

from __future__ import annotations

import re
from typing import Any

from generator.config.checks.findings import Findings
from generator.config.checks.network import ipv4, parse_range


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
    address = ipv4(traefik["ip"])
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
