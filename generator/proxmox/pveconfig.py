"""Proxmox VM config values as strings: drives, `net0`, `cicustom` and the other property
strings PVE reads and returns (`virtio0: local-lvm:vm-100-disk-0,size=20G`).

Pure string work, no API and no facts records, so observe, preflight and plan all build on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from generator import naming

DISK_KEY = re.compile(r"^(scsi|virtio|sata|ide)\d+$")
# Drive buses in the order a VM boots from them when nothing else says so.
BUS_ORDER = {"scsi": 0, "virtio": 1, "sata": 2, "ide": 3}
SIZE_SCALE = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


# -- reading drives --------------------------------------------------------------------------
def disk_size(value: str) -> int:
    """Bytes in a drive string's `size=` option (0 when absent)."""
    found = re.search(r"size=(\d+(?:\.\d+)?)([KMGT]?)", value)
    if not found:
        return 0
    return int(float(found[1]) * SIZE_SCALE[found[2]])


def boot_disk(config: Mapping[str, str]) -> str | None:
    """The first real disk (not a CD-ROM, not the cloud-init drive), by bus preference."""
    disks = [k for k in config if DISK_KEY.match(k)]
    real = [k for k in disks if "media=cdrom" not in config[k] and "cloudinit" not in config[k]]
    real.sort(key=lambda k: (BUS_ORDER[re.sub(r"\d+", "", k)], int(re.sub(r"\D", "", k))))
    return real[0] if real else None


def cloudinit_slot(config: Mapping[str, str]) -> str | None:
    return next((k for k, v in config.items() if DISK_KEY.match(k) and "cloudinit" in v), None)


def volids_in(config: Mapping[str, str]) -> frozenset[str]:
    """Every volume a VM config points at through a drive or `cicustom`."""
    volids = {v.split(",", 1)[0] for k, v in config.items() if DISK_KEY.match(k)}
    for part in config.get("cicustom", "").split(","):
        volids.add(part.partition("=")[2])
    return frozenset(v for v in volids if ":" in v)


def drive_slot(machine: str, config: Mapping[str, str]) -> str:
    """The seed's drive slot, one the guest kernel can see: IDE on i440fx; on q35 IDE means
    AHCI, which Debian 12's cloud kernel lacks, so SCSI there. Boot's seed CD and the
    template's cloud-init drive both go here."""
    bus = "scsi" if "q35" in machine else "ide"
    current = cloudinit_slot(config)
    if current and current.startswith(bus):
        return current
    used = {k for k in config if DISK_KEY.match(k)} - {current}
    slots = ["ide2", "ide3", "ide1", "ide0"] if bus == "ide" else [f"scsi{i}" for i in range(1, 31)]
    free = [s for s in slots if s not in used]
    return free[0] if free else slots[0]


# -- options in a property string ------------------------------------------------------------
def property_options(value: str) -> dict[str, str]:
    """`virtio=AA:…,bridge=vmbr0` as a dict; a part without `=` is keyed by its place
    (`_0`, `_1`, …), as PVE's default key is written bare."""
    out = {}
    for i, part in enumerate(value.split(",")):
        key, sep, val = part.partition("=")
        out[key if sep else f"_{i}"] = val if sep else key
    return out


def leading_value(value: str, name: str) -> str | None:
    """A property string's default-key value: `4096` and `current=4096` both give 4096."""
    options = property_options(value)
    return options.get("_0", options.get(name))


# -- comparing a VM's config with the one it should have -------------------------------------
def same_setting(key: str, want: str, have: str | None) -> bool:
    """Whether `have` already does what `want` asks; PVE rewrites some values on the way in
    (MAC case, tag order, `memory` as `current=`), so equal strings alone would churn."""
    if have is None:
        return False
    if key == "tags":
        return naming.parse_tags(want) == naming.parse_tags(have)
    if key == "net0":
        w, h = property_options(want), property_options(have)
        return all(h.get(k, "").upper() == v.upper() for k, v in w.items())
    if key in ("memory", "agent"):
        name = "current" if key == "memory" else "enabled"
        return leading_value(want, name) == leading_value(have, name)
    if key == "description":
        return want.splitlines()[0] in have.splitlines()
    if DISK_KEY.match(key):
        return same_drive(want, have)
    return want == have


def same_drive(want: str, have: str) -> bool:
    """A cloud-init drive is any cloud-init drive; a seed CD is the same ISO as a CD-ROM."""
    if "cloudinit" in want:
        return "cloudinit" in have
    w, h = property_options(want), property_options(have)
    return w.get("_0") == h.get("_0") and h.get("media") == "cdrom"


def config_changes(desired: Mapping[str, str], current: Mapping[str, str]) -> dict[str, str]:
    """The `config` call's parameters that make `current` match; {} when it does."""
    changes = {k: v for k, v in desired.items() if not same_setting(k, v, current.get(k))}
    stale = sorted(
        k
        for k, v in current.items()
        if (DISK_KEY.match(k) and "cloudinit" in v and k not in desired)
        or (k == "cicustom" and k not in desired)
    )
    if stale:
        changes["delete"] = ",".join(stale)
    return changes


def config_after(config: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """A VM's config once a `config` call with `changes` is applied (`delete` included)."""
    params = dict(changes)
    gone = set(params.pop("delete", "").split(",")) - {""}
    return {**{k: v for k, v in config.items() if k not in gone}, **params}
