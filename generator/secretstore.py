"""The secrets on disk: the age key (the one file to back up), the SOPS-encrypted store that
git tracks, `.sops.yaml`, and the move from the plain store of earlier versions.

| file | tracked | what |
|---|---|---|
| `.homelab-gen/age.key` | no (0600) | the age identity; without it nothing can be decrypted |
| `secrets.sops.yaml` | yes | every secret the seeds and the tree need, SOPS-encrypted |
| `.sops.yaml` | yes | tells `sops` (and users) how this repo's files are encrypted |
| `.homelab-gen/secrets.yaml` | no | the plain store of earlier versions, moved on first render |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from generator import fileio, secrets, sops, yamlio
from generator.errors import HomelabError, UsageError
from generator.secrets import Secrets

KEY_FILE = f"{fileio.STATE_DIR}/age.key"
STORE_FILE = "secrets.sops.yaml"
SOPS_CONFIG = ".sops.yaml"
LEGACY_FILE = fileio.SECRETS_FILE
MIGRATED_FILE = f"{LEGACY_FILE}.migrated"
DEPLOY_KEY_FILE = fileio.DEPLOY_KEY_FILE
RESTORE = "restore it from your backup; 'homelab-gen new' makes one for a new lab"


def store_exists(directory: Path) -> bool:
    return (directory / STORE_FILE).exists() or (directory / LEGACY_FILE).exists()


# -- the age key -------------------------------------------------------------------------------
def read_key(directory: Path) -> str | None:
    """The identity in the key file (age-keygen's format: comments, then the key), or None."""
    path = directory / KEY_FILE
    if not path.exists():
        return None
    text = fileio.read_text(path, what="age key", hint="restore it from your backup")
    keys = [line.strip() for line in text.splitlines() if line.strip().startswith("AGE-SECRET")]
    if len(keys) != 1:
        raise UsageError(
            f"{path}: expected one AGE-SECRET-KEY-1... line, found {len(keys)}",
            "restore the file from your backup",
        )
    _tighten(path)
    return keys[0]


def require_key(directory: Path) -> str:
    key = read_key(directory)
    if key is None:
        raise UsageError(
            f"{directory / STORE_FILE} is encrypted and there is no age key at"
            f" {directory / KEY_FILE}",
            f"copy your backed-up age.key to {KEY_FILE}, mode 0600; nothing was written",
        )
    return key


def create_key(directory: Path) -> str:
    path = directory / KEY_FILE
    if path.exists():
        raise HomelabError(f"{path} already exists", "keep it: it decrypts this repo's secrets")
    identity, recipient = sops.new_age_identity()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fileio.write_atomic(path, text, mode=0o600)
    return identity


# -- the encrypted store -----------------------------------------------------------------------
def load(directory: Path) -> Secrets:
    """The secrets, from the encrypted store or (not yet moved) the plain one. Writes nothing."""
    if (directory / STORE_FILE).exists():
        key = require_key(directory)
        path = directory / STORE_FILE
        text = fileio.read_text(path, what="secrets store", hint=RESTORE)
        return secrets.from_values(sops.decrypt(text, [key]), str(path), age_key=key)
    if (directory / LEGACY_FILE).exists():
        return _load_legacy(directory, read_key(directory))
    raise HomelabError(f"{directory / STORE_FILE}: no secrets store here", RESTORE)


def save(directory: Path, store: Secrets) -> None:
    """Encrypt the store to the key's recipient; unchanged values keep the file's bytes."""
    key = store.age_key or require_key(directory)
    path = directory / STORE_FILE
    existing = path.read_text() if path.exists() else None
    text = sops.reencrypt_if_changed(
        existing,
        secrets.to_values(store),
        [sops.recipient_of(key)],
        [key],
        now=datetime.now(UTC),
    )
    if text != existing:
        fileio.write_atomic(path, text)


def write_sops_config(directory: Path, key: str) -> bool:
    """Write `.sops.yaml` unless the user already has one (theirs may add recipients)."""
    path = directory / SOPS_CONFIG
    if path.exists():
        return False
    fileio.write_atomic(path, sops.sops_config([sops.recipient_of(key)]))
    return True


def create(directory: Path, deploy_key: bool = False) -> Secrets:
    """A new lab's secrets; refuse to replace a store, since that would orphan joined nodes.

    With deploy_key (an ssh git URL), also make the read-only key pair Flux pulls with: the
    private half goes in the store, the public half beside it for the user's git host.
    """
    if store_exists(directory):
        path = directory / (STORE_FILE if (directory / STORE_FILE).exists() else LEGACY_FILE)
        raise HomelabError(f"{path} already exists", "keep it; it holds the cluster's join token")
    key = read_key(directory) or create_key(directory)
    values = secrets.generate()
    if deploy_key:
        private, public = secrets.generate_deploy_key()
        values["git_deploy_key"] = private
        fileio.write_atomic(directory / DEPLOY_KEY_FILE, public + "\n")
    store = secrets.from_values(values, STORE_FILE, age_key=key)
    save(directory, store)
    write_sops_config(directory, key)
    return store


def load_or_create(directory: Path, seeds_exist: bool, deploy_key: bool = False) -> Secrets:
    """A fresh repo gets a store; a repo with rendered seeds must keep its old one."""
    if store_exists(directory) or seeds_exist:
        return load(directory)
    return create(directory, deploy_key)


# -- moving the plain store of earlier versions ----------------------------------------------
@dataclass(frozen=True)
class Migration:
    notes: tuple[str, ...]


def migrate(directory: Path) -> Migration | None:
    """Move `.homelab-gen/secrets.yaml` into the encrypted store, keeping every value.

    No agent token is added: nodes that already joined use k3s_token, and a running server
    has no agent token to check a new one against. The plain file is renamed, not deleted,
    so nothing is lost if the user has not backed up the new key yet.
    """
    legacy = directory / LEGACY_FILE
    if (directory / STORE_FILE).exists() or not legacy.exists():
        return None
    had_key = read_key(directory)
    key = had_key or create_key(directory)
    store = _load_legacy(directory, key)
    save(directory, store)
    wrote_config = write_sops_config(directory, key)
    legacy.rename(directory / MIGRATED_FILE)
    notes = [
        f"moved every value of {LEGACY_FILE} into {STORE_FILE} (SOPS, age): commit it",
        f"{LEGACY_FILE} is now {MIGRATED_FILE}: delete it once {KEY_FILE} is backed up",
    ]
    if not had_key:
        notes.append(f"made the age key {KEY_FILE}: back it up, it is the one secret to keep")
    if wrote_config:
        notes.append(f"wrote {SOPS_CONFIG}, so `sops` edits these files the same way")
    return Migration(tuple(notes))


def _load_legacy(directory: Path, key: str | None) -> Secrets:
    path = directory / LEGACY_FILE
    text = fileio.read_text(path, what="secrets store", hint=RESTORE)
    data = yamlio.to_plain(yamlio.load_text(text, str(path))) or {}
    _tighten(path)
    return secrets.from_values(data, str(path), age_key=key)


def _tighten(path: Path) -> None:
    """A file copied around with a looser mode is put back to 0600."""
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
