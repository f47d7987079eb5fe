"""Draining a node like `kubectl drain --ignore-daemonsets --delete-emptydir-data`: cordon it,
evict what a controller will run elsewhere, honour PodDisruptionBudgets, wait until gone.

The rules follow kubectl's drain package (staging/src/k8s.io/kubectl/pkg/drain/drain.go and
filters.go); only the one-line comments beside them here are ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generator.errors import HomelabError
from generator.kube.client import TIMEOUT, answering, message, seconds, status
from generator.kube.nodes import cordon

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
FINISHED = frozenset({"Succeeded", "Failed"})
TIMEOUT_HINT = "raise --drain-timeout, or look at `kubectl get pdb -A` for the budget in the way"


@dataclass(frozen=True)
class DrainResult:
    evicted: tuple[str, ...]  # "namespace/pod"


@dataclass(frozen=True)
class _Pod:
    key: str  # namespace/name
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class _Plan:
    evict: tuple[_Pod, ...]
    terminating: tuple[_Pod, ...]
    refused: tuple[str, ...]


def _controller(pod: Any) -> Any:
    # kubectl: metav1.GetControllerOf, the ownerReference marked controller: true.
    owners = pod.metadata.owner_references or []
    return next((o for o in owners if o.controller), None)


def _plan(pods: list[Any], force: bool) -> _Plan:
    evict: list[_Pod] = []
    terminating: list[_Pod] = []
    refused: list[str] = []
    for pod in pods:
        meta = pod.metadata
        one = _Pod(f"{meta.namespace}/{meta.name}", meta.namespace, meta.name, meta.uid or "")
        finished = (pod.status.phase if pod.status else "") in FINISHED
        controller = _controller(pod)
        if meta.deletion_timestamp is not None:
            # Already terminating: nothing to evict, only to wait for (kubectl's
            # skipDeletedFilter keeps such pods in its wait unless told to skip old ones).
            terminating.append(one)
        elif controller is not None and controller.kind == "DaemonSet" and not finished:
            # filters.go daemonSetFilter with --ignore-daemonsets: the DaemonSet would only
            # recreate the pod here, so it stays (a finished one may go).
            continue
        elif MIRROR_ANNOTATION in (meta.annotations or {}):
            # filters.go mirrorPodFilter: a static pod's mirror belongs to the kubelet.
            continue
        elif controller is None and not finished and not force:
            # filters.go unreplicatedFilter: nothing would recreate it, so only with --force.
            refused.append(one.key)
        else:
            # localStorageFilter is passed as with --delete-emptydir-data: an emptyDir is
            # scratch space by definition.
            evict.append(one)
    return _Plan(tuple(evict), tuple(terminating), tuple(refused))


def _pods_on(api: Any, node: str) -> list[Any]:
    from kubernetes import client

    # drain.go GetPodsForDeletion: every namespace, selected by spec.nodeName.
    with answering(api, f"listing the pods on {node}"):
        listed = client.CoreV1Api(api).list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", _request_timeout=TIMEOUT
        )
    items: list[Any] = listed.items
    return items


def _evict(api: Any, pod: _Pod) -> str | None:
    """None when the pod is evicted or already gone; the API's refusal when a budget says
    not now (429, which drain.go evictPods retries)."""
    from kubernetes import client

    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod.name, namespace=pod.namespace))
    with answering(api, f"evicting pod {pod.key}"):
        try:
            client.CoreV1Api(api).create_namespaced_pod_eviction(
                pod.name, pod.namespace, body, _request_timeout=TIMEOUT
            )
        except Exception as exc:
            if status(exc) == 404:  # drain.go: a pod that is gone needs no eviction
                return None
            if status(exc) == 429:
                return message(exc)
            raise
    return None


def _still_there(api: Any, pod: _Pod) -> bool:
    """drain.go waitForDelete: done once the pod is gone or its name is a new pod's (uid)."""
    from kubernetes import client

    with answering(api, f"reading pod {pod.key}"):
        try:
            found = client.CoreV1Api(api).read_namespaced_pod(
                pod.name, pod.namespace, _request_timeout=TIMEOUT
            )
        except Exception as exc:
            if status(exc) == 404:
                return False
            raise
    return found.metadata is not None and found.metadata.uid == pod.uid


def _timed_out(node: str, waited: float, why: dict[str, str]) -> HomelabError:
    lines = "\n".join(f"  {key}: {reason}" for key, reason in sorted(why.items()))
    return HomelabError(
        f"draining {node} timed out after {seconds(waited)}; still there:\n{lines}",
        hint=TIMEOUT_HINT,
    )


def drain(
    api: Any,
    node: str,
    *,
    timeout: float,
    force: bool,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> DrainResult:
    """Cordons the node and evicts its pods; a node that does not exist is drained already."""
    start = clock()
    state = cordon(api, node)
    if state is None:
        return DrainResult(())
    # A NotReady node has no kubelet to finish its pods' deletion: they stay Terminating
    # until its Node is deleted. Like kubectl drain --skip-wait-for-delete-timeout (drain.go
    # waitForDelete), evict them and go on; their controllers already made replacements.
    wait_for_delete = state.ready
    plan = _plan(_pods_on(api, node), force)
    if plan.refused:
        raise HomelabError(
            f"cannot drain {node}: pods that declare no controller would be lost: "
            + ", ".join(plan.refused),
            hint="--force evicts them anyway; nothing recreates them",
        )
    pending = list(plan.evict)
    refusals: dict[str, str] = {}
    while pending:
        refused = []
        for pod in pending:
            said = _evict(api, pod)
            if said is None:
                refusals.pop(pod.key, None)
            else:
                refusals[pod.key] = f"eviction refused: {said}"
                refused.append(pod)
        pending = refused
        waited = clock() - start
        if pending and waited >= timeout:
            raise _timed_out(node, waited, refusals)
        if pending:
            sleep(interval)
    evicted = tuple(p.key for p in plan.evict)
    waiting = [*plan.evict, *plan.terminating] if wait_for_delete else []
    while waiting := [pod for pod in waiting if _still_there(api, pod)]:
        waited = clock() - start
        if waited >= timeout:
            raise _timed_out(node, waited, {pod.key: "terminating" for pod in waiting})
        sleep(interval)
    return DrainResult(evicted)
