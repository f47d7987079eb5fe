"""Getting each VM's cloud-init seed onto Proxmox: a NoCloud ISO through the API, or
snippets over SFTP (host key verified) referenced by `cicustom`."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.config.model import Cluster, Node, SeedMethod
from generator.environment import Environment
from generator.errors import HomelabError
from generator.proxmox.seediso import build_seed_iso, seed_digest

SeedTexts = Mapping[str, str]  # user-data / meta-data / network-config -> text
SNIPPET_PARTS = (("user", "user-data"), ("network", "network-config"), ("meta", "meta-data"))
DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
# What follows `homelab-gen-<cluster>-<node>-` in a seed's file name (see seed_ref).
SEED_TAIL = r"[0-9a-f]{12}(?:\.iso|-(?:user|network|meta)\.yaml)"


def seed_name_pattern(cluster_name: str, node_name: str | None = None) -> re.Pattern[str]:
    node = re.escape(node_name) if node_name else DNS_LABEL
    return re.compile(rf"homelab-gen-{re.escape(cluster_name)}-{node}-{SEED_TAIL}")


def is_seed_of(cluster_name: str, volid: str, node_name: str | None = None) -> bool:
    """Named exactly as seed_ref names this cluster's seeds (of that node, if given): a
    user's own `homelab-gen-home-notes.iso` is never taken for one."""
    file_name = volid.split("/", 1)[-1]
    return seed_name_pattern(cluster_name, node_name).fullmatch(file_name) is not None


@dataclass(frozen=True)
class SeedRef:
    """Where a node's seed lives on Proxmox; the digest in the names tells if it is current."""

    method: SeedMethod
    storage: str
    digest: str
    names: tuple[tuple[str, str], ...]  # (part, file name): ("iso", ...) or user/network/meta

    @property
    def volids(self) -> tuple[str, ...]:
        folder = str(self.method)  # a SeedMethod is also its volumes' folder
        return tuple(f"{self.storage}:{folder}/{name}" for _, name in self.names)

    def volid(self, part: str) -> str:
        return dict(zip((p for p, _ in self.names), self.volids, strict=True))[part]


def seed_ref(cluster: Cluster, node: Node, texts: SeedTexts) -> SeedRef:
    digest = seed_digest(texts)
    stem = f"homelab-gen-{cluster.name}-{node.name}-{digest}"
    pve = cluster.proxmox
    if pve.seed_method == SeedMethod.ISO:
        return SeedRef(SeedMethod.ISO, pve.seed_storage, digest, (("iso", f"{stem}.iso"),))
    names = tuple((part, f"{stem}-{part}.yaml") for part, _ in SNIPPET_PARTS)
    return SeedRef(SeedMethod.SNIPPETS, pve.seed_storage, digest, names)


def upload_iso(client: Any, pve_node: str, ref: SeedRef, texts: SeedTexts) -> None:
    data = build_seed_iso(texts)
    handle = io.BytesIO(data)
    handle.name = ref.names[0][1]  # proxmoxer takes the upload's file name from .name
    # pve-http-server reads the form fields in this order only (AnyEvent.pm,
    # file_upload_multipart): content, checksum-algorithm, checksum, then the file part
    # named `filename`. proxmoxer sends keyword arguments in the order given.
    fields = {
        "content": "iso",
        "checksum-algorithm": "sha256",
        "checksum": hashlib.sha256(data).hexdigest(),
        "filename": handle,
    }
    client.task("POST", f"nodes/{pve_node}/storage/{ref.storage}/upload", **fields)


@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int
    user: str
    known_hosts: Path
    key_file: Path | None = None
    timeout: float = 30.0


def default_ssh_target(cluster: Cluster, env: Environment) -> SshTarget:
    return SshTarget(
        host=cluster.proxmox.host,
        port=cluster.proxmox.ssh_port,
        user=cluster.proxmox.ssh_user,
        known_hosts=Path(env.known_hosts).expanduser(),
        key_file=Path(env.ssh_key).expanduser() if env.ssh_key else None,
    )


def _verified_session(target: SshTarget) -> Any:
    """proxmoxer's paramiko session, but with the host key checked against known_hosts:
    proxmoxer's own session auto-accepts any key."""
    import paramiko
    from proxmoxer.backends.ssh_paramiko import SshParamikoSession

    class VerifiedSession(SshParamikoSession):  # type: ignore[misc]
        def _connect(self) -> Any:
            client = paramiko.SSHClient()
            if not target.known_hosts.is_file():
                raise HomelabError(
                    f"no known_hosts file at {target.known_hosts}",
                    "add the Proxmox host's SSH key there after checking its fingerprint",
                )
            client.load_host_keys(str(target.known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(
                target.host,
                port=target.port,
                username=target.user,
                key_filename=str(target.key_file) if target.key_file else None,
                look_for_keys=target.key_file is None,
                allow_agent=target.key_file is None,
                timeout=target.timeout,
            )
            return client

    return VerifiedSession(target.host, target.user, port=target.port, timeout=target.timeout)


def upload_snippets(target: SshTarget, storage_path: str, ref: SeedRef, texts: SeedTexts) -> None:
    import paramiko

    try:
        session = _verified_session(target)
    except paramiko.BadHostKeyException as exc:
        raise HomelabError(
            f"{target.host}:{target.port} offered a host key that does not match known_hosts",
            "someone may be intercepting the connection; check the key on the Proxmox host",
        ) from exc
    except paramiko.SSHException as exc:
        raise HomelabError(
            f"SSH to {target.user}@{target.host}:{target.port} failed: {exc}",
            "the host key must already be in known_hosts (it is never auto-accepted),"
            " and your key must be authorized for proxmox.ssh_user",
        ) from exc
    except OSError as exc:
        raise HomelabError(f"SSH to {target.host}:{target.port} failed: {exc}") from exc
    try:
        sftp = session.ssh_client.open_sftp()
        try:
            write_private_snippets(sftp, storage_path.rstrip("/"), ref, texts)
        finally:
            sftp.close()
    finally:
        session.ssh_client.close()


def write_private_snippets(sftp: Any, root: str, ref: SeedRef, texts: SeedTexts) -> None:
    """Each file is written in a fresh 0700 folder beside `snippets/`, made 0600, then
    renamed into place: the seed (join token and all) is never readable by other users of
    the host, not even while it is written. The folder's dot name keeps it out of PVE's
    content listing; the same file system makes the rename atomic."""
    staging = f"{root}/.homelab-gen-upload-{secrets.token_hex(8)}"
    sftp.mkdir(staging, mode=0o700)
    try:
        for part, name in ref.names:
            text = texts[dict(SNIPPET_PARTS)[part]]
            temporary = f"{staging}/{name}"
            sftp.putfo(io.BytesIO(text.encode()), temporary)
            sftp.chmod(temporary, 0o600)
            # posix-rename replaces a file left by an earlier, interrupted upload.
            sftp.posix_rename(temporary, f"{root}/snippets/{name}")
    finally:
        for leftover in sftp.listdir(staging):
            sftp.remove(f"{staging}/{leftover}")
        sftp.rmdir(staging)
