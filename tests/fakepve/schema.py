"""Check request parameters the way PVE's JSONSchema layer does.

The real schema (../shared/upstream/proxmox/pve-api-schema-9.1.json) is used when present;
otherwise a built-in subset covering the endpoints homelab-gen calls. Either way a request
with an unknown parameter, a wrong type or enum value, or a missing required one gets the
errors dict that PVE answers with HTTP 400.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

UPSTREAM = Path(__file__).resolve().parents[3] / "shared/upstream/proxmox"
# The API schema of each supported major release: pve-docs' apidata.js of PVE 9.1 and 8.4.
SCHEMA_FILES = {9: UPSTREAM / "pve-api-schema-9.1.json", 8: UPSTREAM / "pve-api-schema-8.4.json"}
SCHEMA_FILE = SCHEMA_FILES[9]

Spec = dict[str, Any]  # {"properties": {name: {...}}, "additionalProperties": 0}

_NODE = {"type": "string"}
_VMID = {"type": "integer", "minimum": 100, "maximum": 999999999}
_STR = {"type": "string", "optional": 1}
_BOOL = {"type": "boolean", "optional": 1}
_INT = {"type": "integer", "optional": 1}

# The built-in fallback: only the endpoints the fake serves, with the parameters it reads.
_VM_CONFIG = {
    "node": _NODE,
    "vmid": _VMID,
    "name": _STR,
    "cores": {**_INT, "minimum": 1},
    "memory": _STR,
    "agent": _STR,
    "onboot": _BOOL,
    "tags": _STR,
    "description": _STR,
    "delete": _STR,
    "cicustom": _STR,
    "digest": _STR,
    "machine": _STR,
    "scsihw": _STR,
    "boot": _STR,
    "serial[n]": _STR,
    "vga": _STR,
    "cpu": _STR,
    "template": _BOOL,
    "net[n]": _STR,
    "ide[n]": _STR,
    "scsi[n]": _STR,
    "sata[n]": _STR,
    "virtio[n]": _STR,
    "ipconfig[n]": _STR,
    "skiplock": _BOOL,
}
FALLBACK: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/version"): {},
    ("GET", "/access/permissions"): {"path": _STR, "userid": _STR},
    ("GET", "/cluster/nextid"): {"vmid": {**_VMID, "optional": 1}},
    ("GET", "/cluster/resources"): {"type": {**_STR, "enum": ["vm", "storage", "node", "sdn"]}},
    ("GET", "/nodes"): {},
    ("GET", "/nodes/{node}/status"): {"node": _NODE},
    ("GET", "/nodes/{node}/network"): {"node": _NODE, "type": _STR},
    ("GET", "/nodes/{node}/storage"): {
        "node": _NODE,
        "content": _STR,
        "enabled": _BOOL,
        "format": _BOOL,
        "storage": _STR,
        "target": _STR,
    },
    ("GET", "/storage/{storage}"): {"storage": _NODE},
    ("GET", "/nodes/{node}/storage/{storage}/content"): {
        "node": _NODE,
        "storage": _NODE,
        "content": _STR,
        "vmid": {**_VMID, "optional": 1},
    },
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}"): {
        "node": _NODE,
        "storage": _STR,
        "volume": _NODE,
        "delay": _INT,
    },
    ("POST", "/nodes/{node}/storage/{storage}/upload"): {
        "node": _NODE,
        "storage": _NODE,
        "filename": _NODE,
        "content": {"type": "string", "enum": ["iso", "vztmpl", "import"]},
        "checksum": _STR,
        "checksum-algorithm": {
            **_STR,
            "enum": ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
        },
        "tmpfilename": _STR,
    },
    ("GET", "/nodes/{node}/qemu"): {"node": _NODE, "full": _BOOL},
    ("GET", "/nodes/{node}/qemu/{vmid}/config"): {
        "node": _NODE,
        "vmid": _VMID,
        "current": _BOOL,
        "snapshot": _STR,
    },
    ("POST", "/nodes/{node}/qemu/{vmid}/config"): _VM_CONFIG,
    ("PUT", "/nodes/{node}/qemu/{vmid}/config"): _VM_CONFIG,
    ("POST", "/nodes/{node}/qemu/{vmid}/clone"): {
        "node": _NODE,
        "vmid": _VMID,
        "newid": _VMID,
        "name": _STR,
        "description": _STR,
        "full": _BOOL,
        "storage": _STR,
        "target": _STR,
        "pool": _STR,
        "snapname": _STR,
        "format": {**_STR, "enum": ["raw", "qcow2", "vmdk"]},
        "bwlimit": _INT,
    },
    ("PUT", "/nodes/{node}/qemu/{vmid}/resize"): {
        "node": _NODE,
        "vmid": _VMID,
        "disk": _NODE,
        "size": {"type": "string"},
        "digest": _STR,
        "skiplock": _BOOL,
    },
    ("GET", "/nodes/{node}/qemu/{vmid}/status/current"): {"node": _NODE, "vmid": _VMID},
    ("POST", "/nodes/{node}/qemu/{vmid}/status/start"): {
        "node": _NODE,
        "vmid": _VMID,
        "skiplock": _BOOL,
        "timeout": _INT,
    },
    ("POST", "/nodes/{node}/qemu/{vmid}/status/stop"): {
        "node": _NODE,
        "vmid": _VMID,
        "skiplock": _BOOL,
        "timeout": _INT,
        "overrule-shutdown": _BOOL,
    },
    ("DELETE", "/nodes/{node}/qemu/{vmid}"): {
        "node": _NODE,
        "vmid": _VMID,
        "purge": _BOOL,
        "skiplock": _BOOL,
        "destroy-unreferenced-disks": _BOOL,
    },
    ("GET", "/nodes/{node}/tasks/{upid}/status"): {"node": _NODE, "upid": _NODE},
}


@cache
def _upstream_info(major: int = 9) -> dict[tuple[str, str], dict[str, Any]] | None:
    """{(method, path template): the schema's `info` for it}, for PVE `major`."""
    path = SCHEMA_FILES.get(major, SCHEMA_FILE)
    if not path.is_file():
        return None
    table: dict[tuple[str, str], dict[str, Any]] = {}

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            for method, info in (node.get("info") or {}).items():
                table[(method, node["path"])] = info
            walk(node.get("children") or [])

    walk(json.loads(path.read_text()))
    return table


@cache
def _upstream(major: int = 9) -> dict[tuple[str, str], Spec] | None:
    info = _upstream_info(major)
    if info is None:
        return None
    return {key: value.get("parameters") or {} for key, value in info.items()}


def using_upstream() -> bool:
    return _upstream() is not None


def endpoint_info(method: str, template: str, major: int = 9) -> dict[str, Any] | None:
    """The schema's permissions/allowtoken/protected facts of one endpoint, when known."""
    info = _upstream_info(major)
    return None if info is None else info.get((method, template))


def spec_for(method: str, template: str, major: int = 9) -> Spec | None:
    upstream = _upstream(major)
    if upstream is not None:
        return upstream.get((method, template))
    props = FALLBACK.get((method, template))
    return None if props is None else {"properties": props, "additionalProperties": 0}


def _property(props: dict[str, Any], name: str) -> dict[str, Any] | None:
    if name in props:
        return dict(props[name])
    indexed = re.fullmatch(r"([a-z]+)(\d+)", name)
    if indexed and f"{indexed[1]}[n]" in props:
        return dict(props[f"{indexed[1]}[n]"])
    return None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _type_error(prop: dict[str, Any], value: str) -> str | None:
    kind = prop.get("type")
    if kind == "boolean" and value.lower() not in _TRUE | _FALSE:
        return f"type check ('boolean') failed - got '{value}'"
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d+", value):
            return f"type check ('integer') failed - got '{value}'"
        number = int(value)
        if "minimum" in prop and number < float(prop["minimum"]):
            return f"value must have a minimum value of {prop['minimum']}"
        if "maximum" in prop and number > float(prop["maximum"]):
            return f"value may have a maximum value of {prop['maximum']}"
    if kind == "number" and not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value):
        return f"type check ('number') failed - got '{value}'"
    if "enum" in prop and value not in prop["enum"]:
        return (
            f"value '{value}' does not have a value in the enumeration '{', '.join(prop['enum'])}'"
        )
    if kind == "string" and "maxLength" in prop and len(value) > int(prop["maxLength"]):
        return f"value may only be {prop['maxLength']} characters long"
    pattern = prop.get("pattern")
    if kind == "string" and pattern and "(?^" not in pattern:
        try:
            if not re.fullmatch(pattern, value):
                return "value does not match the regex pattern"
        except re.error:
            return None
    return None


def validate(method: str, template: str, params: dict[str, str], major: int = 9) -> dict[str, str]:
    """PVE's 400 errors for these parameters: {name: message}; empty when they pass."""
    spec = spec_for(method, template, major)
    if spec is None:
        return {}
    props: dict[str, Any] = spec.get("properties") or {}
    errors: dict[str, str] = {}
    for name, value in params.items():
        prop = _property(props, name)
        if prop is None:
            if not spec.get("additionalProperties", 0):
                errors[name] = (
                    "property is not defined in schema and the schema does not allow"
                    " additional properties"
                )
            continue
        problem = _type_error(prop, value)
        if problem:
            errors[name] = problem
    for name, prop in props.items():
        if "[n]" in name or prop.get("optional"):
            continue
        if name not in params:
            errors[name] = "property is missing and it is not optional"
    return errors
