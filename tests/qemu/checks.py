"""What a booted node must show, read through its guest agent and compared with its seed.

Cloud-init 22.4 (Debian 12) has no `status --format json` and no "recoverable errors" in its
status; 23.4+ counts every WARNING/ERROR/CRITICAL/DEPRECATED log record as one. So here
"no recoverable errors" means no such record in /var/log/cloud-init.log.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from generator import yamlio
from generator.render import bootstrap, calico, k3s
from generator.render.manifests import MANIFESTS_DIR
from generator.status import cloudinit
from tests.qemu.agent import AgentError, GuestAgent
from tests.qemu.cluster import Target

LOG_PROBLEM = re.compile(r"\[(WARNING|ERROR|CRITICAL|DEPRECATED)\]")


class Guest:
    """A booted node: shell commands and file reads, with failures that say what ran."""

    def __init__(self, agent: GuestAgent) -> None:
        self.agent = agent

    def sh(self, command: str, timeout: float = 60) -> str:
        result = self.agent.exec(command, timeout)
        assert result.exitcode == 0, (
            f"`{command}` exited {result.exitcode}\nstdout: {result.out}\nstderr: {result.err}"
        )
        return result.out

    def read(self, path: str) -> str:
        return self.agent.read_file(path).decode("utf-8", "replace")


def wait_for_cloud_init(guest: Guest, deadline: float) -> str:
    """Wait until cloud-init has finished all its stages; return `status --long`.

    Polls for result.json, which the final stage writes, through the agent's own file read:
    running the `cloud-init` CLI (Python) every few seconds would slow a TCG guest down.
    """
    while not _exists(guest, "/run/cloud-init/result.json"):
        if time.monotonic() > deadline:
            status = guest.agent.exec("cloud-init status --long").out
            raise AssertionError(f"cloud-init still not finished:\n{status}")
        time.sleep(3)
    return guest.agent.exec("cloud-init status --long").out


def _exists(guest: Guest, path: str) -> bool:
    try:
        guest.agent.read_file(path)
    except AgentError:
        return False
    return True


def status_of(long_text: str) -> str:
    match = re.search(r"^status:\s*(.+)$", long_text, re.MULTILINE)
    return match.group(1).strip() if match else ""


@dataclass(frozen=True)
class Seed:
    """The parts of a rendered seed a booted node is held to."""

    user_data: dict[str, Any]
    network: dict[str, Any]
    instance_id: str

    @classmethod
    def of(cls, target: Target) -> Seed:
        user_data = yamlio.to_plain(yamlio.load_text(target.seed["user-data"], "user-data"))
        network = yamlio.to_plain(yamlio.load_text(target.seed["network-config"], "network"))
        meta = yamlio.to_plain(yamlio.load_text(target.seed["meta-data"], "meta-data"))
        return cls(user_data, network["network"], meta["instance-id"])

    def written(self, path: str) -> dict[str, str]:
        found = [f for f in self.user_data["write_files"] if f["path"] == path]
        assert found, f"the seed writes no {path}"
        return dict(found[0])

    def nic(self) -> dict[str, Any]:
        (nic,) = self.network["ethernets"].values()
        return dict(nic)


def assert_cloud_init_clean(guest: Guest, long_text: str) -> None:
    assert status_of(long_text) == "done", f"cloud-init status --long:\n{long_text}"
    result = json.loads(guest.read("/run/cloud-init/result.json"))["v1"]
    assert result["errors"] == [], f"cloud-init errors: {result['errors']}"
    assert "NoCloud" in result["datasource"], f"datasource: {result['datasource']}"
    problems = [line for line in guest.read("/var/log/cloud-init.log").splitlines()
                if LOG_PROBLEM.search(line)]  # fmt: skip
    assert not problems, "cloud-init logged recoverable errors:\n" + "\n".join(problems)


def assert_booted_user_data(guest: Guest, target: Target) -> None:
    """What `status` and `boot --replace-stale` rest on to see seed drift: cloud-init keeps
    the user-data it booted with, byte for byte, at the path they read through the agent."""
    booted = guest.read(cloudinit.BOOTED_USER_DATA)
    assert booted == target.seed["user-data"], (
        f"{cloudinit.BOOTED_USER_DATA} is not the seed's user-data"
    )
    assert cloudinit.settings_digest(booted) == cloudinit.settings_digest(target.seed["user-data"])


def assert_identity(guest: Guest, seed: Seed) -> None:
    assert guest.sh("hostname").strip() == seed.user_data["hostname"]
    assert guest.sh("hostname --fqdn").strip() == seed.user_data["fqdn"]


def assert_network(guest: Guest, seed: Seed, mac: str) -> None:
    nic = seed.nic()
    (address,) = nic["addresses"]
    (route,) = nic["routes"]
    link = guest.sh(f"ip -o link | grep -i 'link/ether {mac}' | cut -d: -f2").strip()
    assert link, f"no interface has the node's MAC {mac}:\n{guest.sh('ip -o link')}"
    addresses = guest.sh(f"ip -4 -o addr show dev {link}")
    assert f"inet {address} " in addresses, f"{address} is not on {link}:\n{addresses}"
    default = guest.sh("ip -4 route show default")
    assert f"default via {route['via']} dev {link}" in default, f"default route: {default!r}"
    dns = guest.sh(f"resolvectl dns {link}; resolvectl domain {link}")
    for server in nic["nameservers"]["addresses"]:
        assert server in dns, f"DNS server {server} not configured: {dns}"
    for domain in nic["nameservers"]["search"]:
        assert domain in dns, f"search domain {domain} not configured: {dns}"
    assert "127.0.0.53" in guest.read("/etc/resolv.conf"), "resolv.conf bypasses resolved"


def assert_login_user(guest: Guest, seed: Seed) -> None:
    (user,) = seed.user_data["users"]
    name = user["name"]
    entry = guest.sh(f"getent passwd {name}").strip().split(":")
    assert entry[6] == user["shell"], f"{name}'s shell is {entry[6]}"
    keys = guest.read(f"{entry[5]}/.ssh/authorized_keys").splitlines()
    for key in user["ssh_authorized_keys"]:
        assert key in keys, f"{name} lacks the key {key[:40]}..."
    assert guest.sh(f"sudo -n -l -U {name}").count("NOPASSWD: ALL") == 1


def assert_k3s_config(guest: Guest, seed: Seed) -> None:
    rendered = seed.written(k3s.CONFIG_PATH)
    assert guest.read(k3s.CONFIG_PATH) == rendered["content"], "K3s config differs from the seed"
    assert guest.sh(f"stat -c '%a %U:%G' {k3s.CONFIG_PATH}").strip() == "600 root:root"


def assert_manifests(guest: Guest, seed: Seed, first_server: bool) -> None:
    rendered = {
        f["path"]: f["content"]
        for f in seed.user_data["write_files"]
        if f["path"].startswith(MANIFESTS_DIR + "/")
    }
    if not first_server:
        assert not rendered, "only the first server carries manifests"
        return
    names = {path.rsplit("/", 1)[1] for path in rendered}
    assert {"homelab-kube-vip.yaml", "homelab-flux-operator.yaml",
            "homelab-flux-instance.yaml"} <= names, names  # fmt: skip
    present = set(guest.sh(f"ls -1 {MANIFESTS_DIR}").split())
    assert present == names, f"manifests on disk {sorted(present)} != rendered {sorted(names)}"
    for path, content in rendered.items():
        assert guest.read(path) == content, f"{path} differs from the seed"


def assert_agent_running(guest: Guest) -> None:
    assert guest.sh("systemctl is-active qemu-guest-agent").strip() == "active"


def assert_k3s_install_armed(
    guest: Guest, seed: Seed, version: str, role: str, deadline: float
) -> None:
    """No network and no K3s here: the unit must be enabled, failing and retrying, while
    cloud-init finished clean; and it must be set to install the pinned version and role."""
    unit = k3s.INSTALL_UNIT
    assert guest.sh(f"systemctl is-enabled {unit}").strip() == "enabled"
    for path in (k3s.INSTALL_UNIT_PATH, k3s.INSTALL_SCRIPT_PATH):
        assert guest.read(path) == seed.written(path)["content"], f"{path} differs from the seed"
    script = guest.read(k3s.INSTALL_SCRIPT_PATH)
    assert f"INSTALL_K3S_VERSION='{version}'" in script
    assert f"INSTALL_K3S_EXEC='{role}'" in script
    assert "INSTALL_K3S_SKIP_START=true" in script
    assert_still_retrying(guest, unit, deadline)
    assert guest.agent.exec(f"test -e {k3s.INSTALLED_MARKER}").exitcode != 0, "marker exists"


def assert_bootstrap_armed(guest: Guest, seed: Seed, first_server: bool, deadline: float) -> None:
    """The first server's unit that creates Flux's bootstrap Secrets: with no K3s here it
    must keep failing and retrying, while cloud-init finished clean. Other nodes have none."""
    unit = bootstrap.UNIT
    ours = [f for f in seed.user_data["write_files"]
            if f["path"].startswith(f"{bootstrap.VALUES_DIR}/")
            or f["path"] in (bootstrap.UNIT_PATH, bootstrap.SCRIPT_PATH)]  # fmt: skip
    if not first_server:
        assert not ours, "only the first server hands Flux its bootstrap Secrets"
        assert guest.agent.exec(f"test -e {bootstrap.UNIT_PATH}").exitcode != 0
        return
    assert {f["path"] for f in ours} >= {bootstrap.UNIT_PATH, bootstrap.SCRIPT_PATH}
    for item in ours:
        assert guest.read(item["path"]) == item["content"], f"{item['path']} differs from the seed"
        mode = guest.sh(f"stat -c '%a %U:%G' {item['path']}").strip()
        assert mode == f"{int(item['permissions'], 8):o} root:root", f"{item['path']}: {mode}"
    assert guest.sh(f"systemctl is-enabled {unit}").strip() == "enabled"
    assert_still_retrying(guest, unit, deadline)
    assert guest.agent.exec(f"test -e {bootstrap.DONE_MARKER}").exitcode != 0, "marker exists"


def assert_calico_handover_armed(guest: Guest, seed: Seed, deadline: float) -> None:
    """With Calico, the first server's unit that leaves Calico to Flux: with no K3s here it
    keeps failing and retrying, and the manifests-folder copy stays. Without it, nothing."""
    unit_path = f"/etc/systemd/system/{calico.HANDOVER_UNIT}"
    written = {f["path"] for f in seed.user_data["write_files"]}
    if calico.HANDOVER_SCRIPT not in written:
        assert guest.agent.exec(f"test -e {unit_path}").exitcode != 0
        assert guest.agent.exec(f"test -e {calico.MANIFEST_PATH}").exitcode != 0
        return
    for path in (unit_path, calico.HANDOVER_SCRIPT, calico.MANIFEST_PATH):
        assert guest.read(path) == seed.written(path)["content"], f"{path} differs from the seed"
    assert guest.sh(f"systemctl is-enabled {calico.HANDOVER_UNIT}").strip() == "enabled"
    assert_still_retrying(guest, calico.HANDOVER_UNIT, deadline)
    assert guest.agent.exec(f"test -e {calico.MANIFEST_PATH}").exitcode == 0


def assert_still_retrying(guest: Guest, unit: str, deadline: float) -> None:
    """The unit failed at least once and systemd keeps retrying it: never given up."""
    while True:
        shown = _properties(guest.sh(f"systemctl show {unit} -p Restart -p NRestarts "
                                     "-p ActiveState -p SubState -p Result"))  # fmt: skip
        if int(shown["NRestarts"]) >= 1:
            break
        assert time.monotonic() < deadline, f"{unit} never retried: {shown}"
        time.sleep(3)
    assert shown["Restart"] == "on-failure", shown
    # Still trying: running an attempt, or waiting to run the next one.
    assert shown["ActiveState"] == "activating", shown
    assert shown["SubState"] in ("start", "auto-restart"), shown


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


FIRST_BOOT_STATE = (
    "cat /var/lib/cloud/data/instance-id; "
    "cd /var/lib/cloud/instance/sem && stat -c '%n %Y' * | sort; "
    "cat /etc/ssh/ssh_host_*_key.pub | sort; "
    "stat -c '%n %Y' /etc/rancher/k3s/config.yaml /home/*/.ssh/authorized_keys"
)


def first_boot_state(guest: Guest) -> str:
    """What only first-boot (per-instance) steps change: equal after a reboot, or they re-ran."""
    return guest.sh(FIRST_BOOT_STATE)


def assert_second_boot(guest: Guest, seed: Seed, before: str, first_finished: str) -> None:
    assert guest.read("/var/lib/cloud/data/instance-id").strip() == seed.instance_id
    previous = guest.read("/var/lib/cloud/data/previous-instance-id").strip()
    assert previous == seed.instance_id, f"previous instance-id {previous!r}"
    assert guest.read("/var/lib/cloud/instance/boot-finished") != first_finished, (
        "boot-finished did not change: this was not a second boot"
    )
    after = first_boot_state(guest)
    assert after == before, f"first-boot steps re-ran:\nbefore:\n{before}\nafter:\n{after}"
