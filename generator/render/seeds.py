"""Per-node NoCloud seeds: user-data, meta-data and network-config, as boot hands them over.

Pure and deterministic: the same cluster and secrets give byte-identical seeds. Every
secret (the K3s token, the datastore password, Git and DNS credentials) lives in user-data
only, which is written mode 0600 and git-ignored.
"""

from __future__ import annotations

from typing import Any

from generator import naming, yamlio
from generator.errors import HomelabError
from generator.files import RenderedFile
from generator.model import Cluster, Node
from generator.render import k3s
from generator.render.manifests import MANIFESTS_DIR, first_server_manifests
from generator.render.templating import HEADER, render_template
from generator.secrets import Secrets

SEED_DIR = "cloud-init"
# Proxmox's limits for a custom cloud-init file and a whole seed.
MAX_FILE_BYTES = 1024 * 1024
MAX_SEED_BYTES = 3 * 1024 * 1024
NIC_ID = "lan"
MULTIPATH_BLACKLIST_PATH = "/etc/multipath/conf.d/homelab-gen-longhorn.conf"
# Longhorn's iSCSI disks show up as sdX; multipathd must leave them alone.
MULTIPATH_BLACKLIST = f"""{HEADER}
# Keep multipathd off Longhorn's iSCSI disks.
blacklist {{
    devnode "^sd[a-z0-9]+"
}}
"""


def render_seeds(cluster: Cluster, secrets: Secrets) -> dict[str, RenderedFile]:
    """`cloud-init/<node>/{user-data,meta-data,network-config}` for every node."""
    out: dict[str, RenderedFile] = {}
    for node in cluster.nodes:
        for name, text in node_seed(cluster, secrets, node).items():
            out[f"{SEED_DIR}/{node.name}/{name}"] = RenderedFile(text, secret=name == "user-data")
    return out


def node_seed(cluster: Cluster, secrets: Secrets, node: Node) -> dict[str, str]:
    """The three NoCloud texts for one node, keyed by their file names."""
    seed = {
        "user-data": user_data(cluster, secrets, node),
        "meta-data": meta_data(cluster, node),
        "network-config": network_config(cluster, node),
    }
    check_size(node, seed)
    return seed


def check_size(node: Node, seed: dict[str, str]) -> None:
    sizes = {name: len(text.encode("utf-8")) for name, text in seed.items()}
    for name, size in sizes.items():
        if size > MAX_FILE_BYTES:
            raise HomelabError(
                f"{node.name}: {name} would be {size} bytes, over Proxmox's 1 MiB limit",
                "remove large values from cluster.yaml (SSH keys, Helm values)",
            )
    if sum(sizes.values()) > MAX_SEED_BYTES:
        raise HomelabError(
            f"{node.name}: its seed would be {sum(sizes.values())} bytes, over the 3 MiB limit",
            "remove large values from cluster.yaml (SSH keys, Helm values)",
        )


def meta_data(cluster: Cluster, node: Node) -> str:
    data = {"instance-id": naming.instance_id(cluster, node), "local-hostname": node.name}
    return render_template(SEED_DIR, "meta-data.yaml.j2", data=data)


def network_data(cluster: Cluster, node: Node) -> dict[str, Any]:
    """Netplan-style v2, matched by MAC; `0.0.0.0/0` because cloud-init 22.4's ifupdown
    renderer rejects `to: default` and then brings up no network at all."""
    net = cluster.network
    nic = {
        "match": {"macaddress": naming.node_mac(cluster.name, node.name).lower()},
        "addresses": [f"{node.ip}/{net.prefix}"],
        "routes": [{"to": "0.0.0.0/0", "via": str(net.gateway)}],
        "nameservers": {"addresses": [str(d) for d in net.dns], "search": [net.search_domain]},
    }
    return {"network": {"version": 2, "ethernets": {NIC_ID: nic}}}


def network_config(cluster: Cluster, node: Node) -> str:
    return render_template(SEED_DIR, "network-config.yaml.j2", data=network_data(cluster, node))


def packages(cluster: Cluster) -> list[str]:
    found = ["qemu-guest-agent", "curl", "ca-certificates"]
    if cluster.components.longhorn.enabled:
        found += ["open-iscsi", "nfs-common"]
    return found


def write_file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def k3s_files(cluster: Cluster, secrets: Secrets, node: Node) -> list[dict[str, str]]:
    config = f"{HEADER}\n{yamlio.dump_text(k3s.k3s_config(cluster, secrets, node))}"
    found = [
        write_file(k3s.CONFIG_PATH, config, "0600"),
        write_file(k3s.INSTALL_SCRIPT_PATH, k3s.install_script(cluster, node), "0755"),
        write_file(k3s.INSTALL_UNIT_PATH, k3s.install_unit(cluster, node), "0644"),
    ]
    if node == cluster.first_server:
        manifests = first_server_manifests(cluster, secrets)
        found += [
            write_file(f"{MANIFESTS_DIR}/{name}", text, "0600") for name, text in manifests.items()
        ]
    return found


def run_commands(cluster: Cluster) -> list[list[str]]:
    """Start services without waiting: the install unit retries on its own until K3s is in."""
    commands = [["systemctl", "enable", "--now", "qemu-guest-agent"]]
    if cluster.components.longhorn.enabled:
        commands.append(["systemctl", "enable", "--now", "iscsid"])
    commands += [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", k3s.INSTALL_UNIT],
        ["systemctl", "start", "--no-block", k3s.INSTALL_UNIT],
    ]
    return commands


def login_user(cluster: Cluster) -> dict[str, Any]:
    return {
        "name": cluster.vm.user,
        "shell": "/bin/bash",
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "lock_passwd": True,
        "ssh_authorized_keys": list(cluster.ssh_authorized_keys),
    }


def user_data_dict(cluster: Cluster, secrets: Secrets, node: Node) -> dict[str, Any]:
    files = k3s_files(cluster, secrets, node)
    if cluster.components.longhorn.enabled:
        files.append(write_file(MULTIPATH_BLACKLIST_PATH, MULTIPATH_BLACKLIST, "0644"))
    return {
        "hostname": node.name,
        "fqdn": naming.fqdn(cluster, node),
        "prefer_fqdn_over_hostname": False,
        "manage_etc_hosts": True,
        "locale": cluster.vm.locale,
        "timezone": cluster.vm.timezone,
        "users": [login_user(cluster)],
        "disable_root": True,
        "ssh_pwauth": False,
        "package_update": True,
        "package_upgrade": cluster.vm.upgrade_packages,
        "packages": packages(cluster),
        "write_files": files,
        "runcmd": run_commands(cluster),
    }


def user_data(cluster: Cluster, secrets: Secrets, node: Node) -> str:
    return render_template(
        SEED_DIR, "user-data.yaml.j2", data=user_data_dict(cluster, secrets, node)
    )
