"""What `status` concludes from the facts: rows -> readiness, and the FIRST thing blocking it.

Pure: the facts (generator/status/facts.py) are gathered elsewhere (generator/status/gather.py)
from Proxmox's guest agent and the K3s API; here they become table rows, one overall verdict
and the first blocker, so a user who waits sees exactly where the lab is stuck.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from generator import naming
from generator.render import flux_graph
from generator.status import versions
from generator.status.facts import (
    CloudInit,
    CloudInitStatus,
    Facts,
    FluxObject,
    Guest,
    Kube,
    VMState,
)


class Severity(IntEnum):
    """A blocker's weight: a failure needs the user; waiting may still resolve by itself."""

    FAILED = 0
    WAITING = 1


@dataclass(frozen=True)
class NodeRow:
    node: str
    vm: str
    agent: str
    address: str
    cloud_init: str
    k3s: str
    ready: bool


@dataclass(frozen=True)
class FluxRow:
    kind: str
    name: str
    ready: str
    reason: str
    message: str


@dataclass(frozen=True, order=True)
class Blocker:
    severity: Severity
    order: int
    text: str = field(compare=False)


@dataclass(frozen=True)
class Report:
    nodes: tuple[NodeRow, ...]
    flux: tuple[FluxRow, ...]
    notes: tuple[str, ...]
    ready: bool
    blocker: str | None
    revision: str = ""


# -- nodes -----------------------------------------------------------------------------------
def _vm_blocker(guest: Guest) -> tuple[Severity, str] | None:
    if guest.host_offline:
        return Severity.FAILED, (
            f"its Proxmox host {guest.host_offline} is offline"
            " (bring it back, then run homelab-gen boot)"
        )
    if guest.vm is None or guest.vm == VMState.RUNNING:
        return None
    if guest.vm == VMState.MISSING:
        return Severity.FAILED, f"VM {guest.vmid} does not exist on Proxmox (run homelab-gen boot)"
    if guest.vm == VMState.FOREIGN:
        return Severity.FAILED, f"VM {guest.vmid} is not this cluster's (check nodes[].vmid)"
    return Severity.FAILED, f"VM is {guest.vm} (start it, or run homelab-gen boot)"


def _agent_blocker(guest: Guest) -> tuple[Severity, str] | None:
    if guest.agent is False:
        return Severity.WAITING, f"guest agent not answering yet ({guest.agent_note or 'booting?'})"
    if guest.agent and guest.expected_ip not in guest.addresses:
        seen = ", ".join(guest.addresses) or "none"
        return Severity.WAITING, f"address {guest.expected_ip} not seen yet (seen: {seen})"
    return None


def cloud_init_text(ci: CloudInit) -> str:
    found = "; ".join(ci.errors) or ci.detail
    return found.strip().replace("\n", " ")[:300]


def _cloud_init_blocker(guest: Guest) -> tuple[Severity, str] | None:
    ci = guest.cloud_init
    if ci is None or ci.status == CloudInitStatus.DONE:
        return None
    if ci.status == CloudInitStatus.ERROR:
        return Severity.FAILED, f"cloud-init error: {cloud_init_text(ci)}"
    if ci.status == CloudInitStatus.DISABLED:
        return Severity.FAILED, "cloud-init is disabled: it found no seed (check the seed CD's bus)"
    return Severity.WAITING, f"cloud-init {ci.status}"


def _k3s_blocker(guest: Guest, kube: Kube) -> tuple[Severity, str] | None:
    if kube.error:
        return None  # said once, for the whole API
    node = next((n for n in kube.nodes if n.name == guest.name), None)
    if node is None:
        return Severity.WAITING, "not registered with K3s yet"
    if not node.ready:
        return Severity.WAITING, f"K3s node NotReady{': ' + node.message if node.message else ''}"
    return None


def node_blocker(guest: Guest, kube: Kube) -> tuple[Severity, str] | None:
    """The earliest stage on the way VM -> agent -> address -> cloud-init -> K3s that is
    not done; once K3s calls the node Ready, a silent agent no longer blocks it."""
    k3s = _k3s_blocker(guest, kube)
    k3s_ready = not kube.error and k3s is None
    stages = [_vm_blocker(guest)]
    if not k3s_ready:
        stages.append(_agent_blocker(guest))
    stages += [_cloud_init_blocker(guest), k3s]
    return next((s for s in stages if s is not None), None)


def _vm_cell(guest: Guest) -> str:
    return guest.vm or VMState.UNKNOWN


def _agent_cell(guest: Guest) -> str:
    if guest.agent is None:
        return "unknown"
    return "up" if guest.agent else "down"


def _address_cell(guest: Guest) -> str:
    if guest.expected_ip in guest.addresses:
        return guest.expected_ip
    if guest.addresses:
        return f"{', '.join(guest.addresses)} (want {guest.expected_ip})"
    return "-" if guest.agent is not None else "unknown"


def _cloud_init_cell(guest: Guest) -> str:
    ci = guest.cloud_init
    if ci is None:
        return f"unknown ({guest.cloud_init_note})" if guest.cloud_init_note else "unknown"
    if ci.status == CloudInitStatus.ERROR:
        return f"error: {cloud_init_text(ci)[:40]}"
    marks = [m for m, on in (("degraded", ci.degraded), ("older seed", guest.seed_changed)) if on]
    return f"{ci.status} ({', '.join(marks)})" if marks else ci.status


def _k3s_cell(guest: Guest, kube: Kube, wanted: str) -> str:
    if kube.error:
        return "unknown"
    node = next((n for n in kube.nodes if n.name == guest.name), None)
    if node is None:
        return "not joined"
    return f"{'Ready' if node.ready else 'NotReady'} {versions.version_text(node.version, wanted)}"


def node_row(guest: Guest, kube: Kube, wanted: str = "") -> NodeRow:
    return NodeRow(
        node=guest.name,
        vm=_vm_cell(guest),
        agent=_agent_cell(guest),
        address=_address_cell(guest),
        cloud_init=_cloud_init_cell(guest),
        k3s=_k3s_cell(guest, kube, wanted),
        ready=node_blocker(guest, kube) is None and not kube.error,
    )


# -- Flux ------------------------------------------------------------------------------------
# Reasons that mean "waiting on something else", not a fault of the object itself.
_WAITING_REASONS = {"Progressing", "DependencyNotReady", "ProgressingWithRetry", "Reconciling"}


def _retries_text(obj: FluxObject) -> str:
    action = obj.reason.removesuffix("Failed").lower() if obj.reason.endswith("Failed") else ""
    return f"{action} retries exhausted".strip() if action else "retries exhausted"


def flux_blocker(obj: FluxObject) -> tuple[Severity, str] | None:
    if obj.ready:
        return None
    label = f"{obj.kind} {obj.name}"
    if obj.ready is None:
        return Severity.WAITING, f"{label}: not reconciled yet"
    detail = f" ({obj.message})" if obj.message else ""
    if obj.stalled:
        return Severity.FAILED, f"{label}: {_retries_text(obj)}{detail}"
    severity = Severity.WAITING if obj.reason in _WAITING_REASONS else Severity.FAILED
    return severity, f"{label}: {obj.reason or 'not ready'}{detail}"


def flux_row(obj: FluxObject) -> FluxRow:
    ready = "unknown" if obj.ready is None else ("True" if obj.ready else "False")
    message = "" if obj.ready else obj.message
    name = obj.name if obj.kind == "FluxInstance" else f"{obj.namespace}/{obj.name}"
    return FluxRow(obj.kind, name, ready, obj.reason, message)


def _flux_blockers(kube: Kube) -> list[tuple[Severity, str]]:
    if kube.error:
        return []
    if kube.instance is None:
        return [
            (
                Severity.WAITING,
                "FluxInstance flux-system/flux not created yet (the first server applies it"
                " from its manifests folder once K3s runs)",
            )
        ]
    # HelmReleases before Kustomizations: a Kustomization's failed health check is most
    # often just the HelmRelease it waits for, and the release names the real cause.
    ordered = (*flux_objects(kube)[:1], *kube.helmreleases, *judged_kustomizations(kube))
    found = [b for obj in ordered if (b := flux_blocker(obj))]
    if kube.instance.ready and not kube.kustomizations:
        found.append(
            (Severity.WAITING, "no Kustomizations yet (Flux has not applied the git tree)")
        )
    return found


def judged_kustomizations(kube: Kube) -> tuple[FluxObject, ...]:
    """All but the retired names once Flux has applied them suspended (flux_graph.RETIRED):
    their Ready condition is frozen at whatever it was, maybe a failure of the one-chain
    tree, and the per-component Kustomizations now say how each component is. Not yet
    suspended (a cluster still on the old tree), they are judged like any other."""
    return tuple(
        k for k in kube.kustomizations if not (k.suspended and k.name in flux_graph.RETIRED)
    )


def flux_objects(kube: Kube) -> tuple[FluxObject, ...]:
    head = (kube.instance,) if kube.instance else ()
    return head + judged_kustomizations(kube) + kube.helmreleases


# -- the verdict -----------------------------------------------------------------------------
def _seed_note(guest: Guest) -> str:
    # cloud-init runs once per instance-id, so a running node never picks up a new seed. A
    # note, not a blocker: the node works, it runs what it booted with.
    return (
        f"{guest.name}: booted from user-data other than the rendered"
        f" {naming.seed_path(guest.name, 'user-data')}: it keeps the settings it booted with"
        " (login user, SSH keys, K3s config) until it is rebuilt: homelab-gen boot"
        " --replace-stale"
    )


def _notes(facts: Facts) -> tuple[str, ...]:
    notes = []
    if facts.pve_error:
        notes.append(f"VM, agent and cloud-init columns unknown: {facts.pve_error}")
    if facts.kube.error:
        notes.append(f"K3s and Flux unknown: {facts.kube.error}")
    notes += facts.kube.notes
    notes += [_seed_note(g) for g in facts.guests if g.seed_changed]
    notes += versions.version_notes(facts)
    return tuple(notes)


def blockers(facts: Facts) -> list[Blocker]:
    found: list[Blocker] = []
    order = 0
    if facts.pve_error:
        found.append(Blocker(Severity.WAITING, order, f"Proxmox: {facts.pve_error}"))
    for guest in facts.guests:
        order += 1
        if blocker := node_blocker(guest, facts.kube):
            found.append(Blocker(blocker[0], order, f"{guest.name}: {blocker[1]}"))
    order += 1
    if facts.kube.error:
        found.append(Blocker(Severity.WAITING, order, f"K3s API: {facts.kube.error}"))
    for severity, text in _flux_blockers(facts.kube):
        order += 1
        found.append(Blocker(severity, order, text))
    return found


def report(facts: Facts) -> Report:
    found = sorted(blockers(facts))
    instance = facts.kube.instance
    return Report(
        nodes=tuple(node_row(g, facts.kube, facts.k3s_version) for g in facts.guests),
        flux=tuple(flux_row(o) for o in flux_objects(facts.kube)),
        notes=_notes(facts),
        ready=not found,
        blocker=found[0].text if found else None,
        revision=instance.revision if instance else "",
    )
