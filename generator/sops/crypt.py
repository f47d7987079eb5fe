"""Encrypting a document to age recipients and decrypting it back, MAC checked
(sops.go Tree.Encrypt and Tree.Decrypt, cmd/sops/common EncryptTree)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pyrage  # type: ignore[import-untyped,unused-ignore]

from generator.errors import HomelabError, UsageError
from generator.sops import tree as doctree
from generator.sops.age import parse_identity, parse_recipient, recipient_of
from generator.sops.layout import dump, dump_metadata
from generator.sops.metadata import Parsed, parse
from generator.sops.values import KEY_BYTES, Leaf, from_bytes, seal, to_bytes, unseal

SOPS_VERSION = "3.13.2"
"""The sops release whose file format this module writes (the `version` it records)."""


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
    parsed = [parse_recipient(r) for r in recipients]
    rules = doctree.rules_for(encrypted_regex)
    key = os.urandom(KEY_BYTES)
    mac = hashlib.sha512()

    def seal_leaf(leaf: Any, path: tuple[str, ...]) -> Any:
        if not isinstance(leaf, str | bool | int | float):
            raise TypeError(f"{doctree.where(path)}: cannot encrypt a {type(leaf).__name__}")
        plain, kind = to_bytes(leaf)
        mac.update(plain)
        if not rules.encrypts(path) or (kind == "str" and not plain):
            return leaf
        return seal(plain, kind, key, doctree.additional_data(path))

    tree = doctree.walk(doc, (), seal_leaf)
    lastmodified = doctree.lastmodified(now)
    metadata: dict[str, Any] = {
        "age": [
            {"enc": pyrage.encrypt(key, [recipient], armored=True).decode(), "recipient": text}
            for recipient, text in zip(parsed, (r.strip() for r in recipients), strict=True)
        ],
        "lastmodified": lastmodified,
        "mac": seal(mac.hexdigest().upper().encode(), "str", key, lastmodified),
        "version": SOPS_VERSION,
    }
    if encrypted_regex is not None:
        metadata["encrypted_regex"] = encrypted_regex
    else:
        metadata["unencrypted_suffix"] = doctree.DEFAULT_UNENCRYPTED_SUFFIX
    return (dump(tree) if tree else "") + dump_metadata(metadata)


def _data_key(parsed: Parsed, identities: Sequence[str]) -> bytes:
    keys = [parse_identity(i) for i in identities]
    for stanza in parsed.stanzas:
        try:
            key = pyrage.decrypt(stanza.encode(), keys)
        except pyrage.DecryptError:
            continue
        if len(key) == KEY_BYTES:
            return bytes(key)
    mine = ", ".join(recipient_of(i) for i in identities) or "none"
    raise UsageError(
        "no age key given can decrypt this SOPS file "
        f"(it is for {', '.join(parsed.recipients) or 'no recipient'}; the keys given are for "
        f"{mine})",
        "put the age key the file was encrypted to in .homelab-gen/age.key",
    )


def _decrypt_parsed(parsed: Parsed, identities: Sequence[str]) -> dict[str, Any]:
    key = _data_key(parsed, identities)
    mac = hashlib.sha512()
    if parsed.mac_only_encrypted:
        mac.update(hashlib.sha256(b"sops").digest())  # sops.go MACOnlyEncryptedInitialization

    def unseal_leaf(leaf: Any, path: tuple[str, ...]) -> Any:
        encrypted = parsed.rules.encrypts(path)
        value: Leaf = leaf
        here = doctree.where(path)
        if encrypted:
            if not isinstance(leaf, str):
                raise HomelabError(f"{here}: expected an encrypted value, found {leaf!r}")
            if leaf:
                plain, kind = unseal(leaf, key, doctree.additional_data(path), here)
                value = from_bytes(plain, kind, here)
        if encrypted or not parsed.mac_only_encrypted:
            mac.update(to_bytes(value)[0])
        return value

    tree: dict[str, Any] = doctree.walk(parsed.tree, (), unseal_leaf)
    mac_data = doctree.mac_additional_data(parsed.lastmodified)
    stored, _ = unseal(parsed.mac, key, mac_data, "sops.mac")
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
    return _decrypt_parsed(parse(text), identities)


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
        parsed = parse(existing)
        same_keys = {r.strip() for r in recipients} == set(parsed.recipients)
        if same_keys and parsed.rules == doctree.rules_for(encrypted_regex):
            plain = _decrypt_parsed(parsed, identities)
            if doctree.typed(plain) == doctree.typed(doc):
                return existing
    return encrypt(doc, recipients, encrypted_regex=encrypted_regex, now=now)
