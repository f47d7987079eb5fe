"""Reading a SOPS file back: its tree and the `sops:` block (age stanzas, lastmodified, MAC,
the encryption rule), refusing what homelab-gen does not read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml.error import YAMLError

from generator.errors import HomelabError
from generator.sops.layout import loader
from generator.sops.tree import DEFAULT_UNENCRYPTED_SUFFIX, Rules

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


@dataclass(frozen=True)
class Parsed:
    tree: dict[str, Any]
    recipients: tuple[str, ...]
    stanzas: tuple[str, ...]
    lastmodified: str
    mac: str
    rules: Rules
    mac_only_encrypted: bool


def parse(text: str) -> Parsed:
    try:
        doc = loader().load(text)
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
    return Parsed(
        tree={k: v for k, v in doc.items() if k != "sops"},
        recipients=tuple(str(s.get("recipient", "")) for s in age),
        stanzas=tuple(s["enc"] for s in age),
        lastmodified=lastmodified,
        mac=mac,
        rules=_rules(meta),
        mac_only_encrypted=bool(meta.get("mac_only_encrypted")),
    )


def _rules(meta: dict[str, Any]) -> Rules:
    def rule(name: str) -> str | None:
        value = meta.get(name)
        return str(value) if value else None

    rules = Rules(
        unencrypted_suffix=rule("unencrypted_suffix"),
        encrypted_suffix=rule("encrypted_suffix"),
        unencrypted_regex=rule("unencrypted_regex"),
        encrypted_regex=rule("encrypted_regex"),
    )
    if rules == Rules():
        rules = Rules(unencrypted_suffix=DEFAULT_UNENCRYPTED_SUFFIX)  # stores.go ToInternal
    return rules
