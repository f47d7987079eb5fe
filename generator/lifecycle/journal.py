"""Which steps of an unfinished replacement or removal are done, so a run killed at any step
resumes where it stopped. Local state (.homelab-gen/ is git-ignored): it describes this
machine's run against the lab, not the lab.

Only the teardown needs it: once it is done (the `rebuild` mark), a VM under the VMID and a
Node of the name are the new ones, and every later step is planned from what Proxmox and
Kubernetes show.

A node moved off an offline host (`--allow-move`) leaves its old VM there: PVE cannot delete
it while the host is down. It is kept here (`moved`) until a boot deletes it once the host is
back, since it starts again on its own (onboot=1) with the new VM's name, IP and MAC.
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
    what: str  # steps.REPLACE, steps.REMOVE or steps.MOVE
    vmid: int  # a move's: the new VM's
    done: tuple[str, ...] = ()
    host: str = ""  # the Proxmox host of the VM it began with (a move's: the new VM's)


@dataclass(frozen=True)
class Moved:
    """The VM a move left on an offline host, to delete once the host is back."""

    name: str
    host: str


@dataclass(frozen=True)
class Journal:
    entries: dict[str, Entry] = field(default_factory=dict)
    moved: dict[int, Moved] = field(default_factory=dict)  # old vmid -> its node and host

    def with_entry(self, name: str, what: str, vmid: int, host: str = "") -> Journal:
        """The node as begun, with none of its steps done (kept as it is when begun)."""
        if name in self.entries:
            return self
        return replace(self, entries={**self.entries, name: Entry(what, vmid, host=host)})

    def with_step(self, name: str, what: str, vmid: int, step: str) -> Journal:
        entry = self.entries.get(name, Entry(what, vmid))
        entries = {**self.entries, name: replace(entry, done=(*entry.done, step))}
        return replace(self, entries=entries)

    def without(self, name: str) -> Journal:
        return replace(self, entries={k: v for k, v in self.entries.items() if k != name})

    def with_moved(self, vmid: int, name: str, host: str) -> Journal:
        return replace(self, moved={**self.moved, vmid: Moved(name, host)})

    def without_moved(self, vmid: int) -> Journal:
        return replace(self, moved={k: v for k, v in self.moved.items() if k != vmid})

    @property
    def is_empty(self) -> bool:
        return not self.entries and not self.moved


def load(directory: Path) -> Journal:
    path = directory / JOURNAL_FILE
    if not path.is_file():
        return Journal()
    try:
        raw = json.loads(path.read_text())
        entries = {
            name: Entry(
                str(e["what"]),
                int(e["vmid"]),
                tuple(str(s) for s in e["done"]),
                str(e.get("host", "")),
            )
            for name, e in raw["nodes"].items()
        }
        moved = {
            int(vmid): Moved(str(m["name"]), str(m["host"]))
            for vmid, m in raw.get("moved", {}).items()
        }
        return Journal(entries, moved)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HomelabError(
            f"{path} is not a journal homelab-gen can read ({exc})",
            "it records an unfinished boot --replace or --prune; if none is running, delete it",
        ) from None


def save(directory: Path, journal: Journal) -> None:
    path = directory / JOURNAL_FILE
    if journal.is_empty:
        path.unlink(missing_ok=True)
        return
    nodes = {
        name: {"what": e.what, "vmid": e.vmid, "host": e.host, "done": list(e.done)}
        for name, e in sorted(journal.entries.items())
    }
    moved = {str(k): {"name": m.name, "host": m.host} for k, m in sorted(journal.moved.items())}
    path.parent.mkdir(mode=0o700, exist_ok=True)
    text = json.dumps({"nodes": nodes, "moved": moved}, indent=2) + "\n"
    fileio.write_atomic(path, text, mode=0o600)
