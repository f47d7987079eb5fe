"""`cluster.cni: calico`: the K3s settings, the first server's bootstrap copy, Flux's copy, and
both against the upstream CRDs and K3s flags."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from generator import config, yamlio
from generator.config.model import Cluster
from generator.errors import ConfigError
from generator.render import calico
from generator.render.gitops import render_gitops
from generator.render.k3s import CONFIG_PATH
from generator.render.manifests import MANIFESTS_DIR
from generator.render.seeds import node_seed
from tests.conftest import fixture_text
from tests.render.seed_clusters import SECRETS, sized
from tests.test_cli import run_cli
from tests.upstream import k3s_flags, validate_custom_resource

CALICO_UPSTREAM = "calico-v3.32.1"


def with_cni(text: str, cni: str, extra: str = "") -> str:
    return text.replace("  k3s_version:", f"  cni: {cni}\n{extra}  k3s_version:", 1)


def calico_cluster(servers: int = 3, agents: int = 2) -> Cluster:
    return sized(servers, agents, cni="calico")


def user_data(cluster: Cluster, index: int) -> dict[str, Any]:
    text = node_seed(cluster, SECRETS, cluster.nodes[index])["user-data"]
    data = yamlio.load_all_plain(text)[0]
    assert isinstance(data, dict)
    return data


def files(data: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["content"] for f in data["write_files"]}


def k3s_settings(cluster: Cluster, index: int) -> dict[str, Any]:
    loaded = yamlio.load_all_plain(files(user_data(cluster, index))[CONFIG_PATH])[0]
    assert isinstance(loaded, dict)
    return loaded


# ---- cluster.yaml ------------------------------------------------------------------------


def test_flannel_is_the_default() -> None:
    info = config.parse(fixture_text("valid/three-servers.yaml")).cluster.cluster
    assert (info.cni, info.flannel_backend) == ("flannel", "vxlan")


def test_calico_turns_flannel_off() -> None:
    text = with_cni(fixture_text("valid/three-servers.yaml"), "calico")
    info = config.parse(text).cluster.cluster
    assert (info.cni, info.flannel_backend) == ("calico", "none")


def test_a_flannel_backend_with_calico_is_refused_by_name() -> None:
    text = with_cni(
        fixture_text("valid/three-servers.yaml"), "calico", "  flannel_backend: vxlan\n"
    )
    with pytest.raises(ConfigError) as caught:
        config.parse(text)
    assert list(caught.value.problems) == [
        "cluster.flannel_backend: 'vxlan' is a Flannel backend, and cluster.cni is calico"
        " (remove flannel_backend: Calico replaces Flannel; or set cni: flannel)"
    ]


def test_an_unknown_cni_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        config.parse(with_cni(fixture_text("valid/three-servers.yaml"), "cilium"))
    assert any(p.startswith("cluster.cni:") for p in caught.value.problems)


# ---- K3s settings --------------------------------------------------------------------------


def test_every_server_runs_without_flannel_and_network_policy() -> None:
    cluster = calico_cluster()
    for index, node in enumerate(cluster.nodes):
        settings = k3s_settings(cluster, index)
        if node.is_server:
            assert settings["flannel-backend"] == "none"
            assert settings["disable-network-policy"] is True
        else:
            assert "flannel-backend" not in settings
            assert "disable-network-policy" not in settings


def test_flannel_servers_keep_k3s_network_policy() -> None:
    cluster = sized(3, 1)
    assert "disable-network-policy" not in k3s_settings(cluster, 0)
    assert k3s_settings(cluster, 0)["flannel-backend"] == "vxlan"


def test_the_calico_settings_are_k3s_server_flags(upstream: Path) -> None:
    flags = k3s_flags(upstream)
    settings = k3s_settings(calico_cluster(), 0)
    assert {"flannel-backend", "disable-network-policy"} <= set(flags["server"])
    assert set(settings) <= set(flags["server"])


# ---- the first server's copy, and Flux's -----------------------------------------------------


def bootstrap_objects(cluster: Cluster) -> list[dict[str, Any]]:
    path = f"{MANIFESTS_DIR}/{calico.MANIFEST_NAME}.yaml"
    return list(yamlio.load_all_plain(files(user_data(cluster, 0))[path]))


def flux_objects(cluster: Cluster) -> list[dict[str, Any]]:
    tree = render_gitops(cluster, SECRETS)
    docs: list[dict[str, Any]] = []
    for path, item in sorted(tree.items()):
        if path.startswith(calico.CALICO_DIR + "/") and not path.endswith("kustomization.yaml"):
            docs += yamlio.load_all_plain(item.text)
    return docs


def test_only_the_first_server_carries_calico_and_its_handover() -> None:
    cluster = calico_cluster()
    first = user_data(cluster, 0)
    assert f"systemctl enable {calico.HANDOVER_UNIT}" in first["runcmd"]
    assert calico.HANDOVER_SCRIPT in files(first)
    for index in range(1, len(cluster.nodes)):
        other = user_data(cluster, index)
        assert not any(MANIFESTS_DIR in p or "calico" in p for p in files(other))
        assert not any(calico.HANDOVER_UNIT in c for c in other["runcmd"])


def test_flux_holds_the_same_objects_as_the_bootstrap_copy() -> None:
    """So the handover changes nothing in the cluster, and a git commit upgrades it."""
    cluster = calico_cluster()

    def by_kind(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(docs, key=lambda d: str(d["kind"]))

    assert by_kind(flux_objects(cluster)) == by_kind(bootstrap_objects(cluster))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in bootstrap_objects(cluster)]
    assert kinds == [("HelmChart", "tigera-operator"), ("Installation", "default")]


def test_the_ip_pool_is_the_cluster_cidr_and_the_chart_pinned() -> None:
    cluster = sized(1, 1, cni="calico", cluster_cidr="10.52.0.0/16")
    chart, installation = bootstrap_objects(cluster)
    assert chart["spec"]["version"] == calico.VERSION
    assert chart["spec"]["bootstrap"] is True
    values = yamlio.load_all_plain(chart["spec"]["valuesContent"])[0]
    assert values["installation"] == {"enabled": False}
    assert values["kubernetesServiceEndpoint"]["host"] == str(cluster.api_host)
    pools = installation["spec"]["calicoNetwork"]["ipPools"]
    assert [(p["cidr"], p["encapsulation"]) for p in pools] == [
        ("10.52.0.0/16", "VXLANCrossSubnet")
    ]


def test_flannel_leaves_no_calico_anywhere() -> None:
    cluster = sized(3, 1)
    assert not flux_objects(cluster)
    assert not any("calico" in p for p in files(user_data(cluster, 0)))
    assert not any(p.startswith(calico.CALICO_DIR) for p in render_gitops(cluster, SECRETS))


def test_the_installation_matches_the_operator_crd(upstream: Path) -> None:
    for doc in bootstrap_objects(calico_cluster()):
        if doc["kind"] == "Installation":
            validate_custom_resource(doc, upstream / CALICO_UPSTREAM)


def test_the_validator_accepts_upstream_and_refuses_a_bad_encapsulation(upstream: Path) -> None:
    """The check above is only as good as the schema it reads: upstream's own example passes,
    an encapsulation the CRD does not list fails."""
    example = yamlio.load_all_plain(
        (upstream / CALICO_UPSTREAM / "custom-resources.yaml").read_text()
    )
    for doc in example:
        validate_custom_resource(doc, upstream / CALICO_UPSTREAM)
    installation = bootstrap_objects(calico_cluster())[1]
    installation["spec"]["calicoNetwork"]["ipPools"][0]["encapsulation"] = "GRE"
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(installation, upstream / CALICO_UPSTREAM)


@pytest.mark.parametrize(
    "helm_controller", ["k3s-helm-controller-v0.17.1", "k3s-helm-controller-v0.17.7"]
)
def test_the_operator_chart_matches_the_helm_controller_crd(
    upstream: Path, helm_controller: str
) -> None:
    validate_custom_resource(bootstrap_objects(calico_cluster())[0], upstream / helm_controller)


def test_the_calico_user_data_matches_the_cloud_config_schema(upstream: Path) -> None:
    schema = json.loads((upstream / "cloud-init" / "schema-cloud-config-v1.json").read_text())
    validator = jsonschema.Draft4Validator(schema)
    cluster = calico_cluster(3, 1)
    for index in range(len(cluster.nodes)):
        errors = [e.message for e in validator.iter_errors(user_data(cluster, index))]
        assert not errors


# ---- switching, through the CLI ---------------------------------------------------------------


def test_switching_cni_is_refused_then_rebuilt_cleanly(tmp_path: Path) -> None:
    """A rendered flannel repo refuses calico (render and validate alike, nothing written);
    after the documented rebuild step both ways render cleanly and settle."""
    flannel = fixture_text("valid/three-servers.yaml")
    (tmp_path / "cluster.yaml").write_text(flannel)
    assert run_cli("render", "-C", str(tmp_path)).returncode == 0
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    (tmp_path / "cluster.yaml").write_text(with_cni(flannel, "calico"))
    for command in ("render", "validate"):
        result = run_cli(command, "-C", str(tmp_path))
        assert result.returncode == 2, result.stderr
        assert "cluster.cni: 'calico', but this cluster was rendered with flannel" in result.stderr
        assert "homelab-gen destroy, delete gitops/clusters/home/" in result.stderr
    changed = {p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes() != before.get(p)}
    assert changed == {tmp_path / "cluster.yaml"}

    shutil.rmtree(tmp_path / "gitops/clusters/home")
    result = run_cli("render", "-C", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / calico.CALICO_DIR / "installation.yaml").is_file()
    assert (tmp_path / "gitops/clusters/home/calico.yaml").is_file()
    assert run_cli("validate", "-C", str(tmp_path)).returncode == 0

    (tmp_path / "cluster.yaml").write_text(flannel)
    assert run_cli("render", "-C", str(tmp_path)).returncode == 2
    shutil.rmtree(tmp_path / "gitops/clusters/home")
    assert run_cli("render", "-C", str(tmp_path)).returncode == 0
    assert not (tmp_path / calico.CALICO_DIR).exists()  # no empty folder either
    again = run_cli("render", "-C", str(tmp_path))
    assert again.returncode == 0 and again.stdout.strip().endswith("unchanged")


# ---- the handover script, run against a stand-in k3s -------------------------------------------

FAKE_K3S = """#!/bin/sh
# stand-in for `k3s kubectl`: answers from files in $STATE
shift  # kubectl
case "$*" in
  *readyz*) [ -e "$STATE/api-up" ] ;;
  *helmchart*) [ -e "$STATE/helmchart" ] ;;
  *installation*) [ -e "$STATE/installation" ] ;;
  *) exit 2 ;;
esac
"""


def run_handover(tmp_path: Path, *present: str) -> subprocess.CompletedProcess[str]:
    state, bin_dir = tmp_path / "state", tmp_path / "bin"
    state.mkdir(exist_ok=True)
    bin_dir.mkdir(exist_ok=True)
    for name in present:
        (state / name).touch()
    fake = bin_dir / "k3s"
    fake.write_text(FAKE_K3S)
    fake.chmod(0o755)
    manifest = tmp_path / "homelab-calico.yaml"
    if not manifest.exists():
        manifest.write_text("kind: HelmChart\n")
    script = calico.handover_script().replace(calico.MANIFEST_PATH, str(manifest))
    return subprocess.run(
        ["sh", "-c", script],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(state)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    "present", [(), ("api-up",), ("api-up", "helmchart"), ("api-up", "installation")]
)
def test_the_handover_keeps_the_copy_until_k3s_applied_both(
    tmp_path: Path, present: tuple[str, ...]
) -> None:
    done = run_handover(tmp_path, *present)
    assert done.returncode != 0  # systemd retries it
    assert (tmp_path / "homelab-calico.yaml").exists()


def test_the_handover_removes_the_copy_once_both_exist(tmp_path: Path) -> None:
    done = run_handover(tmp_path, "api-up", "helmchart", "installation")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "homelab-calico.yaml").exists()
    assert "handed over to Flux" in done.stdout
