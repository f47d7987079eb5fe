"""The few changes homelab-gen itself makes to cluster.yaml, written the way a user would:
every other line and comment kept, the file replaced atomically, and the result valid."""

from __future__ import annotations

from pathlib import Path

from generator import fileio, yamlio
from generator.config.load import CONFIG_NAME, parse

INITIALIZED_COMMENT = (
    "set by homelab-gen: the cluster exists, so a rebuilt first server joins it via the API"
)


def set_initialized(directory: Path, value: bool) -> bool:
    """Set cluster.initialized (false: the key goes, as false is its default); False when it
    already had that value (nothing written)."""
    path = directory / CONFIG_NAME
    text = fileio.read_text(path, what="cluster.yaml", hint="use -C DIR")
    if parse(text, str(path)).cluster.cluster.initialized is value:
        return False
    if value:
        changed = yamlio.set_key(text, ("cluster",), "initialized", True, INITIALIZED_COMMENT)
    else:
        changed = yamlio.drop_key(text, ("cluster",), "initialized")
    parse(changed, str(path))  # never leave a cluster.yaml that does not load
    fileio.write_atomic(path, changed, mode=path.stat().st_mode & 0o777)
    return True


def set_node_vmid(
    directory: Path, name: str, vmid: int, proxmox_node: str | None, old_host: str
) -> bool:
    """The node's `vmid` (and its pin, when given): a node moved off an offline host is a new
    VM. False when cluster.yaml already says so."""
    path = directory / CONFIG_NAME
    text = fileio.read_text(path, what="cluster.yaml", hint="use -C DIR")
    node = next(n for n in parse(text, str(path)).cluster.nodes if n.name == name)
    values: dict[str, object] = {}
    if node.vmid != vmid:
        values["vmid"] = vmid
    if proxmox_node is not None and node.proxmox_node != proxmox_node:
        values["proxmox_node"] = proxmox_node
    if not values:
        return False
    comment = f"set by homelab-gen boot --allow-move: was VM {node.vmid} on {old_host}"
    changed = yamlio.set_item_keys(text, "nodes", ("name", name), values, comment)
    parse(changed, str(path))  # never leave a cluster.yaml that does not load
    fileio.write_atomic(path, changed, mode=path.stat().st_mode & 0o777)
    return True
