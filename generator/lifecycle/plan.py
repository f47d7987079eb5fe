"""Which nodes a run replaces or removes, and the plan that shows it before anything happens:
the ordinary boot rows for every other VM, then one lifecycle row per node, in the order
they run. Pure: boot's prepared plan, the K3s nodes and the journal in, rows out."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generator.config.model import Cluster, Node
from generator.errors import UsageError
from generator.kube.nodes import NodeState
from generator.lifecycle import steps
from generator.lifecycle.journal import Journal
from generator.proxmox import core, ha
from generator.proxmox.actions import RULE_KINDS, Kind, Plan, VMPlan
from generator.proxmox.observe import Observed


@dataclass(frozen=True)
class LifecyclePlan:
    boot: Plan  # every other VM, as plain boot plans it
    rows: tuple[tuple[steps.Target, VMPlan], ...]
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    moves: tuple[steps.Move, ...] = ()  # planned now or resumed: cluster.yaml gets their VMIDs

    @property
    def shown(self) -> Plan:
        """One plan to print: boot's rows, then the lifecycle rows in their order."""
        base = self.boot
        rows = tuple(row for _, row in self.rows)
        vms = base.vm_part.vms + rows + base.rule_part.vms + base.seed_part.vms
        return Plan(vms, self.problems, base.warnings + self.warnings, base.unreachable)

    @property
    def is_noop(self) -> bool:
        return self.shown.is_noop


def named_nodes(cluster: Cluster, names: Sequence[str]) -> list[Node]:
    """The nodes `--replace` names, in the order given; a typo is told with a suggestion."""
    by_name = {n.name: n for n in cluster.nodes}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(by_name), n=1)
        hint = f"did you mean {close[0]}?" if close else f"nodes: {', '.join(by_name)}"
        raise UsageError(f"--replace: no node named {', '.join(unknown)} in cluster.yaml", hint)
    return [by_name[n] for n in dict.fromkeys(names)]


def _replace_targets(
    cluster: Cluster,
    observed: Observed,
    wanted: Sequence[Node],
    book: Journal,
    moves: Mapping[str, steps.Move],
) -> list[steps.Target]:
    """Unfinished ones from the journal first: that node may be down right now."""
    resumed = [
        steps.Target(name, e.vmid, _is_server(cluster, name), e.what, e.done, e.host)
        for name, e in book.entries.items()
        if e.what in (steps.REPLACE, steps.MOVE) and name in {n.name for n in cluster.nodes}
    ]
    seen = {t.name for t in resumed}
    fresh = [_fresh_target(n, observed, moves) for n in wanted if n.name not in seen]
    return resumed + fresh


def _fresh_target(node: Node, observed: Observed, moves: Mapping[str, steps.Move]) -> steps.Target:
    move = moves.get(node.name)
    if move is not None:
        return steps.Target(node.name, move.vmid, node.is_server, steps.MOVE, host=move.host)
    vm = observed.vms.get(node.vmid)
    host = vm.node if vm else observed.unreachable.get(node.vmid, "")
    return steps.Target(node.name, node.vmid, node.is_server, steps.REPLACE, host=host)


def offline_problem(node: Node, host: str) -> str:
    return (
        f"--replace {node.name}: its VM {node.vmid} is on {host}, which is offline, and"
        f" Proxmox cannot delete a VM while its host is down. Bring {host} back and run the"
        f" command again, or add --allow-move to make {node.name} again as a new VM on"
        f" another host (the old one is deleted once {host} is back)"
    )


def stale_copy_warning(name: str, old_vmid: int, host: str) -> str:
    return (
        f"{name}'s old VM {old_vmid} stays on {host} (offline): it starts again on its own"
        f" when {host} is back (onboot), with the same name, IP and MAC as the new one. Run"
        f" `homelab-gen boot` as soon as {host} is back: it stops and deletes it"
    )


def _stale_warnings(
    observed: Observed, book: Journal, moves: Mapping[str, steps.Move]
) -> tuple[str, ...]:
    """For each moved node's old VM still on an offline host, planned now or earlier."""
    old = {vmid: (m.name, m.host) for vmid, m in book.moved.items()}
    old |= {m.old_vmid: (m.name, m.old_host) for m in moves.values()}
    return tuple(
        stale_copy_warning(name, vmid, host)
        for vmid, (name, host) in sorted(old.items())
        if vmid in observed.unreachable
    )


def _stale_targets(prepared: core.Prepared, book: Journal) -> list[tuple[steps.Target, VMPlan]]:
    """The old VMs of moved nodes whose host is back (ours, and still of that node)."""
    rows, cluster = [], prepared.cluster.name
    for vmid, moved in sorted(book.moved.items()):
        vm = prepared.observed.vms.get(vmid)
        if vm is None or not vm.owned_by(prepared.cluster) or vm.owner != (cluster, moved.name):
            continue
        target = steps.Target(moved.name, vmid, False, steps.STALE, host=vm.node)
        leave = steps.out_of_ha(prepared.cluster, prepared.observed, vm, moved.name)
        rows.append((target, steps.stale_row(vm, target, leave)))
    return rows


def _is_server(cluster: Cluster, name: str) -> bool:
    return any(n.name == name and n.is_server for n in cluster.nodes)


def _remove_targets(
    prepared: core.Prepared, kube_nodes: Mapping[str, NodeState], prune: bool, book: Journal
) -> list[tuple[steps.Target, VMPlan]]:
    ours = {n.vmid for n in prepared.cluster.nodes}
    named = {n.name for n in prepared.cluster.nodes}
    rows = []
    for vmid, vm in sorted(prepared.observed.vms.items()):
        # A moved node's old VM shares its name with the new one: never drained or
        # deleted from Kubernetes, only deleted (_stale_targets).
        if vmid in ours or vmid in book.moved or not vm.owned_by(prepared.cluster):
            continue
        name = vm.owner[1] if vm.owner else vm.name
        if name in named:  # an old copy of a node that lives on: its Node is the other VM's
            if prune:
                target = steps.Target(name, vmid, False, steps.STALE, host=vm.node)
                leave = steps.out_of_ha(prepared.cluster, prepared.observed, vm, name)
                rows.append((target, steps.stale_row(vm, target, leave)))
            continue
        entry = book.entries.get(name)
        if not prune and entry is None:
            continue
        server = bool(kube_nodes.get(name) and kube_nodes[name].control_plane)
        done = entry.done if entry else ()
        target = steps.Target(name, vmid, server, steps.REMOVE, done, vm.node)
        etcd = steps.has_member(prepared.cluster, kube_nodes, name)
        leave = steps.out_of_ha(prepared.cluster, prepared.observed, vm, name)
        rows.append((target, steps.remove_row(vm, name in kube_nodes, target, etcd, leave)))
    # Servers one at a time and last: agents first leaves etcd untouched the longest.
    return sorted(rows, key=lambda r: (r[0].server, r[0].name))


def make(
    prepared: core.Prepared,
    kube_nodes: Mapping[str, NodeState] | None,
    kube_error: str,
    replace: Sequence[Node],
    prune: bool,
    book: Journal,
    moves: Mapping[str, steps.Move] | None = None,
) -> LifecyclePlan:
    """`moves`: the nodes re-created on another host, planned now or resumed; `prepared`'s
    cluster already holds their new VMIDs."""
    cluster = prepared.cluster
    known = kube_nodes or {}
    moves = moves or {}
    targets = _replace_targets(cluster, prepared.observed, replace, book, moves)
    rows, problems = _target_rows(prepared, known, targets, moves)
    rows += _remove_targets(prepared, known, prune, book)
    rows += _stale_targets(prepared, book)
    busy = {t.vmid for t, _ in rows}
    boot_rows = tuple(vm for vm in prepared.plan.vms if vm.vmid not in busy)
    if any(a.kind == Kind.HA_REMOVE for _, row in rows for a in row.actions):
        boot_rows = _with_rule_after(prepared, boot_rows, rows)
    plan = prepared.plan
    boot = Plan(boot_rows, plan.problems, plan.warnings, plan.unreachable)
    problems = list(prepared.plan.problems) + problems
    kube_rows = [(t, row) for t, row in rows if t.what != steps.STALE]
    needs_kube = any(a.kind in steps.KUBE_KINDS for _, row in kube_rows for a in row.actions)
    if kube_rows and kube_nodes is None:
        names = ", ".join(t.name for t, _ in kube_rows)
        resumed = (
            " (an unfinished run recorded in .homelab-gen/lifecycle.json)" if book.entries else ""
        )
        problems.append(
            f"replacing or removing {names}{resumed} needs the K3s API (to drain and keep etcd"
            f" quorum), which cannot be asked: {kube_error}"
        )
    elif needs_kube:
        problems += steps.problems_for(cluster, known, [t for t, _ in kube_rows])
    warnings = _stale_warnings(prepared.observed, book, moves)
    return LifecyclePlan(boot, tuple(rows), tuple(problems), warnings, tuple(moves.values()))


def _with_rule_after(
    prepared: core.Prepared,
    boot_rows: tuple[VMPlan, ...],
    rows: Sequence[tuple[steps.Target, VMPlan]],
) -> tuple[VMPlan, ...]:
    """boot's rows with the servers' rule planned for after the lifecycle rows, whose VMs
    leave HA (and so the rule) and come back."""
    left = {a.vmid for _, row in rows for a in row.actions if a.kind == Kind.HA_REMOVE}
    unreachable = prepared.observed.unreachable
    reached = {n.vmid for n in prepared.cluster.servers if n.vmid not in unreachable}
    rule = ha.rule_after_teardowns(prepared.cluster, prepared.observed.ha, left, reached)
    others = tuple(vm for vm in boot_rows if not any(a.kind in RULE_KINDS for a in vm.actions))
    return others + ((rule,) if rule else ())


def _target_rows(
    prepared: core.Prepared,
    known: Mapping[str, NodeState],
    targets: Sequence[steps.Target],
    moves: Mapping[str, steps.Move],
) -> tuple[list[tuple[steps.Target, VMPlan]], list[str]]:
    """A row per node to replace or move; why one on an offline host cannot be replaced."""
    cluster, observed = prepared.cluster, prepared.observed
    by_name = {n.name: n for n in cluster.nodes}
    rows, problems = [], []
    for t in targets:
        node, ref = by_name[t.name], prepared.refs[t.name]
        move = moves.get(t.name)
        if move is not None:
            state = known.get(t.name)
            fresh = steps.REBUILD not in t.done and Kind.DELETE_NODE not in t.done
            if fresh and state is not None and state.ready:
                problems.append(steps.still_ready_problem(t.name, move.old_host))
            rows.append((t, steps.move_row(cluster, node, observed, ref, known, t, move)))
        elif node.vmid in observed.unreachable:
            problems.append(offline_problem(node, observed.unreachable[node.vmid]))
        else:
            rows.append((t, steps.replace_row(cluster, node, observed, ref, known, t)))
    return rows, problems
