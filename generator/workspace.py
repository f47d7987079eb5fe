"""The cluster repo on disk: render it (load secrets, render, diff against the disk, write
created and updated files atomically, remove our orphans), and read back the rendered seeds
that boot uploads, refusing stale ones."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from generator import secrets, secretstore, sops, yamlio
from generator.config.checks.k3s_version import without_versions
from generator.config.model import Cluster
from generator.errors import HomelabError
from generator.fileio import LEGACY_RENDERED_FILE, RENDERED_FILE, write_atomic
from generator.naming import SEED_DIR, SEED_FILES, seed_path
from generator.render import render_all
from generator.render.gitops_secrets import SUFFIX as SOPS_SUFFIX
from generator.render.output import RenderedFile
from generator.secrets import Secrets


class Change(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    IDENTICAL = "identical"
    ORPHAN = "remove"  # render wrote it before, no longer renders it, and nobody edited it
    EDITED = "edited"  # edited by hand since render wrote it: kept unless forced
    EDITED_ORPHAN = "edited-orphan"  # an orphan edited by hand: kept unless forced


HAND_EDITED = (Change.EDITED, Change.EDITED_ORPHAN)


@dataclass(frozen=True)
class FileDiff:
    path: str
    change: Change


def diff(root: Path, rendered: Mapping[str, RenderedFile]) -> list[FileDiff]:
    """Classify each rendered path against the disk; orphans are files we made before. A
    file whose bytes differ both from what render last wrote and from what it writes now
    was edited by hand."""
    previous = _previous(root)
    out = []
    for rel, item in sorted(rendered.items()):
        target = root / rel
        if not target.exists():
            change = Change.CREATE
        elif (data := target.read_bytes()) == item.text.encode():
            change = Change.UPDATE if _mode(target) != item.mode else Change.IDENTICAL
        elif rel in previous and _bytes_digest(data) != previous[rel]:
            change = Change.EDITED
        else:
            change = Change.UPDATE
        out.append(FileDiff(rel, change))
    for rel in sorted(set(previous) - set(rendered)):
        target = root / rel
        if target.is_file():
            edited = _digest(target) != previous[rel]
            out.append(FileDiff(rel, Change.EDITED_ORPHAN if edited else Change.ORPHAN))
    return out


def apply(
    root: Path,
    rendered: Mapping[str, RenderedFile],
    changes: list[FileDiff],
    force: bool = False,
) -> None:
    """Write created and updated files atomically; remove orphans we made, and the folders
    that leaves empty. Files edited by hand are kept (and stay recorded as render last wrote
    them, so they are reported again) unless `force`."""
    previous = _previous(root)
    write = {Change.CREATE, Change.UPDATE} | ({Change.EDITED} if force else set())
    remove = {Change.ORPHAN} | ({Change.EDITED_ORPHAN} if force else set())
    writes = {item.path for item in changes if item.change in write}
    for folder in sorted({(root / path).parent for path in writes}):
        folder.mkdir(parents=True, exist_ok=True)
    for item in changes:
        target = root / item.path
        if item.path in writes:
            write_atomic(target, rendered[item.path].text, rendered[item.path].mode, durable=False)
        elif item.change in remove:
            target.unlink(missing_ok=True)
            _remove_empty_folders(root, target.parent)
    kept = {
        item.path: previous[item.path]
        for item in changes
        if item.change in HAND_EDITED and item.change not in write | remove
    }
    record = {rel: _text_digest(f.text) for rel, f in rendered.items()} | kept
    write_atomic(
        root / RENDERED_FILE,
        json.dumps(dict(sorted(record.items())), indent=1) + "\n",
        durable=False,
    )
    (root / LEGACY_RENDERED_FILE).unlink(missing_ok=True)


def _remove_empty_folders(root: Path, folder: Path) -> None:
    """`folder` and its parents up to (not including) `root`, while they are empty."""
    top = root.resolve()
    while folder.resolve() != top and top in folder.resolve().parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (the user's files), or already gone
            return
        folder = folder.parent


def unified_diff(directory: Path, plan: RenderPlan, item: FileDiff) -> list[str]:
    """What render would change in one file, as unified diff lines: the disk (a hand edit
    included) against what render writes now. Secret values are masked, and SOPS files show
    only that they change: their diff would be ciphertext, or plaintext secrets."""
    if item.path.endswith(SOPS_SUFFIX):
        return [f"  ({item.path} is SOPS-encrypted: its changes are not shown)"]
    target = directory / item.path
    before = target.read_text(errors="replace") if target.is_file() else ""
    after = plan.rendered[item.path].text if item.path in plan.rendered else ""
    if item.change is Change.EDITED_ORPHAN:
        return [f"  ({item.path} is no longer rendered; it was edited by hand)"]
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"{item.path} (on disk)" if before else "/dev/null",
        tofile=f"{item.path} (render)" if after else "/dev/null",
    )
    return [_mask(line.rstrip("\n"), plan.secret_values) for line in lines]


def _mask(line: str, secret_values: tuple[str, ...]) -> str:
    for value in secret_values:
        for part in value.splitlines():
            if len(part.strip()) >= 8:
                line = line.replace(part.strip(), "<secret>")
    return line


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _previous(root: Path) -> dict[str, str]:
    for name in (RENDERED_FILE, LEGACY_RENDERED_FILE):
        try:
            data = json.loads((root / name).read_text())
        except FileNotFoundError:
            continue
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {}


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(path: Path) -> str:
    return _bytes_digest(path.read_bytes())


# -- render ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderPlan:
    rendered: dict[str, RenderedFile]
    diff: list[FileDiff]
    notes: tuple[str, ...] = ()  # what changed in the secrets' own files on the way
    sealed: bool = True  # every SOPS file encrypted (false only without the age key)
    secret_values: tuple[str, ...] = ()  # masked in diffs

    @property
    def pending(self) -> list[FileDiff]:
        return [d for d in self.diff if d.change is not Change.IDENTICAL]

    @property
    def edited(self) -> list[FileDiff]:
        """Files edited by hand since render wrote them: kept unless forced."""
        return [d for d in self.diff if d.change in HAND_EDITED]

    def changed_seeds(self, root: Path) -> list[str]:
        """Nodes whose seed was rendered before and now holds other settings: one that
        booted from it keeps its old settings, since cloud-init runs once per instance. A
        new K3s version alone does not count: the upgrade Plans change it in place."""
        return sorted(
            {
                d.path.split("/")[1]
                for d in self.diff
                if d.change is Change.UPDATE
                and d.path.startswith(f"{SEED_DIR}/")
                and d.path.split("/")[-1] in SEED_FILES
                and without_versions((root / d.path).read_text())
                != without_versions(self.rendered[d.path].text)
            }
        )


def seeds_exist(directory: Path) -> bool:
    return any((directory / SEED_DIR).glob("*/user-data"))


def needs_deploy_key(cluster: Cluster) -> bool:
    git = cluster.cluster.git
    return git.private and not git.url.startswith("https://")


def prepare_secrets(directory: Path, cluster: Cluster) -> tuple[Secrets, tuple[str, ...]]:
    """The secrets a writing render uses: moved from the plain store of earlier versions, or
    made for a new lab. Never a replacement for a store that exists (nodes hold its token)."""
    migration = secretstore.migrate(directory)
    notes = migration.notes if migration else ()
    store = secretstore.load_or_create(directory, seeds_exist(directory), needs_deploy_key(cluster))
    return store, notes


def plan_render(directory: Path, cluster: Cluster, write_secrets: bool = True) -> RenderPlan:
    """What render would write. write_secrets=False (check, dry run, freshness) reads the
    secrets as they are and writes nothing."""
    if write_secrets:
        store, notes = prepare_secrets(directory, cluster)
    elif secretstore.store_exists(directory) or seeds_exist(directory):
        store, notes = secretstore.load(directory), ()
    else:
        return _preview(directory, cluster)
    rendered, sealed = seal(directory, render_all(cluster, store), store.age_key)
    return RenderPlan(rendered, diff(directory, rendered), notes, sealed, store.values())


def _preview(directory: Path, cluster: Cluster) -> RenderPlan:
    """A new lab's first render, shown without making its secrets: stand-in values give the
    same paths; the plan can never be applied."""
    store = secrets.from_values(secrets.generate(), "(preview)")
    rendered = render_all(cluster, store)
    notes = (f"{secretstore.STORE_FILE} and {secretstore.KEY_FILE} are made on the first render",)
    return RenderPlan(rendered, diff(directory, rendered), notes, False, store.values())


def apply_render(directory: Path, plan: RenderPlan, force: bool = False) -> None:
    """Write the plan; files edited by hand are kept unless `force` (see plan.edited)."""
    if not plan.sealed:
        raise HomelabError("refusing to write Secrets unencrypted", "restore the age key first")
    apply(directory, plan.rendered, plan.diff, force)


def seal(
    directory: Path, rendered: Mapping[str, RenderedFile], key: str | None
) -> tuple[dict[str, RenderedFile], bool]:
    """Encrypt the Kubernetes Secrets render marked for SOPS. A file whose plaintext did not
    change keeps its bytes, so a re-render (or a fresh clone's) never churns git."""
    out = dict(rendered)
    marked = [path for path, item in rendered.items() if item.sops]
    if marked and key is None:
        return out, False
    now = datetime.now(UTC)
    for path in marked:
        assert key is not None
        target = directory / path
        existing = target.read_text() if target.is_file() else None
        document = yamlio.to_plain(yamlio.load_text(rendered[path].text, path))
        out[path] = RenderedFile(_encrypted(existing, document, key, now))
    return out, True


def _encrypted(existing: str | None, document: Any, key: str, now: datetime) -> str:
    recipients, identities = [sops.recipient_of(key)], [key]
    regex = sops.KUBERNETES_ENCRYPTED_REGEX
    try:
        return sops.reencrypt_if_changed(
            existing, document, recipients, identities, encrypted_regex=regex, now=now
        )
    except HomelabError:
        # Rendered from the store, so a file another key sealed (or a user broke) is ours
        # to write again.
        return sops.encrypt(document, recipients, encrypted_regex=regex, now=now)


# -- the rendered seeds boot reads ---------------------------------------------------------
def load_seed_texts(
    directory: Path, cluster: Cluster, check_fresh: bool = True
) -> dict[str, dict[str, str]]:
    """Each node's three seed files as `homelab-gen render` wrote them; refuse stale ones."""
    hint = "run 'homelab-gen render' first"
    missing = [
        seed_path(n.name, f)
        for n in cluster.nodes
        for f in SEED_FILES
        if not (directory / seed_path(n.name, f)).is_file()
    ]
    if missing:
        shown = ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else "")
        raise HomelabError(f"rendered seeds are missing: {shown}", hint)
    if check_fresh:
        stale = [
            d.path
            for d in plan_render(directory, cluster, write_secrets=False).pending
            if d.path.startswith(f"{SEED_DIR}/") and d.path.split("/")[-1] in SEED_FILES
        ]
        if stale:
            raise HomelabError(
                f"rendered seeds are out of date with cluster.yaml: {', '.join(stale[:4])}", hint
            )
    return {
        n.name: {f: (directory / seed_path(n.name, f)).read_text() for f in SEED_FILES}
        for n in cluster.nodes
    }
