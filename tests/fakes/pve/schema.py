"""Check request parameters the way PVE's JSONSchema layer does.

The real schema (../shared/upstream/proxmox/pve-api-schema-9.1.json) is used when present;
otherwise a built-in subset covering the endpoints homelab-gen calls. Either way a request
with an unknown parameter, a wrong type or enum value, or a missing required one gets the
errors dict that PVE answers with HTTP 400.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

UPSTREAM = Path(__file__).resolve().parents[4] / "shared/upstream/proxmox"
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
    ("GET", "/nodes/{node}/qemu/{vmid}/pending"): {"node": _NODE, "vmid": _VMID},
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


def endpoints(major: int = 9) -> dict[tuple[str, str], dict[str, Any]] | None:
    """{(method, path template): the schema's `info`} of PVE `major`, None without it."""
    return _upstream_info(major)


def endpoint_info(method: str, template: str, major: int = 9) -> dict[str, Any] | None:
    """The schema's permissions/allowtoken/protected facts of one endpoint, when known."""
    info = _upstream_info(major)
    if info is None:
        return FALLBACK_INFO.get((method, template))
    return info.get((method, template))


def _perm(path: str, *privs: str, any_of: bool = False) -> dict[str, Any]:
    check: list[Any] = ["perm", path, list(privs)] + (["any", 1] if any_of else [])
    return {"permissions": {"check": check}}


# Without ../shared: the `permissions` of the PVE 9.1 schema for the endpoints whose
# privileges tests exercise (the guest agent's and the upload's), so the check still runs.
FALLBACK_INFO: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces"): _perm(
        "/vms/{vmid}", "VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted", any_of=True
    ),
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/file-read"): _perm(
        "/vms/{vmid}", "VM.GuestAgent.FileRead", "VM.GuestAgent.Unrestricted", any_of=True
    ),
    ("POST", "/nodes/{node}/qemu/{vmid}/agent/exec"): _perm(
        "/vms/{vmid}", "VM.GuestAgent.Unrestricted"
    ),
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/exec-status"): _perm(
        "/vms/{vmid}", "VM.GuestAgent.Unrestricted"
    ),
    ("POST", "/nodes/{node}/storage/{storage}/upload"): _perm(
        "/storage/{storage}", "Datastore.AllocateTemplate"
    ),
}


def spec_for(method: str, template: str, major: int = 9) -> Spec | None:
    upstream = _upstream(major)
    if upstream is not None:
        return upstream.get((method, template))
    props = FALLBACK.get((method, template))
    return None if props is None else {"properties": props, "additionalProperties": 0}


# == The validator: a port of pve-common src/PVE/JSONSchema.pm ==============================
# Sources: pve-common master (PVE 9) and stable-bookworm (PVE 8), src/PVE/JSONSchema.pm; the
# named formats registered elsewhere are ported below, each beside its upstream sub.
# Error texts are PVE's, byte for byte: a message from a Perl `die` keeps its trailing "\n",
# one from add_error has none.

Value = Any  # a str (scalar), a list (array parameter), a dict (object) or None (undef)


class Die(Exception):
    """A Perl `die "text\\n"` from a format check; str() is the exact text."""

    def __init__(self, text: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.errors = errors

    def __str__(self) -> str:
        # pve-common Exception.pm, stringify: the message, then one "path: error" line per
        # entry of its errors map (Perl's hash order is random; here sorted).
        out = self.text
        for key in sorted(self.errors or {}):
            out += f"{key}: {self.errors[key]}\n"  # type: ignore[index]
        return out


class NotPorted(RuntimeError):
    """A schema feature or named format this fake has no port of: fail loudly rather than
    pass a value PVE might reject."""


def _truthy(value: Value) -> bool:
    """Perl truthiness of a scalar: undef, '' and '0' are false."""
    return value is not None and value != "" and value != "0"


def _perl_num(value: Any) -> str:
    """A schema number as Perl prints it (%.15g); a string stays as written."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.15g}"
    return str(value)


@cache
def _perl_regex(pattern: str) -> re.Pattern[str]:
    """A Perl regex as Python's re: qr// stringifies as (?^flags:...)."""
    text = re.sub(r"\(\?\^([a-z]*):", lambda m: f"(?{m[1]}:" if m[1] else "(?:", pattern)
    if "[[:" in text or "\\z" in text or "\\K" in text or "(?<" in text.replace("(?<=", ""):
        raise NotPorted(f"Perl regex feature in pattern {pattern!r}")
    return re.compile(text)


def _match(pattern: str, value: str) -> bool:
    """JSONSchema.pm, check_prop: `$value =~ m/^$pattern$/` -- the pattern is interpolated
    bare, so the anchors bind to the first and last alternative of an ungrouped `a|b`."""
    return _perl_regex(f"^{pattern}$").search(value) is not None


def is_number(value: str) -> bool:
    """JSONSchema.pm, is_number."""
    return re.search(r"^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$", value) is not None


def is_integer(value: str) -> bool:
    """JSONSchema.pm, is_integer."""
    return re.search(r"^[+-]?\d+$", value) is not None


def add_error(errors: dict[str, str], path: str | None, msg: str) -> None:
    """JSONSchema.pm, add_error: a second error on a path is joined by a literal '\\n'."""
    path = path or "_root"
    errors[path] = f"{errors[path]}\\n{msg}" if errors.get(path) else msg


def _perl_ref(value: Value) -> str:
    return "ARRAY" if isinstance(value, list) else "HASH" if isinstance(value, dict) else ""


def check_type(path: str, kind: Any, value: Value, errors: dict[str, str]) -> bool:
    """JSONSchema.pm, check_type."""
    if not kind:
        return True
    if value is None:
        if kind == "null":
            return True
        raise NotPorted("internal error")
    if isinstance(kind, (list, dict)):
        raise NotPorted(f"type {kind!r}: union and schema types are not ported")
    if kind == "any":
        return True
    if kind == "null":
        add_error(errors, path, f"type check ('{kind}') failed - value is not null")
        return False
    ref = _perl_ref(value)
    if kind in ("array", "object", "coderef"):
        if ref != {"array": "ARRAY", "object": "HASH", "coderef": "CODE"}[kind]:
            add_error(errors, path, f"type check ('{kind}') failed")
            return False
        return True
    if ref:
        add_error(errors, path, f"type check ('{kind}') failed - got {ref}")
        return False
    if kind == "boolean" and value not in ("1", "0"):
        # Only '1' and '0': the lenient yes/on/true forms are commented out upstream.
        add_error(errors, path, f"type check ('{kind}') failed - got '{value}'")
        return False
    if (kind == "integer" and not is_integer(value)) or (kind == "number" and not is_number(value)):
        add_error(errors, path, f"type check ('{kind}') failed - got '{value}'")
        return False
    return True  # string, and unknown types: nothing to verify


def _sub(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_object(
    path: str,
    schema: dict[str, Any],
    value: Value,
    additional: Any,
    errors: dict[str, str],
    ctx: Ctx,
) -> None:
    """JSONSchema.pm, check_object."""
    if not isinstance(schema, dict):
        add_error(errors, path, "Invalid schema definition.")
        return
    if not isinstance(value, dict):
        add_error(errors, path, "an object is required")
        return
    schema = _expand_indexed(schema, value, ctx)
    if ctx.major >= 9:
        # pve-common 9 (commit "schema: check_object: remap alias keys before validation").
        for key in list(value):
            alias = (schema.get(key) or {}).get("alias")
            if alias is None:
                continue
            if value.get(alias) is not None:
                add_error(
                    errors,
                    _sub(path, key),
                    f"cannot set both '{key}' and its alias target '{alias}'",
                )
            else:
                value[alias] = value.pop(key)
    for key, sub in schema.items():
        if sub.get("oneOf") or sub.get("allOf"):
            raise NotPorted(f"{key}: oneOf/allOf schemas are not ported")
        # get_instance_type: the value of the property named by `type-property`.
        kind = value.get(sub["type-property"]) if sub.get("type-property") else None
        check_prop(value.get(key), sub, _sub(path, key), errors, ctx, kind)
    for key in list(value):
        newpath = _sub(path, key)
        sub = schema.get(key)
        if sub is not None:
            requires = sub.get("requires")
            if isinstance(requires, dict):
                check_prop(value, requires, path, errors, ctx)
            elif requires and value.get(requires) is None:
                add_error(
                    errors,
                    _sub(path, requires),
                    # pve-common 9.0.8, "schema: clarify error on missing property dependency".
                    f"missing property required by '{newpath}'"
                    if ctx.major >= 9
                    else f"missing property - '{newpath}' requires this property",
                )
            continue
        if additional is not None and not additional:
            add_error(
                errors,
                newpath,
                "property is not defined in schema and the schema does not allow"
                " additional properties",
            )
            continue
        if isinstance(additional, dict):
            check_prop(value[key], additional, newpath, errors, ctx)


def check_prop(
    value: Value,
    schema: dict[str, Any],
    path: str,
    errors: dict[str, str],
    ctx: Ctx,
    instance_type: str | None = None,
) -> None:
    """JSONSchema.pm, check_prop (without oneOf/allOf, which no endpoint here uses;
    check_object refuses them loudly). A property of other instance types than the
    object's `type-property` value may be absent (`$optional_for_type`)."""
    if not isinstance(schema, dict):
        add_error(errors, path, "Invalid schema definition.")
        return
    optional_for_type = False
    if instance_type is not None:
        if schema.get("instance-types") is None:
            add_error(errors, path, "missing 'instance-types'")
            return
        optional_for_type = instance_type not in schema["instance-types"]
    if ctx.major >= 9 and schema.get("alias"):
        return  # pve-common 9: "schema: check_prop: skip alias entries early"
    if value is None:
        if schema.get("type") == "null":
            return
        if not (
            schema.get("optional")
            or schema.get("alias")
            or schema.get("group")
            or optional_for_type
        ):
            add_error(errors, path, "property is missing and it is not optional")
        return
    if not check_type(path, schema.get("type"), value, errors):
        return
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, list):
            raise NotPorted("not implemented")  # as upstream: tuple-typed arrays
        if items:
            for index, element in enumerate(value):
                check_prop(element, items, f"{path}[{index}]", errors, ctx)
        return
    if isinstance(value, dict):
        if schema.get("properties") or schema.get("additionalProperties"):
            check_object(
                path,
                schema.get("properties") or {},
                value,
                schema.get("additionalProperties"),
                errors,
                ctx,
            )
        return
    fmt = schema.get("format")
    if fmt:
        try:
            check_format(fmt, value, path, ctx)
        except Die as exc:
            add_error(errors, path, f"invalid format - {exc}")
            return
    pattern = schema.get("pattern")
    if pattern and not _match(pattern, value):
        add_error(errors, path, "value does not match the regex pattern")
        return
    if schema.get("maxLength") is not None and len(value) > int(schema["maxLength"]):
        add_error(
            errors, path, f"value may only be {_perl_num(schema['maxLength'])} characters long"
        )
        return
    if schema.get("minLength") is not None and len(value) < int(schema["minLength"]):
        add_error(
            errors, path, f"value must be at least {_perl_num(schema['minLength'])} characters long"
        )
        return
    if is_number(value):
        if schema.get("maximum") is not None and float(value) > float(schema["maximum"]):
            add_error(
                errors, path, f"value must have a maximum value of {_perl_num(schema['maximum'])}"
            )
            return
        if schema.get("minimum") is not None and float(value) < float(schema["minimum"]):
            add_error(
                errors, path, f"value must have a minimum value of {_perl_num(schema['minimum'])}"
            )
            return
    enum = schema.get("enum")
    if enum is not None and value not in [str(e) for e in enum]:
        # `if (my $ea = $schema->{enum})`: an undef (JSON null) enum checks nothing.
        add_error(
            errors,
            path,
            f"value '{value}' does not have a value in the enumeration"
            f" '{', '.join(map(str, enum))}'",
        )


def parse_boolean(value: str) -> str | None:
    """JSONSchema.pm, parse_boolean."""
    if re.search(r"^(1|on|yes|true)$", value, re.I):
        return "1"
    if re.search(r"^(0|off|no|false)$", value, re.I):
        return "0"
    return None


def split_list(text: str) -> list[str]:
    """pve-common ParseUtils.pm (Tools.pm on PVE 8), split_list."""
    if "\0" in text:
        return _perl_split(r"\0", text)
    text = re.sub(r"[,;]", " ", text)
    text = re.sub(r"^\s+", "", text)
    return _perl_split(r"\s+", text)


def _perl_split(sep: str, text: str) -> list[str]:
    """Perl's split: trailing empty fields are dropped."""
    parts = re.split(sep, text)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def parse_property_string(
    fmt: dict[str, Any] | str, data: str, path: str, ctx: Ctx
) -> dict[str, str]:
    """JSONSchema.pm, parse_property_string (additional properties never allowed)."""
    validator = None
    if isinstance(fmt, str):
        registered = _named_format(fmt, ctx)
        if registered is None:
            raise Die(f"unknown format: {fmt}\n")
        if not isinstance(registered, HashFormat):
            raise Die("parse_property_string only accepts hash based named formats\n")
        validator, fmt = registered.validator, registered.props(ctx)
    default_key: str | None = None
    res: dict[str, str] = {}
    for part in _perl_split(",", data):
        if re.search(r"^\s*$", part):
            continue
        pair = re.search(r"^([^=]+)=(.+)$", part)
        if pair:
            key, val = pair[1], pair[2]
            if res.get(key) is not None:
                raise Die(f"duplicate key in comma-separated list property: {key}\n")
            sub = fmt.get(key)
            alias = (sub or {}).get("alias")
            if alias:
                key_alias = sub.get("keyAlias")
                if key_alias:
                    if res.get(key_alias) is not None:
                        raise Die(f"key alias '{key_alias}' is already defined\n")
                    res[key_alias] = key
                key = alias
                sub = fmt.get(key)
                if ctx.major >= 9 and res.get(key) is not None:
                    # pve-common 9: "schema: parse_property_string: detect alias conflicts".
                    raise Die(f"key '{key}' is already defined (via alias)\n")
            if sub is None:
                raise Die(f"invalid key in comma-separated list property: {key}\n")
            if sub.get("type") == "boolean":
                val = parse_boolean(val) or val
            res[key] = val
        elif "=" not in part:
            if default_key:
                raise Die(f"duplicate key in comma-separated list property: {default_key}\n")
            for key, sub in fmt.items():
                if sub.get("default_key"):
                    default_key = key
                    if not _truthy(res.get(key)):
                        if ctx.major >= 9 and sub.get("type") == "boolean":
                            # pve-common 9: "property strings: consistently handle
                            # default_key of type boolean".
                            part = parse_boolean(part) or part
                        res[key] = part
                        break
                    raise Die(f"duplicate key in comma-separated list property: {key}\n")
            if not default_key:
                raise Die("value without key, but schema does not define a default key\n")
        else:
            raise Die("missing key in comma-separated list property\n")
    errors: dict[str, str] = {}
    check_object(path, fmt, res, 0, errors, ctx)
    if errors:
        raise Die("format error\n", errors)
    if validator is not None:
        validator(res, ctx)
    return res


def check_format(fmt: Any, value: str, path: str, ctx: Ctx) -> None:
    """JSONSchema.pm, check_format: a hash format is a property string; a named one may
    carry a `-list` (split_list, each element checked) or `-opt` (checked when true)
    suffix. A name with no port here raises NotPorted instead of passing."""
    if isinstance(fmt, dict):
        parse_property_string(fmt, value, path, ctx)
        return
    if fmt == "regex":
        return
    name, kind = re.search(r"^(.*?)(?:-(list|opt))?$", fmt).groups()  # type: ignore[union-attr]
    kind = kind or "none"
    registered = _named_format(name, ctx)
    if registered is None:
        raise NotPorted(f"format '{fmt}' has no port in tests/fakes/pve/schema.py")
    if kind != "none" and isinstance(registered, HashFormat):
        raise Die(f"'-{kind}' format must have code ref, not hash\n")
    if kind == "list":
        for element in split_list(value):  # empty lists are allowed
            registered(element, ctx)  # type: ignore[operator]
    elif kind == "opt":
        if _truthy(value):
            registered(value, ctx)  # type: ignore[operator]
    elif isinstance(registered, HashFormat):
        parse_property_string(name, value, path, ctx)
    else:
        registered(value, ctx)


# -- indexed parameters ---------------------------------------------------------------------
# The API dump writes net0..net31 as one `net[n]`; the real schema has each index. These are
# the counts of qemu-server (the same on PVE 8 and 9): QemuServer.pm $MAX_NETS (net, ipconfig),
# $MAX_SERIAL_PORTS, $MAX_PARALLEL_PORTS; Drive.pm $MAX_IDE_DISKS, $MAX_SCSI_DISKS,
# $MAX_VIRTIO_DISKS, $MAX_SATA_DISKS, $MAX_UNUSED_DISKS; Memory.pm $MAX_NUMA; PCI.pm
# $MAX_HOSTPCI_DEVICES; USB.pm $MAX_USB_DEVICES; Virtiofs.pm $MAX_VIRTIOFS. Other `[n]`
# names (containers, cluster links) accept any index.
INDEX_LIMITS = {
    "net": 32, "ipconfig": 32, "serial": 4, "parallel": 3, "ide": 4, "scsi": 31,
    "virtio": 16, "sata": 6, "unused": 256, "numa": 8, "hostpci": 16, "usb": 14,
    "virtiofs": 10,
}  # fmt: skip


def _expand_indexed(schema: dict[str, Any], value: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
    if not any(key.endswith("[n]") for key in schema):
        return schema
    out = {k: v for k, v in schema.items() if not k.endswith("[n]")}
    for key in value:
        found = re.search(r"^(.*\D)(0|[1-9]\d*)$", key)
        if key in out or not found or f"{found[1]}[n]" not in schema:
            continue
        limit = INDEX_LIMITS.get(found[1]) if ctx.qemu else None
        if limit is None or int(found[2]) < limit:
            out[key] = schema[f"{found[1]}[n]"]
    return out


# -- named formats --------------------------------------------------------------------------
class HashFormat:
    """A format registered as a hash (register_format with a HASH), optionally with a
    validator (pve-common 8.x+ format_validators); `props` gives the hash for a release."""

    def __init__(
        self,
        props: dict[str, Any] | Callable[[Ctx], dict[str, Any]],
        validator: Callable[[dict[str, str], Ctx], None] | None = None,
    ) -> None:
        self._props = props
        self.validator = validator

    def props(self, ctx: Ctx) -> dict[str, Any]:
        return self._props(ctx) if callable(self._props) else self._props


CodeFormat = Callable[[str, "Ctx"], None]
FORMATS: dict[str, HashFormat | CodeFormat] = {}


def _named_format(name: str, ctx: Ctx) -> HashFormat | CodeFormat | None:
    registered = FORMATS.get(name)
    if registered is None or name in ctx.absent:
        return None
    return registered


class Ctx:
    """What a check depends on: the PVE major release, and whether the endpoint is
    qemu-server's (for the index limits)."""

    def __init__(self, major: int, qemu: bool = False) -> None:
        self.major = major
        self.qemu = qemu
        # Formats a release does not register (qemu-server 9 added Intel TDX).
        self.absent = {"pve-qemu-tdx-fmt"} if major < 9 else set()


def _code(name: str) -> Callable[[CodeFormat], CodeFormat]:
    def register(check: CodeFormat) -> CodeFormat:
        FORMATS[name] = check
        return check

    return register


def _die_unless(ok: bool, text: str) -> None:
    if not ok:
        raise Die(text)


# pve-common src/PVE/JSONSchema.pm ---------------------------------------------------------
FORMATS["string"] = lambda value, ctx: None  # register_format('string', sub { })

_IPV4OCTET = r"(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
IPV4RE = rf"(?:(?:{_IPV4OCTET}\.){{3}}{_IPV4OCTET})"  # ParseUtils.pm $IPV4RE
_H16 = r"(?:[0-9a-fA-F]{1,4})"
_LS32 = rf"(?:(?:{IPV4RE}|{_H16}:{_H16}))"
IPV6RE = (  # ParseUtils.pm $IPV6RE
    "(?:"
    rf"(?:(?:(?:{_H16}:){{6}}){_LS32})|"
    rf"(?:(?:::(?:{_H16}:){{5}}){_LS32})|"
    rf"(?:(?:(?:{_H16})?::(?:{_H16}:){{4}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,3}}{_H16})?::(?:{_H16}:){{1}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,4}}{_H16})?::){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,5}}{_H16})?::){_H16})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,6}}{_H16})?::)))"
)
EMAIL_USER_RE = r"[\w\+\-\~]+(\.[\w\+\-\~]+)*"  # ParseUtils.pm $EMAIL_USER_RE
EMAIL_RE = rf"{EMAIL_USER_RE}@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*"  # ParseUtils.pm $EMAIL_RE


def _re(pattern: str, value: str, flags: int = 0) -> bool:
    return re.search(pattern, value, flags) is not None


@_code("urlencoded")
def pve_verify_urlencoded(value: str, ctx: Ctx) -> None:
    _die_unless(_re(r"^[-%a-zA-Z0-9_.!~*'()]*$", value), f"invalid urlencoded string: {value}\n")


@_code("pve-configid")
def pve_verify_configid(value: str, ctx: Ctx) -> None:
    _die_unless(_re(r"^[a-z][a-z0-9_-]+$", value, re.I), f"invalid configuration ID '{value}'\n")


def parse_id(value: str, kind: str, ctx: Ctx) -> None:
    """JSONSchema.pm, parse_id (the length check is pve-common 9's, fix #7077)."""
    if ctx.major >= 9 and len(value) < 2:
        raise Die(f"{kind} ID '{value}' cannot be shorter than 2 characters\n")
    _die_unless(
        _re(r"^[a-z][a-z0-9\-\_\.]*[a-z0-9]$", value, re.I),
        f"{kind} ID '{value}' contains illegal characters\n",
    )


FORMATS["pve-storage-id"] = lambda value, ctx: parse_id(value, "storage", ctx)  # parse_storage_id


@_code("pve-bridge-id")
def parse_bridge_id(value: str, ctx: Ctx) -> None:
    _die_unless(_re(r"^[-_.\w\d]+$", value), f"invalid bridge ID '{value}'\n")


@_code("pve-vmid")
def pve_verify_vmid(value: str, ctx: Ctx) -> None:
    _die_unless(_re(r"^[1-9][0-9]{2,8}$", value), "value does not look like a valid VM ID\n")


@_code("pve-node")
def pve_verify_node_name(value: str, ctx: Ctx) -> None:
    _die_unless(
        _re(r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$", value),
        "value does not look like a valid node name\n",
    )


def parse_idmap(idmap: str, idformat: str, ctx: Ctx) -> None:
    """JSONSchema.pm, parse_idmap."""
    if not _truthy(idmap):
        return
    identity, default, sources = False, False, set()
    for entry in split_list(idmap):
        pair = re.search(r"^([^:]+):([^:]+)$", entry)
        if entry == "1":
            identity = True
        elif pair:
            try:
                check_format(idformat, pair[1], "", ctx)
                check_format(idformat, pair[2], "", ctx)
            except Die as exc:
                raise Die(f"entry '{entry}' contains invalid ID - {exc}\n") from None
            _die_unless(pair[1] not in sources, f"duplicate mapping for source '{pair[1]}'\n")
            sources.add(pair[1])
        else:
            try:
                check_format(idformat, entry, "", ctx)
            except Die as exc:
                raise Die(f"entry '{entry}' contains invalid ID - {exc}\n") from None
            _die_unless(not default, "default target ID can only be provided once\n")
            default = True
    _die_unless(
        not (identity and (default or sources)),
        "identity mapping cannot be combined with other mappings\n",
    )


def _verify_idpair(value: str, ctx: Ctx, idformat: str) -> None:
    """JSONSchema.pm, $verify_idpair: re-dies with one more newline."""
    try:
        parse_idmap(value, idformat, ctx)
    except Die as exc:
        raise Die(f"{exc}\n") from None


FORMATS["storage-pair"] = lambda v, ctx: _verify_idpair(v, ctx, "pve-storage-id")
FORMATS["bridge-pair"] = lambda v, ctx: _verify_idpair(v, ctx, "pve-bridge-id")


@_code("mac-addr")
def pve_verify_mac_addr(value: str, ctx: Ctx) -> None:
    _die_unless(
        _re(r"^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$", value, re.I),
        "value does not look like a valid unicast MAC address\n",
    )


@_code("ipv4")
def pve_verify_ipv4(value: str, ctx: Ctx) -> None:
    _die_unless(_re(rf"^(?:{IPV4RE})$", value), "value does not look like a valid IPv4 address\n")


@_code("ipv6")
def pve_verify_ipv6(value: str, ctx: Ctx) -> None:
    _die_unless(_re(rf"^(?:{IPV6RE})$", value), "value does not look like a valid IPv6 address\n")


@_code("ip")
def pve_verify_ip(value: str, ctx: Ctx) -> None:
    _die_unless(
        _re(rf"^(?:(?:{IPV4RE})|(?:{IPV6RE}))$", value),
        "value does not look like a valid IP address\n",
    )


def _cidr(value: str, ip_re: str, top: int) -> bool:
    found = re.search(rf"^(?:{ip_re})(?:/(\d+))$", value)
    return found is not None and 7 < int(found[1]) <= top


@_code("CIDRv6")
def pve_verify_cidrv6(value: str, ctx: Ctx) -> None:
    _die_unless(_cidr(value, IPV6RE, 128), "value does not look like a valid IPv6 CIDR network\n")


@_code("CIDRv4")
def pve_verify_cidrv4(value: str, ctx: Ctx) -> None:
    _die_unless(_cidr(value, IPV4RE, 32), "value does not look like a valid IPv4 CIDR network\n")


@_code("CIDR")
def pve_verify_cidr(value: str, ctx: Ctx) -> None:
    _die_unless(
        _cidr(value, IPV4RE, 32) or _cidr(value, IPV6RE, 128),
        "value does not look like a valid CIDR network\n",
    )


@_code("pve-ipv4-config")
def pve_verify_ipv4_config(value: str, ctx: Ctx) -> None:
    _die_unless(
        _re(r"^(?:dhcp|manual)$", value) or _cidr(value, IPV4RE, 32),
        "value does not look like a valid ipv4 network configuration\n",
    )


@_code("pve-ipv6-config")
def pve_verify_ipv6_config(value: str, ctx: Ctx) -> None:
    _die_unless(
        _re(r"^(?:auto|dhcp|manual)$", value) or _cidr(value, IPV6RE, 128),
        "value does not look like a valid ipv6 network configuration\n",
    )


@_code("email")
def pve_verify_email(value: str, ctx: Ctx) -> None:
    _die_unless(_re(rf"^{EMAIL_RE}$", value), "value does not look like a valid email address\n")


_DNS_NAME = r"([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)"


@_code("dns-name")
def pve_verify_dns_name(value: str, ctx: Ctx) -> None:
    _die_unless(
        _re(rf"^({_DNS_NAME}\.)*{_DNS_NAME}$", value),
        "value does not look like a valid DNS name\n",
    )


@_code("address")
def pve_verify_address(value: str, ctx: Ctx) -> None:
    ok = _re(rf"^(?:(?:{IPV4RE})|(?:{IPV6RE}))$", value) or _re(
        rf"^({_DNS_NAME}\.)*{_DNS_NAME}$", value
    )
    _die_unless(ok, f"value does not look like a valid address: {value}\n")


def parse_size(value: str) -> int | None:
    """JSONSchema.pm, parse_size (the KiB..TiB suffixes are in both 8.4's and 9's)."""
    found = re.search(r"^(\d+(\.\d+)?)([KMGT](?:iB)?)?$", value)
    if not found:
        return None
    power = " KMGT".index(found[3][0]) if found[3] else 0
    return int(float(found[1]) * 1024**power)


@_code("disk-size")
def pve_verify_disk_size(value: str, ctx: Ctx) -> None:
    _die_unless(
        parse_size(value) is not None, f"value does not look like a valid disk size: {value}\n"
    )


@_code("pve-startup-order")
def pve_verify_startup_order(value: str, ctx: Ctx) -> None:
    """pve_verify_startup_order over pve_parse_startup_order (undef for a false value)."""
    ok = _truthy(value) and all(
        _re(r"^\s*$", p) or _re(r"^(order=)?(\d+)$", p) or _re(r"^(up|down)=(\d+)$", p)
        for p in _perl_split(",", value)
    )
    _die_unless(ok, "unable to parse startup options\n")


@_code("pve-tag")
def pve_verify_tag(value: str, ctx: Ctx) -> None:
    _die_unless(_re(r"^[a-z0-9_][a-z0-9_\-\+\.]*$", value, re.I), "invalid characters in tag\n")


# pve-storage src/PVE/Storage/Plugin.pm ----------------------------------------------------
@_code("pve-volume-id")
def parse_volume_id(value: str, ctx: Ctx) -> None:
    _die_unless(
        _re(r"^([a-z][a-z0-9\-\_\.]*[a-z0-9]):(.+)$", value, re.I),
        f"unable to parse volume ID '{value}'\n",
    )


# DirPlugin.pm, plugindata: the content types of 'dir', which "includes all other types".
DIR_CONTENT = {"images", "rootdir", "vztmpl", "iso", "backup", "snippets", "none", "import"}


@_code("pve-storage-content")
def verify_content(value: str, ctx: Ctx) -> None:
    _die_unless(value == "import" or value in DIR_CONTENT, f"invalid content type '{value}'\n")


# pve-access-control src/PVE/AccessControl.pm ----------------------------------------------
@_code("pve-poolid")
def verify_poolname(value: str, ctx: Ctx) -> None:
    _die_unless(
        len(_perl_split("/", value)) <= 3,
        f"pool name '{value}' nested too deeply (max levels = 3)\n",
    )
    _die_unless(
        _re(r"^[A-Za-z0-9\.\-_]+(?:/[A-Za-z0-9\.\-_]+){0,2}$", value),
        f"pool name '{value}' contains invalid characters\n",
    )


# qemu-server src/PVE/QemuServer.pm, QemuServer/Drive.pm ------------------------------------
def _drive_names() -> set[str]:
    """Drive.pm, valid_drive_names (is_valid_drivename: these, never unusedN)."""
    limits = {"ide": 4, "scsi": 31, "virtio": 16, "sata": 6}
    return {f"{k}{i}" for k, n in limits.items() for i in range(n)} | {"efidisk0", "tpmstate0"}


@_code("pve-volume-id-or-absolute-path")
def verify_volume_id_or_absolute_path(value: str, ctx: Ctx) -> None:
    if not value.startswith("/"):
        check_format("pve-volume-id", value, "", ctx)


@_code("pve-volume-id-or-qm-path")
def verify_volume_id_or_qm_path(value: str, ctx: Ctx) -> None:
    if value not in ("none", "cdrom"):
        verify_volume_id_or_absolute_path(value, ctx)


@_code("pve-qm-bootdisk")
def verify_bootdisk(value: str, ctx: Ctx) -> None:
    _die_unless(value in _drive_names(), f"invalid boot disk '{value}'\n")


@_code("pve-qm-bootdev")
def verify_bootdev(value: str, ctx: Ctx) -> None:
    """QemuServer.pm, verify_bootdev: a drive but the EFI/TPM ones, or an existing
    netN/usbN/hostpciN option."""
    if value in _drive_names() and not _re(r"^(efidisk|tpmstate)", value):
        return
    for base in ("net", "usb", "hostpci"):
        found = re.search(rf"^{base}(\d+)$", value)
        if found and found[1] == str(int(found[1])) and int(found[1]) < INDEX_LIMITS[base]:
            return
    raise Die(f"invalid boot device '{value}'\n")


@_code("pve-hotplug-features")
def pve_verify_hotplug_features(value: str, ctx: Ctx) -> None:
    """QemuServer.pm, parse_hotplug_features ('1' is the default 'network,disk,usb')."""
    if value in ("0", "1"):
        return
    for feature in split_list(value):
        _die_unless(
            _re(r"^(network|disk|cpu|memory|usb|cloudinit)$", feature),
            f"invalid hotplug feature '{feature}'\n",
        )


@_code("pve-cpuset")
def pve_verify_cpuset(value: str, ctx: Ctx) -> None:
    """QemuServer.pm, pve_verify_cpuset over pve-common CpuSet.pm, parse_cpuset."""
    for part in _perl_split(",", value):
        found = re.search(r"^\s*(\d+)(?:-(\d+))?\s*$", part)
        if not found or (found[2] is not None and int(found[2]) < int(found[1])):
            raise Die("unable to parse cpuset option\n")


_OPT_STR = {"type": "string", "optional": 1}
# QemuServer.pm, $watchdog_fmt
FORMATS["pve-qm-watchdog"] = HashFormat({
    "model": {"default_key": 1, "type": "string", "enum": ["i6300esb", "ib700"], "optional": 1},
    "action": {
        "type": "string", "optional": 1,
        "enum": ["reset", "shutdown", "poweroff", "pause", "debug", "none"],
    },
})  # fmt: skip
# QemuServer.pm, $cicustom_fmt
FORMATS["pve-qm-cicustom"] = HashFormat(
    {k: {**_OPT_STR, "format": "pve-volume-id"} for k in ("meta", "network", "user", "vendor")}
)
# QemuServer.pm, $boot_fmt
FORMATS["pve-qm-boot"] = HashFormat({
    "legacy": {**_OPT_STR, "default_key": 1, "pattern": "[acdn]{1,4}"},
    "order": {**_OPT_STR, "format": "pve-qm-bootdev-list"},
})  # fmt: skip
# QemuServer.pm, $smbios1_fmt
_B64 = {**_OPT_STR, "pattern": r"[A-Za-z0-9+\/]+={0,2}"}
FORMATS["pve-qm-smbios1"] = HashFormat({
    "uuid": {**_OPT_STR, "pattern": "[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}"},
    **{k: _B64 for k in ("version", "serial", "manufacturer", "product", "sku", "family")},
    "base64": {"type": "boolean", "optional": 1},
})  # fmt: skip
# QemuServer/Network.pm (QemuServer.pm on PVE 8), $ipconfig_fmt
FORMATS["pve-qm-ipconfig"] = HashFormat({
    "ip": {**_OPT_STR, "format": "pve-ipv4-config"},
    "gw": {**_OPT_STR, "format": "ipv4", "requires": "ip"},
    "ip6": {**_OPT_STR, "format": "pve-ipv6-config"},
    "gw6": {**_OPT_STR, "format": "ipv6", "requires": "ip6"},
})  # fmt: skip
# QemuServer/RNG.pm, $rng_fmt
FORMATS["pve-qm-rng"] = HashFormat({
    "source": {
        "type": "string", "default_key": 1,
        "enum": ["/dev/urandom", "/dev/random", "/dev/hwrng"],
    },
    "max_bytes": {"type": "integer", "optional": 1},
    "period": {"type": "integer", "optional": 1},
})  # fmt: skip
# QemuServer/CPUConfig.pm, $sev_fmt and (qemu-server 9) $tdx_fmt
_OPT_BOOL = {"type": "boolean", "optional": 1}
FORMATS["pve-qemu-sev-fmt"] = HashFormat({
    "type": {"type": "string", "default_key": 1, "enum": ["std", "es", "snp"], "maxLength": 3},
    **{k: _OPT_BOOL for k in ("no-debug", "no-key-sharing", "allow-smt", "kernel-hashes")},
})  # fmt: skip
FORMATS["pve-qemu-tdx-fmt"] = HashFormat({
    "type": {"type": "string", "default_key": 1, "enum": ["tdx"]},
    "attestation": {"type": "boolean"},
    "vsock-cid": {"type": "integer", "minimum": 2, "optional": 1},
    "vsock-port": {"type": "integer", "minimum": 0, "optional": 1},
})  # fmt: skip


@_code("pve-phys-bits")
def parse_phys_bits(value: str, ctx: Ctx) -> None:
    """QemuServer/CPUConfig.pm, parse_phys_bits."""
    ok = _re(r"^(host|\d{1,2})$", value) and (value == "host" or 8 <= int(value) <= 64)
    _die_unless(bool(ok), "value must be an integer between 8 and 64 or 'host'\n")


_CPU_FLAG_ANY = r"([+-])([a-zA-Z0-9\-_\.]+)"  # CPUFlags.pm (CPUConfig.pm on 8), cpu_flag_any_re


def _cpu_fmt(ctx: Ctx) -> dict[str, Any]:
    """QemuServer/CPUConfig.pm, $cpu_fmt. `reported-model`'s enum (the host's QEMU model
    list) is not ported: any value passes the schema (validate_vm_cpu_conf refuses it)."""
    fmt: dict[str, Any] = {
        "cputype": {**_OPT_STR, "default_key": 1},
        "reported-model": _OPT_STR,
        "hidden": _OPT_BOOL,
        "hv-vendor-id": {**_OPT_STR, "pattern": "(?^:[a-zA-Z0-9]{1,12})"},
        "flags": {**_OPT_STR, "pattern": f"(?^:{_CPU_FLAG_ANY}(;{_CPU_FLAG_ANY})*)"},
        "phys-bits": {**_OPT_STR, "format": "pve-phys-bits"},
    }
    if ctx.major >= 9:
        fmt["guest-phys-bits"] = {"type": "integer", "minimum": 32, "maximum": 64, "optional": 1}
        fmt["level"] = {"type": "integer", "minimum": 0, "maximum": 4294967295, "optional": 1}
    return fmt


def validate_vm_cpu_conf(cpu: dict[str, str], ctx: Ctx) -> None:
    """QemuServer/CPUConfig.pm, validate_cpu_conf and validate_vm_cpu_conf. The fake has no
    custom models (cpu-models.conf), so every custom- type is unknown. Not ported: the
    check of a built-in type against the host's QEMU model list, and the VM-specific
    subset of CPU flags."""
    _die_unless(_truthy(cpu.get("cputype")), "CPU is missing cputype\n")
    cputype = cpu["cputype"]
    if cputype.startswith("custom-"):
        raise Die(f"Custom cputype '{cputype.removeprefix('custom-')}' not found\n")
    if cpu.get("reported-model") is not None:
        raise Die("Property 'reported-model' not allowed in VM-specific CPU config.\n")


FORMATS["pve-vm-cpu-conf"] = HashFormat(_cpu_fmt, validate_vm_cpu_conf)


def _ide_fmt(ctx: Ctx) -> dict[str, Any]:
    """Drive.pm, $ide_fmt: the format of the ideN options, which the API dump carries."""
    spec = spec_for("POST", "/nodes/{node}/qemu/{vmid}/config", ctx.major) or {}
    fmt = (spec.get("properties") or {}).get("ide[n]", {}).get("format")
    if not isinstance(fmt, dict):
        raise NotPorted("pve-qm-ide needs the upstream API schema")
    return fmt


FORMATS["pve-qm-ide"] = HashFormat(_ide_fmt)
# Not ported (raise NotPorted when met): pve-qm-hostpci (QemuServer/PCI.pm), and every other
# named format none of the endpoints in tests/proxmox/pve_endpoints.py carries.


# -- the entry point ------------------------------------------------------------------------
def _normalize_legacy(params: dict[str, str], props: dict[str, Any]) -> dict[str, Value]:
    """pve-common RESTHandler.pm, $normalize_legacy_param_formats: an array given to a
    string '-list' format is joined by ','; a true scalar for an array parameter becomes a
    one-element array. The fake carries repeated form keys NUL-joined (server._joined)."""
    out: dict[str, Value] = {}
    for key, raw in params.items():
        value: Value = raw.split("\0") if "\0" in raw else raw
        prop = props.get(key)
        if prop is None:
            found = re.search(r"^(.*\D)(\d+)$", key)
            prop = props.get(f"{found[1]}[n]") if found else None
        truthy = isinstance(value, list) or _truthy(value)
        if prop is not None and truthy:
            fmt = prop.get("format")
            listed = isinstance(fmt, str) and fmt.endswith("-list")
            if isinstance(value, list) and prop.get("type") == "string" and listed:
                value = ",".join(value)
            elif isinstance(value, str) and prop.get("type") == "array":
                value = [value]
        out[key] = value
    return out


def validate(method: str, template: str, params: dict[str, str], major: int = 9) -> dict[str, str]:
    """PVE's 400 errors for these parameters: {path: message}; empty when they pass.
    RESTHandler.pm, handle: normalize the legacy forms, then JSONSchema.pm, validate."""
    spec = spec_for(method, template, major)
    if spec is None:
        return {}
    props: dict[str, Any] = spec.get("properties") or {}
    instance = _normalize_legacy(params, props)
    errors: dict[str, str] = {}
    ctx = Ctx(major, qemu=template.startswith("/nodes/{node}/qemu"))
    check_prop(
        instance,
        {**spec, "additionalProperties": spec.get("additionalProperties")},
        "",
        errors,
        ctx,
    )
    return errors
