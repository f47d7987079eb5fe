"""Read cluster.yaml → validated, frozen Cluster: parse, normalise, schema, defaults, checks,
build. The one entry point for every command that needs the cluster."""

from __future__ import annotations

import copy
import ipaddress
import re
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
from generator.config.schema import rules, schema_report
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
    problems, refused = schema_report(data)
    if problems:
        raise ConfigError(_with_meaning_problems(problems, data, refused), source)
    data = with_defaults(data)
    found = checks.check(data)
    if found.problems:
        raise ConfigError(found.problems, source)
    return Loaded(build(data), tuple(found.warnings))


def _with_meaning_problems(
    problems: list[str], data: Any, refused: list[tuple[str, ...]]
) -> list[str]:
    """Schema problems plus what the meaning checks still find once the refused values are
    set aside, so one run lists every problem (a typo does not hide a duplicate IP)."""
    checkable = _without(data, refused)
    if checkable is None:
        return problems
    try:
        filled = with_defaults(checkable)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        return problems  # too little is left to fill in the defaults
    meaning = checks.check_what_can_run(filled).problems
    if not meaning:
        return problems
    return sorted(dict.fromkeys([*problems, *meaning]), key=_field_order)


def _without(data: Any, refused: list[tuple[str, ...]]) -> dict[str, Any] | None:
    """A copy of data without the refused values; None when one cannot be found. A refused
    list item takes its whole list along, so the indices in messages stay true."""
    if not isinstance(data, dict):
        return None
    out = copy.deepcopy(data)
    drops: list[tuple[dict[Any, Any], Any]] = []
    for place in refused:
        while place and place[-1].isdigit():
            place = place[:-1]
        if not place:
            return None
        parent: Any = out
        for part in place[:-1]:
            parent = _child(parent, part)
        key = _key(parent, place[-1])
        if key is _MISSING:
            return None
        drops.append((parent, key))
    for parent, key in drops:
        parent.pop(key, None)
    return out


_MISSING = object()


def _child(node: Any, part: str) -> Any:
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    key = _key(node, part)
    return _MISSING if key is _MISSING else node[key]


def _key(node: Any, part: str) -> Any:
    """The key of mapping `node` that the schema's path names `part`, or _MISSING."""
    if not isinstance(node, dict):
        return _MISSING
    return next((k for k in node if str(k) == part), _MISSING)


def _field_order(message: str) -> list[tuple[int, str]]:
    """Sort key: the field path, with list indices compared as numbers."""
    field = message.partition(": ")[0]
    return [
        (int(index), "") if index else (-1, name)
        for index, name in re.findall(r"\[(\d+)\]|([^.\[]+)", field)
    ]


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
            cni=cluster["cni"],
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
            **{k: v for k, v in pve.items() if k not in ("ca_file", "seed_method", "nodes")},
            nodes=tuple(pve["nodes"]),
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
