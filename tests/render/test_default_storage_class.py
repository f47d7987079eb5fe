"""Exactly one default StorageClass in every configuration: K3s's local-path, or Longhorn's
when cluster.yaml makes it the default (then the servers tell K3s to remove local-path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generator import yamlio
from generator.config.model import Cluster
from generator.render import charts, render_all
from generator.render.k3s import CONFIG_PATH
from tests.render.seed_clusters import SECRETS, cluster_from, fixture_data
from tests.upstream import chart_defaults, deep_merge

DEFAULT = "storageclass.kubernetes.io/is-default-class"
LONGHORN = {
    "off": {"enabled": False},
    "off-but-default-asked": {"enabled": False, "default_storage_class": True},
    "on": {"enabled": True},
    "on-not-default": {"enabled": True, "default_storage_class": False},
    "on-default": {"enabled": True, "default_storage_class": True},
    "on-default-by-values": {"enabled": True, "values": {"persistence": {"defaultClass": True}}},
    "on-default-no-class": {
        "enabled": True,
        "default_storage_class": True,
        "values": {"persistence": {"createStorageClass": False}},
    },
}


def cluster_for(fixture: str, longhorn: dict[str, Any]) -> Cluster:
    data = fixture_data(fixture)
    data["components"]["longhorn"] = longhorn
    return cluster_from(data)


def server_configs(cluster: Cluster, files: dict[str, Any]) -> list[dict[str, Any]]:
    configs = []
    for node in cluster.servers:
        user_data = yamlio.load_all_plain(files[f"cloud-init/{node.name}/user-data"].text)[0]
        (config,) = [f["content"] for f in user_data["write_files"] if f["path"] == CONFIG_PATH]
        configs.append(yamlio.load_all_plain(config)[0])
    return configs


def default_classes(cluster: Cluster, upstream: Path) -> list[str]:
    """Every StorageClass that ends up default: K3s's, Longhorn's chart's, the tree's own."""
    files = render_all(cluster, SECRETS)
    found = []
    disables = {tuple(c["disable"]) for c in server_configs(cluster, files)}
    assert len(disables) == 1, disables  # every server agrees
    # K3s's packaged manifests/local-storage.yaml always says is-default-class "true".
    if "local-storage" not in next(iter(disables)):
        found.append("local-path")
    spec = charts.SPEC_BY_KEY["longhorn"]
    if charts.component(cluster, spec).enabled:
        # Helm merges the HelmRelease's values over the chart's defaults.
        persistence = deep_merge(
            chart_defaults(upstream, "longhorn", spec.chart.version),
            charts.release_values(cluster, spec),
        )["persistence"]
        if persistence["createStorageClass"] and persistence["defaultClass"]:
            found.append("longhorn")
    for path, file in files.items():
        if not path.endswith((".yaml", ".yml")) or path.startswith("cloud-init/"):
            continue
        for doc in yamlio.load_all_plain(file.text):
            if not isinstance(doc, dict) or doc.get("kind") != "StorageClass":
                continue
            if (doc.get("metadata", {}).get("annotations") or {}).get(DEFAULT) == "true":
                found.append(doc["metadata"]["name"])
    return found


@pytest.mark.parametrize("fixture", ["seeds-ha", "seeds-single"])
@pytest.mark.parametrize("case", sorted(LONGHORN))
def test_exactly_one_default_storage_class(fixture: str, case: str, upstream: Path) -> None:
    cluster = cluster_for(fixture, LONGHORN[case])
    found = default_classes(cluster, upstream)
    assert len(found) == 1, found
    longhorn_default = case in ("on-default", "on-default-by-values")
    assert found == (["longhorn"] if longhorn_default else ["local-path"])


def test_local_storage_is_a_k3s_disable_item_and_traefik_servicelb_stay() -> None:
    cluster = cluster_for("seeds-ha", LONGHORN["on-default"])
    for config in server_configs(cluster, render_all(cluster, SECRETS)):
        assert config["disable"] == ["traefik", "servicelb", "local-storage"]
