"""seed_method: snippets against a real OpenSSH server on loopback."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator.errors import HomelabError
from generator.proxmox import core, seeds
from generator.proxmox.observe import observe
from tests.fakes.pve import FakePVE, running_fake
from tests.fakes.pve.harness import assert_converged, boot, client_for, make_cluster, seed_texts
from tests.fakes.pve.state import STORAGE_PRIVS

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass(frozen=True)
class Sshd:
    port: int
    host_key_line: str
    client_key: Path
    root: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    if not os.path.exists(SSHD) or not shutil.which("ssh-keygen"):
        pytest.skip("openssh-server is not installed (apt-get install openssh-server)")
    root = tmp_path / "sshd"
    root.mkdir()
    host_pub = _keygen(root / "host_key")
    client_pub = _keygen(root / "client_key")
    (root / "authorized_keys").write_text(client_pub + "\n")
    port = _free_port()
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPidFile {root / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.skip(f"sshd did not start: {err[-300:]}")
            time.sleep(0.05)
    try:
        yield Sshd(port, " ".join(host_pub.split()[:2]), root / "client_key", root)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def grant_seed_storage_admin(fake: FakePVE) -> None:
    """The README's ACL for the seed storage: reading its path and deleting seeds take
    Datastore.Allocate there."""
    fake.state.permissions["/storage/local"] = dict.fromkeys(
        (*STORAGE_PRIVS, "Datastore.Allocate"), 1
    )


def _target(sshd: Sshd, known_hosts_line: str, tmp_path: Path) -> seeds.SshTarget:
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {known_hosts_line}\n")
    return seeds.SshTarget("127.0.0.1", sshd.port, getpass.getuser(), known, sshd.client_key, 10)


def _modes(folder: Path) -> dict[str, int]:
    return {f.name: stat.S_IMODE(f.stat().st_mode) for f in folder.iterdir()}


def test_snippets_upload_over_verified_ssh_and_cicustom(sshd: Sshd, tmp_path: Path) -> None:
    storage_dir = tmp_path / "var-lib-vz"
    snippets = storage_dir / "snippets"
    snippets.mkdir(parents=True)
    # The user's own snippets, one of them named much like ours: never touched.
    users_own = {"hook.pl", "homelab-gen-home-k3s-server-1-notes.yaml"}
    for name in users_own:
        (snippets / name).write_text("mine\n")
    with running_fake(tmp_path) as fake:
        local = fake.state.storage("pve", "local")
        local.content.add("snippets")
        local.path = str(storage_dir)
        grant_seed_storage_admin(fake)
        cluster = make_cluster(fake, 1, 1, seed_method="snippets")
        target = _target(sshd, sshd.host_key_line, tmp_path)
        texts = seed_texts(cluster)
        run = boot(fake, cluster, texts=texts, ssh=target)
        assert not run.errors
        assert_converged(fake, cluster)
        config = fake.state.vms[201].config
        user, network, meta = (p.split("=", 1)[1] for p in config["cicustom"].split(","))
        for volid, part in ((user, "user-data"), (network, "network-config"), (meta, "meta-data")):
            on_disk = snippets / volid.split("/", 1)[1]
            assert on_disk.read_text() == texts["k3s-server-1"][part]
        assert "cloudinit" in config["ide2"]  # cicustom is delivered through the cloud-init drive
        first = set(_modes(snippets)) - users_own
        assert len(first) == 6 and {_modes(snippets)[n] for n in first} == {0o600}
        assert sorted(p.name for p in storage_dir.iterdir()) == ["snippets"]  # no staging left

        # A changed seed: the new files go up 0600; the booted VMs keep theirs until rebuilt.
        changed = seed_texts(cluster, version="2")
        run = boot(fake, cluster, texts=changed, ssh=target)
        assert not run.errors
        assert not [a for a in run.prepared.plan.actions if a.kind == "delete-seed"]
        assert fake.state.vms[201].config["cicustom"] == config["cicustom"]
        second = set(_modes(snippets)) - users_own - first
        assert len(second) == 6 and first <= set(_modes(snippets))
        assert {_modes(snippets)[n] for n in second} == {0o600}
        # Rebuilt (gone, as boot --replace leaves them), the VMs take the new files and the
        # old ones, holding the join token, are deleted.
        for vmid in [n.vmid for n in cluster.nodes]:
            del fake.state.vms[vmid]
        rebuilt = boot(fake, cluster, texts=changed, ssh=target)
        assert not rebuilt.errors
        deleted = {a.param("volid").split("/", 1)[1] for a in rebuilt.prepared.plan.actions
                   if a.kind == "delete-seed"}  # fmt: skip
        assert deleted == first
        assert set(_modes(snippets)) - users_own == second
        assert users_own <= set(_modes(snippets))

        count = len(fake.state.mutating_calls())
        again = boot(fake, cluster, texts=changed, ssh=target)
        assert again.prepared.plan.is_noop
        assert len(fake.state.mutating_calls()) == count
        client = client_for(fake, cluster)
        observed = observe(client, cluster)
        plan = core.destroy_plan(cluster, observed)
        assert not [o for o in core.destroy(client, cluster, observed, plan, print) if o.error]
        assert set(_modes(snippets)) == users_own


def test_a_wrong_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    impostor = _keygen(tmp_path / "other_host_key")
    target = _target(sshd, " ".join(impostor.split()[:2]), tmp_path)
    cluster = make_cluster(None, 1, 0, seed_method="snippets")
    node = cluster.nodes[0]
    texts = seed_texts(cluster)[node.name]
    ref = seeds.seed_ref(cluster, node, texts)
    with pytest.raises(HomelabError, match="does not match known_hosts"):
        seeds.upload_snippets(target, str(tmp_path / "store"), ref, texts)
    assert not (tmp_path / "store").exists()


def test_an_unknown_host_key_is_never_auto_accepted(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "empty_known_hosts"
    known.write_text("")
    target = seeds.SshTarget("127.0.0.1", sshd.port, getpass.getuser(), known, sshd.client_key, 10)
    cluster = make_cluster(None, 1, 0, seed_method="snippets")
    texts = seed_texts(cluster)["k3s-server-1"]
    ref = seeds.seed_ref(cluster, cluster.nodes[0], texts)
    with pytest.raises(HomelabError, match="never auto-accepted"):
        seeds.upload_snippets(target, str(tmp_path / "store"), ref, texts)
    assert known.read_text() == ""
