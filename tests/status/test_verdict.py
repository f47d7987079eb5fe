"""The status verdict is pure: tables of {facts, expected blockers} and {facts, expected rows}.

No fake server: the facts are written by hand, one change from a healthy lab per row, so a
row names exactly the condition it proves.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from generator.status.facts import CloudInit, Facts, FluxObject, Guest, Kube, KubeNode
from generator.status.verdict import FluxRow, NodeRow, Severity, blockers, report

FAILED, WAITING = Severity.FAILED, Severity.WAITING
NAME = "k3s-server-1"
GUEST = Guest(
    NAME,
    "server",
    201,
    "10.0.0.11",
    vm="running",
    agent=True,
    addresses=("10.0.0.11",),
    cloud_init=CloudInit("done"),
)
INSTANCE = FluxObject("FluxInstance", "flux-system", "flux", True, revision="main@sha1:abc")
APPS = FluxObject("Kustomization", "flux-system", "apps", True)
METALLB = FluxObject("HelmRelease", "metallb-system", "metallb", True)
KUBE = Kube(
    server="https://10.0.0.10:6443",
    nodes=(KubeNode(NAME, True, "v1.31.4+k3s1"),),
    instance=INSTANCE,
    kustomizations=(APPS,),
    helmreleases=(METALLB,),
)
UNJOINED = replace(KUBE, nodes=())  # K3s up, but the node not registered: agent checks count


def g(**changes: Any) -> Guest:
    """The healthy node with `changes`."""
    return replace(GUEST, **changes)


def lab(*guests: Guest, kube: Kube = KUBE, pve_error: str = "") -> Facts:
    return Facts("home", guests or (GUEST,), kube, pve_error)


def flux(**changes: Any) -> Facts:
    """The healthy lab with the K3s API's view changed."""
    return lab(kube=replace(KUBE, **changes))


def apps(**changes: Any) -> tuple[FluxObject, ...]:
    return (replace(APPS, **changes),)


def ci_error(*errors: str, detail: str = "") -> CloudInit:
    return CloudInit("error", detail, errors)


def _waiting_reason_row(reason: str) -> tuple[str, Facts, list[tuple[Severity, str]]]:
    facts = flux(kustomizations=apps(ready=False, reason=reason, message="on infra"))
    return f"Kustomization {reason}", facts, [(WAITING, f"Kustomization apps: {reason} (on infra)")]


NO_INSTANCE = (
    "FluxInstance flux-system/flux not created yet (the first server applies it"
    " from its manifests folder once K3s runs)"
)

# (case, facts, every blocker in the order the verdict ranks them; the first is the verdict)
TABLE: list[tuple[str, Facts, list[tuple[Severity, str]]]] = [
    ("healthy lab", lab(), []),
    # -- the VM
    ("VM state unknown alone", lab(g(vm=None, agent=None, addresses=(), cloud_init=None)), []),
    (
        "VM missing",
        lab(g(vm="missing")),
        [(FAILED, f"{NAME}: VM 201 does not exist on Proxmox (run homelab-gen boot)")],
    ),
    (
        "VM foreign",
        lab(g(vm="foreign")),
        [(FAILED, f"{NAME}: VM 201 is not this cluster's (check nodes[].vmid)")],
    ),
    (
        "VM stopped",
        lab(g(vm="stopped")),
        [(FAILED, f"{NAME}: VM is stopped (start it, or run homelab-gen boot)")],
    ),
    (
        "VM stage comes before cloud-init's",
        lab(g(vm="paused", cloud_init=ci_error("boom"))),
        [(FAILED, f"{NAME}: VM is paused (start it, or run homelab-gen boot)")],
    ),
    # -- the guest agent and the address, which count only while K3s has no Ready node
    (
        "agent silent, no note",
        lab(g(agent=False, addresses=()), kube=UNJOINED),
        [(WAITING, f"{NAME}: guest agent not answering yet (booting?)")],
    ),
    (
        "agent silent, with its note",
        lab(g(agent=False, agent_note="QEMU guest agent is not running"), kube=UNJOINED),
        [(WAITING, f"{NAME}: guest agent not answering yet (QEMU guest agent is not running)")],
    ),
    ("agent silent but K3s Ready", lab(g(agent=False, addresses=())), []),
    (
        "address not seen, none reported",
        lab(g(addresses=()), kube=UNJOINED),
        [(WAITING, f"{NAME}: address 10.0.0.11 not seen yet (seen: none)")],
    ),
    (
        "address not seen, others reported",
        lab(g(addresses=("10.0.0.99", "fe80::1")), kube=UNJOINED),
        [(WAITING, f"{NAME}: address 10.0.0.11 not seen yet (seen: 10.0.0.99, fe80::1)")],
    ),
    ("other address but K3s Ready", lab(g(addresses=("10.0.0.99",))), []),
    (
        "agent unknown, not joined: K3s's stage speaks",
        lab(g(agent=None, addresses=()), kube=UNJOINED),
        [(WAITING, f"{NAME}: not registered with K3s yet")],
    ),
    # -- cloud-init
    (
        "cloud-init error lists its errors",
        lab(g(cloud_init=ci_error("a", "b", detail="ignored"))),
        [(FAILED, f"{NAME}: cloud-init error: a; b")],
    ),
    (
        "cloud-init error without errors shows its detail on one line",
        lab(g(cloud_init=ci_error(detail=" line 1\nline 2 "))),
        [(FAILED, f"{NAME}: cloud-init error: line 1 line 2")],
    ),
    (
        "cloud-init error text is cut at 300 characters",
        lab(g(cloud_init=ci_error("x" * 400))),
        [(FAILED, f"{NAME}: cloud-init error: {'x' * 300}")],
    ),
    (
        "cloud-init disabled",
        lab(g(cloud_init=CloudInit("disabled"))),
        [(FAILED, f"{NAME}: cloud-init is disabled: it found no seed (check the seed CD's bus)")],
    ),
    (
        "cloud-init running, even with K3s Ready",
        lab(g(cloud_init=CloudInit("running"))),
        [(WAITING, f"{NAME}: cloud-init running")],
    ),
    (
        "cloud-init not started",
        lab(g(cloud_init=CloudInit("not started")), kube=UNJOINED),
        [(WAITING, f"{NAME}: cloud-init not started")],
    ),
    ("cloud-init done, degraded", lab(g(cloud_init=CloudInit("done", degraded=True))), []),
    ("cloud-init unknown", lab(g(cloud_init=None, cloud_init_note="agent down")), []),
    # -- K3s
    ("not joined", lab(kube=UNJOINED), [(WAITING, f"{NAME}: not registered with K3s yet")]),
    (
        "NotReady with its message",
        flux(nodes=(KubeNode(NAME, False, "v1", "kubelet stopped posting node status"),)),
        [(WAITING, f"{NAME}: K3s node NotReady: kubelet stopped posting node status")],
    ),
    (
        "NotReady without a message",
        flux(nodes=(KubeNode(NAME, False, "v1"),)),
        [(WAITING, f"{NAME}: K3s node NotReady")],
    ),
    ("K3s API down", flux(error="connection refused"), [(WAITING, "K3s API: connection refused")]),
    (
        "K3s API down: the agent counts again, per node before the API",
        lab(g(agent=False), kube=replace(KUBE, error="connection refused")),
        [
            (WAITING, f"{NAME}: guest agent not answering yet (booting?)"),
            (WAITING, "K3s API: connection refused"),
        ],
    ),
    (
        "K3s API down hides K3s's and Flux's blockers",
        flux(error="no kubeconfig yet", nodes=(), instance=None, kustomizations=()),
        [(WAITING, "K3s API: no kubeconfig yet")],
    ),
    # -- Proxmox, and the ranking across nodes
    (
        "Proxmox unreachable comes first",
        lab(g(vm=None, agent=None, addresses=()), kube=UNJOINED, pve_error="timed out"),
        [(WAITING, "Proxmox: timed out"), (WAITING, f"{NAME}: not registered with K3s yet")],
    ),
    (
        "a later node's failure outranks an earlier node waiting",
        lab(g(name="a", cloud_init=CloudInit("running")), g(name="b", vm="stopped")),
        [
            (FAILED, "b: VM is stopped (start it, or run homelab-gen boot)"),
            (WAITING, "a: cloud-init running"),
        ],
    ),
    (
        "of two failures, the earlier node's first",
        lab(g(name="b", vm="missing"), g(name="a", vm="stopped")),
        [
            (FAILED, "b: VM 201 does not exist on Proxmox (run homelab-gen boot)"),
            (FAILED, "a: VM is stopped (start it, or run homelab-gen boot)"),
        ],
    ),
    # -- Flux
    ("no FluxInstance yet", flux(instance=None), [(WAITING, NO_INSTANCE)]),
    (
        "FluxInstance not reconciled yet",
        flux(instance=replace(INSTANCE, ready=None)),
        [(WAITING, "FluxInstance flux: not reconciled yet")],
    ),
    (
        "FluxInstance ready, no Kustomizations",
        flux(kustomizations=()),
        [(WAITING, "no Kustomizations yet (Flux has not applied the git tree)")],
    ),
    (
        "FluxInstance not ready, no Kustomizations: only the instance",
        flux(instance=replace(INSTANCE, ready=False, reason="Progressing"), kustomizations=()),
        [(WAITING, "FluxInstance flux: Progressing")],
    ),
    (
        "stalled after an install failure",
        flux(helmreleases=(replace(METALLB, ready=False, reason="InstallFailed", stalled=True),)),
        [(FAILED, "HelmRelease metallb: install retries exhausted")],
    ),
    (
        "stalled, reason not an action's failure, with message",
        flux(kustomizations=apps(ready=False, reason="", stalled=True, message="gave up")),
        [(FAILED, "Kustomization apps: retries exhausted (gave up)")],
    ),
    (
        "stalled, reason only 'Failed'",
        flux(kustomizations=apps(ready=False, reason="Failed", stalled=True)),
        [(FAILED, "Kustomization apps: retries exhausted")],
    ),
    *(
        _waiting_reason_row(reason)
        for reason in ("Progressing", "DependencyNotReady", "ProgressingWithRetry", "Reconciling")
    ),
    (
        "any other reason fails",
        flux(kustomizations=apps(ready=False, reason="BuildFailed", message="bad kustomization")),
        [(FAILED, "Kustomization apps: BuildFailed (bad kustomization)")],
    ),
    (
        "not ready without a reason",
        flux(kustomizations=apps(ready=False)),
        [(FAILED, "Kustomization apps: not ready")],
    ),
    (
        "HelmReleases before Kustomizations, the instance before both",
        flux(
            instance=replace(INSTANCE, ready=False, reason="Reconciling"),
            kustomizations=apps(ready=False, reason="HealthCheckFailed"),
            helmreleases=(replace(METALLB, ready=False, reason="UpgradeFailed"),),
        ),
        [
            (FAILED, "HelmRelease metallb: UpgradeFailed"),
            (FAILED, "Kustomization apps: HealthCheckFailed"),
            (WAITING, "FluxInstance flux: Reconciling"),
        ],
    ),
    # A node that booted from an older seed works: the drift is a note, never a blocker.
    ("booted from an older seed", lab(g(seed_changed=True)), []),
    ("booted from the rendered seed", lab(g(seed_changed=False)), []),
    ("the agent could not tell the booted seed", lab(g(seed_changed=None)), []),
]


@pytest.mark.parametrize(("case", "facts", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_verdict_table(case: str, facts: Facts, expected: list[tuple[Severity, str]]) -> None:
    assert [(b.severity, b.text) for b in sorted(blockers(facts))] == expected
    verdict = report(facts)
    assert verdict.ready is not expected
    assert verdict.blocker == (expected[0][1] if expected else None)


# (case, guest, kube, the node's table row)
NODE_ROWS: list[tuple[str, Guest, Kube, NodeRow]] = [
    (
        "healthy",
        GUEST,
        KUBE,
        NodeRow(NAME, "running", "up", "10.0.0.11", "done", "Ready v1.31.4+k3s1", True),
    ),
    (
        "nothing known",
        g(vm=None, agent=None, addresses=(), cloud_init=None),
        replace(KUBE, error="down"),
        NodeRow(NAME, "unknown", "unknown", "unknown", "unknown", "unknown", False),
    ),
    (
        "agent down, cloud-init unknown with its reason",
        g(agent=False, addresses=(), cloud_init=None, cloud_init_note="agent down"),
        UNJOINED,
        NodeRow(NAME, "running", "down", "-", "unknown (agent down)", "not joined", False),
    ),
    (
        "another address, cloud-init error cut short",
        g(addresses=("10.0.0.99",), cloud_init=ci_error("e" * 60)),
        replace(KUBE, nodes=(KubeNode(NAME, False, "v1"),)),
        NodeRow(
            NAME,
            "running",
            "up",
            "10.0.0.99 (want 10.0.0.11)",
            f"error: {'e' * 40}",
            "NotReady v1",
            False,
        ),
    ),
    (
        "stopped, cloud-init degraded",
        g(vm="stopped", cloud_init=CloudInit("done", degraded=True)),
        KUBE,
        NodeRow(NAME, "stopped", "up", "10.0.0.11", "done (degraded)", "Ready v1.31.4+k3s1", False),
    ),
    (
        "booted from an older seed: marked, still ready",
        g(seed_changed=True),
        KUBE,
        NodeRow(
            NAME, "running", "up", "10.0.0.11", "done (older seed)", "Ready v1.31.4+k3s1", True
        ),
    ),
    (
        "degraded and an older seed",
        g(cloud_init=CloudInit("done", degraded=True), seed_changed=True),
        KUBE,
        NodeRow(
            NAME,
            "running",
            "up",
            "10.0.0.11",
            "done (degraded, older seed)",
            "Ready v1.31.4+k3s1",
            True,
        ),
    ),
]


@pytest.mark.parametrize(
    ("case", "guest", "kube", "expected"), NODE_ROWS, ids=[t[0] for t in NODE_ROWS]
)
def test_node_rows(case: str, guest: Guest, kube: Kube, expected: NodeRow) -> None:
    assert report(lab(guest, kube=kube)).nodes == (expected,)


def test_flux_rows_instance_then_kustomizations_then_helmreleases() -> None:
    facts = flux(
        instance=replace(INSTANCE, reason="Succeeded", message="finished"),
        kustomizations=apps(ready=None, reason="", message="waiting"),
        helmreleases=(replace(METALLB, ready=False, reason="InstallFailed", message="no chart"),),
    )
    assert report(facts).flux == (
        FluxRow("FluxInstance", "flux", "True", "Succeeded", ""),  # a ready one's message hides
        FluxRow("Kustomization", "flux-system/apps", "unknown", "", "waiting"),
        FluxRow("HelmRelease", "metallb-system/metallb", "False", "InstallFailed", "no chart"),
    )


def test_notes_and_revision() -> None:
    facts = lab(
        kube=replace(KUBE, error="refused", notes=("kubeconfig from ~/.kube",)), pve_error="401"
    )
    verdict = report(facts)
    assert verdict.notes == (
        "VM, agent and cloud-init columns unknown: 401",
        "K3s and Flux unknown: refused",
        "kubeconfig from ~/.kube",
    )
    assert verdict.revision == "main@sha1:abc"
    assert report(flux(instance=None)).revision == ""
    assert report(lab()).notes == ()


@pytest.mark.parametrize(
    ("seed_changed", "noted"),
    [(True, True), (False, False), (None, False)],
    ids=["drift", "no drift", "unknown"],
)
def test_seed_drift_is_a_note_per_node(seed_changed: bool | None, noted: bool) -> None:
    other = g(name="k3s-agent-1", seed_changed=False)
    both = replace(KUBE, nodes=(*KUBE.nodes, KubeNode(other.name, True, "v1.31.4+k3s1")))
    verdict = report(lab(g(seed_changed=seed_changed), other, kube=both))
    expected = (
        f"{NAME}: booted from user-data other than the rendered cloud-init/{NAME}/user-data:"
        " it keeps the settings it booted with (login user, SSH keys, K3s config) until it is"
        " rebuilt: homelab-gen boot --replace-stale"
    )
    assert verdict.notes == ((expected,) if noted else ())
    assert verdict.ready and verdict.blocker is None
