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
from generator.proxmox import core
from generator.proxmox.actions import Plan, VMPlan


@dataclass(frozen=True)
class LifecyclePlan:
    boot: Plan  # every other VM, as plain boot plans it
    rows: tuple[tuple[steps.Target, VMPlan], ...]
    problems: tuple[str, ...] = ()

    @property
    def shown(self) -> Plan:
        """One plan to print: boot's rows, then the lifecycle rows in their order."""
        base = self.boot
        rows = tuple(row for _, row in self.rows)
        vms = base.vm_part.vms + rows + base.seed_part.vms
        return Plan(vms, self.problems, base.warnings, base.unreachable)

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


def _replace_targets(cluster: Cluster, wanted: Sequence[Node], book: Journal) -> list[steps.Target]:
    """Unfinished ones from the journal first: that node may be down right now."""
    resumed = [
        steps.Target(name, e.vmid, _is_server(cluster, name), e.what, e.done)
        for name, e in book.entries.items()
        if e.what == steps.REPLACE and name in {n.name for n in cluster.nodes}
    ]
    seen = {t.name for t in resumed}
    fresh = [
        steps.Target(n.name, n.vmid, n.is_server, steps.REPLACE)
        for n in wanted
        if n.name not in seen
    ]
    return resumed + fresh


def _is_server(cluster: Cluster, name: str) -> bool:
    return any(n.name == name and n.is_server for n in cluster.nodes)


def _remove_targets(
    prepared: core.Prepared, kube_nodes: Mapping[str, NodeState], prune: bool, book: Journal
) -> list[tuple[steps.Target, VMPlan]]:
    ours = {n.vmid for n in prepared.cluster.nodes}
    rows = []
    for vmid, vm in sorted(prepared.observed.vms.items()):
        if vmid in ours or not vm.owned_by(prepared.cluster):
            continue
        name = vm.owner[1] if vm.owner else vm.name
        entry = book.entries.get(name)
        if not prune and entry is None:
            continue
        server = bool(kube_nodes.get(name) and kube_nodes[name].control_plane)
        done = entry.done if entry else ()
        target = steps.Target(name, vmid, server, steps.REMOVE, done)
        etcd = steps.has_member(prepared.cluster, kube_nodes, name)
        rows.append((target, steps.remove_row(vm, name in kube_nodes, target, etcd)))
    # Servers one at a time and last: agents first leaves etcd untouched the longest.
    return sorted(rows, key=lambda r: (r[0].server, r[0].name))


def make(
    prepared: core.Prepared,
    kube_nodes: Mapping[str, NodeState] | None,
    kube_error: str,
    replace: Sequence[Node],
    prune: bool,
    book: Journal,
) -> LifecyclePlan:
    cluster = prepared.cluster
    known = kube_nodes or {}
    targets = _replace_targets(cluster, replace, book)
    by_name = {n.name: n for n in cluster.nodes}
    rows = [
        (
            t,
            steps.replace_row(
                cluster, by_name[t.name], prepared.observed, prepared.refs[t.name], known, t
            ),
        )
        for t in targets
    ]
    rows += _remove_targets(prepared, known, prune, book)
    busy = {t.vmid for t, _ in rows}
    boot_rows = tuple(vm for vm in prepared.plan.vms if vm.vmid not in busy)
    plan = prepared.plan
    boot = Plan(boot_rows, plan.problems, plan.warnings, plan.unreachable)
    problems = list(prepared.plan.problems)
    needs_kube = any(a.kind in steps.KUBE_KINDS for _, row in rows for a in row.actions)
    if rows and kube_nodes is None:
        names = ", ".join(t.name for t, _ in rows)
        resumed = (
            " (an unfinished run recorded in .homelab-gen/lifecycle.json)" if book.entries else ""
        )
        problems.append(
            f"replacing or removing {names}{resumed} needs the K3s API (to drain and keep etcd"
            f" quorum), which cannot be asked: {kube_error}"
        )
    elif needs_kube:
        problems += steps.problems_for(cluster, known, [t for t, _ in rows])
    return LifecyclePlan(boot, tuple(rows), tuple(problems))
