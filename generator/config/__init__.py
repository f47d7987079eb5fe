"""cluster.yaml → validated, frozen Cluster: parse, normalise, schema, meaning, build."""

from __future__ import annotations

import copy
import difflib
import ipaddress
import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from generator import fileio, yamlio
from generator.config import checks
from generator.config.model import (
    COMPONENT_NAMES,
    COMPONENTS,
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
from generator.errors import ConfigError

CONFIG_NAME = "cluster.yaml"
SCHEMA_PATH = Path(__file__).with_name("cluster_schema.yaml")

TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "bool": "true or false",
    "map": "a mapping",
    "seq": "a list",
    "any": "a value",
}


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


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
    rule = _schema() if rule is None else rule
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


@cache
def _schema() -> dict[str, Any]:
    loaded = yamlio.to_plain(yamlio.load_text(SCHEMA_PATH.read_text(), str(SCHEMA_PATH)))
    assert isinstance(loaded, dict)
    return loaded


def schema_problems(data: Any) -> list[str]:
    from pykwalify.core import Core  # imported late: only validating commands need it

    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)
    if data is None:
        return ["(top level): the file is empty (fill it in; 'homelab-gen new' writes one)"]
    core = Core(source_data=data, schema_data=copy.deepcopy(_schema()))
    core.validate(raise_exception=False)
    entries = core.validation_errors_exceptions
    # A misspelt required key shows up twice: as unknown, and as missing. Keep the first.
    misspelt = {
        (entry.path, _closest(entry.path, entry.key))
        for entry in entries
        if entry.msg.startswith("Key '{key}' was not defined")
    }
    return sorted(
        {
            _describe(entry)
            for entry in entries
            if not (
                entry.msg.startswith("Cannot find required key")
                and (entry.path, entry.key) in misspelt
            )
        }
    )


def _field(path: str, key: str | None = None) -> str:
    out = ""
    for part in [p for p in path.split("/") if p] + ([key] if key is not None else []):
        if part.isdigit():
            out += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _describe(entry: Any) -> str:
    template: str = entry.msg
    path = getattr(entry, "path", "")
    value = getattr(entry, "value", None)
    if isinstance(value, bytes):  # pykwalify hands back some scalars encoded
        value = value.decode("utf-8", "replace")
    if template.startswith("Key '{key}' was not defined"):
        return _unknown_key(path, entry.key)
    if template.startswith("Cannot find required key"):
        return f"{_field(path, entry.key)}: is required (add it; see the comments in cluster.yaml)"
    if template.startswith("Enum"):
        choices = ", ".join(str(v) for v in entry.enum_values)
        return f"{_field(path)}: {value!r} is not allowed (choose one of: {choices})"
    if "is not of type" in template:
        expected = TYPE_NAMES.get(entry.scalar_type, entry.scalar_type)
        hint = "quote it" if entry.scalar_type == "str" else "remove the quotes or fix the value"
        return f"{_field(path)}: expected {expected}, got {value!r} ({hint})"
    if "is not a dict" in template and path.startswith("/components/"):
        return (
            f"{_field(path)}: expected true, false or a mapping, got {value!r} "
            "(write e.g. 'true' or '{enabled: true, version: ..., values: {...}}')"
        )
    if "is not a dict" in template:
        return (
            f"{_field(path)}: expected a mapping, got {value!r} (write key: value pairs under it)"
        )
    if "is not a list" in template:
        return f"{_field(path)}: expected a list, got {value!r} (write it as [a, b] or '- a' lines)"
    if "greater than max limit" in template or "less than min limit" in template:
        bound = getattr(entry, "max_", None) if "max" in template else getattr(entry, "min_", None)
        side = "at most" if "greater" in template else "at least"
        return f"{_field(path)}: {value} is out of range (use {side} {bound})"
    if template.startswith(("required.novalue", "nullable.novalue")):
        return f"{_field(path)}: has no value (fill it in or remove the key)"
    return f"{_field(path)}: {template.format(**vars(entry))} (see the comments in cluster.yaml)"


def _closest(path: str, key: Any) -> str | None:
    close = difflib.get_close_matches(str(key), _known_keys(path), n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown_key(path: str, key: Any) -> str:
    known = _known_keys(path)
    close = _closest(path, key)
    if close:
        hint = f"did you mean {close!r}?"
    else:
        hint = f"known keys: {', '.join(known)}" if known else "remove it"
    return f"{_field(path, str(key))}: unknown key ({hint})"


def _known_keys(path: str) -> list[str]:
    rule: dict[str, Any] = _schema()
    for part in [p for p in path.split("/") if p]:
        if part.isdigit() and "sequence" in rule:
            rule = rule["sequence"][0]
        else:
            rule = rule.get("mapping", {}).get(part, {})
    return [k for k in rule.get("mapping", {}) if not k.startswith("regex;")]


def with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Fill in every optional field, so checks and the model see complete data."""
    out = copy.deepcopy(data)
    cluster = out["cluster"]
    git = cluster["git"]
    git.setdefault("branch", "main")
    git.setdefault("private", not git["url"].startswith("https://"))
    cluster.setdefault("flannel_backend", "vxlan")
    cluster.setdefault("cluster_cidr", "10.42.0.0/16")
    cluster.setdefault("service_cidr", "10.43.0.0/16")
    out["network"].setdefault("search_domain", cluster["domain"])
    pve = out["proxmox"]
    for key, value in (
        ("port", 8006),
        ("verify_tls", True),
        ("seed_method", SeedMethod.ISO.value),
        ("clone", "linked"),
        ("parallel", 4),
        ("ssh_user", "root"),
        ("ssh_port", 22),
    ):
        pve.setdefault(key, value)
    out.setdefault("ssh_authorized_keys", [])
    vm = out.setdefault("vm", {})
    for key, value in (
        ("user", "homelab"),
        ("timezone", "UTC"),
        ("locale", "C.UTF-8"),
        ("upgrade_packages", False),
    ):
        vm.setdefault(key, value)
    for node in out["nodes"]:
        node.setdefault("cores", 2)
        node.setdefault("memory", 4096)
        node.setdefault("disk", 32)
    comps = out.setdefault("components", {})
    for info in COMPONENTS:
        comp = comps.setdefault(info.name, {})
        comp.setdefault("enabled", info.default)
    return out


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
