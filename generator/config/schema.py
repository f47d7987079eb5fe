"""cluster.yaml's schema (cluster_schema.yaml): pykwalify's validation, and the rewording of
its messages into ones a user can act on (the field's path, what was expected, how to fix it).
"""

from __future__ import annotations

import copy
import difflib
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any

from generator import yamlio

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


@cache
def rules() -> dict[str, Any]:
    """The schema as plain data; read once, since normalising and every message consult it."""
    loaded = yamlio.to_plain(yamlio.load_text(SCHEMA_PATH.read_text(), str(SCHEMA_PATH)))
    assert isinstance(loaded, dict)
    return loaded


def schema_problems(data: Any) -> list[str]:
    """Every schema violation in `data`, reworded for the user, sorted; [] when it passes."""
    return schema_report(data)[0]


def schema_report(data: Any) -> tuple[list[str], list[tuple[str, ...]]]:
    """The schema problems (as schema_problems), and where each refused value sits: the path
    of every unknown key and every value of the wrong type, shape, range or choice, as path
    parts ("nodes", "0", "ip"). A missing key has no place, so it is not listed."""
    from pykwalify.core import Core  # imported late: only validating commands need it

    logging.getLogger("pykwalify").setLevel(logging.CRITICAL)
    if data is None:
        return ["(top level): the file is empty (fill it in; 'homelab-gen new' writes one)"], []
    core = Core(source_data=data, schema_data=copy.deepcopy(rules()))
    core.validate(raise_exception=False)
    entries = core.validation_errors_exceptions
    places = [
        (*_parts(entry.path), str(entry.key))
        if entry.msg.startswith("Key '{key}' was not defined")
        else _parts(entry.path)
        for entry in entries
        if not entry.msg.startswith("Cannot find required key")
    ]
    return _reworded(entries), places


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in str(path).split("/") if p)


def _reworded(entries: list[Any]) -> list[str]:
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
    # A key with a line break or other control character is shown escaped, on one line.
    name = str(key) if str(key).isprintable() else repr(str(key))
    return f"{_field(path, name)}: unknown key ({hint})"


def _known_keys(path: str) -> list[str]:
    rule: dict[str, Any] = rules()
    for part in [p for p in path.split("/") if p]:
        if part.isdigit() and "sequence" in rule:
            rule = rule["sequence"][0]
        else:
            rule = rule.get("mapping", {}).get(part, {})
    return [k for k in rule.get("mapping", {}) if not k.startswith("regex;")]
