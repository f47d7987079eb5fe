"""One encrypted leaf: the `ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]` value and the type
marker that says how its plaintext bytes read back (aes/cipher.go, sops.go ToBytes)."""

from __future__ import annotations

import base64
import math
import os
import re
from decimal import Decimal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from generator.errors import HomelabError

KEY_BYTES = 32
_IV_BYTES = 32  # aes/cipher.go: nonceSize
_TAG_BYTES = 16
_ENC = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")

Leaf = str | bool | int | float


def format_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")


def to_bytes(value: Leaf) -> tuple[bytes, str]:
    """A leaf's plaintext bytes and sops type marker (sops.go ToBytes, aes/cipher.go Encrypt)."""
    if isinstance(value, bool):
        return (b"True" if value else b"False"), "bool"
    if isinstance(value, int):
        return str(value).encode(), "int"
    if isinstance(value, float):
        return format_float(value).encode(), "float"
    return value.encode(), "str"


def from_bytes(plain: bytes, kind: str, where: str) -> Leaf:
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


def seal(plain: bytes, kind: str, key: bytes, additional_data: str) -> str:
    iv = os.urandom(_IV_BYTES)
    sealed = AESGCM(key).encrypt(iv, plain, additional_data.encode())
    data, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    b64 = base64.b64encode
    return (
        f"ENC[AES256_GCM,data:{b64(data).decode()},iv:{b64(iv).decode()},"
        f"tag:{b64(tag).decode()},type:{kind}]"
    )


def unseal(value: str, key: bytes, additional_data: str, where: str) -> tuple[bytes, str]:
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
