"""SOPS files with age recipients, written and read the way sops 3.x does it.

Pure functions over plain data: no file IO, no printing. The format follows sops v3.13.2:
- each leaf value to encrypt becomes `ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]`, AES-256-GCM
  under one random 32-byte data key with a random 32-byte IV, and the leaf's key path
  (mapping keys only, list positions left out) joined by ":" plus a trailing ":" as the
  additional data (aes/cipher.go Encrypt, sops.go Tree.Encrypt);
- the MAC is SHA-512 over every non-null leaf's plaintext bytes in document order, encrypted
  ones or not, as upper-case hex, itself encrypted with the data key and `lastmodified` as the
  additional data (sops.go Tree.Encrypt and ToBytes, cmd/sops/common EncryptTree);
- the data key is age-encrypted, ASCII-armored, once per recipient (age/keysource.go Encrypt);
- the `sops:` block's keys are sorted by name, as stores/metadata.go writes them since 3.13.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyrage  # type: ignore[import-untyped,unused-ignore]
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.representer import SafeRepresenter

from generator.errors import HomelabError, UsageError
from generator.yamlio import block_dumper, is_yaml11_ambiguous

SOPS_VERSION = "3.13.2"
"""The sops release whose file format this module writes (the `version` it records)."""
DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"
"""sops's rule when a file names no other: keys ending so stay plain (sops.go)."""
KUBERNETES_ENCRYPTED_REGEX = "^(data|stringData)$"
"""Only a Secret's values are encrypted; its apiVersion, kind and metadata stay readable."""
GITOPS_PATH_REGEX = r"gitops/.*\.sops\.yaml$"
SEED_SECRETS_PATH_REGEX = r"\.homelab-gen/secrets\.sops\.yaml$"

_KEY_BYTES = 32
_IV_BYTES = 32  # aes/cipher.go: nonceSize
_TAG_BYTES = 16
_ENC = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
_UNSUPPORTED_METADATA = (
    "key_groups",
    "shamir_threshold",
    "kms",
    "gcp_kms",
    "hckms",
    "azure_kv",
    "hc_vault",
    "pgp",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)

Leaf = str | bool | int | float


# --- age -------------------------------------------------------------------------------------


def new_age_identity() -> tuple[str, str]:
    """A fresh age X25519 key pair: (identity "AGE-SECRET-KEY-1...", recipient "age1...")."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def recipient_of(identity: str) -> str:
    """The public recipient ("age1...") of an age identity."""
    return str(_parse_identity(identity).to_public())


def _parse_identity(identity: str) -> Any:
    try:
        return pyrage.x25519.Identity.from_str(identity.strip())
    except (pyrage.IdentityError, ValueError):
        raise UsageError(
            "the age key is not an age identity", "it is one line starting AGE-SECRET-KEY-1"
        ) from None


def _parse_recipient(recipient: str) -> Any:
    try:
        return pyrage.x25519.Recipient.from_str(recipient.strip())
    except (pyrage.RecipientError, ValueError):
        raise HomelabError(
            f"{recipient!r} is not an age recipient", "age recipients start with age1"
        ) from None


# --- values ----------------------------------------------------------------------------------


def _format_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")


def _to_bytes(value: Leaf) -> tuple[bytes, str]:
    """A leaf's plaintext bytes and sops type marker (sops.go ToBytes, aes/cipher.go Encrypt)."""
    if isinstance(value, bool):
        return (b"True" if value else b"False"), "bool"
    if isinstance(value, int):
        return str(value).encode(), "int"
    if isinstance(value, float):
        return _format_float(value).encode(), "float"
    return value.encode(), "str"


def _from_bytes(plain: bytes, kind: str, where: str) -> Leaf:
    text = plain.decode()
    try:
        if kind in ("str", "bytes", "time", "comment"):
            return text
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text.replace("Inf", "inf"))
        if kind == "bool":
            return _parse_bool(text)
    except ValueError:
        pass
    raise HomelabError(f"{where}: encrypted value of type {kind!r} does not read as one")


def _parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(text)


def _seal(plain: bytes, kind: str, key: bytes, additional_data: str) -> str:
    iv = os.urandom(_IV_BYTES)
    sealed = AESGCM(key).encrypt(iv, plain, additional_data.encode())
    data, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    b64 = base64.b64encode
    return (
        f"ENC[AES256_GCM,data:{b64(data).decode()},iv:{b64(iv).decode()},"
        f"tag:{b64(tag).decode()},type:{kind}]"
    )


def _open(value: str, key: bytes, additional_data: str, where: str) -> tuple[bytes, str]:
    match = _ENC.match(value)
    if match is None:
        raise HomelabError(
            f"{where}: value is not sops-encrypted", "the file was edited by hand; re-render it"
        )
    try:
        data, iv, tag = (base64.b64decode(match[i], validate=True) for i in (1, 2, 3))
        plain = AESGCM(key).decrypt(iv, data + tag, additional_data.encode())
    except (InvalidTag, ValueError):
        raise HomelabError(
            f"{where}: encrypted value does not decrypt (changed or moved by hand)",
            "restore the file from git and re-render",
        ) from None
    return plain, match[4]


# --- the tree walk ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    """Which leaves sops encrypts (sops.go shouldBeEncrypted): a rule tests every key on the
    leaf's path, and the last rule given wins."""

    unencrypted_suffix: str | None = None
    encrypted_suffix: str | None = None
    unencrypted_regex: str | None = None
    encrypted_regex: str | None = None

    def encrypts(self, path: Sequence[str]) -> bool:
        encrypted = True
        suffix, regex = self.unencrypted_suffix, self.unencrypted_regex
        if suffix and any(key.endswith(suffix) for key in path):
            encrypted = False
        if self.encrypted_suffix:
            encrypted = any(key.endswith(self.encrypted_suffix) for key in path)
        if regex and any(re.search(regex, key) for key in path):
            encrypted = False
        if self.encrypted_regex:
            encrypted = any(re.search(self.encrypted_regex, key) for key in path)
        return encrypted


def _walk(node: Any, path: tuple[str, ...], on_leaf: Callable[[Any, tuple[str, ...]], Any]) -> Any:
    """A copy of `node` with each non-null leaf replaced by on_leaf(leaf, path): mappings
    add their key to the path, lists do not (sops.go walkBranch, walkSlice)."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise TypeError(f"sops keys must be strings, got {key!r} at {':'.join(path)}")
            out[key] = _walk(value, (*path, key), on_leaf)
        return out
    if isinstance(node, list | tuple):
        return [_walk(item, path, on_leaf) for item in node]
    if node is None:
        return None
    return on_leaf(node, path)


def _where(path: Sequence[str]) -> str:
    return ".".join(path) or "(top level)"


# --- encrypt ---------------------------------------------------------------------------------


def _lastmodified(now: datetime) -> str:
    """RFC 3339 in UTC, whole seconds, as sops writes time.Now().UTC()."""
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encrypt(
    doc: Mapping[str, Any],
    recipients: Sequence[str],
    *,
    encrypted_regex: str | None = None,
    now: datetime,
) -> str:
    """The YAML text of `doc` SOPS-encrypted to the age `recipients`, as sops writes it.

    With `encrypted_regex`, only leaves with a key on their path that the regex matches are
    encrypted; without it, every leaf is, except under keys ending in "_unencrypted" (sops's
    default rule, which it then records). Leaves are str, bool, int or float; null, "" and
    empty containers stay as they are. A naive `now` is taken as UTC.
    """
    if not recipients:
        raise HomelabError("no age recipient to encrypt to", "add the recipient to .sops.yaml")
    if "sops" in doc:
        raise HomelabError("a SOPS document cannot have a top-level key named 'sops'")
    parsed = [_parse_recipient(r) for r in recipients]
    rules = _rules_for(encrypted_regex)
    key = os.urandom(_KEY_BYTES)
    mac = hashlib.sha512()

    def seal(leaf: Any, path: tuple[str, ...]) -> Any:
        if not isinstance(leaf, str | bool | int | float):
            raise TypeError(f"{_where(path)}: cannot encrypt a {type(leaf).__name__}")
        plain, kind = _to_bytes(leaf)
        mac.update(plain)
        if not rules.encrypts(path) or (kind == "str" and not plain):
            return leaf
        return _seal(plain, kind, key, ":".join(path) + ":")

    tree = _walk(doc, (), seal)
    lastmodified = _lastmodified(now)
    metadata: dict[str, Any] = {
        "age": [
            {"enc": pyrage.encrypt(key, [recipient], armored=True).decode(), "recipient": text}
            for recipient, text in zip(parsed, (r.strip() for r in recipients), strict=True)
        ],
        "lastmodified": lastmodified,
        "mac": _seal(mac.hexdigest().upper().encode(), "str", key, lastmodified),
        "version": SOPS_VERSION,
    }
    if encrypted_regex is not None:
        metadata["encrypted_regex"] = encrypted_regex
    else:
        metadata["unencrypted_suffix"] = DEFAULT_UNENCRYPTED_SUFFIX
    return (_dump(tree) if tree else "") + _dump_metadata(metadata)


def _rules_for(encrypted_regex: str | None) -> _Rules:
    if encrypted_regex is None:
        return _Rules(unencrypted_suffix=DEFAULT_UNENCRYPTED_SUFFIX)
    try:
        re.compile(encrypted_regex)
    except re.error as exc:
        raise HomelabError(f"encrypted_regex {encrypted_regex!r} is not a regex: {exc}") from None
    return _Rules(encrypted_regex=encrypted_regex)


# --- decrypt ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    tree: dict[str, Any]
    recipients: tuple[str, ...]
    stanzas: tuple[str, ...]
    lastmodified: str
    mac: str
    rules: _Rules
    mac_only_encrypted: bool


def _parse(text: str) -> _Parsed:
    try:
        doc = _loader().load(text)
    except YAMLError as exc:
        raise HomelabError(f"not a SOPS file: not YAML ({' '.join(str(exc).split())})") from None
    meta = doc.get("sops") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        raise HomelabError("not a SOPS file: it has no 'sops' metadata mapping")
    unsupported = sorted(k for k in _UNSUPPORTED_METADATA if meta.get(k))
    if unsupported:
        raise HomelabError(
            f"SOPS file uses {', '.join(unsupported)}, which homelab-gen does not read",
            "use age recipients only",
        )
    age = meta.get("age") or []
    if not isinstance(age, list) or not all(
        isinstance(s, dict) and isinstance(s.get("enc"), str) for s in age
    ):
        raise HomelabError("SOPS file's sops.age is not a list of {recipient, enc}")
    lastmodified, mac = meta.get("lastmodified"), meta.get("mac")
    if not isinstance(lastmodified, str) or not isinstance(mac, str):
        raise HomelabError("SOPS file's metadata lacks lastmodified or mac")
    tree = {k: v for k, v in doc.items() if k != "sops"}

    def rule(name: str) -> str | None:
        value = meta.get(name)
        return str(value) if value else None

    rules = _Rules(
        unencrypted_suffix=rule("unencrypted_suffix"),
        encrypted_suffix=rule("encrypted_suffix"),
        unencrypted_regex=rule("unencrypted_regex"),
        encrypted_regex=rule("encrypted_regex"),
    )
    if rules == _Rules():
        rules = _Rules(unencrypted_suffix=DEFAULT_UNENCRYPTED_SUFFIX)  # stores.go ToInternal
    return _Parsed(
        tree=tree,
        recipients=tuple(str(s.get("recipient", "")) for s in age),
        stanzas=tuple(s["enc"] for s in age),
        lastmodified=lastmodified,
        mac=mac,
        rules=rules,
        mac_only_encrypted=bool(meta.get("mac_only_encrypted")),
    )


def _data_key(parsed: _Parsed, identities: Sequence[str]) -> bytes:
    keys = [_parse_identity(i) for i in identities]
    for stanza in parsed.stanzas:
        try:
            key = pyrage.decrypt(stanza.encode(), keys)
        except pyrage.DecryptError:
            continue
        if len(key) == _KEY_BYTES:
            return bytes(key)
    mine = ", ".join(recipient_of(i) for i in identities) or "none"
    raise UsageError(
        "no age key given can decrypt this SOPS file "
        f"(it is for {', '.join(parsed.recipients) or 'no recipient'}; the keys given are for "
        f"{mine})",
        "put the age key the file was encrypted to in .homelab-gen/age.key",
    )


def _mac_additional_data(lastmodified: str) -> str:
    """lastmodified as sops re-formats it after parsing (Go's time.RFC3339: no fraction)."""
    try:
        moment = datetime.fromisoformat(lastmodified)
    except ValueError:
        raise HomelabError(f"SOPS file's lastmodified {lastmodified!r} is not a time") from None
    if moment.tzinfo is None:
        raise HomelabError(f"SOPS file's lastmodified {lastmodified!r} has no time zone")
    text = moment.replace(microsecond=0).isoformat()
    return text.removesuffix("+00:00") + "Z" if moment.utcoffset() == UTC.utcoffset(None) else text


def _decrypt_parsed(parsed: _Parsed, identities: Sequence[str]) -> dict[str, Any]:
    key = _data_key(parsed, identities)
    mac = hashlib.sha512()
    if parsed.mac_only_encrypted:
        mac.update(hashlib.sha256(b"sops").digest())  # sops.go MACOnlyEncryptedInitialization

    def unseal(leaf: Any, path: tuple[str, ...]) -> Any:
        encrypted = parsed.rules.encrypts(path)
        value: Leaf = leaf
        if encrypted:
            if not isinstance(leaf, str):
                raise HomelabError(f"{_where(path)}: expected an encrypted value, found {leaf!r}")
            if leaf:
                plain, kind = _open(leaf, key, ":".join(path) + ":", _where(path))
                value = _from_bytes(plain, kind, _where(path))
        if encrypted or not parsed.mac_only_encrypted:
            mac.update(_to_bytes(value)[0])
        return value

    tree: dict[str, Any] = _walk(parsed.tree, (), unseal)
    stored, _ = _open(parsed.mac, key, _mac_additional_data(parsed.lastmodified), "sops.mac")
    if stored.decode() != mac.hexdigest().upper():
        raise HomelabError(
            "SOPS file's MAC does not match its content (it was changed by hand)",
            "restore the file from git and re-render",
        )
    return tree


def decrypt(text: str, identities: Sequence[str]) -> dict[str, Any]:
    """The plaintext of a SOPS YAML file, after checking its MAC.

    Raises UsageError when none of the age `identities` opens the file, HomelabError when it
    is not a SOPS file or was changed (a value or the MAC no longer checks out).
    """
    return _decrypt_parsed(_parse(text), identities)


def reencrypt_if_changed(
    existing: str | None,
    doc: Mapping[str, Any],
    recipients: Sequence[str],
    identities: Sequence[str],
    *,
    encrypted_regex: str | None = None,
    now: datetime,
) -> str:
    """`existing` unchanged when it holds the same plaintext (same keys, order and types) for
    the same set of recipients and the same encryption rule; else a fresh encryption, so
    re-rendering never churns git. An `existing` that does not decrypt is an error, never
    silently replaced."""
    if existing is not None:
        parsed = _parse(existing)
        same_keys = {r.strip() for r in recipients} == set(parsed.recipients)
        if same_keys and parsed.rules == _rules_for(encrypted_regex):
            plain = _decrypt_parsed(parsed, identities)
            if _typed(plain) == _typed(doc):
                return existing
    return encrypt(doc, recipients, encrypted_regex=encrypted_regex, now=now)


def _typed(node: Any) -> Any:
    """A comparable form that tells 1, 1.0, True and "1" apart and keeps key order."""
    if isinstance(node, Mapping):
        return ("map", tuple((k, _typed(v)) for k, v in node.items()))
    if isinstance(node, list | tuple):
        return ("list", tuple(_typed(v) for v in node))
    if node is None:
        return ("null",)
    if isinstance(node, str | bool | int | float):
        plain, kind = _to_bytes(node)
        return (kind, plain)
    return ("?", repr(node))


# --- .sops.yaml ------------------------------------------------------------------------------


def sops_config(recipients: Sequence[str]) -> str:
    """The `.sops.yaml` text that makes `sops` encrypt like homelab-gen: Kubernetes Secrets
    under gitops/ keep all but data/stringData readable; the seed secrets file is encrypted
    whole. sops takes the first rule whose path_regex matches the path relative to this file."""
    for recipient in recipients:
        _parse_recipient(recipient)
    if not recipients:
        raise HomelabError("no age recipient for .sops.yaml")
    age = ",".join(r.strip() for r in recipients)
    config = {
        "creation_rules": [
            {
                "path_regex": GITOPS_PATH_REGEX,
                "encrypted_regex": KUBERNETES_ENCRYPTED_REGEX,
                "age": age,
            },
            {"path_regex": SEED_SECRETS_PATH_REGEX, "age": age},
        ]
    }
    header = "# homelab-gen: which files sops encrypts, and to whom. Made by `homelab-gen new`.\n"
    return header + _dump(config)


# --- YAML as sops writes it ------------------------------------------------------------------


def _represent_str(representer: Any, data: str) -> Any:
    # go-yaml (sops's writer) uses a literal block for multi-line text and quotes what a
    # YAML 1.1 reader would take for another type.
    if "\n" in data and all(c.isprintable() or c == "\n" for c in data):
        return representer.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    style = '"' if is_yaml11_ambiguous(data) or _looks_like_time(data) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_TIMESTAMP = re.compile(r"^\d{4}-\d\d?-\d\d?(?:[Tt ].*)?$")


def _looks_like_time(text: str) -> bool:
    return _TIMESTAMP.match(text) is not None


class _Representer(SafeRepresenter):
    """go-yaml's string styles on a class of our own, so yamlio's dumpers keep theirs."""


_Representer.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    """Block YAML with go-yaml's layout at sops's indent of 4, keys in the given order."""
    yaml = block_dumper(_Representer, (4, 6, 4), 1 << 30)
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def _dump_metadata(metadata: Mapping[str, Any]) -> str:
    """The `sops:` block, keys sorted as sops 3.13 writes them. Written by hand where go-yaml's
    layout differs from ruamel's: the armored key's lines sit 2 columns right of its key."""
    lines = ["sops:"]
    for name, value in sorted(metadata.items()):
        if name == "age":
            lines.append("    age:")
            for stanza in value:
                armor = stanza["enc"]
                style = "|" if armor.endswith("\n") else "|-"
                lines.append(f"        - enc: {style}")
                lines.extend(f"            {line}" for line in armor.splitlines())
                lines.append(f"          recipient: {stanza['recipient']}")
        else:
            lines.extend("    " + line for line in _dump({name: value}).splitlines())
    return "\n".join(lines) + "\n"


class _Constructor(SafeConstructor):
    """Timestamps as text on a class of our own: SafeConstructor's table is process-wide."""


_Constructor.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def _loader() -> YAML:
    """A safe loader that keeps timestamp-like scalars as the text they are, as go-yaml does
    when decoding into an interface (so the MAC sees the same bytes)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _Constructor
    return yaml
