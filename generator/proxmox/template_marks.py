"""How homelab-gen marks the templates it makes, read from plain tags and descriptions, so
observe (below every other Proxmox module) can pick them out.

The template at proxmox.template_vmid is found by its VMID. A per-host copy, made by
`homelab-gen template --all-hosts` for a host whose VMs cannot be cloned from it, is found
by its marks wherever it sits: the tool tag, the `template` tag, and `copy-of=<template
VMID> host=<host>` on its description's first line. So reordering proxmox.nodes, adding a
host later or cloning the repository elsewhere finds the same copies.
"""

from __future__ import annotations

from collections.abc import Collection

from generator import naming

DESCRIPTION_HEAD = "homelab-gen: template"
TEMPLATE_TAG = "template"


def may_be_ours(tags: Collection[str]) -> bool:
    """From /cluster/resources' tags alone: a template homelab-gen made, main or copy."""
    return naming.TOOL_TAG in tags and TEMPLATE_TAG in tags


def copy_marks(template_vmid: int, host: str) -> str:
    return f"copy-of={template_vmid} host={host}"


def copy_of(description: str) -> tuple[int, str] | None:
    """(template VMID, host) from a copy's first description line; None for the main one."""
    first = description.splitlines()[0] if description else ""
    if not first.startswith(DESCRIPTION_HEAD):
        return None
    found = dict(p.split("=", 1) for p in first.split() if "=" in p)
    vmid, host = found.get("copy-of", ""), found.get("host", "")
    return (int(vmid), host) if vmid.isdigit() and host else None


# `template --prepare` (template_prepare): `preparing=<K3s version>` while the preparation
# boot is under way, then `k3s=<K3s version>`, the version baked into the image.
PREPARING = "preparing"
PREPARED = "k3s"


def mark(description: str, key: str) -> str | None:
    """A `key=value` of a template's first description line; None when absent."""
    first = description.splitlines()[0] if description else ""
    if not first.startswith(DESCRIPTION_HEAD):
        return None
    found = dict(p.split("=", 1) for p in first.split() if "=" in p)
    return found.get(key)


def with_mark(description: str, key: str, value: str | None) -> str:
    """The description with `key=value` on its first line (value None: without it)."""
    first, *rest = description.splitlines() or [""]
    words = [w for w in first.split() if not w.startswith(f"{key}=")]
    if value is not None:
        words.append(f"{key}={value}")
    return "\n".join([" ".join(words), *rest])
