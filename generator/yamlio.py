"""The project's one way to read and write YAML (ruamel.yaml, configured once)."""

from __future__ import annotations

import functools
import io
import re
import threading
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.representer import SafeRepresenter
from ruamel.yaml.resolver import implicit_resolvers

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


_WIDTH = 4096


def _safe_dumper() -> YAML:
    return block_dumper(_Representer, (2, 4, 2), _WIDTH)


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
    fast = _plain_dump(data)
    return _ruamel_dump(data) if fast is None else fast


def _ruamel_dump(data: Any) -> str:
    stream = io.StringIO()
    _dumper().dump(data, stream)
    return stream.getvalue()


# A render dumps ~70 documents, and ruamel's pure-Python emitter was most of its work (69 of
# 80 ms at 53 nodes). Nearly all of that data is dicts, lists and one-line strings, so that
# shape is laid out here exactly as _safe_dumper lays it out. Ruamel stays the reference: a
# string these rules are unsure of is written by ruamel alone, and any other value sends the
# whole document to ruamel, so dump_text's output is ruamel's, byte for byte
# (tests/test_yamlio_fast.py compares the two).


class _NotPlain(Exception):
    """The data holds something this writer leaves to ruamel."""


# ASCII with no indicator first, no quote or '#', no ': ' and no trailing ' ' or ':': ruamel
# writes such a string plain (as a key too) unless a resolver would read it as another type.
_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./=@,()+ :-]*\Z")
# The YAML 1.2 resolvers ruamel's emitter asks: a plain scalar that matches one (a date, 0o17)
# is not a string to a reader, so ruamel quotes it.
_RESOLVERS_12 = tuple(regexp for versions, _, regexp, _ in implicit_resolvers if (1, 2) in versions)
# Ruamel writes a key as '? key' from Emitter.MAX_SIMPLE_KEY_LENGTH on, counting its '!!str' tag.
_MAX_SIMPLE_KEY = 128 - len("!!str")


@functools.lru_cache(maxsize=4096)
def _simple_string(text: str) -> str | None:
    """`text` as ruamel writes it as a key or value, when that follows from the rules above."""
    if len(text) >= _MAX_SIMPLE_KEY or not _PLAIN.match(text) or text[-1] in " :":
        return None
    if ": " in text or text.startswith("..."):
        return None
    if _YAML11_AMBIGUOUS.match(text):
        return f"'{text}'"  # _represent_str's single quotes; the text holds none to double
    if any(regexp.match(text) for regexp in _RESOLVERS_12):
        return None
    return text


@functools.lru_cache(maxsize=4096)
def _one_line_string(text: str) -> str | None:
    """`text` as ruamel writes it as a value, when that is one line."""
    simple = _simple_string(text)
    if simple is not None:
        return simple
    written = _ruamel_dump({"k": text})
    # splitlines also sees the breaks YAML knows beyond '\n' (U+2028, U+0085...), after which
    # ruamel indents by the context this one-key mapping does not have.
    if not written.startswith("k: ") or len(written.splitlines()) != 1:
        return None
    return written[3:-1]


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is str:
        text = _one_line_string(value)
        if text is not None:
            return text
    raise _NotPlain


def _literal(key: str, text: str, indent: str, out: list[str]) -> None:
    """A multi-line string as ruamel writes it (a '|' block), when no indentation or chomping
    indicator beyond '-' is needed; '|+' ends the document with '...', so ruamel writes that."""
    if text[0] in " \n" or text.endswith("\n\n") or text.endswith(" ") or " \n" in text:
        raise _NotPlain
    if not text.isascii() or not text.replace("\n", "").isprintable():
        raise _NotPlain
    out.append(f"{indent}{key}: |" if text.endswith("\n") else f"{indent}{key}: |-")
    body = text[:-1] if text.endswith("\n") else text
    out.extend(f"{indent}  {line}" if line else "" for line in body.split("\n"))


def _mapping(data: dict[Any, Any], indent: str, out: list[str]) -> None:
    for key, value in data.items():
        name = _simple_string(key) if type(key) is str else None
        if name is None:
            raise _NotPlain
        if type(value) is dict and value:
            out.append(f"{indent}{name}:")
            _mapping(value, indent + "  ", out)
        elif type(value) is list and value:
            out.append(f"{indent}{name}:")
            _sequence(value, indent + "  ", out)
        elif type(value) is dict or type(value) is list:
            out.append(f"{indent}{name}: {'{}' if type(value) is dict else '[]'}")
        elif type(value) is str and "\n" in value:
            _literal(name, value, indent, out)
        else:
            out.append(f"{indent}{name}: {_scalar(value)}")


def _sequence(items: list[Any], indent: str, out: list[str]) -> None:
    """Items at `indent` + '- ' (ruamel's sequence indent 4, offset 2)."""
    for item in items:
        if type(item) is dict and item:
            start = len(out)
            _mapping(item, indent + "  ", out)
            out[start] = f"{indent}- {out[start][len(indent) + 2 :]}"
        elif type(item) is dict or type(item) is list:
            if item:
                raise _NotPlain  # a list in a list: rare, ruamel writes it
            out.append(f"{indent}- {'{}' if type(item) is dict else '[]'}")
        else:
            out.append(f"{indent}- {_scalar(item)}")


def _plain_dump(data: Any) -> str | None:
    """dump_text's output for a non-empty dict of plain data, or None to ask ruamel."""
    if type(data) is not dict or not data:
        return None
    out: list[str] = []
    try:
        _mapping(data, "", out)
    except _NotPlain:
        return None
    # Ruamel folds a line at a space past the width; such lines are left to it.
    if max(map(len, out)) > _WIDTH:
        return None
    return "\n".join(out) + "\n"


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
