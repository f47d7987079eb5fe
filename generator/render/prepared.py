"""A template prepared by `homelab-gen template --prepare`: what the preparation boot leaves
in the image (K3s's air-gap layout and a marker), and the seed that does it.

Seeds are rendered before anyone knows which template a node is cloned from, so a node's
seed decides at first boot: the marker naming its K3s version means install with no
download; no marker, or another version, means download as usual (k3s-install.sh.j2).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from generator.config.model import Cluster
from generator.render import k3s
from generator.render.templating import HEADER, render_template

TEMPLATES = "cloud-init"
IMAGES = "k3s-airgap-images-amd64.tar.zst"
RELEASE_BASE = "https://github.com/k3s-io/k3s/releases/download"
PACKAGES_SCRIPT = "/usr/local/sbin/homelab-gen-packages"
PREPARE_SCRIPT = "/usr/local/sbin/homelab-gen-prepare"
FINISH_SCRIPT = "/usr/local/sbin/homelab-gen-prepare-finish"
FINISH_UNIT = "homelab-gen-prepare-finish"
HOSTNAME = "homelab-gen-prepare"


def packages() -> list[str]:
    # Longhorn's prerequisites are on every node whatever the switch says, so turning Longhorn
    # on later is a commit that Flux completes alone (cloud-init never runs again).
    return ["qemu-guest-agent", "curl", "ca-certificates", "open-iscsi", "nfs-common"]


def release_url(version: str) -> str:
    return f"{RELEASE_BASE}/{quote(version, safe='')}"


def packages_script() -> str:
    return render_template(TEMPLATES, "packages.sh.j2", packages=" ".join(packages()))


def prepare_script(cluster: Cluster) -> str:
    version = cluster.cluster.k3s_version
    return render_template(
        TEMPLATES,
        "k3s-prepare.sh.j2",
        version=version,
        marker=k3s.PREPARED_MARKER,
        binary=k3s.PREPARED_BINARY,
        images=IMAGES,
        images_dir=k3s.PREPARED_IMAGES_DIR,
        installer=k3s.PREPARED_INSTALLER,
        installer_url=k3s.installer_url(k3s.K3S_INSTALLER_TAG),
        installer_sha256=k3s.K3S_INSTALLER_SHA256 or "",
        release_url=release_url(version),
        packages=" ".join(packages()),
    )


def finish_script() -> str:
    return render_template(TEMPLATES, "k3s-prepare-finish.sh.j2")


def _file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def user_data_dict(cluster: Cluster) -> dict[str, Any]:
    """No login user and no secret: the seed only readies the image, then powers it off."""
    return {
        "hostname": HOSTNAME,
        # Some images lack the en_US.UTF-8 that cloud-init sets by default.
        "locale": "C.UTF-8",
        "disable_root": True,
        "ssh_pwauth": False,
        "write_files": [
            _file(PACKAGES_SCRIPT, packages_script(), "0755"),
            _file(PREPARE_SCRIPT, prepare_script(cluster), "0755"),
            _file(FINISH_SCRIPT, finish_script(), "0755"),
        ],
        # The power-off is the signal `template` waits for, so it comes only once both
        # succeeded; otherwise the VM stays up for a look at /var/log/cloud-init-output.log.
        "runcmd": [
            "systemctl start qemu-guest-agent || true",
            f"{PACKAGES_SCRIPT} && {PREPARE_SCRIPT}"
            f" && systemd-run --unit={FINISH_UNIT} {FINISH_SCRIPT}",
        ],
    }


# No network config: the template has no address of its own in cluster.yaml, and
# cloud-init's fallback (DHCP on the first NIC) works with every renderer, where a v2
# `match: name:` glob is netplan's alone. Checked under QEMU: DHCP, address, route.
NETWORK_CONFIG = f"{HEADER}\n# (empty: cloud-init's fallback, DHCP on the first NIC)\n"


def preparation_seed(cluster: Cluster) -> dict[str, str]:
    """The NoCloud texts of the preparation boot, keyed by file name; the instance-id holds
    the version, so a template prepared again for another version is a new instance."""
    version = cluster.cluster.k3s_version
    meta = {"instance-id": f"{HOSTNAME}-{version}", "local-hostname": HOSTNAME}
    user = render_template(TEMPLATES, "user-data.yaml.j2", data=user_data_dict(cluster))
    return {
        "user-data": user,
        "meta-data": render_template(TEMPLATES, "meta-data.yaml.j2", data=meta),
        "network-config": NETWORK_CONFIG,
    }
