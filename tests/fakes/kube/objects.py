"""Kubernetes and Flux objects as the API serves them (only the fields status reads, plus
what the kubernetes client's models require)."""

from __future__ import annotations

from typing import Any

STAMP = "2026-11-26T08:00:00Z"


def condition(kind: str, status: bool, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": STAMP,
    }


def node(
    name: str, ready: bool = True, version: str = "v1.33.4+k3s1", message: str = ""
) -> dict[str, Any]:
    reason = "KubeletReady" if ready else "KubeletNotReady"
    text = message or ("kubelet is posting ready status" if ready else "container runtime down")
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "labels": {"kubernetes.io/os": "linux"}},
        "spec": {"podCIDR": "10.42.0.0/24"},
        "status": {
            "conditions": [{**condition("Ready", ready, reason, text), "lastHeartbeatTime": STAMP}],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "b",
                "containerRuntimeVersion": "containerd://2.0.5-k3s1",
                "kernelVersion": "6.1.0-40-cloud-amd64",
                "kubeProxyVersion": version,
                "kubeletVersion": version,
                "machineID": "m",
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": "s",
            },
        },
    }


def _flux(
    api_version: str,
    kind: str,
    namespace: str,
    name: str,
    conditions: list[dict[str, Any]],
    **status: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "status": {"conditions": conditions, "observedGeneration": 1, **status},
    }


def flux_instance(
    ready: bool | None = True,
    reason: str = "ReconciliationSucceeded",
    message: str = "Reconciliation finished in 5s",
    revision: str = "main@sha1:0c1b2a3d4e5f60718293a4b5c6d7e8f901234567",
) -> dict[str, Any]:
    conditions = [] if ready is None else [condition("Ready", ready, reason, message)]
    applied = {"lastAppliedRevision": revision} if ready else {}
    return _flux(
        "fluxcd.controlplane.io/v1", "FluxInstance", "flux-system", "flux", conditions, **applied
    )


def kustomization(
    name: str,
    ready: bool = True,
    reason: str = "ReconciliationSucceeded",
    message: str = "Applied revision: main@sha1:0c1b2a3d",
    namespace: str = "flux-system",
    suspend: bool = False,
) -> dict[str, Any]:
    found = _flux(
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        namespace,
        name,
        [condition("Ready", ready, reason, message)],
        lastAppliedRevision="main@sha1:0c1b2a3d",
    )
    if suspend:
        found["spec"] = {"suspend": True}  # its Ready stays what it was when suspended
    return found


def helmrelease(
    name: str,
    namespace: str,
    ready: bool = True,
    reason: str = "InstallSucceeded",
    message: str = "Helm install succeeded",
    stalled: bool = False,
) -> dict[str, Any]:
    conditions = [condition("Ready", ready, reason, message)]
    if stalled:
        conditions.append(
            condition("Stalled", True, "RetriesExceeded", "Failed to install after 4 attempt(s)")
        )
    return _flux("helm.toolkit.fluxcd.io/v2", "HelmRelease", namespace, name, conditions)
