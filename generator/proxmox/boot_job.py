"""boot, destroy and prune as one of the engine's jobs (apply.py): the Context they share,
the executors of their action kinds and boot's re-planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from generator.config.model import Cluster, Node, SeedMethod
from generator.proxmox import ha, seeds
from generator.proxmox import plan as planning
from generator.proxmox.actions import Action, Kind, VMPlan
from generator.proxmox.apply import Executor, Progress, StepFailed, delete_vm, stop_vm, vm_task
from generator.proxmox.client import Client
from generator.proxmox.failures import PveError
from generator.proxmox.observe import Observed, VMFacts, read_seeds, read_vm
from generator.proxmox.placement import place


@dataclass(frozen=True)
class Lab:
    """What boot, destroy and prune work from: the cluster, its Proxmox API and what that
    holds, and the seeds boot puts there (none for destroy). core.Prepared adds the plan,
    Context the run's progress and SSH target."""

    client: Client
    cluster: Cluster
    observed: Observed
    refs: Mapping[str, seeds.SeedRef]
    texts: Mapping[str, seeds.SeedTexts]


@dataclass(frozen=True)
class Context(Lab):
    """boot, destroy and prune: the cluster's VMs and seeds."""

    progress: Progress
    ssh: seeds.SshTarget | None = None

    # Re-planning knows only the VM boot wants, not what destroy or prune want.
    rechecked: ClassVar[frozenset[str]] = frozenset(
        {Kind.UPLOAD, Kind.CLONE, Kind.CONFIGURE, Kind.RESIZE, Kind.START}
    )

    def node(self, vmid: int) -> Node | None:
        return next((n for n in self.cluster.nodes if n.vmid == vmid), None)

    @property
    def executors(self) -> Mapping[str, Executor]:
        return EXECUTORS

    def label(self, vm_plan: VMPlan) -> str:
        return f"{vm_plan.name} (VM {vm_plan.vmid})"

    def refusal(self, vm: VMFacts) -> str | None:
        """Stop and delete only what the tags and description say is this cluster's."""
        if vm.owned_by(self.cluster):
            return None
        return f"VM {vm.vmid} is not owned by cluster {self.cluster.name}; not touching it"

    def replan(self, vm_plan: VMPlan) -> list[Action]:
        return boot_replan(self, vm_plan)


def _require_our_seed(ctx: Context, volid: str) -> None:
    """Delete only files named exactly as this cluster's seeds: never a user's own ISO."""
    if not seeds.is_seed_of(ctx.cluster.name, volid):
        raise StepFailed(f"{volid} is not a seed of cluster {ctx.cluster.name}; not touching it")


# -- the executors ----------------------------------------------------------------------------
def _upload(ctx: Context, action: Action) -> None:
    node = ctx.node(action.vmid)
    assert node is not None
    ref, texts = ctx.refs[node.name], ctx.texts[node.name]
    if ref.method == SeedMethod.ISO:
        seeds.upload_iso(ctx.client, action.pve_node, ref, texts)
    else:
        path = ctx.observed.nodes[action.pve_node].storages[ref.storage].path
        assert ctx.ssh is not None and path
        seeds.upload_snippets(ctx.ssh, path, ref, texts)


def _delete_seed(ctx: Context, action: Action) -> None:
    volid = action.param("volid")
    _require_our_seed(ctx, volid)
    storage = volid.split(":", 1)[0]
    ctx.client.task("DELETE", f"nodes/{action.pve_node}/storage/{storage}/content/{volid}")


EXECUTORS: Mapping[str, Executor] = {
    Kind.UPLOAD: _upload,
    Kind.CLONE: vm_task("POST", "/clone"),
    Kind.CONFIGURE: vm_task("POST", "/config"),
    Kind.RESIZE: vm_task("PUT", "/resize"),
    Kind.START: vm_task("POST", "/status/start"),
    Kind.STOP: stop_vm,
    Kind.DELETE: delete_vm,
    Kind.DELETE_SEED: _delete_seed,
    **ha.EXECUTORS,
}


# -- boot's re-planner -----------------------------------------------------------------------
def planned_host(ctx: Context, vm_plan: VMPlan) -> str | None:
    """Where the plan put the VM. A row made without it (a lifecycle step group) gets the
    same answer from placement: the same cluster and the same observed facts."""
    known = ctx.observed.vms.get(vm_plan.vmid)
    node = ctx.node(vm_plan.vmid)
    if known is not None or node is None:
        return known.node if known else None
    return vm_plan.host or place(ctx.cluster, ctx.observed)[node.name]


def _fresh_facts(ctx: Context, vm_plan: VMPlan) -> VMFacts | None:
    where = planned_host(ctx, vm_plan)
    return read_vm(ctx.client, where, vm_plan.vmid) if where else None


def is_removal(vm_plan: VMPlan) -> bool:
    """Destroy's and prune's rows only stop and delete (taking the VM out of HA first);
    boot's always build something, or only take a VM out of HA (proxmox.ha off)."""
    kinds = {a.kind for a in vm_plan.actions}
    removing = {Kind.STOP, Kind.DELETE}
    return bool(kinds & removing) and kinds <= removing | ha.REMOVAL_KINDS


def boot_replan(ctx: Context, vm_plan: VMPlan) -> list[Action]:
    """The VM's remaining actions from a fresh look at Proxmox."""
    if not vm_plan.vmid:
        # A seed row: deleting a volume that is already gone ends OK on PVE, so the
        # deletion simply stands (its final check runs in core.delete_unused_seeds).
        return list(vm_plan.actions)
    node = ctx.node(vm_plan.vmid)
    facts = _fresh_facts(ctx, vm_plan)
    if node is None or is_removal(vm_plan):  # an orphan being pruned, or destroy
        if facts is None:
            return []
        if not facts.owned_by(ctx.cluster):
            raise StepFailed(f"VM {vm_plan.vmid} is no longer this cluster's; not touching it")
        # The HA steps again (each one done is answered as such): a VM stopped while HA
        # still manages it would only be asked to stop.
        out_of_ha = [a for a in vm_plan.actions if a.kind in ha.REMOVAL_KINDS]
        return out_of_ha + list(planning.plan_orphan(facts, prune=True).actions)
    if facts is not None and facts.owner != (ctx.cluster.name, node.name):
        raise StepFailed(
            f"VMID {node.vmid} ({node.name}) was taken by a VM this cluster does not own",
            "pick another vmid in cluster.yaml",
        )
    if facts is not None and facts.lock:
        raise PveError(f"VM {node.vmid} is locked ({facts.lock})", transient=True)
    # Where the VM is now (a clone this run made is on the planned host), else the plan's.
    where = facts.node if facts is not None else planned_host(ctx, vm_plan)
    assert where is not None
    observed = ctx.observed.with_vm(node.vmid, facts).with_seeds(
        where, read_seeds(ctx.client, ctx.cluster, where)
    )
    ref = ctx.refs[node.name]
    actions = list(planning.plan_node(ctx.cluster, node, observed, ref, where).actions)
    # The row's own HA steps when it has them: a rebuild's were planned against the HA
    # config after its teardown, which the facts read before the run no longer show.
    planned_ha = [a for a in vm_plan.actions if a.kind in ha.EXECUTORS]
    return actions + (planned_ha or ha.node_steps(ctx.cluster, ctx.observed.ha, node, where))
