"""The Flux tree's content: layout, component settings, user overrides, golden tree."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from generator import yamlio
from generator.render import charts, k3s
from generator.render import components as comps
from generator.render.gitops import render_gitops
from generator.render.output import RenderedFile
from generator.render.templating import HEADER
from tests.render.test_gitops_cases import (
    SECRETS,
    cluster_from,
    cluster_with,
    default_cluster,
    raw_fixture,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "gitops-default"


def one(rendered: dict[str, RenderedFile], path: str) -> dict[str, Any]:
    docs = yamlio.load_all_plain(rendered[path].text)
    assert len(docs) == 1, path
    found: dict[str, Any] = docs[0]
    return found


def values(rendered: dict[str, RenderedFile], folder: str) -> dict[str, Any]:
    release = one(rendered, f"gitops/infrastructure/controllers/{folder}/release.yaml")
    found: dict[str, Any] = release["spec"]["values"]
    return found


@pytest.fixture(scope="module")
def default() -> dict[str, RenderedFile]:
    return render_gitops(default_cluster(), SECRETS)


# --- layout ----------------------------------------------------------------------------------


def test_every_file_starts_with_the_header_and_parses(default: dict[str, RenderedFile]) -> None:
    for path, item in default.items():
        assert item.text.splitlines()[0] == HEADER, path
        # Only the Secrets hold secret values, and those the workspace encrypts.
        assert item.secret == item.sops == path.endswith(".sops.yaml"), path
        if path.endswith(".yaml"):
            assert yamlio.load_all_plain(item.text), path


def test_one_object_per_file_except_the_cluster_kustomizations(
    default: dict[str, RenderedFile],
) -> None:
    for path, item in default.items():
        if path.endswith(".yaml") and not path.startswith("gitops/clusters/home/"):
            assert len(yamlio.load_all_plain(item.text)) == 1, path


def test_each_controller_folder_has_namespace_repository_release(
    default: dict[str, RenderedFile],
) -> None:
    for spec in charts.SPECS:
        base = f"gitops/infrastructure/controllers/{spec.folder}"
        kinds = [
            one(default, f"{base}/{n}.yaml")["kind"] for n in ("namespace", "repository", "release")
        ]
        assert kinds == ["Namespace", "HelmRepository", "HelmRelease"]
        listed = one(default, f"{base}/kustomization.yaml")["resources"]
        secrets = ["grafana-admin.sops.yaml"] if spec.key == "monitoring" else []
        assert listed == ["namespace.yaml", *secrets, "repository.yaml", "release.yaml"]


def test_each_component_has_its_own_kustomizations(default: dict[str, RenderedFile]) -> None:
    infra = yamlio.load_all_plain(default["gitops/clusters/home/infrastructure.yaml"].text)
    app = one(default, "gitops/clusters/home/apps.yaml")
    graph = {k["metadata"]["name"]: k["spec"].get("dependsOn", []) for k in infra}
    assert graph == {
        "infra-metallb": [],
        "config-metallb": [{"name": "infra-metallb"}],
        "infra-cert-manager": [],
        "config-cert-manager": [{"name": "infra-cert-manager"}],
        "infra-traefik": [],
        "infra-longhorn": [],
        "infra-monitoring": [],
    }
    paths = {k["metadata"]["name"]: k["spec"]["path"] for k in infra}
    assert paths["infra-longhorn"] == "./gitops/infrastructure/controllers/longhorn"
    assert paths["config-metallb"] == "./gitops/infrastructure/configs/metallb"
    # whoami's Ingress names Traefik's class and asks the CA issuer for its certificate.
    assert app["spec"]["dependsOn"] == [{"name": "infra-traefik"}, {"name": "config-cert-manager"}]
    for k in [*infra, app]:
        assert k["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        assert k["spec"]["wait"] is True
        assert k["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
        assert k["spec"]["path"].startswith("./gitops/")
        assert k["metadata"]["namespace"] == "flux-system"


def test_pinned_chart_versions(default: dict[str, RenderedFile]) -> None:
    pinned = {}
    for spec in charts.SPECS:
        chart = one(default, f"gitops/infrastructure/controllers/{spec.folder}/release.yaml")
        pinned[chart["spec"]["chart"]["spec"]["chart"]] = chart["spec"]["chart"]["spec"]["version"]
    assert pinned == {
        "traefik": "41.3.0",
        "metallb": "0.16.1",
        "longhorn": "1.12.1",
        "kube-prometheus-stack": "88.5.3",
        "cert-manager": "v1.21.1",
    }


def test_render_is_deterministic() -> None:
    assert render_gitops(default_cluster(), SECRETS) == render_gitops(default_cluster(), SECRETS)


def test_golden_tree(default: dict[str, RenderedFile], update_golden: bool) -> None:
    if update_golden:
        for old in GOLDEN.rglob("*") if GOLDEN.exists() else []:
            if old.is_file():
                old.unlink()
        for rel, item in default.items():
            target = GOLDEN / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item.text)
    on_disk = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*") if p.is_file()}
    assert on_disk == set(default), "file set differs from the golden tree (--update-golden)"
    for rel, item in default.items():
        assert (GOLDEN / rel).read_text() == item.text, f"{rel} differs (--update-golden)"


# --- components ------------------------------------------------------------------------------


def test_traefik_gets_the_pools_first_address_and_redirects(
    default: dict[str, RenderedFile],
) -> None:
    got = values(default, "traefik")
    assert got["service"]["annotations"] == {"metallb.io/loadBalancerIPs": "10.0.0.200"}
    redirect = got["ports"]["web"]["http"]["redirections"]["entryPoint"]
    assert redirect == {"to": "websecure", "scheme": "https", "permanent": True}
    assert got["ingressRoute"] == {"dashboard": {"enabled": False}}  # dashboard stays unexposed
    release = one(default, "gitops/infrastructure/controllers/traefik/release.yaml")["spec"]
    assert release["install"]["crds"] == release["upgrade"]["crds"] == "CreateReplace"


def test_traefik_ip_and_dashboard_options() -> None:
    cluster = cluster_with(traefik={"enabled": True, "ip": "10.0.0.220", "dashboard": True})
    got = values(render_gitops(cluster, SECRETS), "traefik")
    assert got["service"]["annotations"]["metallb.io/loadBalancerIPs"] == "10.0.0.220"
    assert got["ingressRoute"]["dashboard"]["enabled"] is True
    assert "traefik.lab.example.com" in got["ingressRoute"]["dashboard"]["matchRule"]


def test_metallb_is_l2_only_privileged_and_pools_the_range(
    default: dict[str, RenderedFile],
) -> None:
    assert values(default, "metallb") == {"frrk8s": {"enabled": False}}
    ns = one(default, "gitops/infrastructure/controllers/metallb/namespace.yaml")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    pool = one(default, "gitops/infrastructure/configs/metallb/ipaddresspool.yaml")
    assert pool["spec"]["addresses"] == ["10.0.0.200-10.0.0.250"]
    l2 = one(default, "gitops/infrastructure/configs/metallb/l2advertisement.yaml")
    assert l2["spec"]["ipAddressPools"] == [pool["metadata"]["name"]]


def test_longhorn_defaults(default: dict[str, RenderedFile]) -> None:
    got = values(default, "longhorn")
    assert got["preUpgradeChecker"] == {"jobEnabled": False}
    assert got["persistence"] == {"defaultClass": False, "defaultClassReplicaCount": 3}
    assert got["defaultSettings"]["defaultReplicaCount"] == '{"v1":"3","v2":"3"}'


@pytest.mark.parametrize(("nodes", "expected"), [(1, 1), (2, 2), (5, 3)])
def test_longhorn_replicas_are_min_three_and_node_count(nodes: int, expected: int) -> None:
    raw = raw_fixture()
    raw["nodes"] = raw["nodes"][:1] + raw["nodes"][3 : 3 + nodes - 1]
    raw["network"].pop("api_vip")
    raw["components"]["longhorn"] = True
    got = values(render_gitops(cluster_from(raw), SECRETS), "longhorn")
    assert got["persistence"]["defaultClassReplicaCount"] == expected


def test_longhorn_options_win() -> None:
    cluster = cluster_with(longhorn={"enabled": True, "replicas": 2, "default_storage_class": True})
    got = values(render_gitops(cluster, SECRETS), "longhorn")
    assert got["persistence"] == {"defaultClass": True, "defaultClassReplicaCount": 2}


def test_monitoring_scrapes_what_k3s_exposes(default: dict[str, RenderedFile]) -> None:
    got = values(default, "monitoring")
    servers = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
    for key, port in (
        ("kubeControllerManager", k3s.CONTROLLER_MANAGER_PORT),
        ("kubeScheduler", k3s.SCHEDULER_PORT),
    ):
        assert got[key]["endpoints"] == servers
        assert got[key]["service"] == {"port": port, "targetPort": port}
        monitor = got[key]["serviceMonitor"]
        kept = {k: v for k, v in monitor.items() if k != "metricRelabelings"}
        assert kept == {"https": True, "insecureSkipVerify": True}
    etcd = got["kubeEtcd"]
    assert etcd["endpoints"] == servers
    assert etcd["service"]["port"] == k3s.ETCD_METRICS_PORT
    assert etcd["serviceMonitor"]["scheme"] == "http"
    proxy = got["kubeProxy"]
    assert proxy["endpoints"] == [*servers, "10.0.0.21", "10.0.0.22"]
    assert proxy["service"]["port"] == k3s.KUBE_PROXY_PORT


def test_monitoring_with_external_datastore_skips_etcd() -> None:
    raw = raw_fixture()
    raw["cluster"]["datastore_endpoint"] = "postgres://k3s@db.lan:5432/k3s"
    got = values(render_gitops(cluster_from(raw), SECRETS), "monitoring")
    assert got["kubeEtcd"] == {"enabled": False}


def test_monitoring_retention_storage_and_grafana(default: dict[str, RenderedFile]) -> None:
    got = values(default, "monitoring")
    spec = got["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "7d"
    assert spec["retentionSize"] == "8192MB"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == "10Gi"
    grafana = got["grafana"]
    assert grafana["admin"]["existingSecret"] == comps.GRAFANA_ADMIN_SECRET
    assert grafana["ingress"]["hosts"] == ["grafana.lab.example.com"]
    assert grafana["ingress"]["annotations"] == {"cert-manager.io/cluster-issuer": "homelab-ca"}
    assert grafana["ingress"]["tls"] == [
        {"hosts": ["grafana.lab.example.com"], "secretName": "grafana-tls"}
    ]
    no_password = str(got)
    assert "adminPassword" not in no_password


def test_monitoring_options() -> None:
    cluster = cluster_with(monitoring={"enabled": True, "retention": "30d", "storage_size": "50Gi"})
    spec = values(render_gitops(cluster, SECRETS), "monitoring")["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["retentionSize"] == "40960MB"


def test_grafana_without_traefik_has_no_ingress_and_without_cert_manager_no_annotation() -> None:
    got = values(render_gitops(cluster_with({"monitoring"}), SECRETS), "monitoring")
    assert "ingress" not in got["grafana"]
    got = values(render_gitops(cluster_with({"monitoring", "traefik"}), SECRETS), "monitoring")
    assert "annotations" not in got["grafana"]["ingress"]
    assert got["grafana"]["ingress"]["tls"] == [{"hosts": ["grafana.lab.example.com"]}]


def test_selfsigned_chain(default: dict[str, RenderedFile]) -> None:
    base = "gitops/infrastructure/configs/cert-manager"
    root = one(default, f"{base}/selfsigned-issuer.yaml")
    cert = one(default, f"{base}/root-ca.yaml")
    ca = one(default, f"{base}/ca-issuer.yaml")
    assert root["spec"] == {"selfSigned": {}}
    assert cert["spec"]["isCA"] is True
    assert cert["spec"]["issuerRef"]["name"] == root["metadata"]["name"]
    assert cert["metadata"]["namespace"] == "cert-manager"  # the ClusterIssuer's secret home
    assert ca["spec"] == {"ca": {"secretName": cert["spec"]["secretName"]}}
    assert values(default, "cert-manager") == {"crds": {"enabled": True}}


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("production", "https://acme-v02.api.letsencrypt.org/directory"),
        ("staging", "https://acme-staging-v02.api.letsencrypt.org/directory"),
    ],
)
def test_acme_issuer(server: str, url: str) -> None:
    cluster = cluster_with(
        cert_manager={
            "enabled": True,
            "issuer": "acme",
            "acme_email": "me@example.com",
            "acme_server": server,
            "dns_provider": "cloudflare",
        }
    )
    rendered = render_gitops(cluster, SECRETS)
    issuer = one(rendered, "gitops/infrastructure/configs/cert-manager/acme-issuer.yaml")
    acme = issuer["spec"]["acme"]
    assert (acme["server"], acme["email"]) == (url, "me@example.com")
    token = acme["solvers"][0]["dns01"]["cloudflare"]["apiTokenSecretRef"]
    assert token == {"name": "cloudflare-api-token", "key": "api-token"}
    assert not any("selfsigned" in p or "root-ca" in p for p in rendered)
    ingress = one(rendered, "gitops/apps/whoami/ingress.yaml")
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert values(rendered, "cert-manager")["dns01RecursiveNameserversOnly"] is True


def test_whoami_demo(default: dict[str, RenderedFile]) -> None:
    ingress = one(default, "gitops/apps/whoami/ingress.yaml")
    assert ingress["spec"]["rules"][0]["host"] == "whoami.lab.example.com"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["whoami.lab.example.com"], "secretName": "whoami-tls"}
    ]
    service = one(default, "gitops/apps/whoami/service.yaml")
    deployment = one(default, "gitops/apps/whoami/deployment.yaml")
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_whoami_can_be_switched_off() -> None:
    rendered = render_gitops(cluster_with({"traefik", "metallb"}), SECRETS)
    assert not any("whoami" in p for p in rendered)
    assert "gitops/apps/README.md" in rendered  # the apps folder stays for the user's own
    assert one(rendered, "gitops/clusters/home/apps.yaml")["spec"]["path"] == "./gitops/apps"


# --- overrides from cluster.yaml -------------------------------------------------------------


def test_user_values_deep_merge_over_ours_and_version_overrides() -> None:
    cluster = cluster_with(
        traefik={
            "enabled": True,
            "version": "41.4.0",
            "values": {"service": {"annotations": {"x": "y"}}, "deployment": {"replicas": 2}},
        }
    )
    release = one(
        render_gitops(cluster, SECRETS), "gitops/infrastructure/controllers/traefik/release.yaml"
    )
    got = release["spec"]["values"]
    assert release["spec"]["chart"]["spec"]["version"] == "41.4.0"
    assert got["service"]["annotations"] == {"metallb.io/loadBalancerIPs": "10.0.0.200", "x": "y"}
    assert got["deployment"] == {"replicas": 2}
    assert got["ports"]["web"]["http"]["redirections"]["entryPoint"]["to"] == "websecure"


def test_user_values_replace_lists_and_scalars() -> None:
    cluster = cluster_with(
        monitoring={"enabled": True, "values": {"kubeProxy": {"endpoints": ["10.0.0.99"]}}}
    )
    got = values(render_gitops(cluster, SECRETS), "monitoring")
    assert got["kubeProxy"]["endpoints"] == ["10.0.0.99"]
    assert got["kubeProxy"]["service"]["port"] == k3s.KUBE_PROXY_PORT


def test_deep_merge_does_not_share_user_data() -> None:
    user = {"a": {"b": [1]}}
    merged = comps.deep_merge({"a": {"c": 1}}, user)
    merged["a"]["b"].append(2)
    assert user == {"a": {"b": [1]}}


def test_traefik_ip_is_inside_the_pool(default: dict[str, RenderedFile]) -> None:
    cluster = default_cluster()
    address = ipaddress.IPv4Address(comps.traefik_ip(cluster))
    assert cluster.network.metallb_start <= address <= cluster.network.metallb_end
