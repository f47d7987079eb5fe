"""`homelab-gen versions`: every pin, read from the module that pins it, and cluster.yaml's
overrides beside it; through the real console script, piped (the plain table)."""

from __future__ import annotations

import json
from pathlib import Path

from generator import resources
from generator.render import charts, kube_vip, manifests, system_upgrade
from tests.conftest import fixture_text
from tests.test_cli import run_cli

SCAFFOLD_K3S = json.loads(
    (resources.data_dir("templates") / "cluster" / "cookiecutter.json").read_text()
)["k3s_version"]


def rows(stdout: str) -> dict[str, list[str]]:
    """Name → the other cells; names may hold one space ("traefik (chart)")."""
    out = {}
    for line in stdout.splitlines()[1:]:
        if line.startswith("* "):
            continue
        cells = [c for c in line.split("  ") if c.strip()]
        out[cells[0].strip()] = [c.strip() for c in cells[1:]]
    return out


def test_without_cluster_yaml_it_prints_every_pin(tmp_path: Path) -> None:
    result = run_cli("versions", "-C", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "no cluster.yaml" in result.stderr
    assert result.stdout.splitlines()[0].split() == ["NAME", "PINNED", "IN", "USE", "NOTE"]
    table = rows(result.stdout)
    assert table["k3s"] == [SCAFFOLD_K3S, SCAFFOLD_K3S]
    for spec in charts.SPECS:
        version = spec.chart.version
        assert table[f"{spec.chart.name} (chart)"][:2] == [version, version]
    assert table["kube-vip (image)"][:2] == [kube_vip.KUBE_VIP_VERSION] * 2
    assert table["flux-operator (chart)"][:2] == [manifests.FLUX_OPERATOR_VERSION] * 2
    assert table["flux"][:2] == [manifests.FLUX_VERSION] * 2
    assert table["system-upgrade-controller"][:2] == [system_upgrade.SUC_TAG] * 2
    names = [name for name in table if name.endswith("(chart)")]
    for chart in ("traefik", "metallb", "longhorn", "kube-prometheus-stack", "cert-manager"):
        assert f"{chart} (chart)" in names
    assert "*" not in result.stdout


def test_overrides_from_cluster_yaml_are_marked_beside_the_pin(tmp_path: Path) -> None:
    text = fixture_text("valid/three-servers.yaml")
    text = text.replace("k3s_version: v1.33.4+k3s1", "k3s_version: v1.34.1+k3s1")
    text = text.replace("traefik: true", "traefik: {version: 99.1.0}")
    text = text.replace("longhorn: true", "longhorn: {enabled: false}")
    (tmp_path / "cluster.yaml").write_text(text)
    result = run_cli("versions", "-C", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "no cluster.yaml" not in result.stderr
    table = rows(result.stdout)
    assert table["k3s"] == [SCAFFOLD_K3S, "v1.34.1+k3s1 *", "cluster.k3s_version"]
    traefik = charts.SPEC_BY_KEY["traefik"].chart.version
    assert table["traefik (chart)"] == [traefik, "99.1.0 *", "components.traefik.version"]
    longhorn = charts.SPEC_BY_KEY["longhorn"].chart.version
    assert table["longhorn (chart)"] == [longhorn, longhorn, "switched off"]
    assert result.stdout.splitlines()[-1].startswith("* set in cluster.yaml")


def test_an_invalid_cluster_yaml_is_refused_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text("cluster: [\n")
    result = run_cli("versions", "-C", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_help_lists_versions() -> None:
    assert "    versions" in run_cli("--help").stdout
