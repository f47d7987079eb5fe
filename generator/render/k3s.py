"""K3s on a node: its config.yaml as plain data, and the unit that installs it until it works.

Every key written here must be a real K3s flag for the node's role: K3s only logs unknown
keys and carries on, so a typo would fail silently.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from generator import naming
from generator.config.model import Cluster, Node
from generator.errors import HomelabError
from generator.render.templating import render_template
from generator.secrets import Secrets

API_PORT = 6443
INSTALLER_BASE = "https://raw.githubusercontent.com/k3s-io/k3s"
CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
INSTALL_SCRIPT_PATH = "/usr/local/sbin/homelab-gen-k3s-install"
INSTALL_UNIT = "homelab-gen-k3s-install.service"
INSTALL_UNIT_PATH = f"/etc/systemd/system/{INSTALL_UNIT}"
# Written once install.sh succeeded; the unit is skipped on later boots.
INSTALLED_MARKER = "/var/lib/homelab-gen/k3s-installed"
# A template prepared by `template --prepare` (render/prepared.py), in K3s's air-gap layout:
# the marker (`key=value` lines: k3s_version, installer_sha256, packages), the binary where
# install.sh looks with INSTALL_K3S_SKIP_DOWNLOAD, the images K3s imports at start, and a
# copy of install.sh.
PREPARED_MARKER = "/var/lib/homelab-gen/prepared"
PREPARED_BINARY = "/usr/local/bin/k3s"
PREPARED_IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"
PREPARED_INSTALLER = "/var/lib/homelab-gen/k3s/install.sh"

# What K3s exposes for Prometheus, shared by the K3s config (seeds) and the chart values.
# K3s runs every control-plane component in one process, so kube-prometheus-stack's default
# targets (pods on localhost) are dead; we bind the metrics listeners on the node instead and
# point the chart's endpoint lists at the servers.
# K3s server config keys -> values, on every server whether monitoring is on or not: cloud-init
# never runs again, so a flag that waited for the switch would never reach a running node.
SERVER_METRICS_CONFIG: dict[str, object] = {
    "etcd-expose-metrics": True,
    "kube-controller-manager-arg": ["bind-address=0.0.0.0"],
    "kube-scheduler-arg": ["bind-address=0.0.0.0"],
}
# On every node (server and agent).
NODE_METRICS_CONFIG: dict[str, object] = {
    "kube-proxy-arg": ["metrics-bind-address=0.0.0.0"],
}

CONTROLLER_MANAGER_PORT = 10257  # https, self-signed
SCHEDULER_PORT = 10259  # https, self-signed
ETCD_METRICS_PORT = 2381  # http, served when etcd-expose-metrics is true
KUBE_PROXY_PORT = 10249  # http


def server_url(cluster: Cluster) -> str:
    return f"https://{cluster.api_host}:{API_PORT}"


def tls_sans(cluster: Cluster) -> list[str]:
    """Identical on every server, so any of them can serve the VIP and the API name."""
    return [str(cluster.api_host), naming.api_dns_name(cluster)]


# K3s's bundled copies always step aside: Flux owns ingress and load balancers, and K3s reads
# `disable` only when it starts, so it could not follow a component switched on later.
DISABLED_ADDONS = ("traefik", "servicelb")

# K3s's install script, which every seed runs once at first boot, pinned by tag and digest
# apart from cluster.k3s_version: install.sh installs whatever INSTALL_K3S_VERSION names (and
# checks that binary against the release's own sha256 list), and later K3s versions arrive by
# the upgrade Plans, never by this script. So a k3s_version change leaves the installer and
# its digest alone (a version-only change stays no seed drift), and a node replaced after an
# upgrade runs the same checked script to install the newer version.
K3S_INSTALLER_TAG = "v1.33.4+k3s1"
# sha256 of https://raw.githubusercontent.com/k3s-io/k3s/<K3S_INSTALLER_TAG>/install.sh, byte
# for byte. TO FILL: it could not be fetched byte-exact where this was written, and a guessed
# digest would stop every install. Compute it with
#   curl -sfL https://raw.githubusercontent.com/k3s-io/k3s/v1.33.4%2Bk3s1/install.sh | sha256sum
# While it is None the seed logs that install.sh runs unchecked; once set, a mismatch stops
# the install unit for good, with the reason in the journal.
K3S_INSTALLER_SHA256: str | None = None
# K3s's local-path provisioner ("local-storage" in K3s's DisableItems, pkg/cli/cmds) ships
# its StorageClass with `storageclass.kubernetes.io/is-default-class: "true"`
# (manifests/local-storage.yaml). Editing that annotation does not last: Stage
# (pkg/deploy/stage.go) rewrites the file on every start and the deploy controller's first
# pass (pkg/deploy/controller.go, watcher.listFilesIn with force=true) re-applies every
# manifest, so the annotation comes back at each restart or upgrade (k3s-io/k3s#3441,
# #4083, #11936). It is a plain manifest, not a HelmChart, so a HelmChartConfig cannot
# override it; a `local-storage.yaml.skip` file only stops the controller applying it,
# leaving objects already applied as they are. So when Longhorn is the default class,
# K3s is told to remove local-path (`disable` deletes what the manifest made, in
# watcher.delete); otherwise local-path stays the one default.
LOCAL_STORAGE_ADDON = "local-storage"


def datastore_url(cluster: Cluster, secrets: Secrets) -> str | None:
    """The external datastore endpoint with the password from the secrets store put back in."""
    endpoint = cluster.cluster.datastore_endpoint
    if endpoint is None or not secrets.datastore_password:
        return endpoint
    scheme, _, rest = endpoint.partition("://")
    user, at, host = rest.partition("@")
    if not at:
        raise HomelabError(
            "cluster.datastore_endpoint has no user part to attach datastore_password to",
            "write it as scheme://user@host/...,"
            " or remove datastore_password from the secrets store",
        )
    # Postgres reads a URL (so percent-encode); MySQL's DSN takes the password as is.
    password = (
        secrets.datastore_password
        if scheme == "mysql"
        else quote(secrets.datastore_password, safe="")
    )
    return f"{scheme}://{user}:{password}{at}{host}"


def server_wide_settings(
    cluster: Cluster, secrets: Secrets, longhorn_default: bool = False
) -> dict[str, Any]:
    """Settings every server must agree on; a mismatch stops a server from joining.
    `longhorn_default`: Longhorn's class is the default one (charts.longhorn_is_default)."""
    info = cluster.cluster
    settings: dict[str, Any] = {
        "tls-san": tls_sans(cluster),
        "write-kubeconfig-mode": "0600",
        "cluster-cidr": str(info.cluster_cidr),
        "service-cidr": str(info.service_cidr),
        "flannel-backend": info.flannel_backend,
    }
    if info.cni == "calico":
        # Calico enforces NetworkPolicy itself; K3s's own controller would fight over it.
        settings["disable-network-policy"] = True
    settings["disable"] = list(DISABLED_ADDONS)
    if longhorn_default:
        settings["disable"].append(LOCAL_STORAGE_ADDON)
    endpoint = datastore_url(cluster, secrets)
    if endpoint is not None:
        settings["datastore-endpoint"] = endpoint
    if secrets.agent_token:
        settings["agent-token"] = secrets.agent_token
    settings.update(SERVER_METRICS_CONFIG)
    return settings


def join_token(secrets: Secrets, node: Node) -> str:
    """Agents join with the agent token, which cannot join a server; labs made before it
    existed have none, and their agents keep the server token they booted with."""
    if node.is_server or not secrets.agent_token:
        return secrets.k3s_token
    return secrets.agent_token


def join_settings(cluster: Cluster, node: Node) -> dict[str, Any]:
    """The node that starts the cluster gets cluster-init; every other joins via the API host."""
    if node.is_server and cluster.cluster.datastore_endpoint is not None:
        return {}  # every server talks to the external datastore; none joins through another
    if node == cluster.init_server:
        return {"cluster-init": True}
    return {"server": server_url(cluster)}


def k3s_config(
    cluster: Cluster,
    secrets: Secrets,
    node: Node,
    node_name: str | None = None,
    node_ip: str | None = None,
    longhorn_default: bool = False,
) -> dict[str, Any]:
    """/etc/rancher/k3s/config.yaml for one node, as plain data.

    node_name and node_ip stand in for the node's own when a seed is rendered once per role
    and then filled in per node.
    """
    config: dict[str, Any] = {"token": join_token(secrets, node), **join_settings(cluster, node)}
    config["node-name"] = node.name if node_name is None else node_name
    config["node-ip"] = str(node.ip) if node_ip is None else node_ip
    if node.is_server:
        config.update(server_wide_settings(cluster, secrets, longhorn_default))
    config.update(NODE_METRICS_CONFIG)
    return config


def service_name(node: Node) -> str:
    return "k3s" if node.is_server else "k3s-agent"


# The install script exits with this when install.sh is not the pinned one; the unit does
# not retry it (RestartPreventExitStatus), so nothing is installed until someone looks.
# Above curl's codes and 128+signal, below systemd's own 200-242: nothing else exits so.
INSTALLER_MISMATCH_EXIT = 195


def installer_url(tag: str) -> str:
    return f"{INSTALLER_BASE}/{quote(tag, safe='')}/install.sh"


def install_script(cluster: Cluster, node: Node) -> str:
    """One install attempt; it fails fast so systemd can retry it with backoff."""

    return render_template(
        "cloud-init",
        "k3s-install.sh.j2",
        version=cluster.cluster.k3s_version,
        # The installer from a pinned tag, checked against its pinned sha256 (above).
        installer_url=installer_url(K3S_INSTALLER_TAG),
        installer_sha256=K3S_INSTALLER_SHA256 or "",
        mismatch_exit=INSTALLER_MISMATCH_EXIT,
        unit=INSTALL_UNIT,
        exec_mode="server" if node.is_server else "agent",
        service=service_name(node),
        marker=INSTALLED_MARKER,
        prepared_marker=PREPARED_MARKER,
        prepared_binary=PREPARED_BINARY,
        prepared_installer=PREPARED_INSTALLER,
    )


def install_unit(cluster: Cluster, node: Node) -> str:
    return render_template(
        "cloud-init",
        "k3s-install.service.j2",
        version=cluster.cluster.k3s_version,
        role=node.role,
        script=INSTALL_SCRIPT_PATH,
        marker=INSTALLED_MARKER,
        mismatch_exit=INSTALLER_MISMATCH_EXIT,
    )
