"""Shared for the gitops tests: clusters built from the fixture, and the conformance checks.

No tests here; test_gitops.py and test_gitops_conformance.py use these.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

from generator import config, sops, yamlio
from generator.config.model import COMPONENT_NAMES, Cluster
from generator.render import charts
from generator.render.check import KUSTOMIZE_FILES
from generator.render.output import RenderedFile
from generator.secrets import Secrets
from tests.conftest import fixture_text
from tests.upstream import (
    chart_defaults,
    chart_values_schema,
    crd_index,
    deep_merge,
    validate_custom_resource,
)

K8S_VERSION = "1.33.0"  # the Kubernetes of the pinned K3s (v1.33.x+k3s1)
CRD_GROUPS = ("fluxcd.io", "metallb.io", "cert-manager.io", "longhorn.io", "upgrade.cattle.io")
# Draft 7 for MetalLB: its schema names its draft by a URL jsonschema does not know.
SCHEMA_DRAFT = {"metallb": jsonschema.Draft7Validator}


# Every secret the tree can hold, the user's own included (two namespaces, so the layout's
# grouping and its sorting are exercised). Values are made up; test_gitops_secrets.py checks
# where each one lands.
SECRETS = Secrets(
    k3s_token="k3s-token-not-in-the-tree",
    grafana_admin_password="grafana-pw-Ht4rW9",
    dns_api_token="cf-dns-token-Pq72Vz",
    agent_token="agent-token-not-in-the-tree",
    age_key="AGE-SECRET-KEY-1GITOPSTESTSNOTAREALKEYQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
    kubernetes={
        "media/jellyfin-api": {"token": "jf-token-Lm3"},
        "apps/db-credentials": {"username": "db-user-Vx3", "password": "db-pw-Zq81"},
    },
)
# An age identity made once per run: write_tree encrypts *.sops.yaml as the workspace does.
TEST_IDENTITY, TEST_RECIPIENT = sops.new_age_identity()


def raw_fixture() -> dict[str, Any]:
    loaded: dict[str, Any] = yamlio.load_all_plain(fixture_text("valid/three-servers.yaml"))[0]
    return loaded


def cluster_from(raw: dict[str, Any]) -> Cluster:
    return config.from_data(raw).cluster


def default_cluster() -> Cluster:
    return cluster_from(raw_fixture())


def cluster_with(on: set[str] | None = None, **overrides: Any) -> Cluster:
    """The fixture with exactly the components in `on` enabled (all when None), plus
    `overrides` as whole component entries, e.g. traefik={"enabled": True, "ip": ...}."""
    raw = raw_fixture()
    names = set(COMPONENT_NAMES) if on is None else on
    raw["components"] = {name: name in names for name in COMPONENT_NAMES}
    raw["components"].update(copy.deepcopy(overrides))
    return cluster_from(raw)


MATRIX: dict[str, set[str]] = {
    "all-on": set(COMPONENT_NAMES),
    "all-off": set(),
    **{f"only-{name}": {name} for name in COMPONENT_NAMES if name != "whoami"},
    "only-whoami": {"whoami", "traefik"},  # the demo needs an ingress controller
}

# Strings that would betray a disabled component anywhere in the tree.
TRACES = {
    "traefik": ("traefik",),
    "metallb": ("metallb",),
    "longhorn": ("longhorn",),
    "monitoring": ("prometheus", "grafana", "monitoring"),
    "cert_manager": ("cert-manager", "clusterissuer", "letsencrypt"),
    "whoami": ("whoami",),
}


def documents(rendered: dict[str, RenderedFile]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, doc)
        for path, item in sorted(rendered.items())
        if path.endswith(".yaml")
        for doc in yamlio.load_all_plain(item.text)
    ]


def write_tree(rendered: dict[str, RenderedFile], root: Path) -> Path:
    """The tree as `render` leaves it on disk: files marked sops encrypted, the rest as is."""
    for rel, item in rendered.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(encrypted(item.text) if item.sops else item.text)
    return root


def encrypted(text: str) -> str:
    document = yamlio.to_plain(yamlio.load_text(text, "rendered"))
    return sops.encrypt(
        document,
        [TEST_RECIPIENT],
        encrypted_regex=sops.KUBERNETES_ENCRYPTED_REGEX,
        now=datetime(2025, 1, 1, tzinfo=UTC),
    )


# --- the checks ------------------------------------------------------------------------------


def crd_problems(rendered: dict[str, RenderedFile], upstream: Path) -> list[str]:
    index = crd_index(str(upstream))
    problems = []
    for path, doc in documents(rendered):
        if not str(doc["apiVersion"]).split("/")[0].endswith(CRD_GROUPS):
            continue
        if (doc["apiVersion"], doc["kind"]) not in index:
            problems.append(f"{path}: no served CRD for {doc['apiVersion']} {doc['kind']}")
            continue
        try:
            validate_custom_resource(doc, upstream)
        except jsonschema.ValidationError as exc:
            problems.append(f"{path}: {exc.message} at {list(exc.absolute_path)}")
    return problems


def core_objects(rendered: dict[str, RenderedFile]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, doc)
        for path, doc in documents(rendered)
        if "/" not in doc["apiVersion"]
        or doc["apiVersion"].startswith(("apps/", "networking.k8s.io/"))
    ]


def core_problems(rendered: dict[str, RenderedFile]) -> list[str]:
    problems = []
    for path, doc in core_objects(rendered):
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{path}: {exc.message}")
    return problems


def releases(rendered: dict[str, RenderedFile]) -> list[tuple[str, dict[str, Any]]]:
    return [(p, d) for p, d in documents(rendered) if d["kind"] == "HelmRelease"]


def chart_of(release: dict[str, Any]) -> tuple[str, str]:
    chart = release["spec"]["chart"]["spec"]
    return chart["chart"], chart["version"]


def values_schema_problems(release: dict[str, Any], upstream: Path) -> list[str]:
    chart, version = chart_of(release)
    schema = chart_values_schema(upstream, chart, version)
    if schema is None:
        return []
    merged = deep_merge(chart_defaults(upstream, chart, version), release["spec"]["values"])
    validator_class = SCHEMA_DRAFT.get(chart) or jsonschema.validators.validator_for(schema)
    return [
        f"{chart}: {err.message} at {'.'.join(map(str, err.absolute_path))}"
        for err in validator_class(schema).iter_errors(merged)
    ]


def unknown_key_paths(ours: Any, defaults: Any, prefix: str = "") -> list[str]:
    """Key paths we set that the chart's values.yaml does not have (Helm would ignore them),
    except under a map whose default is empty (a free-form map such as annotations)."""
    if not isinstance(ours, dict) or not isinstance(defaults, dict) or not defaults:
        return []
    missing = []
    for key, value in ours.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            missing.append(path)
        else:
            missing += unknown_key_paths(value, defaults[key], f"{path}.")
    return missing


def key_path_problems(release: dict[str, Any], upstream: Path) -> list[str]:
    chart, version = chart_of(release)
    ours = release["spec"]["values"]
    return [
        f"{chart}: {path} is not in the chart's values.yaml"
        for path in unknown_key_paths(ours, chart_defaults(upstream, chart, version))
    ]


def kubectl() -> str | None:
    return shutil.which("kubectl")


def kustomize_build(binary: str, folder: Path) -> str:
    done = subprocess.run(
        [binary, "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"kubectl kustomize {folder} failed:\n{done.stderr}"
    return done.stdout


def flux_generated_entries(folder: Path, base: Path | None = None) -> list[str]:
    """fluxcd/pkg kustomize_generator.go's scan: walk the folder; a subfolder with its own
    kustomization.yaml is one entry and is not entered; any other subfolder is walked, and
    every .yaml/.yml file in it is an entry."""
    root = base or folder
    entries = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and any((child / n).is_file() for n in KUSTOMIZE_FILES):
            entries.append(child.relative_to(root).as_posix())
        elif child.is_dir():
            entries += flux_generated_entries(child, root)
        elif child.suffix in (".yaml", ".yml"):
            entries.append(child.relative_to(root).as_posix())
    return entries


def flux_generated_kustomization(folder: Path) -> None:
    """What kustomize-controller writes for a synced folder without a kustomization.yaml."""
    entries = flux_generated_entries(folder)
    text = yamlio.dump_text(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": entries,
        }
    )
    (folder / "kustomization.yaml").write_text(text)


def spec_for(name: str) -> charts.Spec:
    return charts.SPEC_BY_KEY[name]
