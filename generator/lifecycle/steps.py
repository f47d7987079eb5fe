"""Pure planning of node replacement and removal: what Proxmox and Kubernetes hold in, one
row of steps per node out, plus why a step must not run (etcd quorum).

A replaced node:  drain, [leave-etcd,] stop, delete, delete-node, [upload,] clone,
configure, [resize,] start, wait-ready. A removed node (dropped from cluster.yaml, boot
--prune): drain, [leave-etcd,] stop, delete, delete-node.

A server's etcd member leaves first, while the node still runs: K3s removes it when the
Node is annotated etcd.k3s.cattle.io/remove=true (k3s pkg/etcd/member_controller.go sync).
Removing the member of a running node keeps every remaining member up, so a 2-member etcd
can still shrink to 1, which stopping a member first could not (1 of 2 is no quorum).

The VM goes before its Node object: a running kubelet registers its Node again at once, so
deleting the Node first would not stick. Deleting a server's Node would also remove its etcd
member: K3s's managed-etcd-controller holds a finalizer on every Node and, when a Node with
the etcd role goes, removes the member named in its etcd.k3s.cattle.io/node-name annotation
(k3s pkg/etcd/member_controller.go, onRemove; RemovePeer in pkg/etcd/etcd.go), unless it was
removed on request already. Either way the member is gone before the node comes back: a
rebuilt server with the same name is refused while its old member is listed ("duplicate
node name found", join() in pkg/etcd/etcd.go).

A node moved off an offline host (--allow-move): delete-node, [upload,] clone, configure,
[resize,] start, wait-ready, as a new VM (a new VMID: the old one stays taken cluster-wide
while its host is down) on another host. It is not drained: its pods cannot be evicted from
a host that is gone, and deleting the Node lets their controllers place them again. A
moved server's etcd member goes with its Node (onRemove above). Once the host is back, its
old VM is a stale copy: stop, delete, nothing on the Kubernetes side (the Node of that name
is the new VM's).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from generator.config.model import Cluster, Node
from generator.kube.nodes import NodeState
from generator.proxmox import ha
from generator.proxmox.actions import Action, Kind, VMPlan
from generator.proxmox.observe import Observed, VMFacts
from generator.proxmox.placement import place
from generator.proxmox.plan import plan_node
from generator.proxmox.seeds import SeedRef

KUBE_KINDS = frozenset({Kind.DRAIN, Kind.LEAVE_ETCD, Kind.DELETE_NODE, Kind.WAIT_READY})
TEARDOWN_KINDS = frozenset(
    {Kind.DRAIN, Kind.LEAVE_ETCD, *ha.REMOVAL_KINDS, Kind.STOP, Kind.DELETE, Kind.DELETE_NODE}
)
REPLACE = "replace"
REMOVE = "remove"
MOVE = "move"  # re-created on another host as a new VM: its host is offline
STALE = "stale"  # a moved node's old VM, its host back
# Journaled once the teardown is complete, before the rebuild starts: from then on a VM
# under the VMID and a Node of the name are the new ones, never to be torn down again.
REBUILD = "rebuild"


@dataclass(frozen=True)
class Target:
    """One node to replace or remove, and which steps of it earlier runs finished."""

    name: str
    vmid: int
    server: bool
    what: str  # REPLACE, REMOVE, MOVE or STALE
    done: tuple[str, ...] = ()
    host: str = ""  # where its VM is when it begins (a move's: where the new VM goes)


@dataclass(frozen=True)
class Move:
    """A node whose VM is on an offline host, re-created as `vmid` on `host`."""

    name: str
    old_vmid: int
    old_host: str
    vmid: int
    host: str
    pinned: bool  # it had proxmox_node: the pin follows it to `host`


# -- etcd quorum -----------------------------------------------------------------------------
def etcd_members(kube_nodes: Mapping[str, NodeState]) -> list[str]:
    """K3s servers with embedded etcd each hold one member and carry the control-plane role."""
    return sorted(name for name, state in kube_nodes.items() if state.control_plane)


def quorum_problem(
    cluster: Cluster, kube_nodes: Mapping[str, NodeState], leaving: str
) -> str | None:
    """Why removing `leaving`'s etcd member now would lose quorum, or None when it is safe.

    The member leaves first, while the node still runs (leave-etcd), so etcd goes from n
    members to n-1; those must hold a majority of Ready servers: (n-1)//2+1. Done one
    server at a time, that keeps at most one server out of etcd.
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
    need = (len(members) - 1) // 2 + 1
    ready = [m for m in members if m != leaving and kube_nodes[m].ready]
    if len(ready) >= need:
        return None
    down = [m for m in members if m != leaving and not kube_nodes[m].ready]
    return (
        f"taking {leaving} out of etcd would leave {len(members) - 1} members with"
        f" {len(ready)} Ready, below quorum ({need} needed; not Ready: {', '.join(down)})."
        " Wait until every other server is Ready (homelab-gen status)"
    )


# -- rows --------------------------------------------------------------------------------------
def _kube_step(kind: Kind, target: Target, where: str) -> Action:
    return Action(kind, target.vmid, where)


def teardown(
    target: Target,
    vm: VMFacts | None,
    registered: bool,
    where: str,
    etcd: bool = False,
    out_of_ha: Sequence[Action] = (),
) -> list[Action]:
    """drain, [leave-etcd,] [out of HA,] stop, delete, delete-node: the steps that are not
    done yet. `etcd`: the node holds an embedded etcd member."""
    steps: list[Action] = []
    if registered:
        steps.append(_kube_step(Kind.DRAIN, target, where))
        if etcd:
            steps.append(_kube_step(Kind.LEAVE_ETCD, target, where))
    if vm is not None:
        steps += out_of_ha
        if vm.status == "running":
            steps.append(Action(Kind.STOP, vm.vmid, vm.node))
        steps.append(Action(Kind.DELETE, vm.vmid, vm.node))
    if registered:
        steps.append(_kube_step(Kind.DELETE_NODE, target, where))
    return [s for s in steps if s.kind not in target.done]


def out_of_ha(cluster: Cluster, observed: Observed, vm: VMFacts, name: str) -> list[Action]:
    return ha.teardown_steps(cluster, observed.ha, vm.vmid, name, vm.node)


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
    # Rebuilt on the host it is on: moving it is the user's call (issue 17, --allow-move).
    where = place(cluster, observed)[node.name]
    if REBUILD in target.done:
        steps = list(plan_node(cluster, node, observed, ref, where).actions)
    else:
        vm = observed.vms.get(node.vmid)
        etcd = has_member(cluster, kube_nodes, node.name)
        leave = out_of_ha(cluster, observed, vm, node.name) if vm else []
        steps = teardown(target, vm, node.name in kube_nodes, where, etcd, leave)
        steps += plan_node(cluster, node, observed.with_vm(node.vmid, None), ref, where).actions
    # Back into HA as its last Proxmox step, as boot adds a new VM.
    rebuilt_ha = ha.without_vm(cluster, observed.ha, node.vmid, node.name)
    steps += ha.node_additions(cluster, rebuilt_ha, node, where)
    steps.append(_kube_step(Kind.WAIT_READY, target, where))
    reason = "replace: drain, rebuild from its current seed, wait until Ready"
    if target.done:
        reason += f" (resuming after: {', '.join(target.done)})"
    return VMPlan(node.name, node.vmid, tuple(steps), reason, host=where)


def move_row(
    cluster: Cluster,
    node: Node,
    observed: Observed,
    ref: SeedRef,
    kube_nodes: Mapping[str, NodeState],
    target: Target,
    move: Move,
) -> VMPlan:
    """`node` (with its new VMID) made on the move's host, after its old Node is deleted."""
    steps: list[Action] = []
    if REBUILD not in target.done and node.name in kube_nodes:
        steps.append(_kube_step(Kind.DELETE_NODE, target, move.host))
    steps = [s for s in steps if s.kind not in target.done]
    steps += plan_node(cluster, node, observed, ref, move.host).actions
    steps += ha.node_additions(cluster, observed.ha, node, move.host)
    steps.append(_kube_step(Kind.WAIT_READY, target, move.host))
    reason = (
        f"move: VM {move.old_vmid} is on {move.old_host}, which is offline; not drained,"
        f" its Node deleted, made again as VM {move.vmid} on {move.host}, wait until Ready"
    )
    if target.done:
        reason += f" (resuming after: {', '.join(target.done)})"
    return VMPlan(node.name, node.vmid, tuple(steps), reason, host=move.host)


def new_vmid(current: int, taken: Collection[int]) -> int:
    """The first VMID after `current` that nothing holds (PVE's VMIDs end at 999999999)."""
    vmid = current + 1
    while vmid in taken:
        vmid += 1
    if vmid > 999_999_999:
        raise ValueError(f"no free VMID after {current}")
    return vmid


def stale_row(vm: VMFacts, target: Target, out_of_ha: Sequence[Action] = ()) -> VMPlan:
    """A moved node's old VM, back with its host: it starts on its own (onboot=1) with the
    new VM's name, IP and MAC, so it goes at once; the Node of its name is the new VM's."""
    steps = list(out_of_ha)
    steps += [Action(Kind.STOP, vm.vmid, vm.node)] if vm.status == "running" else []
    steps.append(Action(Kind.DELETE, vm.vmid, vm.node))
    reason = f"old copy of {target.name}, which lives on as another VM: delete (its Node stays)"
    return VMPlan(target.name, vm.vmid, tuple(steps), reason, host=vm.node)


def still_ready_problem(name: str, host: str) -> str:
    return (
        f"{name} is still Ready in Kubernetes, although Proxmox sees its host {host} offline:"
        f" its VM may still run (a network split), and moving it would make a second"
        f" {name} with the same IP. Check {host}; once `kubectl get node {name}` says"
        " NotReady, run the command again"
    )


def has_member(cluster: Cluster, kube_nodes: Mapping[str, NodeState], name: str) -> bool:
    state = kube_nodes.get(name)
    embedded = cluster.cluster.datastore_endpoint is None
    return embedded and state is not None and state.control_plane


def remove_row(
    vm: VMFacts,
    registered: bool,
    target: Target,
    etcd: bool = False,
    out_of_ha: Sequence[Action] = (),
) -> VMPlan:
    steps = teardown(target, vm, registered, vm.node, etcd, out_of_ha)
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
