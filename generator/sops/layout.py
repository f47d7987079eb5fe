"""YAML as sops writes and reads it: go-yaml's string styles at sops's indent of 4, the
`sops:` metadata block, and a loader that keeps timestamps as text."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.representer import SafeRepresenter

from generator.yamlio import block_dumper, is_yaml11_ambiguous


def _represent_str(representer: Any, data: str) -> Any:
    # go-yaml (sops's writer) uses a literal block for multi-line text and quotes what a
    # YAML 1.1 reader would take for another type.
    if "\n" in data and all(c.isprintable() or c == "\n" for c in data):
        return representer.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    style = '"' if is_yaml11_ambiguous(data) or _looks_like_time(data) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_TIMESTAMP = re.compile(r"^\d{4}-\d\d?-\d\d?(?:[Tt ].*)?$")


def _looks_like_time(text: str) -> bool:
    return _TIMESTAMP.match(text) is not None


class _Representer(SafeRepresenter):
    """go-yaml's string styles on a class of our own, so yamlio's dumpers keep theirs."""


_Representer.add_representer(str, _represent_str)


def dump(data: Any) -> str:
    """Block YAML with go-yaml's layout at sops's indent of 4, keys in the given order."""
    yaml = block_dumper(_Representer, (4, 6, 4), 1 << 30)
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def dump_metadata(metadata: Mapping[str, Any]) -> str:
    """The `sops:` block, keys sorted as sops 3.13 writes them. Written by hand where go-yaml's
    layout differs from ruamel's: the armored key's lines sit 2 columns right of its key."""
    lines = ["sops:"]
    for name, value in sorted(metadata.items()):
        if name == "age":
            lines.append("    age:")
            for stanza in value:
                armor = stanza["enc"]
                style = "|" if armor.endswith("\n") else "|-"
                lines.append(f"        - enc: {style}")
                lines.extend(f"            {line}" for line in armor.splitlines())
                lines.append(f"          recipient: {stanza['recipient']}")
        else:
            lines.extend("    " + line for line in dump({name: value}).splitlines())
    return "\n".join(lines) + "\n"


class _Constructor(SafeConstructor):
    """Timestamps as text on a class of our own: SafeConstructor's table is process-wide."""


_Constructor.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def loader() -> YAML:
    """A safe loader that keeps timestamp-like scalars as the text they are, as go-yaml does
    when decoding into an interface (so the MAC sees the same bytes)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _Constructor
    return yaml
