"""The steps behind `plan`, `boot` and `destroy`: connect, observe, plan, apply.

The rendered seeds come from the caller (workspace.load_seed_texts): this layer never
reads or renders the cluster repo's output itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from generator import environment, secretstore
from generator.config.model import Cluster
from generator.errors import HomelabError
from generator.proxmox import apply, ha, seeds
from generator.proxmox.actions import Action, Kind, Plan, VMPlan
from generator.proxmox.boot_job import Context, Lab
from generator.proxmox.client import BeforeCall, Client, Retry
from generator.proxmox.failures import PveError, Timeouts
from generator.proxmox.observe import Observed, observe
from generator.proxmox.plan import (
    destroy_unreachable,
    make_plan,
    seed_rows_or_warning,
    unused_seeds,
)


def connect(
    cluster: Cluster,
    directory: Path,
    *,
    env: environment.Environment,
    warn: Callable[[str], None],
    retry: Retry | None = None,
    before_call: BeforeCall | None = None,
) -> Client:
    secret = environment.proxmox_token(env, lambda: secretstore.load(directory).proxmox_token)
    return Client(
        cluster.proxmox,
        secret,
        timeouts=Timeouts.from_environment(env),
        retry=retry,
        before_call=before_call,
        warn=warn,
    )


@dataclass(frozen=True)
class Prepared(Lab):
    """What boot will work from, and its plan."""

    plan: Plan


def check_reachable(client: Client) -> str:
    """PVE's version, read once with no retries: a wrong address fails fast."""
    try:
        return str(client.call("GET", "version").get("version", "0"))
    except PveError as exc:
        if exc.transient:
            raise HomelabError(
                f"cannot reach the Proxmox API at {client.base_url}: {exc}",
                "check proxmox.host and proxmox.port, and that pveproxy runs",
            ) from exc
        raise


def prepare(
    client: Client, cluster: Cluster, texts: Mapping[str, seeds.SeedTexts], prune: bool = False
) -> Prepared:
    observed = observe(client, cluster, check_reachable(client))
    refs = {
        n.name: seeds.seed_ref(cluster, n, texts[n.name]) for n in cluster.nodes if n.name in texts
    }
    return Prepared(
        client, cluster, observed, refs, texts, make_plan(cluster, observed, refs, prune)
    )


def load_cluster(directory: Path, warn: Callable[[str], None]) -> Cluster:
    from generator import config

    loaded = config.load(directory)
    for warning in loaded.warnings:
        warn(warning)
    return loaded.cluster


def observe_from_disk(
    directory: Path, env: environment.Environment, warn: Callable[[str], None]
) -> tuple[Client, Cluster, Observed]:
    cluster = load_cluster(directory, warn)
    client = connect(cluster, directory, env=env, warn=warn)
    return client, cluster, observe(client, cluster, check_reachable(client))


def require_sound(plan: Plan) -> None:
    if plan.problems:
        raise HomelabError(
            "pre-flight found problems; nothing was changed:\n- " + "\n- ".join(plan.problems)
        )


def boot(
    client: Client,
    prepared: Prepared,
    parallel: int,
    progress: apply.Progress,
    ssh: seeds.SshTarget | None = None,
) -> tuple[apply.Outcome, ...]:
    require_sound(prepared.plan)
    ctx = Context(
        client, prepared.cluster, prepared.observed, prepared.refs, prepared.texts, progress, ssh
    )
    outcomes = apply.apply_plan(ctx, prepared.plan.vm_part, parallel)
    outcomes += apply.apply_plan(ctx, prepared.plan.rule_part, 1)  # names the VMs' resources
    return outcomes + delete_unused_seeds(ctx, prepared.plan.seed_part)


def still_unused(ctx: Context, planned: Plan) -> Plan:
    """The planned seed deletions that a fresh look at Proxmox still finds unused. Seeds go
    only after the VMs are done: a VM whose step failed, or whose running config still
    holds the old seed, keeps it, and a failed run never leaves a VM without its seed."""
    fresh = observe(ctx.client, ctx.cluster, ctx.observed.version)
    unused = set(unused_seeds(ctx.cluster, fresh, ctx.refs))
    rows = []
    for row in planned.vms:
        kept = [a for a in row.actions if (a.pve_node, a.param("volid")) not in unused]
        for action in kept:
            skipped = apply.State.SKIPPED
            ctx.progress(apply.Event(row.name, action.kind, skipped, "a VM still uses it"))
        actions = tuple(a for a in row.actions if a not in kept)
        if actions:
            rows.append(VMPlan(row.name, row.vmid, actions, row.reason))
    return Plan(tuple(rows))


def delete_unused_seeds(ctx: Context, planned: Plan) -> tuple[apply.Outcome, ...]:
    if planned.is_noop:
        return ()
    try:
        checked = still_unused(ctx, planned)
    except (PveError, HomelabError) as exc:
        return (apply.Outcome("seeds", (), f"seeds: kept, could not check they are unused: {exc}"),)
    # One at a time: each delete takes the storage's lock.
    return apply.apply_plan(ctx, checked, 1)


def destroy_plan(cluster: Cluster, observed: Observed) -> Plan:
    """Stop and delete every VM this cluster owns, then the seeds it uploaded."""
    vms = []
    for vmid, vm in sorted(observed.vms.items()):
        if not vm.owned_by(cluster):
            continue
        actions = [Action(Kind.STOP, vmid, vm.node)] if vm.status == "running" else []
        actions.append(Action(Kind.DELETE, vmid, vm.node))
        name = vm.owner[1] if vm.owner else vm.name
        vms.append(VMPlan(name, vmid, tuple(actions), "delete"))
    unused = unused_seeds(cluster, observed, {}, vms)
    rows, warnings = seed_rows_or_warning(cluster, observed, unused)
    vms = ha.destroy_rows(cluster, observed.ha, vms)
    unreached = destroy_unreachable(cluster, observed)  # deleted by a later destroy
    return Plan(tuple(vms + rows), warnings=tuple(warnings), unreachable=unreached)


def destroy(
    client: Client, cluster: Cluster, observed: Observed, plan: Plan, progress: apply.Progress
) -> tuple[apply.Outcome, ...]:
    ctx = Context(client, cluster, observed, {}, {}, progress)
    outcomes = apply.apply_plan(ctx, plan.vm_part, cluster.proxmox.parallel)
    outcomes += apply.apply_plan(ctx, plan.rule_part, 1)
    # Seeds go last: a VM that could not be deleted keeps its seed.
    return outcomes + delete_unused_seeds(ctx, plan.seed_part)
