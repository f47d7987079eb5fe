"""Seeds against upstream truth: cloud-init schemas and binary, K3s flags, CRDs, Kubernetes."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from generator import yamlio
from generator.config.model import Cluster
from generator.render.k3s import CONFIG_PATH
from generator.render.manifests import FLUX_OPERATOR_VERSION, MANIFESTS_DIR, flux_operator_values
from generator.render.seeds import node_seed, render_seeds
from generator.secrets import Secrets
from tests.render.seed_clusters import (
    EVERY_SECRET,
    GOLDEN_FIXTURES,
    SECRETS,
    fixture_cluster,
    sized,
)
from tests.upstream import (
    chart_defaults,
    chart_values_schema,
    deep_merge,
    k3s_flags,
    validate_custom_resource,
)

KUBERNETES_VERSION = "1.33.0"  # the minor of the pinned K3s in the fixtures (v1.33.4+k3s1)
CLUSTERS = {name: fixture_cluster(name) for name in GOLDEN_FIXTURES} | {
    "5-servers-20-agents": sized(5, 20)
}


def all_seeds() -> list[tuple[str, dict[str, str]]]:
    out = []
    for cluster_name, cluster in CLUSTERS.items():
        rendered = render_seeds(cluster, SECRETS)
        for node in cluster.nodes:
            seed = {
                f: rendered[f"cloud-init/{node.name}/{f}"].text
                for f in ("user-data", "meta-data", "network-config")
            }
            out.append((f"{cluster_name}/{node.name}", seed))
    return out


SEEDS = all_seeds()


def loaded(text: str) -> Any:
    return yamlio.load_all_plain(text)[0]


def manifests(cluster: Cluster) -> dict[str, list[dict[str, Any]]]:
    files = loaded(node_seed(cluster, SECRETS, cluster.first_server)["user-data"])["write_files"]
    return {
        f["path"]: yamlio.load_all_plain(f["content"])
        for f in files
        if f["path"].startswith(MANIFESTS_DIR)
    }


def objects(kind: str) -> list[dict[str, Any]]:
    found = []
    for cluster in (*CLUSTERS.values(), sized(1, 0)):
        for docs in manifests(cluster).values():
            found += [d for d in docs if d["kind"] == kind]
    return found


# ---- cloud-init JSON schemas -----------------------------------------------------------


def test_every_user_data_matches_the_cloud_config_schema(upstream: Path) -> None:
    schema = json.loads((upstream / "cloud-init" / "schema-cloud-config-v1.json").read_text())
    validator = jsonschema.Draft4Validator(schema)
    for name, seed in SEEDS:
        errors = [e.message for e in validator.iter_errors(loaded(seed["user-data"]))]
        assert not errors, f"{name}: {errors}"


def test_every_network_config_matches_the_v2_schema(upstream: Path) -> None:
    schema = json.loads((upstream / "cloud-init" / "schema-network-config-v2.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    for name, seed in SEEDS:
        errors = [e.message for e in validator.iter_errors(loaded(seed["network-config"]))]
        assert not errors, f"{name}: {errors}"


# ---- K3s flags -------------------------------------------------------------------------


def test_every_k3s_key_is_a_flag_of_the_nodes_role(upstream: Path) -> None:
    flags = k3s_flags(upstream)
    checked = set()
    for name, seed in SEEDS:
        files = {f["path"]: f for f in loaded(seed["user-data"])["write_files"]}
        config = loaded(files[CONFIG_PATH]["content"])
        role = "server" if "tls-san" in config else "agent"
        checked.add(role)
        unknown = set(config) - set(flags[role])
        assert not unknown, f"{name}: {sorted(unknown)} are not K3s {role} flags"
        if role == "server":
            assert "agent-token" in config, name  # so the check above covered it
    datastore = sized(3, 1, datastore_endpoint="postgres://k3s@db.lan:5432/k3s")
    for node in datastore.servers:
        config = loaded(
            {
                f["path"]: f
                for f in loaded(node_seed(datastore, SECRETS, node)["user-data"])["write_files"]
            }[CONFIG_PATH]["content"]
        )
        assert set(config) <= set(flags["server"])
    assert checked == {"server", "agent"}


# ---- manifests against CRDs and Kubernetes ---------------------------------------------


@pytest.mark.parametrize(
    "helm_controller", ["k3s-helm-controller-v0.17.1", "k3s-helm-controller-v0.17.7"]
)
def test_helm_chart_matches_the_helm_controller_crd(upstream: Path, helm_controller: str) -> None:
    charts = objects("HelmChart")
    assert charts
    for chart in charts:
        validate_custom_resource(chart, upstream / helm_controller)


def test_flux_operator_values_exist_in_the_chart_and_match_its_schema(upstream: Path) -> None:
    defaults = chart_defaults(upstream, "flux-operator", FLUX_OPERATOR_VERSION)
    values = flux_operator_values()
    assert set(values) <= set(defaults)
    schema = chart_values_schema(upstream, "flux-operator", FLUX_OPERATOR_VERSION)
    assert schema is not None
    jsonschema.validate(deep_merge(defaults, values), schema)
    for chart in objects("HelmChart"):
        assert loaded(chart["spec"]["valuesContent"]) == values


def test_flux_instance_matches_its_crd(upstream: Path) -> None:
    instances = objects("FluxInstance")
    assert any("pullSecret" in i["spec"]["sync"] for i in instances)
    for instance in instances:
        validate_custom_resource(instance, upstream / "flux-operator")


def test_kube_vip_and_namespaces_are_valid_kubernetes_objects() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kinds = set()
    for kind in CORE_KINDS:
        for obj in objects(kind):
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            kinds.add(kind)
    assert kinds == set(CORE_KINDS)


CORE_KINDS = ("DaemonSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Namespace")


def test_the_manifests_folder_holds_nothing_but_flux_kube_vip_and_namespaces() -> None:
    """Anything else would need its own leak review below; a Secret never goes here."""
    kinds = {d["kind"] for c in CLUSTERS.values() for docs in manifests(c).values() for d in docs}
    assert kinds == {*CORE_KINDS, "HelmChart", "FluxInstance"}


# ---- K3s's deploy controller keeps what it applies in an annotation -------------------
# Ported from rancher/wrangler pkg/apply/desiredset_compare.go (pruneValues, pruneList,
# knownListKeys), which K3s's deploy controller runs on every object of the manifests folder
# before it stores it, JSON-encoded, in `objectset.rio.cattle.io/applied` on the object.
WRANGLER_KNOWN_LIST_KEYS = frozenset(
    {
        "apiVersion",
        "containerPort",
        "devicePath",
        "ip",
        "kind",
        "mountPath",
        "name",
        "port",
        "topologyKey",
        "type",
    }
)
WRANGLER_MAX_STRING = 64


def prune_values(data: dict[str, Any], is_list: bool = False) -> dict[str, Any]:
    """wrangler's pruneValues: strings over 64 characters cut to their first 64, bytes
    dropped; in a map inside a list, the known keys kept whole."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            result[key] = prune_values(value)
        elif isinstance(value, list):
            result[key] = prune_list(value)
        elif is_list and key in WRANGLER_KNOWN_LIST_KEYS:
            result[key] = value
        elif isinstance(value, str) and len(value) > WRANGLER_MAX_STRING:
            result[key] = value[:WRANGLER_MAX_STRING]
        elif isinstance(value, bytes):
            result[key] = None
        else:
            result[key] = value
    return result


def prune_list(data: list[Any]) -> list[Any]:
    """wrangler's pruneList: maps pruned as list members, lists recursed, the rest (strings of
    any length too) kept whole."""
    return [
        prune_values(v, is_list=True)
        if isinstance(v, dict)
        else prune_list(v)
        if isinstance(v, list)
        else v
        for v in data
    ]


def applied_annotation(doc: dict[str, Any]) -> str:
    return json.dumps(prune_values(doc))


def leaks(text: str, secrets: Secrets) -> list[str]:
    """The secret values, or 64-character prefixes of them, that text holds."""
    found = []
    for value in secrets.values():
        # json.dumps escapes newlines and quotes; compare each value the way JSON carries it.
        for form in {value, value[:WRANGLER_MAX_STRING]}:
            if json.dumps(form)[1:-1] in text:
                found.append(form)
    return found


def test_the_wrangler_port_truncates_as_wrangler_does() -> None:
    long = "x" * 70
    doc = {
        "spec": {"a": long, "b": "short", "c": b"raw", "n": 3},
        "items": [{"name": long, "other": long}, long],
    }
    assert prune_values(doc) == {
        "spec": {"a": "x" * 64, "b": "short", "c": None, "n": 3},
        "items": [{"name": long, "other": "x" * 64}, long],
    }


def test_a_secret_in_the_manifests_folder_would_leak_through_the_annotation() -> None:
    """The check below bites: a Secret's value, long or short, shows in the annotation."""
    secret = {"kind": "Secret", "stringData": {"age.agekey": EVERY_SECRET.age_key, "t": "tok"}}
    assert EVERY_SECRET.age_key and len(EVERY_SECRET.age_key) > WRANGLER_MAX_STRING
    assert leaks(applied_annotation(secret), EVERY_SECRET) == [
        EVERY_SECRET.age_key[:WRANGLER_MAX_STRING]
    ]
    short = dataclasses.replace(EVERY_SECRET, k3s_token="tok")
    assert "tok" in leaks(applied_annotation(secret), short)


def private_https(cluster: Cluster) -> Cluster:
    return dataclasses.replace(
        cluster,
        cluster=dataclasses.replace(
            cluster.cluster,
            git=dataclasses.replace(
                cluster.cluster.git, url="https://gitea.lan/me/home-ops.git", private=True
            ),
        ),
    )


LEAK_CLUSTERS = {
    **{name: fixture_cluster(name) for name in GOLDEN_FIXTURES},
    "private-https": private_https(fixture_cluster("seeds-ha")),
}


@pytest.mark.parametrize("name", LEAK_CLUSTERS)
def test_no_secret_reaches_k3s_s_applied_annotation(name: str) -> None:
    cluster = LEAK_CLUSTERS[name]
    files = loaded(node_seed(cluster, EVERY_SECRET, cluster.first_server)["user-data"])
    in_folder = [f for f in files["write_files"] if f["path"].startswith(f"{MANIFESTS_DIR}/")]
    assert in_folder
    for item in in_folder:
        for doc in yamlio.load_all_plain(item["content"]):
            assert doc["kind"] != "Secret", item["path"]
            annotation = applied_annotation(doc)
            assert not leaks(annotation, EVERY_SECRET), f"{item['path']}: {doc['kind']}"


# ---- Debian's real cloud-init (22.4 in CI) ---------------------------------------------


def cloud_init() -> str:
    found = shutil.which("cloud-init")
    if found is None:
        pytest.skip(
            "cloud-init is not installed (CI installs Debian's; apt-get install cloud-init)"
        )
    return found


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# One seed per role and layout is enough for the binary; the schemas above cover every node.
SAMPLES = [
    s
    for s in SEEDS
    if s[0]
    in (
        "seeds-ha/k3s-server-1",
        "seeds-ha/k3s-server-2",
        "seeds-ha/k3s-agent-1",
        "seeds-single/tiny-1",
    )
]


@pytest.mark.parametrize(("name", "seed"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_real_cloud_init_accepts_the_seed(name: str, seed: dict[str, str], tmp_path: Path) -> None:
    binary = cloud_init()
    for file_name, text in seed.items():
        (tmp_path / file_name).write_text(text)
    schema = run([binary, "schema", "-c", "user-data"], tmp_path)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    for output in ("eni", "netplan"):
        out = tmp_path / output
        convert = run(
            [
                binary,
                "devel",
                "net-convert",
                "-p",
                "network-config",
                "-k",
                "yaml",
                "-D",
                "debian",
                "-O",
                output,
                "-d",
                str(out),
            ],
            tmp_path,
        )
        assert convert.returncode == 0, f"{output}: {convert.stdout}{convert.stderr}"
        rendered = "\n".join(p.read_text() for p in out.rglob("*") if p.is_file())
        ip = loaded(seed["network-config"])["network"]["ethernets"]["lan"]["addresses"][0]
        assert ip in rendered
        if output == "eni":
            assert "route add default gw" in rendered  # the default route survived
        else:
            assert "to: 0.0.0.0/0" in rendered
