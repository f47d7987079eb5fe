"""The secrets store: a git-ignored, mode-0600 YAML file beside cluster.yaml.

Generated secrets (K3s token, Grafana password) are made once and never change, because
nodes that already joined keep the old token. User-supplied ones (deploy key, DNS token,
datastore password) are added by hand and read here. The Proxmox token may come from the
environment instead: environment.proxmox_token decides which source wins.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from generator import fileio, yamlio
from generator.errors import ConfigError, HomelabError

GENERATED = ("k3s_token", "grafana_admin_password")
SUPPLIED = ("git_deploy_key", "git_token", "datastore_password", "dns_api_token", "proxmox_token")
HEADER = (
    "# homelab-gen secrets: never commit this file (it is git-ignored, mode 0600).\n"
    "# Back it up: nodes that already joined need this k3s_token to rejoin.\n"
    "# Optional keys you may add: " + ", ".join(SUPPLIED) + "\n"
)


@dataclass(frozen=True)
class Secrets:
    k3s_token: str
    grafana_admin_password: str
    git_deploy_key: str | None = None
    git_token: str | None = None
    datastore_password: str | None = None
    dns_api_token: str | None = None
    proxmox_token: str | None = None
    # K3s's agent token: agents join with it instead of the server token. Labs made before
    # it existed have none, and their agents keep joining with k3s_token.
    agent_token: str | None = None
    # The age identity that decrypts the repo's SOPS files; the first server's seed hands it
    # to Flux as the sops-age Secret.
    age_key: str | None = None
    # The user's own Kubernetes Secrets: "namespace/name" -> {key: value}.
    kubernetes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def values(self) -> tuple[str, ...]:
        """Every secret value present, for leak checks."""
        found = [
            v
            for f in fields(self)
            if f.name != "kubernetes" and isinstance(v := getattr(self, f.name), str) and v
        ]
        found += [v for data in self.kubernetes.values() for v in data.values() if v]
        return tuple(found)


def store_path(directory: Path) -> Path:
    return directory / fileio.SECRETS_FILE


def generate() -> dict[str, str]:
    # K3s accepts any string as a pre-shared token; 32 random bytes in hex is plenty.
    return {"k3s_token": _random.token_hex(32), "grafana_admin_password": _random.token_urlsafe(18)}


def create(directory: Path, deploy_key: bool = False) -> Secrets:
    """Write a new store; refuse to replace one, since that would orphan joined nodes.

    With deploy_key (an ssh git URL), also make the read-only key pair Flux pulls with: the
    private half goes in the store, the public half beside it for the user's git host.
    """
    path = store_path(directory)
    if path.exists():
        raise HomelabError(f"{path} already exists", "keep it; it holds the cluster's join token")
    values = generate()
    if deploy_key:
        private, public = generate_deploy_key()
        values["git_deploy_key"] = private
        fileio.write_atomic(deploy_key_path(directory), public + "\n")
    _write(path, values)
    return Secrets(**dict[str, Any](values))


def deploy_key_path(directory: Path) -> Path:
    return directory / fileio.DEPLOY_KEY_FILE


def generate_deploy_key() -> tuple[str, str]:
    """An ed25519 pair in OpenSSH formats: (private, public)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, f"{public} flux@homelab-gen"


def load(directory: Path) -> Secrets:
    path = store_path(directory)
    text = fileio.read_text(
        path, what="secrets store", hint="restore it from your backup; 'homelab-gen new' makes one"
    )
    data = yamlio.to_plain(yamlio.load_text(text, str(path))) or {}
    if not isinstance(data, dict):
        raise ConfigError(["(top level): expected a mapping of name: value"], str(path))
    known = {f.name for f in fields(Secrets)}
    problems = [
        f"{k}: unknown secret (known: {', '.join(sorted(known))})" for k in data if k not in known
    ]
    problems += [
        f"{k}: is required (restore it from your backup)" for k in GENERATED if not data.get(k)
    ]
    problems += [
        f"{k}: expected a string"
        for k, v in data.items()
        if v is not None and not isinstance(v, str)
    ]
    if problems:
        raise ConfigError(problems, str(path))
    _tighten(path)
    return Secrets(**data)


def load_or_create(directory: Path, seeds_exist: bool, deploy_key: bool = False) -> Secrets:
    """A fresh repo gets a store; a repo with rendered seeds must keep its old one."""
    if store_path(directory).exists() or seeds_exist:
        return load(directory)
    return create(directory, deploy_key)


def _write(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fileio.write_atomic(path, HEADER + yamlio.dump_text(values), mode=0o600)


def _tighten(path: Path) -> None:
    """A store copied around with a looser mode is put back to 0600."""
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
