"""Seeds: role invariants, secrets placement, errors, size limits, and golden trees."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from generator import naming, yamlio
from generator.config.model import COMPONENT_NAMES, COMPONENTS, Cluster
from generator.errors import HomelabError
from generator.proxmox import seediso
from generator.render import bootstrap, prepared, render_all
from generator.render.k3s import CONFIG_PATH, INSTALL_UNIT_PATH
from generator.render.manifests import MANIFESTS_DIR
from generator.render.prepared import PACKAGES_SCRIPT
from generator.render.seeds import node_seed, render_seeds
from generator.render.templating import HEADER
from generator.secrets import Secrets
from tests.render.seed_clusters import (
    GOLDEN_FIXTURES,
    SECRETS,
    cluster_from,
    fixture_cluster,
    fixture_data,
    sized,
    topologies,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
TOPOLOGIES = topologies()
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def user_data(seed: dict[str, str]) -> dict[str, Any]:
    text = seed["user-data"]
    assert text.startswith("#cloud-config\n" + HEADER + "\n")
    loaded: dict[str, Any] = yamlio.load_all_plain(text)[0]
    return loaded


def written(seed: dict[str, str]) -> dict[str, dict[str, str]]:
    return {f["path"]: f for f in user_data(seed)["write_files"]}


def k3s_config(seed: dict[str, str]) -> dict[str, Any]:
    loaded: dict[str, Any] = yamlio.load_all_plain(written(seed)[CONFIG_PATH]["content"])[0]
    return loaded


def seeds_of(cluster: Cluster) -> dict[str, dict[str, str]]:
    return seeds_with(cluster, SECRETS)


def seeds_with(cluster: Cluster, secrets: Secrets) -> dict[str, dict[str, str]]:
    rendered = render_seeds(cluster, secrets)
    out: dict[str, dict[str, str]] = {}
    for path, item in rendered.items():
        _, node, name = path.split("/")
        out.setdefault(node, {})[name] = item.text
    return out


def configs_of(cluster: Cluster) -> dict[str, dict[str, Any]]:
    return {name: k3s_config(seed) for name, seed in seeds_of(cluster).items()}


# ---- role invariants -------------------------------------------------------------------


@pytest.fixture(params=sorted(TOPOLOGIES), scope="module")
def topology(request: pytest.FixtureRequest) -> Cluster:
    return TOPOLOGIES[request.param]


def test_exactly_one_node_initialises_the_cluster(topology: Cluster) -> None:
    configs = configs_of(topology)
    assert [n for n, c in configs.items() if c.get("cluster-init")] == [topology.first_server.name]


def test_every_other_node_joins_through_the_api_host(topology: Cluster) -> None:
    configs = configs_of(topology)
    expected = f"https://{topology.network.api_vip or topology.first_server.ip}:6443"
    for node in topology.nodes[1:]:
        assert configs[node.name]["server"] == expected
    assert "server" not in configs[topology.first_server.name]


def test_servers_share_the_server_token_and_agents_join_with_the_agent_token(
    topology: Cluster,
) -> None:
    configs = configs_of(topology)
    for node in topology.nodes:
        config = configs[node.name]
        if node.is_server:
            assert config["token"] == SECRETS.k3s_token, node.name
            assert config["agent-token"] == SECRETS.agent_token, node.name
        else:
            assert config["token"] == SECRETS.agent_token, node.name
            assert "agent-token" not in config, node.name


def test_a_lab_without_an_agent_token_keeps_joining_agents_with_the_server_token() -> None:
    """Labs made before the agent token existed: their running agents hold k3s_token."""
    cluster = sized(3, 2)
    older = dataclasses.replace(SECRETS, agent_token=None)
    configs = {n: k3s_config(s) for n, s in seeds_with(cluster, older).items()}
    assert {c["token"] for c in configs.values()} == {SECRETS.k3s_token}
    assert not any("agent-token" in c for c in configs.values())


def test_every_server_has_the_vip_and_api_name_in_tls_san(topology: Cluster) -> None:
    configs = configs_of(topology)
    for node in topology.servers:
        sans = configs[node.name]["tls-san"]
        assert f"api.{topology.cluster.domain}" in sans
        assert str(topology.api_host) in sans


SERVER_WIDE = (
    "tls-san",
    "cluster-cidr",
    "service-cidr",
    "flannel-backend",
    "disable",
    "write-kubeconfig-mode",
    "etcd-expose-metrics",
    "datastore-endpoint",
    "agent-token",
)


def test_server_wide_settings_are_identical(topology: Cluster) -> None:
    configs = configs_of(topology)
    shared = [{k: configs[n.name].get(k) for k in SERVER_WIDE} for n in topology.servers]
    assert all(s == shared[0] for s in shared)
    assert shared[0]["agent-token"] == SECRETS.agent_token
    assert shared[0]["flannel-backend"] == "vxlan"
    assert shared[0]["write-kubeconfig-mode"] == "0600"


def test_node_ip_and_name_match_the_node(topology: Cluster) -> None:
    configs = configs_of(topology)
    for node in topology.nodes:
        assert configs[node.name]["node-ip"] == str(node.ip)
        assert configs[node.name]["node-name"] == node.name


def test_rendering_twice_is_byte_identical(topology: Cluster) -> None:
    assert render_seeds(topology, SECRETS) == render_seeds(topology, SECRETS)


def test_the_per_role_shortcut_matches_rendering_each_node_alone(topology: Cluster) -> None:
    rendered = render_seeds(topology, SECRETS)
    for node in topology.nodes:
        for name, text in node_seed(topology, SECRETS, node).items():
            assert rendered[f"cloud-init/{node.name}/{name}"].text == text


def test_an_odd_node_name_falls_back_to_rendering_alone() -> None:
    cluster = sized(1, 2)
    odd = dataclasses.replace(cluster.nodes[2], name="yes")  # YAML 1.1 would read it as a bool
    cluster = dataclasses.replace(cluster, nodes=(*cluster.nodes[:2], odd))
    seed = seeds_of(cluster)["yes"]
    assert "hostname: 'yes'" in seed["user-data"]
    assert user_data(seed)["hostname"] == "yes"
    assert seed == node_seed(cluster, SECRETS, odd)


# ---- roles and options -----------------------------------------------------------------


def test_agents_install_in_agent_mode_and_servers_in_server_mode() -> None:
    cluster = sized(3, 1)
    seeds = seeds_of(cluster)
    for node in cluster.nodes:
        script = written(seeds[node.name])["/usr/local/sbin/homelab-gen-k3s-install"]["content"]
        mode = "agent" if node.role == "agent" else "server"
        assert f"INSTALL_K3S_EXEC='{mode}'" in script
        assert "INSTALL_K3S_VERSION='v1.33.4+k3s1'" in script
        assert "INSTALL_K3S_SKIP_START=true" in script
        service = "k3s-agent" if mode == "agent" else "k3s"
        assert f"systemctl start --no-block '{service}'" in script
        assert "/v1.33.4%2Bk3s1/install.sh" in script


def test_the_install_unit_retries_forever_and_is_started_without_blocking() -> None:
    seed = seeds_of(sized(1, 1))["agent-0"]
    unit = written(seed)[INSTALL_UNIT_PATH]["content"]
    for line in (
        "Type=oneshot",
        "Restart=on-failure",
        "StartLimitIntervalSec=0",
        "After=network-online.target",
        "WantedBy=multi-user.target",
    ):
        assert line in unit.splitlines()
    runcmd = user_data(seed)["runcmd"]
    assert "systemctl start --no-block homelab-gen-k3s-install.service" in runcmd
    assert "systemctl enable homelab-gen-k3s-install.service" in runcmd


def test_secret_bearing_files_on_the_node_are_0600() -> None:
    seed = seeds_of(fixture_cluster("seeds-single"))["tiny-1"]
    files = written(seed)
    assert files[CONFIG_PATH]["permissions"] == "0600"
    manifests = [p for p in files if p.startswith(MANIFESTS_DIR)]
    values = [p for p in files if p.startswith(f"{bootstrap.VALUES_DIR}/")]
    assert manifests and len(values) == 3  # age.agekey, identity, known_hosts
    for path in manifests + values:
        assert files[path]["permissions"] == "0600", path
    for path in manifests:
        assert DNS_LABEL.match(Path(path).stem), path


def test_only_the_first_server_carries_manifests_and_bootstrap_secrets() -> None:
    cluster = sized(3, 2)
    for name, seed in seeds_of(cluster).items():
        paths = written(seed)
        first = name == cluster.first_server.name
        assert any(p.startswith(MANIFESTS_DIR) for p in paths) == first, name
        assert (bootstrap.UNIT_PATH in paths) == first, name
        assert any(p.startswith(bootstrap.VALUES_DIR) for p in paths) == first, name
        assert SECRETS.age_key not in seed["user-data"] or first, name


def test_a_single_server_with_a_vip_still_gets_kube_vip() -> None:
    data = fixture_data("seeds-single")
    data["network"]["api_vip"] = "192.168.50.10"
    cluster = cluster_from(data)
    files = written(seeds_of(cluster)["tiny-1"])
    assert f"{MANIFESTS_DIR}/homelab-kube-vip.yaml" in files
    assert k3s_config(seeds_of(cluster)["tiny-2"])["server"] == "https://192.168.50.10:6443"
    no_vip = written(seeds_of(fixture_cluster("seeds-single"))["tiny-1"])
    assert f"{MANIFESTS_DIR}/homelab-kube-vip.yaml" not in no_vip


def test_bundled_addons_are_always_disabled_flux_owns_ingress_and_load_balancers() -> None:
    for name in ("seeds-ha", "seeds-single"):
        cluster = fixture_cluster(name)
        configs = configs_of(cluster)
        for node in cluster.nodes:
            if node.is_server:
                assert configs[node.name]["disable"] == ["traefik", "servicelb"], node.name
    data = fixture_data("seeds-single")
    data["components"].update(traefik=False, whoami=False, metallb=False)
    assert configs_of(cluster_from(data))["tiny-1"]["disable"] == ["traefik", "servicelb"]


def test_metrics_are_bound_on_every_node_and_control_plane_on_servers() -> None:
    for cluster in (sized(3, 1), fixture_cluster("seeds-single")):
        configs = configs_of(cluster)
        for node in cluster.nodes:
            config = configs[node.name]
            assert config["kube-proxy-arg"] == ["metrics-bind-address=0.0.0.0"], node.name
            if node.is_server:
                assert config["etcd-expose-metrics"] is True, node.name
                assert config["kube-scheduler-arg"] == ["bind-address=0.0.0.0"], node.name
                assert config["kube-controller-manager-arg"] == ["bind-address=0.0.0.0"]
            else:
                assert "etcd-expose-metrics" not in config, node.name


def test_longhorns_prerequisites_are_on_every_node() -> None:
    for name, cluster in (("seeds-ha", "k3s-agent-1"), ("seeds-single", "tiny-2")):
        seed = user_data(seeds_of(fixture_cluster(name))[cluster])
        packages = next(f for f in seed["write_files"] if f["path"] == PACKAGES_SCRIPT)
        assert "open-iscsi nfs-common;" in packages["content"], name
        assert "systemctl enable --now iscsid" in seed["runcmd"], name
        reconfigure = [c for c in seed["runcmd"] if "multipathd reconfigure" in c]
        assert reconfigure == [
            "if systemctl is-active --quiet multipathd; then multipathd reconfigure; fi"
        ]
        blacklist = next(f for f in seed["write_files"] if "multipath" in f["path"])
        assert 'devnode "^sd[a-z0-9]+"' in blacklist["content"]


@pytest.mark.parametrize("fixture", GOLDEN_FIXTURES)
@pytest.mark.parametrize("component", COMPONENT_NAMES)
def test_switching_a_component_changes_no_seed(fixture: str, component: str) -> None:
    """cloud-init never runs again, so nothing in a seed may wait for a component's switch:
    every file of every node, the first server's manifests and bootstrap Secrets included."""
    data = fixture_data(fixture)
    data["components"] = {name: True for name in COMPONENT_NAMES}
    every = render_seeds(cluster_from(data), SECRETS)
    dependents = [c.name for c in COMPONENTS if component in c.needs]
    data["components"].update({name: False for name in (component, *dependents)})
    assert render_seeds(cluster_from(data), SECRETS) == every
    data["components"] = {name: False for name in COMPONENT_NAMES}
    assert render_seeds(cluster_from(data), SECRETS) == every


def test_host_login_and_packages() -> None:
    ha = user_data(seeds_of(fixture_cluster("seeds-ha"))["k3s-agent-1"])
    assert ha["hostname"] == "k3s-agent-1"
    assert ha["fqdn"] == "k3s-agent-1.lab.example.com"
    assert ha["manage_etc_hosts"] is True
    assert ha["locale"] == "C.UTF-8"
    assert ha["package_upgrade"] is False
    assert "packages" not in ha  # cloud-init's module would run apt-get update
    assert ha["runcmd"][0] == f"{PACKAGES_SCRIPT} || packages_failed=1"
    assert ha["runcmd"][-1] == '[ -z "${packages_failed:-}" ] || exit 1'
    assert "qemu-guest-agent" in prepared.packages()
    assert "systemctl start qemu-guest-agent" in ha["runcmd"]
    (user,) = ha["users"]
    assert user["lock_passwd"] is True and user["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    assert user["ssh_authorized_keys"] == list(fixture_cluster("seeds-ha").ssh_authorized_keys)
    single = user_data(seeds_of(fixture_cluster("seeds-single"))["tiny-2"])
    assert single["package_upgrade"] is True
    assert single["users"][0]["name"] == "ops"


def test_meta_data_keeps_its_instance_id_when_user_data_changes() -> None:
    cluster = fixture_cluster("seeds-ha")
    node = cluster.nodes[3]
    before = node_seed(cluster, SECRETS, node)
    rotated = dataclasses.replace(SECRETS, k3s_token="another", agent_token="another")
    after = node_seed(cluster, rotated, node)
    assert before["user-data"] != after["user-data"]
    assert before["meta-data"] == after["meta-data"]
    meta = yamlio.load_all_plain(before["meta-data"])[0]
    assert meta == {"instance-id": naming.instance_id(cluster, node), "local-hostname": node.name}


def test_network_config_matches_the_mac_boot_sets_and_routes_by_0_0_0_0() -> None:
    cluster = fixture_cluster("seeds-ha")
    for node in cluster.nodes:
        text = node_seed(cluster, SECRETS, node)["network-config"]
        assert "default" not in text and "set-name" not in text
        (nic,) = yamlio.load_all_plain(text)[0]["network"]["ethernets"].values()
        assert nic["match"] == {"macaddress": naming.node_mac(cluster.name, node.name).lower()}
        assert nic["addresses"] == [f"{node.ip}/24"]
        assert nic["routes"] == [{"to": "0.0.0.0/0", "via": "10.0.0.1"}]
        assert nic["nameservers"] == {
            "addresses": ["10.0.0.1", "10.0.0.2"],
            "search": ["lab.example.com"],
        }


def test_every_file_starts_with_the_header() -> None:
    for seed in seeds_of(fixture_cluster("seeds-single")).values():
        assert seed["meta-data"].startswith(HEADER)
        assert seed["network-config"].startswith(HEADER)
        assert seed["user-data"].splitlines()[1] == HEADER
        for path, item in written(seed).items():
            if path.startswith(f"{bootstrap.VALUES_DIR}/"):
                continue  # a Secret's value, byte for byte
            assert HEADER in item["content"].splitlines()[:2], path


# ---- external datastore ----------------------------------------------------------------


def test_external_datastore_runs_every_server_against_it_with_the_password() -> None:
    cluster = sized(3, 2, datastore_endpoint="postgres://k3s@db.lan:5432/k3s")
    configs = configs_of(cluster)
    expected = "postgres://k3s:db-pass%2Fwith%3Aodd%40chars@db.lan:5432/k3s"
    for node in cluster.servers:
        assert configs[node.name]["datastore-endpoint"] == expected
        assert "cluster-init" not in configs[node.name] and "server" not in configs[node.name]
    for node in cluster.agents:
        assert configs[node.name]["server"] == "https://10.0.0.10:6443"
        assert "datastore-endpoint" not in configs[node.name]


def test_mysql_datastore_takes_the_password_unescaped() -> None:
    cluster = sized(1, 0, datastore_endpoint="mysql://k3s@tcp(db.lan:3306)/k3s")
    config = configs_of(cluster)["server-1"]
    assert config["datastore-endpoint"] == "mysql://k3s:db-pass/with:odd@chars@tcp(db.lan:3306)/k3s"


def test_datastore_password_without_a_user_part_is_an_error() -> None:
    cluster = sized(1, 0, datastore_endpoint="https://etcd.lan:2379")
    with pytest.raises(HomelabError, match="no user part"):
        render_seeds(cluster, SECRETS)
    no_password = dataclasses.replace(SECRETS, datastore_password=None)
    assert (
        configs_of_with(cluster, no_password)["server-1"]["datastore-endpoint"]
        == "https://etcd.lan:2379"
    )


def configs_of_with(cluster: Cluster, secrets: Any) -> dict[str, dict[str, Any]]:
    return {n.name: k3s_config(node_seed(cluster, secrets, n)) for n in cluster.nodes}


# ---- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", GOLDEN_FIXTURES)
def test_secrets_appear_only_in_user_data(fixture: str) -> None:
    cluster = fixture_cluster(fixture)
    rendered = render_all(cluster, SECRETS)
    for path, item in rendered.items():
        if path.endswith("/user-data"):
            assert item.secret and item.mode == 0o600
            continue
        if item.sops:
            continue  # the workspace encrypts it before it touches the disk
        for value in SECRETS.values():
            for line in value.splitlines():
                assert line not in item.text, f"{path} leaks a secret"
    first = rendered[f"cloud-init/{cluster.first_server.name}/user-data"].text
    assert SECRETS.k3s_token in first


def bootstrap_values(files: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Secret name -> {key: value} as the seed writes them under bootstrap.VALUES_DIR."""
    found: dict[str, dict[str, str]] = {}
    for path, item in files.items():
        if path.startswith(f"{bootstrap.VALUES_DIR}/"):
            name, key = path.removeprefix(f"{bootstrap.VALUES_DIR}/").split("/")
            found.setdefault(name, {})[key] = item["content"]
    return found


def flux_instance(files: dict[str, dict[str, str]]) -> dict[str, Any]:
    docs = yamlio.load_all_plain(files[f"{MANIFESTS_DIR}/homelab-flux-instance.yaml"]["content"])
    found: dict[str, Any] = next(d for d in docs if d["kind"] == "FluxInstance")
    return found


def test_private_ssh_repo_hands_flux_the_deploy_key_and_known_host() -> None:
    files = written(seeds_of(fixture_cluster("seeds-single"))["tiny-1"])
    instance = flux_instance(files)
    assert instance["spec"]["sync"]["url"] == "ssh://git@github.com/me/tiny-ops.git"
    credentials = bootstrap_values(files)[instance["spec"]["sync"]["pullSecret"]]
    assert credentials["identity"] == SECRETS.git_deploy_key
    assert credentials["known_hosts"].startswith("github.com ssh-ed25519 ")
    assert sorted(credentials) == ["identity", "known_hosts"]  # what Flux's ssh auth reads


def test_private_https_repo_hands_flux_the_token() -> None:
    data = fixture_data("seeds-single")
    data["cluster"]["git"]["url"] = "https://gitea.lan/me/tiny-ops.git"
    files = written(seeds_of(cluster_from(data))["tiny-1"])
    pull_secret = flux_instance(files)["spec"]["sync"]["pullSecret"]
    assert bootstrap_values(files)[pull_secret] == {
        "username": "git",
        "password": SECRETS.git_token,
    }


def test_the_age_key_becomes_flux_s_sops_age_secret() -> None:
    files = written(seeds_of(fixture_cluster("seeds-ha"))["k3s-server-1"])
    assert bootstrap_values(files) == {"sops-age": {"age.agekey": SECRETS.age_key}}
    script = files[bootstrap.SCRIPT_PATH]["content"]
    path = "/var/lib/homelab-gen/bootstrap/sops-age/age.agekey"
    commands = script.replace(" \\\n  ", " ").splitlines()  # one line per command
    assert f"create_once sops-age --from-file=age.agekey={path}" in commands
    assert "flux-system" not in bootstrap_values(files)  # a public repo needs no credentials


def test_no_bootstrap_unit_when_there_is_nothing_to_hand_over() -> None:
    """A public repo and no age key (labs made before SOPS): the seed stays as it was."""
    older = dataclasses.replace(SECRETS, age_key=None)
    seed = seeds_with(fixture_cluster("seeds-ha"), older)["k3s-server-1"]
    files = written(seed)
    assert not [p for p in files if "bootstrap" in p]
    assert not [c for c in user_data(seed)["runcmd"] if bootstrap.UNIT in c]


def test_no_manifest_is_a_secret() -> None:
    for fixture in GOLDEN_FIXTURES:
        files = written(seeds_of(fixture_cluster(fixture))[fixture_cluster(fixture).nodes[0].name])
        manifests = [f for p, f in files.items() if p.startswith(f"{MANIFESTS_DIR}/")]
        assert manifests
        for item in manifests:
            kinds = {d["kind"] for d in yamlio.load_all_plain(item["content"])}
            assert "Secret" not in kinds, item["path"]


@pytest.mark.parametrize(
    ("url", "missing", "message"),
    [
        ("git@github.com:me/tiny-ops.git", "git_deploy_key", "no git_deploy_key"),
        ("https://github.com/me/tiny-ops.git", "git_token", "no git_token"),
        ("ssh://git@git.lan/me/tiny-ops.git", None, "no known SSH host key for 'git.lan'"),
    ],
)
def test_private_repo_without_credentials_is_a_clear_error(
    url: str, missing: str | None, message: str
) -> None:
    data = fixture_data("seeds-single")
    data["cluster"]["git"]["url"] = url
    secrets = dataclasses.replace(SECRETS, **{missing: None}) if missing else SECRETS
    with pytest.raises(HomelabError, match=re.escape(message)):
        render_seeds(cluster_from(data), secrets)


def test_seeds_need_no_grafana_or_dns_secret() -> None:
    """Both are SOPS files under gitops/ now; the seed neither carries nor needs them."""
    cluster = fixture_cluster("seeds-single")  # ACME issuer, so it once needed the DNS token
    without = dataclasses.replace(SECRETS, dns_api_token=None, grafana_admin_password="other")
    assert render_seeds(cluster, without) == render_seeds(cluster, SECRETS)


# ---- the bootstrap unit, run against a stand-in k3s ---------------------------------------


def test_the_bootstrap_unit_retries_forever_and_is_started_without_blocking() -> None:
    seed = seeds_of(fixture_cluster("seeds-single"))["tiny-1"]
    unit = written(seed)[bootstrap.UNIT_PATH]["content"].splitlines()
    for line in (
        "Type=oneshot",
        "Restart=on-failure",
        "StartLimitIntervalSec=0",
        f"ExecStart={bootstrap.SCRIPT_PATH}",
        f"ConditionPathExists=!{bootstrap.DONE_MARKER}",
        "WantedBy=multi-user.target",
    ):
        assert line in unit
    assert written(seed)[bootstrap.SCRIPT_PATH]["permissions"] == "0755"
    runcmd = user_data(seed)["runcmd"]
    assert f"systemctl enable {bootstrap.UNIT}" in runcmd
    assert f"systemctl start --no-block {bootstrap.UNIT}" in runcmd
    assert not [c for c in runcmd if bootstrap.UNIT in c and "--no-block" not in c and "start" in c]


# A stand-in for `k3s kubectl`: logs its arguments, answers from $STATE (objects that exist,
# "ready" for the API), and fails the way kubectl does when told to.
FAKE_K3S = """#!/bin/sh
echo "$*" >> "$STATE/calls"
shift  # kubectl
shift  # --request-timeout=30s
case "$1 $2" in
  "get --raw") [ -e "$STATE/ready" ] || exit 1 ;;
  "get namespace"|"get secret")
    [ ! -e "$STATE/broken" ] || exit 1
    [ ! -e "$STATE/$2-$3" ] || echo "$2/$3" ;;
  "create namespace") touch "$STATE/namespace-$3" ;;
  "create secret") touch "$STATE/secret-$3" ;;
  *) exit 3 ;;
esac
"""


def run_bootstrap(tmp_path: Path, *state: str) -> tuple[int, list[str]]:
    files = written(seeds_of(fixture_cluster("seeds-single"))["tiny-1"])
    root = tmp_path / "root"
    text = files[bootstrap.SCRIPT_PATH]["content"].replace("/var/lib/", f"{root}/")
    for path, item in files.items():
        if path.startswith(bootstrap.VALUES_DIR):
            target = root / path.removeprefix("/var/lib/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item["content"])
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "k3s").write_text(FAKE_K3S)
    (tmp_path / "bin" / "k3s").chmod(0o755)
    (tmp_path / "script").write_text(text)
    for name in state:
        (tmp_path / name).touch()
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "STATE": str(tmp_path)}
    done = subprocess.run(
        ["sh", str(tmp_path / "script")], env=env, capture_output=True, check=False
    )
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    return done.returncode, calls


def creates(calls: list[str]) -> list[str]:
    return [c.split(" ", 2)[2] for c in calls if " create " in f" {c.split(' ', 2)[2]}"]


def marker(tmp_path: Path) -> Path:
    return tmp_path / "root" / bootstrap.DONE_MARKER.removeprefix("/var/lib/")


def test_bootstrap_fails_for_systemd_to_retry_until_the_api_answers(tmp_path: Path) -> None:
    code, calls = run_bootstrap(tmp_path)
    assert code != 0
    assert calls == ["kubectl --request-timeout=30s get --raw /readyz"]
    assert not marker(tmp_path).exists()


def test_bootstrap_creates_the_namespace_and_every_secret_then_marks_itself_done(
    tmp_path: Path,
) -> None:
    code, calls = run_bootstrap(tmp_path, "ready")
    assert code == 0
    values = f"{tmp_path}/root/homelab-gen/bootstrap"
    assert creates(calls) == [
        "create namespace flux-system",
        f"create secret generic sops-age -n flux-system --from-file=age.agekey={values}"
        "/sops-age/age.agekey",
        f"create secret generic flux-system -n flux-system --from-file=identity={values}"
        f"/flux-system/identity --from-file=known_hosts={values}/flux-system/known_hosts",
    ]
    assert marker(tmp_path).exists()
    for path in (f"{values}/sops-age/age.agekey", f"{values}/flux-system/identity"):
        assert Path(path).exists()  # kubectl read them; they were really there


def test_bootstrap_never_replaces_a_secret_that_exists(tmp_path: Path) -> None:
    """A rebuilt first server, or a day-2 change: what the cluster holds wins."""
    code, calls = run_bootstrap(tmp_path, "ready", "namespace-flux-system", "secret-sops-age")
    assert code == 0
    assert [c.split(" -n ")[0] for c in creates(calls)] == ["create secret generic flux-system"]
    assert not [c for c in calls if " apply" in c or " replace" in c or " delete" in c]
    assert marker(tmp_path).exists()


def test_bootstrap_stops_when_it_cannot_tell_whether_a_secret_exists(tmp_path: Path) -> None:
    code, calls = run_bootstrap(tmp_path, "ready", "broken")
    assert code != 0
    assert creates(calls) == []
    assert not marker(tmp_path).exists()


def test_flux_syncs_the_cluster_folder_of_the_repo() -> None:
    sync = flux_instance(written(seeds_of(fixture_cluster("seeds-ha"))["k3s-server-1"]))["spec"][
        "sync"
    ]
    assert sync == {
        "kind": "GitRepository",
        "url": "https://github.com/me/home-ops.git",
        "ref": "refs/heads/main",
        "path": "gitops/clusters/home",
    }


# ---- size limits and the ISO -----------------------------------------------------------


def with_keys(cluster: Cluster, total_bytes: int) -> Cluster:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII7tshdsZD2OU1rjX12scHqjTAsi44867YKtIm1yhDpf k"
    return dataclasses.replace(cluster, ssh_authorized_keys=(key,) * (total_bytes // len(key)))


def test_a_seed_file_over_1_mib_fails_naming_the_node() -> None:
    cluster = with_keys(sized(1, 1), 1024 * 1024 + 10)
    with pytest.raises(
        HomelabError, match=r"server-1: user-data would be \d+ bytes, over Proxmox's 1 MiB"
    ):
        render_seeds(cluster, SECRETS)


def test_a_seed_just_under_the_limit_renders() -> None:
    cluster = with_keys(sized(1, 0), 900 * 1024)
    assert len(node_seed(cluster, SECRETS, cluster.nodes[0])["user-data"]) < 1024 * 1024


def test_the_node_seed_builds_a_nocloud_iso() -> None:
    cluster = fixture_cluster("seeds-ha")
    seed = node_seed(cluster, SECRETS, cluster.nodes[4])
    iso = seediso.build_seed_iso(seed)
    assert iso == seediso.build_seed_iso(node_seed(cluster, SECRETS, cluster.nodes[4]))
    assert b"cidata" in iso[: 64 * 1024]


# ---- golden trees ----------------------------------------------------------------------


@pytest.mark.parametrize("fixture", GOLDEN_FIXTURES)
def test_golden_tree(fixture: str, update_golden: bool) -> None:
    rendered = render_seeds(fixture_cluster(fixture), SECRETS)
    root = GOLDEN / fixture
    if update_golden:
        for old in root.rglob("*"):
            if old.is_file():
                old.unlink()
        for path, item in rendered.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item.text)
    on_disk = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(rendered), "run pytest --update-golden and review the diff"
    for path, item in rendered.items():
        assert on_disk[path] == item.text, f"{path} differs from the golden copy"


def test_nodes_are_rendered_for_every_node_only() -> None:
    cluster = fixture_cluster("seeds-ha")
    rendered = render_seeds(cluster, SECRETS)
    assert sorted(rendered) == sorted(
        f"cloud-init/{n.name}/{f}"
        for n in cluster.nodes
        for f in ("user-data", "meta-data", "network-config")
    )
