"""The cluster's secrets as values: the record render reads, how new ones are made, and the
rules their names and values follow. generator/secretstore.py keeps them on disk.

Generated secrets (K3s tokens, Grafana password) are made once and never change, because
nodes that already joined keep the old token. User-supplied ones (deploy key, DNS token,
datastore password, the user's own Kubernetes Secrets) are set with `homelab-gen secret set`.
The Proxmox token may come from the environment instead: environment.proxmox_token decides
which source wins.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import hmac
import re
import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from generator.errors import ConfigError, UsageError

# Made by homelab-gen; k3s_token and the Grafana password are required in every store.
GENERATED = ("k3s_token", "agent_token", "grafana_admin_password")
REQUIRED = ("k3s_token", "grafana_admin_password")
SUPPLIED = ("git_deploy_key", "git_token", "datastore_password", "dns_api_token", "proxmox_token")
# The Traefik dashboard's password is derived from k3s_token unless set (see
# traefik_dashboard_password), so a lab made before the dashboard existed has one at the next
# render without a new store; `secret set` replaces it, `secret get` shows it.
TRAEFIK_DASHBOARD_PASSWORD = "traefik_dashboard_password"
# The user's own Secrets live under this key of the store: {"namespace/name": {key: value}}.
KUBERNETES = "kubernetes"
# Rotating the K3s tokens needs every node reconfigured in step, which a commit cannot do.
NOT_SETTABLE = ("k3s_token", "agent_token")
SETTABLE = ("grafana_admin_password", TRAEFIK_DASHBOARD_PASSWORD, *SUPPLIED)


@dataclass(frozen=True)
class Secrets:
    k3s_token: str
    grafana_admin_password: str
    # Set only by `secret set`; traefik_dashboard_password() derives it otherwise.
    traefik_dashboard_password: str | None = None
    git_deploy_key: str | None = None
    git_token: str | None = None
    datastore_password: str | None = None
    dns_api_token: str | None = None
    proxmox_token: str | None = None
    # K3s's agent token: agents join with it instead of the server token. Labs made before
    # it existed have none, and their agents keep joining with k3s_token.
    agent_token: str | None = None
    # The age identity that decrypts the repo's SOPS files; the first server's seed hands it
    # to Flux as the sops-age Secret. Read from the key file, never kept in the store.
    age_key: str | None = None
    # The user's own Kubernetes Secrets: "namespace/name" -> {key: value}.
    kubernetes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def values(self) -> tuple[str, ...]:
        """Every secret value present, for leak checks."""
        found = [
            v
            for f in fields(self)
            if f.name != KUBERNETES and isinstance(v := getattr(self, f.name), str) and v
        ]
        found += [v for data in self.kubernetes.values() for v in data.values() if v]
        if not self.traefik_dashboard_password:
            found.append(traefik_dashboard_password(self))
        return tuple(found)


STORED = tuple(f.name for f in fields(Secrets) if f.name != "age_key")


def traefik_dashboard_password(store: Secrets) -> str:
    """The dashboard's basic-auth password: the one set with `secret set`, else an HMAC of
    k3s_token. k3s_token is random, required and never changes, so the password is as strong
    and as stable as a generated one, and exists for every store, old ones included: turning
    the dashboard on later needs no new secret in the store. The HMAC is one-way, so the
    password never reveals the token (whoever has the token owns the cluster anyway)."""
    if store.traefik_dashboard_password:
        return store.traefik_dashboard_password
    digest = hmac.new(
        store.k3s_token.encode(), b"homelab-gen traefik dashboard password", hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


# bcrypt's own base64 alphabet, for a salt it accepts.
_BCRYPT_B64 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
)
BCRYPT_COST = 12


def htpasswd_line(user: str, password: str) -> str:
    """`user:$2y$...`, a bcrypt hash as `htpasswd -nB` writes it: Traefik's basicAuth takes
    MD5 (apr1), SHA1 or bcrypt, and bcrypt is the only one of them made for passwords.

    The salt is derived from the password, not random: render must give the same plaintext
    every time, or the SOPS file holding the line would be re-encrypted at every render.
    A salt only has to differ between passwords; the hash still costs 2^12 rounds a guess."""
    import bcrypt

    seed = hmac.new(password.encode(), b"homelab-gen htpasswd salt", hashlib.sha256).digest()
    # 16 bytes -> 22 characters of bcrypt base64 (the last one carries 4 bits: pad with ".")
    encoded = base64.b64encode(seed[:16]).decode().rstrip("=").translate(_BCRYPT_B64)
    salt = f"$2b${BCRYPT_COST:02d}${encoded[:21]}{_bcrypt_last(encoded[21])}".encode()
    hashed = bcrypt.hashpw(password.encode(), salt).decode()
    # $2b$ and $2y$ are the same algorithm; $2y$ is what htpasswd writes and Traefik's docs show.
    return f"{user}:$2y${hashed.removeprefix('$2b$')}"


def _bcrypt_last(char: str) -> str:
    """bcrypt keeps only the top 2 bits of the salt's 22nd character: use a canonical one."""
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return alphabet[alphabet.index(char) & 0x30]


def generate(agent_token: bool = True) -> dict[str, str]:
    # K3s accepts any string as a pre-shared token; 32 random bytes in hex is plenty.
    made = {
        "k3s_token": _random.token_hex(32),
        "grafana_admin_password": _random.token_urlsafe(18),
    }
    if agent_token:
        made["agent_token"] = _random.token_hex(32)
    return made


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


# -- reading a store's values ----------------------------------------------------------------
def from_values(data: Any, source: str, age_key: str | None = None) -> Secrets:
    """The record from a store's decrypted mapping, with every problem named at once."""
    if not isinstance(data, dict):
        raise ConfigError(["(top level): expected a mapping of name: value"], source)
    problems = [
        f"{k}: unknown secret (known: {', '.join(sorted(STORED))})" for k in data if k not in STORED
    ]
    problems += [
        f"{k}: is required (restore it from your backup)" for k in REQUIRED if not data.get(k)
    ]
    problems += [
        f"{k}: expected a string"
        for k, v in data.items()
        if k != KUBERNETES and v is not None and not isinstance(v, str)
    ]
    kubernetes = data.get(KUBERNETES) or {}
    problems += _kubernetes_problems(kubernetes)
    if problems:
        raise ConfigError(problems, source)
    plain = {k: v for k, v in data.items() if k != KUBERNETES}
    return Secrets(**plain, age_key=age_key, kubernetes=kubernetes)


def to_values(store: Secrets) -> dict[str, Any]:
    """What the store file holds, in a fixed order; empty values and the age key left out."""
    values: dict[str, Any] = {
        name: value
        for name in STORED
        if name != KUBERNETES and (value := getattr(store, name)) is not None
    }
    if store.kubernetes:
        values[KUBERNETES] = {
            ref: dict(sorted(data.items())) for ref, data in sorted(store.kubernetes.items())
        }
    return values


def _kubernetes_problems(kubernetes: Any) -> list[str]:
    if not isinstance(kubernetes, dict):
        return [f"{KUBERNETES}: expected a mapping of namespace/name: {{key: value}}"]
    problems = []
    for ref, data in kubernetes.items():
        namespace, _, name = str(ref).partition("/")
        if not (DNS_LABEL.match(namespace) and DNS_SUBDOMAIN.match(name)):
            problems.append(f"{KUBERNETES}.{ref}: expected namespace/name")
        elif not isinstance(data, dict) or not all(
            isinstance(k, str) and KEY.match(k) and isinstance(v, str) for k, v in data.items()
        ):
            problems.append(f"{KUBERNETES}.{ref}: expected a mapping of key: text")
    return problems


# -- the names `homelab-gen secret` takes --------------------------------------------------
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")  # a Secret's data key (IsConfigMapKey)


@dataclass(frozen=True)
class SecretName:
    """What `secret set NAME` addresses: one of ours, or a key of a user's Kubernetes Secret."""

    builtin: str | None = None
    ref: str | None = None  # "namespace/name"
    key: str | None = None

    def __str__(self) -> str:
        return self.builtin or f"{self.ref}/{self.key}"


def parse_name(text: str, reading: bool = False) -> SecretName:
    """The name `secret` was given; reading (`secret get`) also takes the K3s tokens."""
    if reading and text in NOT_SETTABLE:
        return SecretName(builtin=text)
    if text in NOT_SETTABLE:
        raise UsageError(
            f"secret {text}: homelab-gen does not rotate the K3s tokens",
            "a booted node keeps its token in its K3s config and every node would have to"
            " switch at once; rebuilding the cluster is the way to change it, see README: Secrets",
        )
    if text in SETTABLE:
        return SecretName(builtin=text)
    parts = text.split("/")
    if (
        len(parts) == 3
        and DNS_LABEL.match(parts[0])
        and DNS_SUBDOMAIN.match(parts[1])
        and KEY.match(parts[2])
    ):
        return SecretName(ref=f"{parts[0]}/{parts[1]}", key=parts[2])
    close = difflib.get_close_matches(text, [*SETTABLE, *NOT_SETTABLE], n=1)
    raise UsageError(
        f"secret name {text!r}: expected one of {', '.join(SETTABLE)},"
        " or NAMESPACE/SECRET/KEY for a Kubernetes Secret of your own",
        f"did you mean {close[0]}?"
        if close
        else "e.g. apps/db-credentials/password: lower-case namespace and Secret name,"
        " and a key of letters, digits, - _ .",
    )


def with_value(store: Secrets, name: SecretName, value: str | None) -> Secrets:
    """The store with one secret set (or, with None, removed)."""
    from dataclasses import replace

    if name.builtin:
        if value is None and name.builtin in REQUIRED:
            raise UsageError(f"secret {name.builtin} is required", "set a new value instead")
        changed: dict[str, Any] = {name.builtin: value}
        return replace(store, **changed)
    assert name.ref is not None and name.key is not None
    kubernetes = {ref: dict(data) for ref, data in store.kubernetes.items()}
    data = kubernetes.setdefault(name.ref, {})
    if value is None:
        data.pop(name.key, None)
        if not data:
            del kubernetes[name.ref]
    else:
        data[name.key] = value
    return replace(store, kubernetes=kubernetes)


def value_of(store: Secrets, name: SecretName) -> str | None:
    """One secret's value, as render uses it (the dashboard password derived if not set)."""
    if name.builtin == TRAEFIK_DASHBOARD_PASSWORD:
        return traefik_dashboard_password(store)
    if name.builtin:
        value: str | None = getattr(store, name.builtin)
        return value
    assert name.ref is not None and name.key is not None
    return store.kubernetes.get(name.ref, {}).get(name.key)


def names(store: Secrets) -> list[str]:
    """Every secret's name, never its value."""
    found = [n for n in STORED if n != KUBERNETES and getattr(store, n)]
    found += [f"{ref}/{key}" for ref, data in sorted(store.kubernetes.items()) for key in data]
    return found
