"""dump_text's fast writer must give ruamel's text byte for byte, whatever the data."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import yamlio

# Strings near every rule ruamel's emitter and resolvers apply, and our quoting of YAML 1.1.
TRICKY = [
    *("", " ", "a", "a b", "a  b", " a", "a ", "\ta", "a\t", "é", "naïve", "日本", "a\u2028b"),
    *("yes", "No", "ON", "off", "y", "n", "true", "False", "null", "Null", "~", "NULL"),
    *("0", "-1", "+1", "007", "0o17", "0x1F", "0b101", "1_000", "1.5", "1.5_", ".5", "1e3"),
    *("1:30", "190:20:30", ".inf", "-.inf", ".NaN", "nan", "inf", "12e", "1.2.3", "v1.2"),
    *("2024-01-01", "2024-1-1 10:00:00", "2024-01-01T10:00:00Z", "2024-13-45", "20240101"),
    *("=", "<<", "!", "&", "*", "a=b", "<<x", "!tag", "&anchor", "*alias", "%x", "@x", "`x"),
    *("-", "- a", "-a", "--", "---", "--- a", "...", "...a", ".a", "?", "? a", "?a", "|", ">"),
    *(":", "a:", "a: b", "a:b", ":a", "::", "a :b", "#", "a #b", "a#b", "# a", "a,b", "[a]"),
    *("{a}", "a[0]", "a{b}", "'a'", '"a"', "it's", 'say "hi"', "a\\b", "(a)", "a/b", "/a/b"),
    *("10.0.0.5/24", "fe80::1", "https://x.test:6443", "bc:24:11:aa:bb:cc", "k3s-node-01"),
    *("a\nb", "a\nb\n", "a\n\nb\n", "a\n\n", "\na", " a\nb", "a \nb", "a\nb ", "a\n b\n"),
    *("a\r\nb", "a\tb\nc", "é\nb", "\n", "a\n", "x" * 127, "x" * 128, "x " * 2100),
    *("x" * 5000, "y" * 4090, "a: b\nc"),
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(TRICKY),
    st.text(alphabet="aZ09 _-.:/#'\"@,=()[]{}!&*?|>%~+\\\t\né", max_size=12),
)
keys = st.one_of(st.sampled_from(TRICKY), st.text(alphabet="aZ09 _-.:#'", max_size=8))
# Render's usual data (names, addresses, versions, flags), with a tricky string now and then,
# so that most documents go through the fast writer rather than falling back to ruamel.
names = st.from_regex(r"[A-Za-z0-9_/]([A-Za-z0-9_./=@,()+ :-]{0,14}[A-Za-z0-9])?", fullmatch=True)
usual_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), names, names, st.sampled_from(TRICKY)
)
usual_keys = st.one_of(names, names, names, st.sampled_from(TRICKY))


def documents(leaves: Any, key_strategy: Any, lists_in_lists: bool = True) -> Any:
    def nest(inner: Any) -> Any:
        mappings = st.dictionaries(key_strategy, inner, max_size=4)
        items = inner if lists_in_lists else st.one_of(leaves, mappings)
        return st.one_of(st.lists(items, max_size=4), mappings)

    return st.dictionaries(key_strategy, st.recursive(leaves, nest, max_leaves=25), max_size=5)


@settings(max_examples=400, deadline=None)
@given(data=documents(scalars, keys))
def test_dump_text_is_ruamel_text_for_any_data(data: dict[Any, Any]) -> None:
    assert yamlio.dump_text(data) == yamlio._ruamel_dump(data)


@settings(max_examples=300, deadline=None)
@given(data=documents(usual_scalars, usual_keys, lists_in_lists=False))
def test_dump_text_is_ruamel_text_for_data_the_fast_writer_mostly_takes(
    data: dict[Any, Any],
) -> None:
    assert yamlio.dump_text(data) == yamlio._ruamel_dump(data)


@pytest.mark.parametrize("text", TRICKY)
def test_each_tricky_string_in_every_position_is_written_as_ruamel_writes_it(text: str) -> None:
    for data in (
        {"k": text},
        {text: 1},
        {"k": [text, {"a": text}, {text: [text]}]},
        {"a": {"b": {"c": text}}, "d": [{}, []]},
        {"k": [{"a": text, "b": {"c": text}}]},
    ):
        assert yamlio.dump_text(data) == yamlio._ruamel_dump(data), data


def test_a_manifest_goes_through_the_fast_writer() -> None:
    # Guards the point of the fast writer: render's usual data must not fall back to ruamel.
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cluster-settings", "namespace": "flux-system", "labels": {}},
        "data": {"CLUSTER_VIP": "10.0.0.5", "ENABLED": "true", "PORT": "6443"},
        "items": [{"name": "node-1", "ip": "10.0.0.11"}, "x", 3, True, None, []],
        "script": "#!/bin/sh\necho hi\n",
    }
    fast = yamlio._plain_dump(manifest)
    assert fast is not None
    assert fast == yamlio._ruamel_dump(manifest)


def test_the_fast_writer_leaves_floats_and_nested_lists_to_ruamel() -> None:
    assert yamlio._plain_dump({"a": 1.5}) is None
    assert yamlio._plain_dump({"a": [[1]]}) is None
    assert yamlio._plain_dump({1: "a"}) is None
    assert yamlio._plain_dump(["a"]) is None
