"""The process environment: the only module that reads os.environ.

`Environment.read()` runs once, at the edge (a command's `run`), and the value travels down
as plain data. Values stay text here: each is parsed where it is used, so a bad timeout
still fails only the commands that talk to Proxmox.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from generator.errors import UsageError

TOKEN_ENV = "HOMELAB_GEN_PVE_TOKEN"
CONNECT_TIMEOUT_ENV = "HOMELAB_GEN_PVE_CONNECT_TIMEOUT"
READ_TIMEOUT_ENV = "HOMELAB_GEN_PVE_READ_TIMEOUT"
SSH_KEY_ENV = "HOMELAB_GEN_SSH_KEY"
KNOWN_HOSTS_ENV = "HOMELAB_GEN_KNOWN_HOSTS"
KUBECONFIG_ENV = "KUBECONFIG"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@dataclass(frozen=True)
class Environment:
    """Every variable homelab-gen honours; an unset (or, where noted, empty) one is None."""

    pve_token: str | None = None  # HOMELAB_GEN_PVE_TOKEN: wins over the secrets store
    pve_connect_timeout: str | None = None  # HOMELAB_GEN_PVE_CONNECT_TIMEOUT, seconds
    pve_read_timeout: str | None = None  # HOMELAB_GEN_PVE_READ_TIMEOUT, seconds
    ssh_key: str | None = None  # HOMELAB_GEN_SSH_KEY: the key for snippet uploads
    known_hosts: str = DEFAULT_KNOWN_HOSTS  # HOMELAB_GEN_KNOWN_HOSTS
    kubeconfig: str = ""  # KUBECONFIG: os.pathsep-separated files, the first is written

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Environment:
        env = os.environ if environ is None else environ
        return cls(
            pve_token=env.get(TOKEN_ENV) or None,
            pve_connect_timeout=env.get(CONNECT_TIMEOUT_ENV),
            pve_read_timeout=env.get(READ_TIMEOUT_ENV),
            ssh_key=env.get(SSH_KEY_ENV),
            known_hosts=env.get(KNOWN_HOSTS_ENV, DEFAULT_KNOWN_HOSTS),
            kubeconfig=env.get(KUBECONFIG_ENV, ""),
        )


def proxmox_token(env: Environment, stored: Callable[[], str | None]) -> str:
    """The Proxmox API token secret. Its sources, first one set wins:

    1. HOMELAB_GEN_PVE_TOKEN (empty counts as unset);
    2. `proxmox_token` in the secrets store (secrets.sops.yaml): `stored` reads it, and is
       called only when the variable is unset, so a missing or broken store does not matter;
    3. neither: an error that names both.
    """
    secret = env.pve_token or stored()
    if not secret:
        raise UsageError(
            f"no Proxmox API token secret: {TOKEN_ENV} is unset and the secrets store"
            " holds no proxmox_token",
            f"set {TOKEN_ENV}, or run 'homelab-gen secret set proxmox_token'",
        )
    return secret


def for_child(defaults: Mapping[str, str]) -> dict[str, str]:
    """The environment for a child process (git): ours, with `defaults` for what is unset."""
    return {**defaults, **os.environ}


def completion_requested() -> bool:
    """A shell's completion hook runs homelab-gen with _ARGCOMPLETE set (argcomplete)."""
    return "_ARGCOMPLETE" in os.environ
