"""Pure planning of node replacement and removal: what Proxmox and Kubernetes hold in, one
row of steps per node out, plus why a step must not run (etcd quorum).

A replaced node:  drain, stop, delete, delete-node, [upload,] clone, configure, [resize,]
start, wait-ready. A removed node (dropped from cluster.yaml, boot --prune): drain, stop,
delete, delete-node.

The VM goes before its Node object: a running kubelet registers its Node again at once, so
deleting the Node first would not stick. Deleting the Node is what removes a server's etcd
member: K3s's managed-etcd-controller holds a finalizer on every Node and, when a Node with
the etcd role goes, removes the member named in its etcd.k3s.cattle.io/node-name annotation
(k3s pkg/etcd/member_controller.go, onRemove; RemovePeer in pkg/etcd/etcd.go). The member must
be gone before the node comes back: a rebuilt server with the same name is refused while its
old member is listed ("duplicate node name found", join() in pkg/etcd/etcd.go).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generator.config.model import Cluster, Node
from generator.kube.nodes import NodeState
from generator.proxmox.actions import Action, Kind, VMPlan
from generator.proxmox.observe import Observed, VMFacts, pve_node_of
from generator.proxmox.plan import plan_node
from generator.proxmox.seeds import SeedRef

KUBE_KINDS = frozenset({Kind.DRAIN, Kind.DELETE_NODE, Kind.WAIT_READY})
REPLACE = "replace"
REMOVE = "remove"
# Journaled once the teardown is complete, before the rebuild starts: from then on a VM
# under the VMID and a Node of the name are the new ones, never to be torn down again.
REBUILD = "rebuild"


@dataclass(frozen=True)
class Target:
    """One node to replace or remove, and which steps of it earlier runs finished."""

    name: str
    vmid: int
    server: bool
    what: str  # REPLACE or REMOVE
    done: tuple[str, ...] = ()


# -- etcd quorum -----------------------------------------------------------------------------
def etcd_members(kube_nodes: Mapping[str, NodeState]) -> list[str]:
    """K3s servers with embedded etcd each hold one member and carry the control-plane role."""
    return sorted(name for name, state in kube_nodes.items() if state.control_plane)


def quorum_problem(
    cluster: Cluster, kube_nodes: Mapping[str, NodeState], leaving: str
) -> str | None:
    """Why taking `leaving` down now would lose etcd quorum, or None when it is safe.

    While it is down its member still counts (n members, n-1 up); once its Node is deleted
    the member goes (n-1 members). Both need the other servers Ready and at least n//2+1 of
    them, which also means never more than one server down at a time.
    """
    if cluster.cluster.datastore_endpoint is not None:
        return None  # servers hold no datastore of their own
    members = etcd_members(kube_nodes)
    if leaving not in members:
        return None
    if len(members) == 1:
        return (
            f"{leaving} is the only server: the cluster's etcd datastore lives on it and would"
            " be lost. Grow to 3 servers first, so one can be rebuilt while two keep quorum"
        )
    need = len(members) // 2 + 1
    ready = [m for m in members if m != leaving and kube_nodes[m].ready]
    if len(ready) >= need:
        return None
    down = [m for m in members if m != leaving and not kube_nodes[m].ready]
    why = f"not Ready: {', '.join(down)}" if down else f"only {len(members)} servers"
    return (
        f"taking {leaving} down would leave {len(ready)} of {len(members)} etcd members up,"
        f" below quorum ({need} needed; {why}). Wait until every other server is Ready"
        " (homelab-gen status), or grow to 3 servers first"
    )


# -- rows --------------------------------------------------------------------------------------
def _kube_step(kind: Kind, target: Target, where: str) -> Action:
    return Action(kind, target.vmid, where)


def teardown(target: Target, vm: VMFacts | None, registered: bool, where: str) -> list[Action]:
    """drain, stop, delete, delete-node: the steps that are not done yet."""
    steps: list[Action] = []
    if registered:
        steps.append(_kube_step(Kind.DRAIN, target, where))
    if vm is not None:
        if vm.status == "running":
            steps.append(Action(Kind.STOP, vm.vmid, vm.node))
        steps.append(Action(Kind.DELETE, vm.vmid, vm.node))
    if registered:
        steps.append(_kube_step(Kind.DELETE_NODE, target, where))
    return [s for s in steps if s.kind not in target.done]


def replace_row(
    cluster: Cluster,
    node: Node,
    observed: Observed,
    ref: SeedRef,
    kube_nodes: Mapping[str, NodeState],
    target: Target,
) -> VMPlan:
    """Teardown, then the VM made again from its current seed as boot makes a missing one,
    then Ready."""
    where = pve_node_of(cluster, node)
    if REBUILD in target.done:
        steps = list(plan_node(cluster, node, observed, ref).actions)
    else:
        vm = observed.vms.get(node.vmid)
        steps = teardown(target, vm, node.name in kube_nodes, where)
        steps += plan_node(cluster, node, observed.with_vm(node.vmid, None), ref).actions
    steps.append(_kube_step(Kind.WAIT_READY, target, where))
    reason = "replace: drain, rebuild from its current seed, wait until Ready"
    if target.done:
        reason += f" (resuming after: {', '.join(target.done)})"
    return VMPlan(node.name, node.vmid, tuple(steps), reason)


def remove_row(vm: VMFacts, registered: bool, target: Target) -> VMPlan:
    steps = teardown(target, vm, registered, vm.node)
    reason = "removed from cluster.yaml: drain, delete"
    return VMPlan(target.name, target.vmid, tuple(steps), reason)


def problems_for(
    cluster: Cluster, kube_nodes: Mapping[str, NodeState], targets: Sequence[Target]
) -> list[str]:
    """Refusals known before anything runs; each server is checked again right before it."""
    problems = []
    servers = [t for t in targets if t.server and REBUILD not in t.done]
    if servers:
        found = quorum_problem(cluster, kube_nodes, servers[0].name)
        if found:
            problems.append(found)
    return problems
