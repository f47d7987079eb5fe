"""`boot --replace NODE --allow-move`: a node whose VM sits on an offline host is made again
on another host, as a new VM.

PVE cannot delete or move the config of a VM whose host is down (it lives in that host's
directory of pmxcfs, and the VMID stays taken cluster-wide), so the new VM gets the first
free VMID after the old one and a host that placement picks among the hosts that are up.
cluster.yaml is the source of truth: its `vmid` (and `proxmox_node`, for a pinned node) is
rewritten once the user said yes, after the journal holds the move, so a run killed anywhere
resumes with the same VMID.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from generator.config import edit
from generator.config.model import Cluster, Node
from generator.errors import UsageError
from generator.lifecycle import journal, steps
from generator.lifecycle.journal import Journal
from generator.proxmox import core
from generator.proxmox.observe import Observed
from generator.proxmox.placement import place


def _resumed(cluster: Cluster, book: Journal) -> dict[str, steps.Move]:
    """The moves an earlier run began: the journal fixes their VMID and host."""
    by_name = {n.name: n for n in cluster.nodes}
    old = {m.name: (vmid, m.host) for vmid, m in book.moved.items()}
    found = {}
    for name, entry in book.entries.items():
        node = by_name.get(name)
        if entry.what != steps.MOVE or node is None or name not in old:
            continue
        old_vmid, old_host = old[name]
        pinned = node.proxmox_node is not None
        found[name] = steps.Move(name, old_vmid, old_host, entry.vmid, entry.host, pinned)
    return found


def taken_vmids(prepared: core.Prepared) -> set[int]:
    """Every VMID the Proxmox cluster holds (an offline host's too), and cluster.yaml's."""
    listed = prepared.client.get("cluster/resources", type="vm") or []
    cluster = prepared.cluster
    held = {int(r["vmid"]) for r in listed if "vmid" in r}
    return held | {n.vmid for n in cluster.nodes} | {cluster.proxmox.template_vmid}


def plan_moves(
    cluster: Cluster, observed: Observed, nodes: Sequence[Node], taken: Collection[int]
) -> dict[str, steps.Move]:
    """New VMIDs and hosts for `nodes` (each on an offline host). Pure: the hosts are
    placement's choice with those nodes unpinned, so servers keep to distinct hosts while
    the hosts that are up allow it."""
    used = set(taken)
    vmids = {}
    for node in nodes:
        vmids[node.name] = steps.new_vmid(node.vmid, used)
        used.add(vmids[node.name])
    fresh = {name: (vmid, None) for name, vmid in vmids.items()}
    hosts = place(_renumbered(cluster, fresh), observed)
    return {
        n.name: steps.Move(
            n.name,
            n.vmid,
            observed.unreachable[n.vmid],
            vmids[n.name],
            hosts[n.name],
            n.proxmox_node is not None,
        )
        for n in nodes
    }


def _renumbered(cluster: Cluster, changes: Mapping[str, tuple[int, str | None]]) -> Cluster:
    nodes = tuple(
        dataclasses.replace(n, vmid=changes[n.name][0], proxmox_node=changes[n.name][1])
        if n.name in changes
        else n
        for n in cluster.nodes
    )
    return dataclasses.replace(cluster, nodes=nodes)


def moved_cluster(cluster: Cluster, moves: Iterable[steps.Move]) -> Cluster:
    """The cluster as cluster.yaml will say once the moves are written."""
    by_name = {n.name: n for n in cluster.nodes}
    changes = {
        m.name: (m.vmid, m.host if m.pinned else by_name[m.name].proxmox_node) for m in moves
    }
    return _renumbered(cluster, changes)


NOT_OFFLINE = (
    "--allow-move only makes again a node whose VM is on an offline Proxmox host, and the"
    " VM of {names} is on a host that is up"
)


def moves(
    prepared: core.Prepared, targets: Sequence[Node], book: Journal, allow: bool
) -> dict[str, steps.Move]:
    """The moves of this run: resumed from the journal, and with `allow`, one for each
    target whose VM is on an offline host. `allow` with no such target is a usage error:
    the user expects a move, and a silent plain replace would not be one."""
    found = _resumed(prepared.cluster, book)
    observed = prepared.observed
    offline = [n for n in targets if n.vmid in observed.unreachable and n.name not in found]
    if not allow:
        return found
    if not offline and not any(n.name in found for n in targets):
        names = ", ".join(n.name for n in targets) or "no node (name one with --replace)"
        raise UsageError(
            NOT_OFFLINE.format(names=names),
            "without --allow-move, `boot --replace NODE` rebuilds a node where it is",
        )
    if offline:
        found.update(plan_moves(prepared.cluster, observed, offline, taken_vmids(prepared)))
    return found


def begin(directory: Path, planned: Sequence[steps.Move]) -> None:
    """Journal each move, then write its VMID (and pin) into cluster.yaml: from here on the
    node is its new VM, and the old one a stale copy to delete once its host is back."""
    if not planned:
        return
    book = journal.load(directory)
    for m in planned:
        book = book.with_entry(m.name, steps.MOVE, m.vmid, m.host)
        book = book.with_moved(m.old_vmid, m.name, m.old_host)
    journal.save(directory, book)
    for m in planned:
        edit.set_node_vmid(directory, m.name, m.vmid, m.host if m.pinned else None, m.old_host)


def moved_note(planned: Sequence[steps.Move]) -> str:
    """What cluster.yaml says once the moves are written, for the user to commit."""
    said = "; ".join(
        f"{m.name} is now vmid {m.vmid}"
        + (f", proxmox_node {m.host}" if m.pinned else f" (on {m.host})")
        for m in planned
    )
    return f"cluster.yaml: {said}, and its seed is rendered again (the instance-id names the vmid)"
