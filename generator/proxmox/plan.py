"""Pure planning: cluster.yaml and the observed Proxmox facts in, actions per VM out.

Nothing here talks to Proxmox, so every decision is a table test. What must hold before
any plan is preflight's; reading and comparing config strings is pveconfig's; the plan's
types (actions.py) are shared with destroy, prune and template.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from generator import naming
from generator.config.model import Cluster, Node, SeedMethod
from generator.proxmox.actions import Action, Kind, Plan, VMPlan
from generator.proxmox.clone_source import clone_source, use_full_clone
from generator.proxmox.ha import with_ha
from generator.proxmox.observe import Observed, VMFacts
from generator.proxmox.placement import place, placement_findings
from generator.proxmox.preflight import may_delete_seeds, preflight
from generator.proxmox.pveconfig import (
    config_after,
    config_changes,
    disk_size,
    drive_slot,
    volids_in,
)
from generator.proxmox.seediso import SETTINGS_DIGITS
from generator.proxmox.seeds import SeedRef, is_seed_of
from generator.proxmox.template_marks import PREPARED, mark

SEED_ROW = "unused seed: no VM of the cluster uses it"


# -- what a VM should look like -------------------------------------------------------------
def owner_description(cluster: Cluster, node: Node) -> str:
    return (
        f"{naming.owner_line(cluster, node)}\n"
        "Made by homelab-gen boot; change it in cluster.yaml, not here."
    )


def seed_slot(template: VMFacts) -> str:
    return drive_slot(template.machine, template.config)


def desired_config(cluster: Cluster, node: Node, template: VMFacts, ref: SeedRef) -> dict[str, str]:
    pve = cluster.proxmox
    mac = naming.node_mac(cluster.name, node.name)
    config = {
        "name": node.name,
        "cores": str(node.cores),
        "memory": str(node.memory),
        "agent": "1",
        "net0": f"virtio={mac},bridge={pve.bridge}",
        "onboot": "1",
        "tags": naming.vm_tags(cluster),
        "description": owner_description(cluster, node),
    }
    slot = seed_slot(template)
    if ref.method == SeedMethod.ISO:
        config[slot] = f"{ref.volid('iso')},media=cdrom"
    else:
        config[slot] = f"{pve.storage}:cloudinit"
        config["cicustom"] = ",".join(f"{p}={ref.volid(p)}" for p in ("user", "network", "meta"))
    return config


# -- per VM --------------------------------------------------------------------------------
def _clone_action(cluster: Cluster, node: Node, source: VMFacts, host: str, full: bool) -> Action:
    """From the template clone_source chose: `target=` moves a clone of a template on
    shared storage onto another host (qemu-server API2/Qemu.pm clone_vm); a host's own
    copy is cloned where it is."""
    pve = cluster.proxmox
    params = [
        ("newid", str(node.vmid)),
        ("name", node.name),
        # The ownership line is on the VM from its first moment, so a half-made clone is
        # recognised as ours on the next run.
        ("description", owner_description(cluster, node)),
        ("full", "1" if full else "0"),
    ]
    if full:
        params.append(("storage", pve.storage))
    if host != source.node:
        params.append(("target", host))
    return Action(Kind.CLONE, source.vmid, source.node, tuple(params))


def _build_actions(
    cluster: Cluster, node: Node, observed: Observed, ref: SeedRef, vm: VMFacts | None, where: str
) -> tuple[list[Action], list[str]]:
    assert observed.template is not None
    desired = desired_config(cluster, node, observed.template, ref)
    actions: list[Action] = []
    notes: list[str] = []
    if vm is None:
        full = use_full_clone(cluster, observed, where)
        # preflight's unserved_problems stops a plan with a host no template serves
        source = clone_source(cluster, observed, where) or observed.template
        actions.append(_clone_action(cluster, node, source, where, full))
        base = {k: v for k, v in source.config.items() if k not in ("template",)}
        running, disk_key = False, source.boot_disk
        disk_bytes = disk_size(source.config.get(disk_key or "", ""))
    else:
        base = vm.config
        running, disk_key = vm.status == "running", vm.boot_disk
        disk_bytes = disk_size(vm.config.get(disk_key or "", ""))
        desired = keep_booted_seed(cluster, node, vm, ref, desired, seed_slot(observed.template))
    changes = config_changes(desired, base)
    if changes:
        actions.append(Action(Kind.CONFIGURE, node.vmid, where, tuple(sorted(changes.items()))))
        if running and {"cores", "memory"} & changes.keys():
            notes.append("cores/memory change: restart the VM for it to take effect")
    if disk_key and disk_bytes < node.disk * 2**30:
        actions.append(
            Action(Kind.RESIZE, node.vmid, where, (("disk", disk_key), ("size", f"{node.disk}G")))
        )
    if not running:
        actions.append(Action(Kind.START, node.vmid, where))
    return actions, notes


def keep_booted_seed(
    cluster: Cluster, node: Node, vm: VMFacts, ref: SeedRef, desired: dict[str, str], slot: str
) -> dict[str, str]:
    """A VM that booted from an older seed of its node keeps it attached. cloud-init would
    not apply a new one (it runs once per instance), and it stores the attached seed's
    user-data again at every boot, so a swap would only hide what the node was built from
    (the drift `boot --replace-stale` looks for). The new seed waits for the rebuild."""
    if not seed_changed(cluster, node, vm, ref):
        return desired
    kept = dict(desired)
    for key in (slot, "cicustom"):
        if key in vm.config:
            kept[key] = vm.config[key]
    return kept


def upload_host(cluster: Cluster, observed: Observed, where: str) -> str:
    """Where to upload a seed for a VM on `where`. pveproxy will not relay an upload to
    another host ("unable to proxy file uploads", pve-manager PVE/HTTPServer.pm), and the
    snippets' SSH reaches proxmox.host only: a shared seed storage is written through
    proxmox.node, which every host then reads. (A local one on another host is refused by
    preflight.)"""
    facts = observed.nodes.get(where)
    seed = facts.storages.get(cluster.proxmox.seed_storage) if facts else None
    return cluster.proxmox.node if seed is not None and seed.shared else where


def plan_node(cluster: Cluster, node: Node, observed: Observed, ref: SeedRef, host: str) -> VMPlan:
    """The node's VM on `host`, placement's choice for a new VM; a VM that exists is
    planned where Proxmox has it (and a half-made one is made again there)."""
    vm = observed.vms.get(node.vmid)
    where = vm.node if vm is not None else host
    actions: list[Action] = []
    # The seed must be on the seed storage as the VM's host sees it.
    have = observed.seeds.get(where, frozenset())
    if not set(ref.volids) <= have:
        params = (("volid", ",".join(ref.volids)),)
        actions.append(
            Action(Kind.UPLOAD, node.vmid, upload_host(cluster, observed, where), params)
        )
    reason = "create" if vm is None else "update"
    if vm is not None and vm.boot_disk is None and vm.owned_by(cluster):
        # A half-made VM without its disk cannot be finished: recreate it.
        if vm.status == "running":
            actions.append(Action(Kind.STOP, node.vmid, vm.node))
        actions.append(Action(Kind.DELETE, node.vmid, vm.node))
        vm, reason = None, "recreate (it has no disk)"
    more, notes = _build_actions(cluster, node, observed, ref, vm, where)
    actions += more
    # Boot starts every VM it configures, so a VM holding an older seed has booted from it.
    if vm is not None and seed_changed(cluster, node, vm, ref):
        notes.append(SEED_DRIFT)
    reason = reason if actions else "up to date"
    return VMPlan(node.name, node.vmid, tuple(actions), reason, tuple(notes), where)


# cloud-init runs once per instance-id, so a new seed reaches a node only when it is rebuilt.
SEED_DRIFT = (
    "its seed changed since it booted: it keeps the settings it booted with (login user, SSH"
    " keys, K3s config) and its VM keeps that seed until it is rebuilt (boot --replace-stale);"
    " a new K3s version reaches it through the upgrade Plans"
)


def seed_changed(cluster: Cluster, node: Node, vm: VMFacts, ref: SeedRef) -> bool:
    """The VM holds seeds of this node, but none with the current one's settings: it booted
    settings cluster.yaml no longer has. A seed that differs only in the K3s version is not
    a change here (its name shares the settings part: seediso.seed_digest)."""
    held = [v for v in volids_in(vm.config) if is_seed_of(cluster.name, v, node.name)]
    if not held or set(ref.volids) <= volids_in(vm.config):
        return False
    settings = ref.digest[:SETTINGS_DIGITS]
    return not any(_digest_of(v).startswith(settings) for v in held)


def _digest_of(volid: str) -> str:
    """The digest in a seed's file name: homelab-gen-<cluster>-<node>-<digest>.iso."""
    name = volid.split("/", 1)[-1].removesuffix(".iso")
    for part in ("-user.yaml", "-network.yaml", "-meta.yaml"):
        name = name.removesuffix(part)
    return name.rsplit("-", 1)[-1]


def plan_orphan(vm: VMFacts, prune: bool) -> VMPlan:
    name = vm.owner[1] if vm.owner else vm.name
    if not prune:
        return VMPlan(name, vm.vmid, (), "orphan: not in cluster.yaml (boot --prune deletes it)")
    actions = [Action(Kind.STOP, vm.vmid, vm.node)] if vm.status == "running" else []
    actions.append(Action(Kind.DELETE, vm.vmid, vm.node))
    return VMPlan(name, vm.vmid, tuple(actions), "orphan: delete (--prune)")


def make_plan(
    cluster: Cluster,
    observed: Observed,
    refs: Mapping[str, SeedRef],
    prune: bool = False,
    rebuilding: Collection[str] = (),
) -> Plan:
    hosts = place(cluster, observed)  # once per run: every row and re-plan follows it
    cut = cut_off(cluster, observed, hosts)
    reachable = replace(cluster, nodes=tuple(n for n in cluster.nodes if n.name not in cut))
    problems, warnings = preflight(reachable, observed, refs, hosts, rebuilding)
    crowded, placed = placement_findings(cluster, observed, hosts, rebuilding)
    problems, warnings = problems + crowded, placed + warnings
    unreachable = unreachable_lines(cluster, observed, cut)
    if problems:
        return Plan((), tuple(problems), tuple(warnings), unreachable)
    vms = [
        plan_node(cluster, node, observed, refs[node.name], hosts[node.name])
        if node.name not in cut
        else VMPlan(
            node.name,
            node.vmid,
            (),
            f"not reached: {cut[node.name]} is offline",
            host=cut[node.name],
        )
        for node in cluster.nodes
    ]
    ours = {n.vmid for n in cluster.nodes}
    vms += [
        plan_orphan(vm, prune)
        for vmid, vm in sorted(observed.vms.items())
        if vmid not in ours and vm.owned_by(cluster)
    ]
    vms = with_ha(cluster, observed.ha, vms, cut)
    rows, seed_warnings = plan_seed_cleanup(cluster, observed, refs, vms)
    vms += rows
    warnings += seed_warnings
    warnings += download_notes(cluster, observed, vms, hosts)
    for node in cluster.nodes:
        if (
            use_full_clone(cluster, observed, hosts[node.name])
            and cluster.proxmox.clone == "linked"
        ):
            warnings.append(
                f"{node.name}: storage {cluster.proxmox.storage} cannot make linked clones;"
                " using a full clone"
            )
    return Plan(tuple(vms), (), tuple(dict.fromkeys(warnings)), unreachable)


def download_notes(
    cluster: Cluster, observed: Observed, vms: Sequence[VMPlan], hosts: Mapping[str, str]
) -> list[str]:
    """A node cloned from a template prepared for another K3s version (template --prepare)
    installs with the download, as from an unprepared one: its seed decides at first boot."""
    wanted, notes = cluster.cluster.k3s_version, []
    for row in vms:
        if not any(a.kind == Kind.CLONE for a in row.actions) or row.name not in hosts:
            continue
        source = clone_source(cluster, observed, hosts[row.name]) or observed.template
        baked = mark(source.description, PREPARED) if source else None
        if source is not None and baked is not None and baked != wanted:
            notes.append(
                f"{row.name}: template {source.vmid} is prepared with K3s {baked}, not"
                f" cluster.k3s_version {wanted}; it falls back to the download at first boot"
            )
    return notes


def cut_off(cluster: Cluster, observed: Observed, hosts: Mapping[str, str]) -> dict[str, str]:
    """{node name: host} of the nodes whose VM is on an offline host (it exists: never make
    it again elsewhere), or would go on one (a pin): nothing can be done for them."""
    return {
        n.name: hosts[n.name]
        for n in cluster.nodes
        if n.vmid in observed.unreachable or hosts[n.name] in observed.offline_hosts
    }


def unreachable_lines(
    cluster: Cluster, observed: Observed, cut: Mapping[str, str], command: str = "boot"
) -> tuple[str, ...]:
    """One line per offline host holding (or meant to hold) VMs of this cluster; `command`
    is the one to run again once the host is back."""
    names = {n.vmid: n.name for n in cluster.nodes}
    by_host: dict[str, list[str]] = {}
    for name, host in cut.items():
        by_host.setdefault(host, []).append(name)
    for vmid, host in sorted(observed.unreachable.items()):
        if vmid not in names and vmid != cluster.proxmox.template_vmid:
            by_host.setdefault(host, []).append(f"VM {vmid}")
    if cluster.proxmox.template_vmid in observed.unreachable:
        host = observed.unreachable[cluster.proxmox.template_vmid]
        by_host.setdefault(host, []).append(f"template {cluster.proxmox.template_vmid}")
    return tuple(
        f"{host} is offline: {', '.join(vms)} not reached; bring it back and run {command} again"
        for host, vms in sorted(by_host.items())
    )


def destroy_unreachable(cluster: Cluster, observed: Observed) -> tuple[str, ...]:
    """The VMs of this cluster destroy cannot delete now: their host is offline. (The
    template is not destroy's, wherever it is.)"""
    template = cluster.proxmox.template_vmid
    left = {vmid: host for vmid, host in observed.unreachable.items() if vmid != template}
    cut = {n.name: left[n.vmid] for n in cluster.nodes if n.vmid in left}
    return unreachable_lines(cluster, replace(observed, unreachable=left), cut, "destroy")


# -- seeds no VM uses any more ---------------------------------------------------------------
def attached_after(vm: VMFacts, vm_plan: VMPlan | None) -> frozenset[str]:
    """Volumes the VM will use once its plan is applied; a CD-ROM swap on a running VM is
    taken to be applied live, as PVE does (if it is not, the check before deleting sees it)."""
    actions = vm_plan.actions if vm_plan else ()
    if any(a.kind == Kind.DELETE for a in actions):
        return frozenset()  # pruned, or recreated from the template and then configured
    configure = next((a for a in actions if a.kind == Kind.CONFIGURE), None)
    if configure is None:
        return vm.attached
    return volids_in(config_after(vm.config, dict(configure.params)))


def seeds_in_use(
    cluster: Cluster, observed: Observed, refs: Mapping[str, SeedRef], vms: Sequence[VMPlan] = ()
) -> frozenset[str]:
    """Seeds that must stay: every node's current one, and any a VM (template included)
    still uses after `vms` are applied (none given: as things are now)."""
    plans = {vm.vmid: vm for vm in vms}
    used = {volid for ref in refs.values() for volid in ref.volids}
    for vmid, vm in observed.vms.items():
        used |= attached_after(vm, plans.get(vmid))
    if observed.template is not None:
        used |= observed.template.attached
    return frozenset(used)


def claimed_by_another_cluster(observed: Observed, volid: str) -> bool:
    """`homelab-gen-home-lab-k3s-1-….iso` is node `lab-k3s-1` of cluster `home`, or node
    `k3s-1` of cluster `home-lab`: when a VM of the other reading exists, leave it alone."""
    return any(is_seed_of(c, volid, node) for c, node in observed.other_nodes)


def unused_seeds(
    cluster: Cluster, observed: Observed, refs: Mapping[str, SeedRef], vms: Sequence[VMPlan] = ()
) -> list[tuple[str, str]]:
    """(pve node, volid) of this cluster's seeds that nothing uses once `vms` are applied.
    None while a VM of ours is on an offline host: what it uses cannot be read."""
    if observed.unreachable:
        return []
    keep = seeds_in_use(cluster, observed, refs, vms)
    return [
        (node, volid)
        for node, volids in sorted(observed.seeds.items())
        for volid in sorted(volids)
        if volid not in keep
        and is_seed_of(cluster.name, volid)
        and not claimed_by_another_cluster(observed, volid)
    ]


def seed_rows(unused: Sequence[tuple[str, str]]) -> list[VMPlan]:
    """One row per file, so a failed delete never holds up the others."""
    return [
        VMPlan(volid.split("/", 1)[-1], 0, (seed_deletion(node, volid),), SEED_ROW)
        for node, volid in unused
    ]


def seed_deletion(pve_node: str, volid: str) -> Action:
    return Action(Kind.DELETE_SEED, 0, pve_node, (("volid", volid),))


def plan_seed_cleanup(
    cluster: Cluster, observed: Observed, refs: Mapping[str, SeedRef], vms: Sequence[VMPlan]
) -> tuple[list[VMPlan], list[str]]:
    """Rows deleting the seeds no VM will use after `vms`, or a warning why they stay."""
    if any(node.name not in refs for node in cluster.nodes):
        return [], []  # a node without its seed cannot say which of its seeds is current
    return seed_rows_or_warning(cluster, observed, unused_seeds(cluster, observed, refs, vms))


def seed_rows_or_warning(
    cluster: Cluster, observed: Observed, unused: Sequence[tuple[str, str]]
) -> tuple[list[VMPlan], list[str]]:
    """Rows deleting `unused`, or, when the token may not delete there, why they stay."""
    if not unused or may_delete_seeds(cluster, observed):
        return seed_rows(unused), []
    storage, token = cluster.proxmox.seed_storage, cluster.proxmox.token_id
    return [], [
        f"{len(unused)} unused seed file(s) stay on {storage}: deleting them takes"
        f" Datastore.Allocate on /storage/{storage}; grant it there only with"
        f" pveum acl modify /storage/{storage} --tokens '{token}' --roles PVEDatastoreAdmin"
    ]
