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

crypt (encrypt, decrypt) and config_file (`.sops.yaml`) → metadata (reading the `sops:` block)
→ tree (which leaves, their additional data, the MAC's time), layout (YAML as go-yaml writes
it), age (keys) → values (one ENC[...] value). Callers use the names re-exported here.
"""

from __future__ import annotations

from generator.sops.age import new_age_identity, recipient_of
from generator.sops.config_file import (
    GITOPS_PATH_REGEX,
    KUBERNETES_ENCRYPTED_REGEX,
    SEED_SECRETS_PATH_REGEX,
    sops_config,
)
from generator.sops.crypt import SOPS_VERSION, decrypt, encrypt, reencrypt_if_changed

# _dump and _format_float are not API: the tests check the YAML layout and Go's float format.
from generator.sops.layout import dump as _dump  # noqa: F401
from generator.sops.tree import DEFAULT_UNENCRYPTED_SUFFIX
from generator.sops.values import format_float as _format_float  # noqa: F401

__all__ = [
    "DEFAULT_UNENCRYPTED_SUFFIX",
    "GITOPS_PATH_REGEX",
    "KUBERNETES_ENCRYPTED_REGEX",
    "SEED_SECRETS_PATH_REGEX",
    "SOPS_VERSION",
    "decrypt",
    "encrypt",
    "new_age_identity",
    "recipient_of",
    "reencrypt_if_changed",
    "sops_config",
]
