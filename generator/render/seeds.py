"""Per-node NoCloud seeds: user-data, meta-data and network-config, as boot hands them over.

Pure and deterministic: the same cluster and secrets give byte-identical seeds. Every
secret (the K3s tokens, the datastore password, the age key and Git credentials) lives in
user-data only, which is written mode 0600 and git-ignored. Nothing here depends on
`components`: cloud-init never runs again, so a switch must be something Flux completes alone.
One exception: when Longhorn is on and its StorageClass is the default, the servers' K3s
config disables K3s's local-path (see k3s.LOCAL_STORAGE_ADDON), so changing that makes the
servers' seeds stale.
"""

from __future__ import annotations

import re
from dataclasses import asdict, astuple, dataclass
from typing import Any

from generator import naming, yamlio
from generator.config.model import Cluster, Node
from generator.errors import HomelabError
from generator.render import bootstrap, calico, charts, k3s, prepared
from generator.render.manifests import MANIFESTS_DIR, first_server_manifests
from generator.render.output import RenderedFile
from generator.render.templating import HEADER, render_template
from generator.secrets import Secrets

TEMPLATES = "cloud-init"  # the seed templates' folder (see resources), not the output's
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
MULTIPATH_RECONFIGURE = "if systemctl is-active --quiet multipathd; then multipathd reconfigure; fi"


@dataclass(frozen=True)
class Host:
    """Everything in a seed that differs from one node of a role to the next, as text."""

    name: str
    fqdn: str
    ip: str
    address: str  # ip/prefix
    mac: str
    instance_id: str

    def is_plain(self) -> bool:
        """True when every value prints as the same bare YAML scalar wherever it lands."""
        return all(
            _PLAIN.match(value) and not yamlio.is_yaml11_ambiguous(value) for value in astuple(self)
        )

    def fill(self, text: str) -> str:
        for field_name, value in asdict(self).items():
            text = text.replace(getattr(STAND_IN, field_name), value)
        return text


_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*(?::[A-Za-z0-9._/-]+)*$")
# Bare words that no cluster.yaml value can contain; the role's seed is rendered once with
# them and then filled in per node, so 500 agents cost one YAML dump, not 500.
STAND_IN = Host(
    name="hlgq7standinname",
    fqdn="hlgq7standinfqdn",
    ip="hlgq7standinip",
    address="hlgq7standinaddress",
    mac="hlgq7standinmac",
    instance_id="hlgq7standininstance",
)


def host_facts(cluster: Cluster, node: Node) -> Host:
    return Host(
        name=node.name,
        fqdn=naming.fqdn(cluster, node),
        ip=str(node.ip),
        address=f"{node.ip}/{cluster.network.prefix}",
        mac=naming.node_mac(cluster.name, node.name).lower(),
        instance_id=naming.instance_id(cluster, node),
    )


def render_seeds(cluster: Cluster, secrets: Secrets) -> dict[str, RenderedFile]:
    """`cloud-init/<node>/{user-data,meta-data,network-config}` for every node."""
    out: dict[str, RenderedFile] = {}
    per_role: dict[str, dict[str, str]] = {}
    for node in cluster.nodes:
        for name, text in _seed_from_role(cluster, secrets, node, per_role).items():
            out[naming.seed_path(node.name, name)] = RenderedFile(text, secret=name == "user-data")
    return out


def node_seed(cluster: Cluster, secrets: Secrets, node: Node) -> dict[str, str]:
    """The three NoCloud texts for one node, keyed by their file names."""
    seed = _render_seed(cluster, secrets, node, host_facts(cluster, node))
    check_size(node, seed)
    return seed


def _seed_from_role(
    cluster: Cluster, secrets: Secrets, node: Node, per_role: dict[str, dict[str, str]]
) -> dict[str, str]:
    """node_seed, byte for byte, but filled in from one render per role where that is safe."""
    host = host_facts(cluster, node)
    if node == cluster.first_server or not host.is_plain():
        return node_seed(cluster, secrets, node)
    if node.role not in per_role:
        per_role[node.role] = _render_seed(cluster, secrets, node, STAND_IN)
    seed = {name: host.fill(text) for name, text in per_role[node.role].items()}
    check_size(node, seed)
    return seed


def _render_seed(cluster: Cluster, secrets: Secrets, node: Node, host: Host) -> dict[str, str]:
    return {
        "user-data": user_data(cluster, secrets, node, host),
        "meta-data": meta_data(host),
        "network-config": network_config(cluster, host),
    }


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


def meta_data(host: Host) -> str:
    data = {"instance-id": host.instance_id, "local-hostname": host.name}
    return render_template(TEMPLATES, "meta-data.yaml.j2", data=data)


def network_data(cluster: Cluster, host: Host) -> dict[str, Any]:
    """Netplan-style v2, matched by MAC; `0.0.0.0/0` because cloud-init 22.4's ifupdown
    renderer rejects `to: default` and then brings up no network at all."""
    net = cluster.network
    nic = {
        "match": {"macaddress": host.mac},
        "addresses": [host.address],
        "routes": [{"to": "0.0.0.0/0", "via": str(net.gateway)}],
        "nameservers": {"addresses": [str(d) for d in net.dns], "search": [net.search_domain]},
    }
    return {"network": {"version": 2, "ethernets": {NIC_ID: nic}}}


def network_config(cluster: Cluster, host: Host) -> str:
    return render_template(TEMPLATES, "network-config.yaml.j2", data=network_data(cluster, host))


def packages(cluster: Cluster) -> list[str]:
    return prepared.packages()


def write_file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def k3s_files(cluster: Cluster, secrets: Secrets, node: Node, host: Host) -> list[dict[str, str]]:
    settings = k3s.k3s_config(
        cluster,
        secrets,
        node,
        node_name=host.name,
        node_ip=host.ip,
        longhorn_default=charts.longhorn_is_default(cluster),
    )
    config = f"{HEADER}\n{yamlio.dump_text(settings)}"
    found = [
        write_file(k3s.CONFIG_PATH, config, "0600"),
        write_file(k3s.INSTALL_SCRIPT_PATH, k3s.install_script(cluster, node), "0755"),
        write_file(k3s.INSTALL_UNIT_PATH, k3s.install_unit(cluster, node), "0644"),
    ]
    if node == cluster.first_server:
        manifests = first_server_manifests(cluster)
        found += [
            write_file(f"{MANIFESTS_DIR}/{name}", text, "0600") for name, text in manifests.items()
        ]
        found += bootstrap_files(cluster, secrets)
        found += calico_handover_files(cluster)
    return found


def calico_handover_files(cluster: Cluster) -> list[dict[str, str]]:
    """With Calico, the unit that leaves it to Flux once K3s applied it (render/calico.py)."""
    if not calico.enabled(cluster):
        return []
    return [
        write_file(calico.HANDOVER_SCRIPT, calico.handover_script(), "0755"),
        write_file(f"/etc/systemd/system/{calico.HANDOVER_UNIT}", calico.handover_unit(), "0644"),
    ]


def bootstrap_files(cluster: Cluster, secrets: Secrets) -> list[dict[str, str]]:
    """The values Flux needs first, and the unit that turns them into Secrets (first server)."""
    handed = bootstrap.bootstrap_secrets(cluster, secrets)
    if not handed:
        return []
    values = bootstrap.value_files(handed)
    return [write_file(path, value, "0600") for path, value in values.items()] + [
        write_file(bootstrap.SCRIPT_PATH, bootstrap.script(handed), "0755"),
        write_file(bootstrap.UNIT_PATH, bootstrap.unit(), "0644"),
    ]


def run_commands(cluster: Cluster, units: list[str]) -> list[str]:
    """Start services without waiting: each unit retries on its own until its work is done."""
    # qemu-guest-agent's unit is static (udev starts it when the virtio port appears), so it
    # can only be started, not enabled; starting it again is harmless.
    commands = [
        # Only what is missing, so a prepared template fetches nothing; a failure fails
        # runcmd at its end (one shell script), once the units below are started anyway.
        f"{prepared.PACKAGES_SCRIPT} || packages_failed=1",
        "systemctl start qemu-guest-agent",
        "systemctl enable --now iscsid",
        # multipathd may already have claimed disks before write_files ran; images without it
        # need nothing.
        MULTIPATH_RECONFIGURE,
        "systemctl daemon-reload",
    ]
    # Enabled so a reboot before they finish starts them again; --no-block so cloud-init
    # neither waits for them nor sees their failures (they fail until the network is up).
    for unit in units:
        commands += [f"systemctl enable {unit}", f"systemctl start --no-block {unit}"]
    return [*commands, '[ -z "${packages_failed:-}" ] || exit 1']


def login_user(cluster: Cluster) -> dict[str, Any]:
    user: dict[str, Any] = {
        "name": cluster.vm.user,
        "shell": "/bin/bash",
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "lock_passwd": True,
    }
    # cloud-init's schema wants at least one key here (minItems 1): no keys, no entry.
    if cluster.ssh_authorized_keys:
        user["ssh_authorized_keys"] = list(cluster.ssh_authorized_keys)
    return user


def user_data_dict(cluster: Cluster, secrets: Secrets, node: Node, host: Host) -> dict[str, Any]:
    files = k3s_files(cluster, secrets, node, host)
    files.append(write_file(MULTIPATH_BLACKLIST_PATH, MULTIPATH_BLACKLIST, "0644"))
    files.append(write_file(prepared.PACKAGES_SCRIPT, prepared.packages_script(), "0755"))
    units = [k3s.INSTALL_UNIT]
    if any(f["path"] == bootstrap.UNIT_PATH for f in files):
        units.append(bootstrap.UNIT)
    if any(f["path"] == calico.HANDOVER_SCRIPT for f in files):
        units.append(calico.HANDOVER_UNIT)
    return {
        "hostname": host.name,
        "fqdn": host.fqdn,
        "prefer_fqdn_over_hostname": False,
        "manage_etc_hosts": True,
        "locale": cluster.vm.locale,
        "timezone": cluster.vm.timezone,
        "users": [login_user(cluster)],
        "disable_root": True,
        "ssh_pwauth": False,
        # No `packages:` here: cloud-init's module refreshes the index whenever its list is
        # not empty (cc_package_update_upgrade_install, handle), a download even on a prepared
        # template; the packages script installs only what is missing instead. An upgrade
        # refreshes and downloads, prepared or not.
        "package_upgrade": cluster.vm.upgrade_packages,
        "write_files": files,
        "runcmd": run_commands(cluster, units),
    }


def user_data(cluster: Cluster, secrets: Secrets, node: Node, host: Host) -> str:
    data = user_data_dict(cluster, secrets, node, host)
    return render_template(TEMPLATES, "user-data.yaml.j2", data=data)
