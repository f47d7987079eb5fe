"""The K3s API's answers as generator.status.facts records: nodes, the FluxInstance,
Kustomizations and HelmReleases. generator.kube asks; this module only converts.

Any way the API can fail to answer becomes Kube(error=...) with a reason a user can act on,
so `status` keeps showing what it does know.
"""

from __future__ import annotations

from typing import Any

from generator.kube.nodes import NodeState
from generator.kube.read import Named, snapshot
from generator.status.facts import FluxObject, Kube, KubeNode

FLUX_NAMESPACE = "flux-system"
FLUX_INSTANCE = "flux"
INSTANCE_API = ("fluxcd.controlplane.io", "v1", "fluxinstances")
KUSTOMIZATION_API = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
HELMRELEASE_API = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
INSTANCE = Named(INSTANCE_API, FLUX_NAMESPACE, FLUX_INSTANCE)


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), None)


def flux_object(kind: str, obj: dict[str, Any]) -> FluxObject:
    meta = obj.get("metadata") or {}
    ready = _condition(obj, "Ready")
    stalled = _condition(obj, "Stalled")
    status = obj.get("status") or {}
    return FluxObject(
        kind=kind,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        ready=None if ready is None else ready.get("status") == "True",
        reason=str((ready or {}).get("reason", "")),
        message=str((ready or {}).get("message", "")),
        stalled=bool(stalled and stalled.get("status") == "True"),
        revision=str(status.get("lastAppliedRevision") or ""),
        suspended=bool((obj.get("spec") or {}).get("suspend")),
    )


def kube_node(state: NodeState) -> KubeNode:
    return KubeNode(
        name=state.name, ready=state.ready, version=state.version, message=state.message
    )


def read(kubeconfig: dict[str, Any]) -> Kube:
    """Nodes and Flux's objects; Kube(error=...) when the API cannot be asked."""
    seen = snapshot(kubeconfig, (INSTANCE,), (KUSTOMIZATION_API, HELMRELEASE_API))
    if seen.error:
        return Kube(error=seen.error, server=seen.server)
    instance = seen.objects[INSTANCE]
    return Kube(
        server=seen.server,
        nodes=tuple(kube_node(n) for n in seen.nodes),
        instance=flux_object("FluxInstance", instance) if instance else None,
        kustomizations=tuple(
            flux_object("Kustomization", o) for o in seen.lists[KUSTOMIZATION_API]
        ),
        helmreleases=tuple(flux_object("HelmRelease", o) for o in seen.lists[HELMRELEASE_API]),
    )
