"""The project's one way to read and write YAML (ruamel.yaml, configured once)."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.representer import SafeRepresenter

from generator.errors import ConfigError

# Consumers (cloud-init's PyYAML, Kubernetes' go-yaml) read YAML 1.1, where these plain
# scalars are booleans, nulls or numbers; ruamel writes YAML 1.2, so quote them ourselves.
_YAML11_AMBIGUOUS = re.compile(
    r"^(?:y|yes|n|no|true|false|on|off|null|~|"
    r"[-+]?(?:\d[\d_]*)?(?:\.\d*)?(?:[eE][-+]?\d+)?|"
    r"[-+]?\d[\d_]*(?::[0-5]?\d)+(?:\.\d*)?|[-+]?\.(?:inf|nan)|0x[0-9a-f_]+|0b[01_]+)$",
    re.IGNORECASE,
)


def is_yaml11_ambiguous(text: str) -> bool:
    """True when a YAML 1.1 reader would not take this plain scalar as a string."""
    return _YAML11_AMBIGUOUS.match(text) is not None


def _represent_str(representer: Any, data: str) -> Any:
    if "\n" in data and all(c.isprintable() or c == "\n" for c in data):
        return representer.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    style = "'" if _YAML11_AMBIGUOUS.match(data) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style=style)


class _Representer(SafeRepresenter):
    """Our string style on a class of our own: add_representer on ruamel's SafeRepresenter
    would change every safe dumper in the process, sops's included."""


_Representer.add_representer(str, _represent_str)


def block_dumper(
    representer: type[SafeRepresenter], indent: tuple[int, int, int], width: int
) -> YAML:
    """A safe block-style dumper that keeps key order; indent is (mapping, sequence, offset)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = representer
    # Set before the representer exists: it copies the setting once, when first made.
    yaml.default_flow_style = False
    yaml.representer.sort_base_mapping_type_on_output = False
    # A value used twice (a shared list) must be written twice, not as an &anchor.
    yaml.representer.ignore_aliases = lambda data: True
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.width = width
    return yaml


def _safe_dumper() -> YAML:
    return block_dumper(_Representer, (2, 4, 2), 4096)


def load_text(text: str, source: str) -> Any:
    """Parse YAML 1.2 into plain data, turning syntax errors into a located ConfigError."""
    try:
        return YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as exc:
        raise ConfigError([syntax_problem(text, exc)], source=source) from None
    except YAMLError as exc:
        flat = " ".join(str(exc).split())
        raise ConfigError(
            [f"(top level): not valid YAML: {flat} (fix the YAML syntax)"], source=source
        ) from None


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _unclosed_quote(text: str, before_line: int) -> tuple[int, int, str] | None:
    """The first value up to line `before_line` (0-based) that opens a quote and does not
    close it on its line: (line, column, quote), 0-based. Config values are one-liners, so
    such a quote is almost surely the mistake, wherever the parser noticed it."""
    opener = re.compile(r"""^(\s*(?:-\s+)*(?:[^\s#'"][^#]*?:\s+|-\s+)?)(["'])""")
    for number, line in enumerate(text.splitlines()[: before_line + 1]):
        found = opener.match(line)
        if not found:
            continue
        quote, rest = found.group(2), line[found.end() :]
        closed = (
            re.search(r'(?<!\\)"', rest) if quote == '"' else re.search("'", rest.replace("''", ""))
        )
        if not closed:
            return number, len(found.group(1)), quote
    return None


_PLAIN_PROBLEMS: tuple[tuple[str, str], ...] = (
    ("cannot start any token", "a tab character: YAML indents with spaces only (use spaces)"),
    (
        "mapping values are not allowed here",
        "a second ': ' in one value (quote the whole value, or start a new line for the key)",
    ),
    (
        "found undefined alias",
        "an alias (*name) with no anchor (&name) before it"
        " (quote the value if the * is meant literally)",
    ),
    (
        "but found '<scalar>'",
        "unexpected text here (quote the whole value, or line it up with the lines above)",
    ),
    ("but found '-'", "a list item where a key was expected (indent it under its key)"),
    (
        "expected <block end>",
        "this line does not line up with the lines above it (indent keys of one mapping"
        " by the same spaces, and quote a value that holds ': ' or starts with a quote)",
    ),
)


def syntax_problem(text: str, exc: MarkedYAMLError) -> str:
    """A parser error in plain words, at the line where the mistake most likely is."""
    problem, context = exc.problem or "", exc.context or ""
    mark, opened = exc.problem_mark, exc.context_mark
    if "quoted scalar" in context and opened is not None:
        quote = text.splitlines()[opened.line][opened.column : opened.column + 1] or '"'
        return f"{_at(opened)}: this quoted value is never closed (add the closing {quote})"
    if mark is not None:
        unclosed = _unclosed_quote(text, mark.line)
        if unclosed is not None and unclosed[0] < mark.line:
            line, column, quote = unclosed
            return (
                f"line {line + 1}, column {column + 1}: this quoted value is never closed"
                f" (add the closing {quote} at the end of the line)"
            )
    if "flow sequence" in context or "flow mapping" in context:
        close, kind = ("]", "list") if "sequence" in context else ("}", "mapping")
        if opened is not None:
            return (
                f"{_at(opened)}: this {kind} is never closed (add the closing {close},"
                " or put a comma between its items)"
            )
    where = _at(mark) if mark is not None else "unknown place"
    duplicate = re.match(r'found duplicate key "(.*?)" with value', problem)
    if duplicate:
        return f"{where}: the key {duplicate.group(1)} appears twice in one mapping (keep one)"
    for needle, plain in _PLAIN_PROBLEMS:
        if needle in problem:
            return f"{where}: {plain}"
    return f"{where}: {problem} (fix the YAML syntax there)"


_DUMPERS = threading.local()


def _dumper() -> YAML:
    """One configured dumper per thread: setting one up costs about as much as a small dump."""
    dumper: YAML | None = getattr(_DUMPERS, "yaml", None)
    if dumper is None:
        dumper = _DUMPERS.yaml = _safe_dumper()
    return dumper


def dump_text(data: Any) -> str:
    """Deterministic block-style YAML for plain data (dicts keep insertion order)."""
    stream = io.StringIO()
    _dumper().dump(data, stream)
    return stream.getvalue()


def load_all_plain(text: str) -> list[Any]:
    """Plain-data parse of a (multi-document) YAML text; used to re-read rendered output."""
    return [doc for doc in YAML(typ="safe", pure=True).load_all(text) if doc is not None]


def to_plain(node: Any) -> Any:
    """Turn ruamel's commented containers into plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool | int | float) or node is None:
        return node
    if isinstance(node, str):
        return str(node)
    return node


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)  # as `new` and render write lists
    return yaml


def _edited(text: str, mapping_path: tuple[str, ...], change: Any) -> str:
    yaml = _round_trip()
    document = yaml.load(text)
    target = document
    for name in mapping_path:
        target = target[name]
    change(target)
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def set_key(text: str, mapping_path: tuple[str, ...], key: str, value: Any, comment: str) -> str:
    """`text` with mapping_path's `key` set to `value`, every other line and comment kept as
    the user wrote them; a new key goes at the end of its mapping with `comment` beside it."""

    def change(target: Any) -> None:
        is_new = key not in target
        target[key] = value
        if is_new and comment:
            target.yaml_add_eol_comment(comment, key)

    return _edited(text, mapping_path, change)


def drop_key(text: str, mapping_path: tuple[str, ...], key: str) -> str:
    """`text` without mapping_path's `key` (and the comment on its line), the rest kept."""
    return _edited(text, mapping_path, lambda target: target.pop(key, None))


def set_item_keys(
    text: str, seq_key: str, match: tuple[str, Any], values: Mapping[str, Any], comment: str
) -> str:
    """`text` with the item of the top-level list `seq_key` whose `match[0]` is `match[1]`
    given `values`, `comment` beside the first of them; every other line kept."""

    def change(document: Any) -> None:
        item = next(i for i in document[seq_key] if i.get(match[0]) == match[1])
        for key, value in values.items():
            item[key] = value
        if comment and values:
            item.yaml_add_eol_comment(comment, next(iter(values)))

    return _edited(text, (), change)
