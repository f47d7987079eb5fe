"""Run a plan: VMs in parallel through a bounded pool, each VM's steps in order.

A failed step is never blindly repeated. After a transient error (a lock's "got timeout",
a reset once Proxmox had answered, pveproxy's 595-597, a task that failed on its lock: see
client.classify) the VM is looked at again and re-planned, so a change that did take effect
(an answer lost to a reset) is not made twice. A permanent error fails its VM at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from generator.errors import HomelabError, bug
from generator.model import Cluster, Node
from generator.proxmox import plan as planning
from generator.proxmox import seeds
from generator.proxmox.client import Client, PveError
from generator.proxmox.observe import Observed, VMFacts, read_seeds, read_vm
from generator.proxmox.plan import Action, Plan, VMPlan


@dataclass(frozen=True)
class Event:
    vm: str
    step: str
    state: str  # running, done, retry, failed
    detail: str = ""


Progress = Callable[[Event], None]


@dataclass(frozen=True)
class Outcome:
    vm: str
    steps: tuple[str, ...]
    error: str | None = None


class StepFailed(HomelabError):
    pass


@dataclass(frozen=True)
class Context:
    client: Client
    cluster: Cluster
    observed: Observed
    refs: Mapping[str, seeds.SeedRef]
    texts: Mapping[str, seeds.SeedTexts]
    progress: Progress
    ssh: seeds.SshTarget | None = None

    def node(self, vmid: int) -> Node | None:
        return next((n for n in self.cluster.nodes if n.vmid == vmid), None)


def _path(action: Action) -> str:
    return f"nodes/{action.pve_node}/qemu/{action.vmid}"


def _require_ours(ctx: Context, action: Action) -> None:
    """Stop and delete only what the tags and description say is this cluster's."""
    facts = read_vm(ctx.client, action.pve_node, action.vmid)
    if facts is not None and not facts.owned_by(ctx.cluster):
        raise StepFailed(
            f"VM {action.vmid} is not owned by cluster {ctx.cluster.name}; not touching it"
        )


def _require_our_seed(ctx: Context, volid: str) -> None:
    """Delete only files named exactly as this cluster's seeds: never a user's own ISO."""
    if not seeds.is_seed_of(ctx.cluster.name, volid):
        raise StepFailed(f"{volid} is not a seed of cluster {ctx.cluster.name}; not touching it")


def execute(ctx: Context, action: Action) -> None:
    client = ctx.client
    params = dict(action.params)
    if action.kind == "upload":
        node = ctx.node(action.vmid)
        assert node is not None
        ref, texts = ctx.refs[node.name], ctx.texts[node.name]
        if ref.method == "iso":
            seeds.upload_iso(client, action.pve_node, ref, texts)
        else:
            path = ctx.observed.nodes[action.pve_node].storages[ref.storage].path
            assert ctx.ssh is not None and path
            seeds.upload_snippets(ctx.ssh, path, ref, texts)
    elif action.kind == "clone":
        client.task("POST", f"{_path(action)}/clone", **params)
    elif action.kind == "configure":
        client.task("POST", f"{_path(action)}/config", **params)
    elif action.kind == "resize":
        client.task("PUT", f"{_path(action)}/resize", **params)
    elif action.kind == "start":
        client.task("POST", f"{_path(action)}/status/start")
    elif action.kind == "stop":
        _require_ours(ctx, action)
        client.task("POST", f"{_path(action)}/status/stop")
    elif action.kind == "delete":
        _require_ours(ctx, action)
        client.task("DELETE", _path(action), purge=1, **{"destroy-unreferenced-disks": 1})
    elif action.kind == "delete-seed":
        _require_our_seed(ctx, params["volid"])
        storage = params["volid"].split(":", 1)[0]
        client.task(
            "DELETE", f"nodes/{action.pve_node}/storage/{storage}/content/{params['volid']}"
        )
    else:
        raise AssertionError(f"unknown action {action.kind}")


def _fresh_facts(ctx: Context, vm_plan: VMPlan) -> VMFacts | None:
    known = ctx.observed.vms.get(vm_plan.vmid)
    node = ctx.node(vm_plan.vmid)
    where = known.node if known else planning.pve_node_of(ctx.cluster, node) if node else None
    return read_vm(ctx.client, where, vm_plan.vmid) if where else None


def is_removal(vm_plan: VMPlan) -> bool:
    """Destroy's and prune's rows only stop and delete; boot's always build something."""
    return bool(vm_plan.actions) and all(a.kind in ("stop", "delete") for a in vm_plan.actions)


def replan(ctx: Context, vm_plan: VMPlan) -> list[Action]:
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
        return list(planning.plan_orphan(facts, prune=True).actions)
    if facts is not None and facts.owner != (ctx.cluster.name, node.name):
        raise StepFailed(
            f"VMID {node.vmid} ({node.name}) was taken by a VM this cluster does not own",
            "pick another vmid in cluster.yaml",
        )
    if facts is not None and facts.lock:
        raise PveError(f"VM {node.vmid} is locked ({facts.lock})", transient=True)
    where = planning.pve_node_of(ctx.cluster, node)
    observed = ctx.observed.with_vm(node.vmid, facts).with_seeds(
        where, read_seeds(ctx.client, ctx.cluster, where)
    )
    return list(planning.plan_node(ctx.cluster, node, observed, ctx.refs[node.name]).actions)


def run_vm(ctx: Context, vm_plan: VMPlan) -> Outcome:
    actions = list(vm_plan.actions)
    done: list[str] = []
    failures = 0
    retry = ctx.client.retry
    while actions:
        action = actions[0]
        ctx.progress(Event(vm_plan.name, action.kind, "running"))
        try:
            execute(ctx, action)
        except PveError as exc:
            failures += 1
            # Re-planning knows only the VM boot wants, not what destroy or prune want.
            towards_boot = action.kind in ("upload", "clone", "configure", "resize", "start")
            if not exc.transient and towards_boot:
                # Never retried. But our own earlier change (an answer lost to a reset, a
                # killed boot) may still have been in flight and made this step moot ("VM 201
                # already running"): if one fresh look no longer starts with it, carry on.
                try:
                    fresh = _replan_with_retries(ctx, vm_plan)
                except HomelabError:
                    fresh = [action]  # cannot tell: report the step's own error
                if not fresh or fresh[0].kind != action.kind:
                    ctx.progress(Event(vm_plan.name, action.kind, "done"))
                    actions = fresh
                    continue
            if not exc.transient or failures >= retry.attempts:
                ctx.progress(Event(vm_plan.name, action.kind, "failed", str(exc)))
                raise StepFailed(
                    f"{vm_plan.name} (VM {vm_plan.vmid}): {action.kind} failed: {exc}"
                ) from exc
            ctx.progress(Event(vm_plan.name, action.kind, "retry", str(exc)))
            time.sleep(retry.delay(failures - 1))
            actions = _replan_with_retries(ctx, vm_plan)
            continue
        except HomelabError:
            raise
        except Exception as exc:  # our bug, not Proxmox's: the other VMs go on
            ctx.progress(Event(vm_plan.name, action.kind, "failed", "homelab-gen bug"))
            raise bug(f"{vm_plan.name} (VM {vm_plan.vmid}): {action.kind} failed", exc) from exc
        ctx.progress(Event(vm_plan.name, action.kind, "done"))
        done.append(action.kind)
        actions.pop(0)
    return Outcome(vm_plan.name, tuple(done))


def _replan_with_retries(ctx: Context, vm_plan: VMPlan) -> list[Action]:
    retry = ctx.client.retry
    for attempt in range(retry.attempts):
        try:
            return replan(ctx, vm_plan)
        except PveError as exc:
            if not exc.transient or attempt == retry.attempts - 1:
                raise StepFailed(f"{vm_plan.name} (VM {vm_plan.vmid}): {exc}") from exc
            time.sleep(retry.delay(attempt))
        except HomelabError:
            raise
        except Exception as exc:  # our bug, not Proxmox's: the other VMs go on
            raise bug(f"{vm_plan.name} (VM {vm_plan.vmid}): re-planning failed", exc) from exc
    raise AssertionError("unreachable")


def apply_plan(ctx: Context, plan: Plan, parallel: int) -> tuple[Outcome, ...]:
    """Run every VM's actions; VMs that fail are reported, the others still finish."""
    work = [vm for vm in plan.vms if vm.actions]
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="boot") as pool:
        futures = [(vm, pool.submit(run_vm, ctx, vm)) for vm in work]
        for vm, future in futures:
            try:
                outcomes.append(future.result())
            except HomelabError as exc:
                outcomes.append(Outcome(vm.name, (), str(exc)))
    return tuple(outcomes)
