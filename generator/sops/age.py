"""age X25519 keys: making them and reading them from text (pyrage)."""

from __future__ import annotations

from typing import Any

import pyrage  # type: ignore[import-untyped,unused-ignore]

from generator.errors import HomelabError, UsageError


def new_age_identity() -> tuple[str, str]:
    """A fresh age X25519 key pair: (identity "AGE-SECRET-KEY-1...", recipient "age1...")."""
    identity = pyrage.x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def recipient_of(identity: str) -> str:
    """The public recipient ("age1...") of an age identity."""
    return str(parse_identity(identity).to_public())


def parse_identity(identity: str) -> Any:
    try:
        return pyrage.x25519.Identity.from_str(identity.strip())
    except (pyrage.IdentityError, ValueError):
        raise UsageError(
            "the age key is not an age identity", "it is one line starting AGE-SECRET-KEY-1"
        ) from None


def parse_recipient(recipient: str) -> Any:
    try:
        return pyrage.x25519.Recipient.from_str(recipient.strip())
    except (pyrage.RecipientError, ValueError):
        raise HomelabError(
            f"{recipient!r} is not an age recipient", "age recipients start with age1"
        ) from None
