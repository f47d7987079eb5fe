"""`boot` when nodes are replaced or removed: the cluster repo, Proxmox and the K3s API
looked at, the plan made, then applied in order: every other VM as boot does, then the
lifecycle rows one node at a time, then the seeds no VM uses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import workspace
from generator.config import edit
from generator.config.model import Cluster, Node
from generator.config.placeholders import placeholder_warnings
from generator.environment import Environment
from generator.errors import HomelabError
from generator.kube import client as kube_client
from generator.kube import nodes
from generator.kube.nodes import NodeState
from generator.lifecycle import access, journal, moving, steps
from generator.lifecycle import plan as lifeplan
from generator.lifecycle.run import Run, Settings, run_rows
from generator.lifecycle.stale import stale_nodes
from generator.naming import SEED_FILES, seed_path
from generator.proxmox import apply, core, seeds
from generator.proxmox.boot_job import Context
from generator.proxmox.plan import make_plan


@dataclass(frozen=True)
class Request:
    replace: tuple[str, ...] = ()
    replace_stale: bool = False
    prune: bool = False
    allow_move: bool = False  # a named node whose host is offline is made again elsewhere


@dataclass(frozen=True)
class Prepared:
    boot: core.Prepared
    plan: lifeplan.LifecyclePlan
    kubeconfig: dict[str, Any] | None
    notes: tuple[str, ...]


def wanted(directory: Path, request: Request) -> bool:
    """Whether this boot is a lifecycle run: asked for, or an earlier one left unfinished."""
    asked = bool(request.replace or request.replace_stale or request.prune)
    return asked or not journal.load(directory).is_empty


def _kube_nodes(
    kubeconfig: dict[str, Any] | None, why: str
) -> tuple[dict[str, NodeState] | None, str]:
    if kubeconfig is None:
        return None, why
    try:
        with kube_client.connect(kubeconfig) as api:
            return nodes.list_nodes(api), ""
    except HomelabError as exc:
        return None, exc.message


def _join_note(cluster: Cluster, node: Node) -> str:
    from generator.status.kubeconfig import api_server

    return (
        f"{node.name} started this cluster (cluster-init); rebuilt, it joins through"
        f" {api_server(cluster)} like the other servers: cluster.yaml gets"
        " `cluster.initialized: true` and its seed is rendered again (commit both)"
    )


def _mark_initialized(directory: Path, value: bool) -> bool:
    """cluster.initialized set, and the seeds rendered again; False when it already was."""
    if not edit.set_initialized(directory, value):
        return False
    updated = core.load_cluster(directory, lambda _: None)
    workspace.apply_render(directory, workspace.plan_render(directory, updated))
    return True


def forget_cluster(directory: Path) -> str:
    """After destroy: no replacement is left to finish, and the next boot starts a new
    cluster, so the first server's seed gets cluster-init again. Returns what was done."""
    journal.save(directory, journal.Journal())
    try:
        if not _mark_initialized(directory, False):
            return ""
    except HomelabError as exc:
        return (
            f"cluster.yaml: cluster.initialized is false again; render failed ({exc}):"
            " run 'homelab-gen render' before the next boot"
        )
    return (
        "cluster.yaml: cluster.initialized is false again and the first server's seed starts"
        " a new cluster (cluster-init); commit both"
    )


def _targets(prepared: core.Prepared, request: Request) -> list[Node]:
    named = lifeplan.named_nodes(prepared.cluster, request.replace)
    stale = stale_nodes(prepared) if request.replace_stale else []
    return list({n.name: n for n in named + stale}.values())


def prepare(
    directory: Path,
    env: Environment,
    request: Request,
    *,
    dry_run: bool,
    warn: Callable[[str], None],
    say: Callable[[str], None],
) -> Prepared:
    boot = prepare_boot(directory, env, request.prune, warn)
    targets = _targets(boot, request)
    kubeconfig, why = access.read_kubeconfig(boot.cluster, directory)
    kube_nodes, why = _kube_nodes(kubeconfig, why)
    notes: list[str] = []
    init = boot.cluster.init_server
    if init is not None and init in targets:
        notes.append(_join_note(boot.cluster, init))
        # Only a cluster whose API answered exists for sure; without it nothing runs anyway.
        if not dry_run and kube_nodes is not None:
            _mark_initialized(directory, True)
            say(f"note: {notes[-1]}")
            boot = prepare_boot(directory, env, request.prune, _shown_already)
            targets = [n for t in targets for n in boot.cluster.nodes if n.name == t.name]
    book = journal.load(directory)
    found = moving.moves(boot, targets, book, request.allow_move)
    fresh = [m for m in found.values() if m.name not in book.entries]
    if fresh:
        notes.append(f"once boot runs, {moving.moved_note(fresh)}: commit both")
    boot = _with_moves(directory, boot, found.values())
    targets = [n for t in targets for n in boot.cluster.nodes if n.name == t.name]
    # The first server among them joins once rebuilt, so it starts no second cluster.
    rebuilding = {n.name for n in targets} | found.keys()  # moves resumed too
    again = make_plan(boot.cluster, boot.observed, boot.refs, request.prune, rebuilding)
    boot = dataclasses.replace(boot, plan=again)
    made = lifeplan.make(boot, kube_nodes, why, targets, request.prune, book, found)
    return Prepared(boot, made, kubeconfig, tuple(notes))


def _with_moves(directory: Path, boot: core.Prepared, moves: Iterable[steps.Move]) -> core.Prepared:
    """The lab as it is once cluster.yaml holds the moves: their nodes' new VMIDs, and the
    seeds rendered for them (the instance-id names the VMID, so a new VM is a new instance)."""
    cluster = moving.moved_cluster(boot.cluster, moves)
    if cluster == boot.cluster:
        return boot
    rendered = workspace.plan_render(directory, cluster, write_secrets=False).rendered
    texts = dict(boot.texts)
    refs = dict(boot.refs)
    for node in cluster.nodes:
        if node in boot.cluster.nodes:
            continue
        texts[node.name] = {f: rendered[seed_path(node.name, f)].text for f in SEED_FILES}
        refs[node.name] = seeds.seed_ref(cluster, node, texts[node.name])
    return dataclasses.replace(boot, cluster=cluster, texts=texts, refs=refs)


def write_moves(directory: Path, moves: Sequence[steps.Move]) -> None:
    """Journaled, then cluster.yaml and the moved nodes' seeds as _with_moves made them."""
    if not moves:
        return
    moving.begin(directory, moves)
    updated = core.load_cluster(directory, _shown_already)
    workspace.apply_render(directory, workspace.plan_render(directory, updated))


def _shown_already(_: str) -> None:
    """The warnings of a second load: the first one showed them."""


def prepare_boot(
    directory: Path, env: Environment, prune: bool, warn: Callable[[str], None]
) -> core.Prepared:
    """cluster.yaml and the rendered seeds on disk, then a look at Proxmox and boot's plan."""
    cluster = core.load_cluster(directory, warn)
    for line in placeholder_warnings(cluster):
        warn(line)
    texts = workspace.load_seed_texts(directory, cluster)
    client = core.connect(cluster, directory, env=env, warn=warn)
    return core.prepare(client, cluster, texts, prune)


def apply_all(
    prepared: Prepared,
    directory: Path,
    settings: Settings,
    progress: apply.Progress,
    parallel: int,
    ssh: seeds.SshTarget | None = None,
) -> tuple[apply.Outcome, ...]:
    boot = prepared.boot
    core.require_sound(prepared.plan.shown)
    ctx = Context(boot.client, boot.cluster, boot.observed, boot.refs, boot.texts, progress, ssh)
    outcomes = apply.apply_plan(ctx, prepared.plan.boot.vm_part, parallel)
    if any(o.error for o in outcomes):
        return outcomes  # nodes go down only in a lab whose other VMs are as planned
    if prepared.plan.rows:
        write_moves(directory, prepared.plan.moves)
        run = Run(ctx, None, directory, settings)
        if any(t.what != steps.STALE for t, _ in prepared.plan.rows):
            assert prepared.kubeconfig is not None
            with kube_client.connect(prepared.kubeconfig) as api:
                outcomes += run_rows(dataclasses.replace(run, api=api), prepared.plan.rows)
        else:  # only stale copies to delete: Proxmox alone
            outcomes += run_rows(run, prepared.plan.rows)
    outcomes += apply.apply_plan(ctx, prepared.plan.boot.rule_part, 1)  # after the VMs' HA
    return outcomes + core.delete_unused_seeds(ctx, prepared.plan.boot.seed_part)
