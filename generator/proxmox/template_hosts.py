"""`homelab-gen template --all-hosts`: a copy of the template on each host of
proxmox.nodes whose VMs cannot be cloned from the main one (clone_source: a template with
a volume on local storage serves its own host only).

Where the copies live, so that day 2 (a host added, the repository cloned elsewhere) finds
the same ones: each is found by its marks (template_marks: tags, and `copy-of=<VMID>
host=<host>` in its description), wherever it sits. A missing one is made at
proxmox.template_vmid + its host's place among the hosts of proxmox.nodes other than
proxmox.node (9001 for the first, 9002 for the next, ...), the same way as the main one:
the image downloaded onto that host's seed storage (once, when the storage is shared),
imported, converted. A template on shared storage needs no copies: every host clones it
with `target=`.

Each copy is planned and applied as the main template is, with a Cluster whose
proxmox.node and template_vmid are the copy's (for_host), so one set of rules serves both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from generator.config.model import Cluster
from generator.proxmox.actions import Kind, Plan
from generator.proxmox.client import Client
from generator.proxmox.clone_source import local_storages
from generator.proxmox.images import Source
from generator.proxmox.observe import offline_hosts
from generator.proxmox.template import TemplateFacts, observe_template, plan_template
from generator.proxmox.template_prepare import Preparation
from generator.proxmox.template_vm import Marks, image_of, is_ours, source_of


@dataclass(frozen=True)
class Target:
    """One template to make: `cluster` names its host (proxmox.node) and VMID."""

    cluster: Cluster
    marks: Marks
    facts: TemplateFacts

    @property
    def host(self) -> str:
        return self.cluster.proxmox.node


def for_host(cluster: Cluster, host: str, vmid: int) -> Cluster:
    return replace(cluster, proxmox=replace(cluster.proxmox, node=host, template_vmid=vmid))


def other_hosts(cluster: Cluster) -> list[str]:
    return [h for h in cluster.proxmox.hosts if h != cluster.proxmox.node]


def copy_vmid(cluster: Cluster, host: str) -> int:
    """Where a missing copy is made: only appending a host to proxmox.nodes keeps the
    others' numbers, but an existing copy is found by its marks, whatever its VMID."""
    return cluster.proxmox.template_vmid + 1 + other_hosts(cluster).index(host)


# -- observe --------------------------------------------------------------------------------
def observe_copies(client: Client, cluster: Cluster) -> tuple[list[Target], list[str]]:
    """The copy of every other listed host, and the listed hosts that are offline."""
    offline = offline_hosts(client.get("cluster/resources", type="node") or [])
    targets, down = [], []
    for host in other_hosts(cluster):
        if host in offline:
            down.append(host)
            continue
        marks = (cluster.proxmox.template_vmid, host)
        there = for_host(cluster, host, copy_vmid(cluster, host))
        facts = observe_template(client, there, marks)
        if facts.vm is not None and is_ours(facts.vm, marks):
            there = for_host(cluster, host, facts.vm.vmid)  # found by its marks
        targets.append(Target(there, marks, facts))
    return targets, down


# -- plan -----------------------------------------------------------------------------------
def serves_every_host(cluster: Cluster, main: TemplateFacts) -> bool:
    """Every host can clone the main template with `target=` (clone_source's rules): its
    volumes on shared storage (or, before it exists, proxmox.storage shared, where it
    goes), and for full clones proxmox.storage shared too."""
    pve, node = cluster.proxmox, main.node
    storage = node.storages.get(pve.storage) if node else None
    storage_shared = storage is not None and storage.shared
    if main.vm is None or node is None:
        return storage_shared
    volumes_shared = not local_storages(main.vm, {main.vm.node: node})
    return volumes_shared and (pve.clone != "full" or storage_shared)


def hosts_note(cluster: Cluster, main: TemplateFacts) -> str | None:
    """For plain `template` on several hosts: what the others need."""
    pve = cluster.proxmox
    pinned = {n.proxmox_node for n in cluster.nodes if n.proxmox_node} - {pve.node}
    others = other_hosts(cluster) if pve.placement == "spread" else sorted(pinned)
    if not others or serves_every_host(cluster, main):
        return None
    return (
        f"template {pve.template_vmid} is on storage only {pve.node} reads, so VMs placed"
        f" on {', '.join(others)} cannot be cloned from it: run"
        " 'homelab-gen template --all-hosts' to give each host its own copy"
    )


def _image_problem(cluster: Cluster, source: Source, main: TemplateFacts) -> str | None:
    """Copies of another image than the main template's would make nodes differ by host."""
    vm = main.vm
    if vm is None or not is_ours(vm) or image_of(vm) in (None, source.key):
        return None
    image = image_of(vm) if image_of(vm) != "custom" else source_of(vm)
    return (
        f"template {vm.vmid} holds {image_of(vm)}, so every host's copy must too: run"
        f" homelab-gen template --all-hosts --image {image}"
    )


def _fetched(target: Target, plan: Plan) -> frozenset[str]:
    """Images a row downloads onto a shared seed storage: later rows find them there."""
    node, seed = target.facts.node, target.cluster.proxmox.seed_storage
    if node is None or seed not in node.storages or not node.storages[seed].shared:
        return frozenset()
    return frozenset(a.param("volid") for a in plan.actions if a.kind == Kind.DOWNLOAD)


def plan_all_hosts(
    cluster: Cluster,
    source: Source,
    main: Target,
    copies: Sequence[Target],
    offline: Sequence[str] = (),
    explicit: bool = False,
    prep: Preparation | None = None,
) -> tuple[Plan, list[Target]]:
    """One row per template to make, main first, and the targets the rows belong to;
    `prep` (--prepare) prepares each of them."""
    first = plan_template(main.cluster, source, main.facts, explicit, prep)
    if serves_every_host(cluster, main.facts):
        note = (
            f"template {cluster.proxmox.template_vmid} is on shared storage: every host clones"
            " it with target=, so --all-hosts makes no copies"
        )
        return replace(first, warnings=(*first.warnings, note)), [main]
    rows, problems = list(first.vms), list(first.problems)
    warnings = [
        f"{host} is offline: its template is made when it is back (run this command again)"
        for host in offline
    ] + list(first.warnings)
    fetched = _fetched(main, first)
    for target in copies:
        facts = replace(target.facts, images=target.facts.images | fetched)
        planned = plan_template(target.cluster, source, facts, explicit, prep)
        rows += [replace(row, name=f"template on {target.host}") for row in planned.vms]
        problems += planned.problems
        warnings += planned.warnings
        fetched |= _fetched(target, planned)
    builds = any(a.kind == Kind.CREATE for row in rows[1:] for a in row.actions)
    mismatch = _image_problem(cluster, source, main.facts) if builds and not explicit else None
    if mismatch:
        problems.append(mismatch)
    plan = Plan(tuple(rows), tuple(dict.fromkeys(problems)), tuple(dict.fromkeys(warnings)))
    return plan, [main, *copies]
