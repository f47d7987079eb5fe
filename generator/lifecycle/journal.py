"""Which steps of an unfinished replacement or removal are done, so a run killed at any step
resumes where it stopped. Local state (.homelab-gen/ is git-ignored): it describes this
machine's run against the lab, not the lab.

Only the teardown needs it: once it is done (the `rebuild` mark), a VM under the VMID and a
Node of the name are the new ones, and every later step is planned from what Proxmox and
Kubernetes show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from generator import fileio
from generator.errors import HomelabError

JOURNAL_FILE = f"{fileio.STATE_DIR}/lifecycle.json"


@dataclass(frozen=True)
class Entry:
    what: str  # steps.REPLACE or steps.REMOVE
    vmid: int
    done: tuple[str, ...] = ()


@dataclass(frozen=True)
class Journal:
    entries: dict[str, Entry] = field(default_factory=dict)

    def with_entry(self, name: str, what: str, vmid: int) -> Journal:
        """The node as begun, with none of its steps done (kept as it is when begun)."""
        if name in self.entries:
            return self
        return Journal({**self.entries, name: Entry(what, vmid)})

    def with_step(self, name: str, what: str, vmid: int, step: str) -> Journal:
        entry = self.entries.get(name, Entry(what, vmid))
        entries = {**self.entries, name: replace(entry, done=(*entry.done, step))}
        return Journal(entries)

    def without(self, name: str) -> Journal:
        return Journal({k: v for k, v in self.entries.items() if k != name})


def load(directory: Path) -> Journal:
    path = directory / JOURNAL_FILE
    if not path.is_file():
        return Journal()
    try:
        raw = json.loads(path.read_text())
        return Journal(
            {
                name: Entry(str(e["what"]), int(e["vmid"]), tuple(str(s) for s in e["done"]))
                for name, e in raw["nodes"].items()
            }
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HomelabError(
            f"{path} is not a journal homelab-gen can read ({exc})",
            "it records an unfinished boot --replace or --prune; if none is running, delete it",
        ) from None


def save(directory: Path, journal: Journal) -> None:
    path = directory / JOURNAL_FILE
    if not journal.entries:
        path.unlink(missing_ok=True)
        return
    nodes = {
        name: {"what": e.what, "vmid": e.vmid, "done": list(e.done)}
        for name, e in sorted(journal.entries.items())
    }
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fileio.write_atomic(path, json.dumps({"nodes": nodes}, indent=2) + "\n", mode=0o600)
