"""The JSON copy of cluster_schema.yaml: current, and ignored (never wrong) once stale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.config import schema

REFRESH = 'python -c "from generator.config import schema; schema.write_preparsed()"'


def test_the_shipped_copy_is_the_schema_as_parsed_from_yaml() -> None:
    text = schema.SCHEMA_PATH.read_text()
    assert schema._preparsed(text) == schema._parsed(text), (
        f"cluster_schema.json is stale after a schema edit; refresh it with: {REFRESH}"
    )


@pytest.mark.parametrize(
    "stored",
    [
        '{"schema_sha256": "0000", "rules": {"type": "seq"}}',
        '{"rules": {"type": "seq"}}',
        "not json",
        "[]",
    ],
)
def test_a_stale_or_broken_copy_is_ignored_and_the_yaml_parsed(
    stored: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "cluster_schema.json"
    copy.write_text(stored)
    monkeypatch.setattr(schema, "PREPARSED_PATH", copy)
    text = schema.SCHEMA_PATH.read_text()
    assert schema._preparsed(text) is None
    assert schema.rules.__wrapped__()["type"] == "map"


def test_write_preparsed_makes_a_copy_that_rules_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "cluster_schema.json"
    monkeypatch.setattr(schema, "PREPARSED_PATH", copy)
    schema.write_preparsed()
    stored = json.loads(copy.read_text())
    text = schema.SCHEMA_PATH.read_text()
    assert stored["rules"] == schema._parsed(text)
    assert schema._preparsed(text) == stored["rules"]
    # A schema edit (here: one more byte) makes the copy stale.
    assert schema._preparsed(text + "\n") is None
