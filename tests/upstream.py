"""Validate generated objects against upstream CRDs, charts and schemas in ../shared/upstream."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML


def _yaml_docs(path: Path) -> list[Any]:
    return [d for d in YAML(typ="safe", pure=True).load_all(path.read_text()) if d]


def openapi_to_jsonschema(node: Any) -> Any:
    """Kubernetes' structural-schema dialect to plain JSON Schema (Draft 7)."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        out.pop("nullable", None)
        if "type" in out:
            out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", True)
    elif out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


@cache
def crd_index(root: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON Schema, for every served version of every CRD under root."""
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(Path(root).rglob("*.yaml")):
        for doc in _yaml_docs(path):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = openapi_to_jsonschema(version["schema"]["openAPIV3Schema"])
                index[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return index


def validate_custom_resource(obj: dict[str, Any], upstream: Path) -> None:
    """Raise jsonschema.ValidationError if obj breaks its CRD; KeyError if no CRD serves it."""
    schema = dict(crd_index(str(upstream))[(obj["apiVersion"], obj["kind"])])
    props = dict(schema.get("properties", {}))
    # metadata is validated by the API server, not the CRD schema.
    props["metadata"] = {"type": "object"}
    schema["properties"] = props
    jsonschema.Draft7Validator(schema).validate(obj)


def chart_dir(upstream: Path, chart: str, version: str) -> Path:
    return upstream / "charts" / f"{chart}-{version}"


def chart_defaults(upstream: Path, chart: str, version: str) -> dict[str, Any]:
    loaded = YAML(typ="safe", pure=True).load(
        (chart_dir(upstream, chart, version) / "values.yaml").read_text()
    )
    return loaded or {}


def chart_values_schema(upstream: Path, chart: str, version: str) -> dict[str, Any] | None:
    path = chart_dir(upstream, chart, version) / "values.schema.json"
    return json.loads(path.read_text()) if path.exists() else None


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's merge: maps merge key by key, everything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else value
        return merged
    return override


def k3s_flags(upstream: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((upstream / "k3s" / "k3s-flags.json").read_text())
    return loaded
