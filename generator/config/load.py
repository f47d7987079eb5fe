"""Read cluster.yaml → validated, frozen Cluster: parse, normalise, schema, defaults, checks,
build. The one entry point for every command that needs the cluster."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import fileio, yamlio
from generator.config import checks
from generator.config.defaults import with_defaults
from generator.config.model import (
    COMPONENT_NAMES,
    Cluster,
    ClusterInfo,
    Component,
    Components,
    Git,
    Network,
    Node,
    Proxmox,
    SeedMethod,
    VMSettings,
)
from generator.config.schema import rules, schema_problems
from generator.errors import ConfigError

CONFIG_NAME = "cluster.yaml"


@dataclass(frozen=True)
class Loaded:
    cluster: Cluster
    warnings: tuple[str, ...]


def load(directory: Path) -> Loaded:
    """Read DIR/cluster.yaml and return the validated cluster, or raise ConfigError."""
    path = directory / CONFIG_NAME
    text = fileio.read_text(
        path, what="cluster.yaml", hint="run 'homelab-gen new DIR' or use -C DIR"
    )
    return parse(text, source=str(path))


def parse(text: str, source: str = CONFIG_NAME) -> Loaded:
    raw = yamlio.to_plain(yamlio.load_text(text, source))
    return from_data(raw, source)


def from_data(raw: Any, source: str = CONFIG_NAME) -> Loaded:
    data = normalise(raw)
    problems = schema_problems(data)
    if problems:
        raise ConfigError(problems, source)
    data = with_defaults(data)
    found = checks.check(data)
    if found.problems:
        raise ConfigError(found.problems, source)
    return Loaded(build(data), tuple(found.warnings))


def normalise(raw: Any) -> Any:
    """Drop keys left empty (`vm:` alone means "defaults"), and expand `component: true`."""
    raw = _without_empty(raw)
    if not isinstance(raw, dict) or not isinstance(raw.get("components"), dict):
        return raw
    data = dict(raw)
    data["components"] = {
        name: {"enabled": value} if isinstance(value, bool) else value
        for name, value in raw["components"].items()
    }
    return data


def _without_empty(node: Any, rule: dict[str, Any] | None = None) -> Any:
    """Known keys with no value count as absent; unknown ones stay, so they are reported."""
    rule = rules() if rule is None else rule
    if isinstance(node, dict):
        known = rule.get("mapping", {})
        return {
            k: _without_empty(v, known.get(k, {}))
            for k, v in node.items()
            if not (v is None and k in known)
        }
    if isinstance(node, list) and "sequence" in rule:
        return [_without_empty(v, rule["sequence"][0]) for v in node]
    return node


def build(data: dict[str, Any]) -> Cluster:
    cluster, network, pve = data["cluster"], data["network"], data["proxmox"]
    first, _, last = network["metallb_range"].partition("-")
    return Cluster(
        cluster=ClusterInfo(
            name=cluster["name"],
            domain=cluster["domain"],
            k3s_version=cluster["k3s_version"],
            git=Git(**cluster["git"]),
            flannel_backend=cluster["flannel_backend"],
            cluster_cidr=ipaddress.IPv4Network(cluster["cluster_cidr"]),
            service_cidr=ipaddress.IPv4Network(cluster["service_cidr"]),
            datastore_endpoint=cluster.get("datastore_endpoint"),
            initialized=cluster["initialized"],
        ),
        network=Network(
            cidr=ipaddress.IPv4Network(network["cidr"]),
            gateway=ipaddress.IPv4Address(network["gateway"]),
            dns=tuple(ipaddress.IPv4Address(d) for d in network["dns"]),
            search_domain=network["search_domain"],
            api_vip=ipaddress.IPv4Address(network["api_vip"]) if network.get("api_vip") else None,
            metallb_start=ipaddress.IPv4Address(first.strip()),
            metallb_end=ipaddress.IPv4Address(last.strip()),
        ),
        proxmox=Proxmox(
            **{k: v for k, v in pve.items() if k not in ("ca_file", "seed_method")},
            ca_file=pve.get("ca_file"),
            seed_method=SeedMethod(pve["seed_method"]),
        ),
        ssh_authorized_keys=tuple(data["ssh_authorized_keys"]),
        vm=VMSettings(**data["vm"]),
        nodes=tuple(
            Node(**{**node, "ip": ipaddress.IPv4Address(node["ip"])}) for node in data["nodes"]
        ),
        components=Components(
            **{name: _component(data["components"][name]) for name in COMPONENT_NAMES}
        ),
    )


def _component(raw: dict[str, Any]) -> Component:
    options = {k: v for k, v in raw.items() if k not in ("enabled", "version", "values")}
    return Component(
        enabled=raw["enabled"],
        version=raw.get("version"),
        values=raw.get("values", {}),
        options=options,
    )
