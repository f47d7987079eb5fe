"""Nodes as the API sees them, and the calls that change them: cordon, delete, wait for Ready."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generator.errors import HomelabError
from generator.kube.client import TIMEOUT, Unreachable, answering, seconds, status

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# K3s's managed etcd (k3s pkg/etcd/metadata_controller.go, member_controller.go): each etcd
# server names its member on its Node; `remove: "true"` asks the elected controller to remove
# that member while the node still runs, and `removed-node-name` says it was.
ETCD_MEMBER = "etcd.k3s.cattle.io/node-name"
ETCD_REMOVE = "etcd.k3s.cattle.io/remove"
ETCD_REMOVED = "etcd.k3s.cattle.io/removed-node-name"


@dataclass(frozen=True)
class NodeState:
    name: str
    ready: bool
    unschedulable: bool
    version: str  # the kubelet's
    control_plane: bool  # labelled node-role.kubernetes.io/control-plane
    message: str = ""  # the Ready condition's message while not ready
    etcd_member: str = ""  # its etcd member's name, while it holds one
    etcd_removed: bool = False  # K3s removed its member on request
    etcd_remove_asked: bool = False  # the request is on the Node (K3s drops one it refuses)


def node_state(obj: Any) -> NodeState:
    """A V1Node as a NodeState."""
    conditions = (obj.status.conditions or []) if obj.status else []
    ready = next((c for c in conditions if c.type == "Ready"), None)
    is_ready = bool(ready and ready.status == "True")
    info = obj.status.node_info if obj.status else None
    annotations = obj.metadata.annotations or {}
    return NodeState(
        name=obj.metadata.name,
        ready=is_ready,
        unschedulable=bool(obj.spec and obj.spec.unschedulable),
        version=info.kubelet_version if info else "",
        control_plane=CONTROL_PLANE_LABEL in (obj.metadata.labels or {}),
        message="" if is_ready or ready is None else str(ready.message or ""),
        etcd_member=str(annotations.get(ETCD_MEMBER) or ""),
        etcd_removed=bool(annotations.get(ETCD_REMOVED)),
        etcd_remove_asked=annotations.get(ETCD_REMOVE) == "true",
    )


def _core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def list_nodes(api: Any) -> dict[str, NodeState]:
    with answering(api, "listing the nodes"):
        found = _core(api).list_node(_request_timeout=TIMEOUT).items
    return {state.name: state for state in sorted(map(node_state, found), key=lambda n: n.name)}


def get_node(api: Any, name: str) -> NodeState | None:
    """The node, or None when the cluster has no node of that name."""
    with answering(api, f"reading node {name}"):
        try:
            return node_state(_core(api).read_node(name, _request_timeout=TIMEOUT))
        except Exception as exc:
            if status(exc) == 404:
                return None
            raise


def cordon(api: Any, name: str) -> NodeState | None:
    """Marks the node unschedulable and returns it as it is now; None when there is no such
    node."""
    with answering(api, f"cordoning node {name}"):
        try:
            patched = _core(api).patch_node(
                name, {"spec": {"unschedulable": True}}, _request_timeout=TIMEOUT
            )
        except Exception as exc:
            if status(exc) == 404:
                return None
            raise
    return node_state(patched)


def leave_etcd(api: Any, name: str) -> NodeState | None:
    """Asks K3s to remove the node's etcd member while it still runs; None when the node is
    gone. K3s's member controller does it (member_controller.go sync) and marks the Node."""
    patch = {"metadata": {"annotations": {ETCD_REMOVE: "true"}}}
    with answering(api, f"asking K3s to remove {name}'s etcd member"):
        try:
            patched = _core(api).patch_node(name, patch, _request_timeout=TIMEOUT)
        except Exception as exc:
            if status(exc) == 404:
                return None
            raise
    return node_state(patched)


def delete_node(api: Any, name: str) -> bool:
    """Removes the Node object; False when it was already gone."""
    with answering(api, f"deleting node {name}"):
        try:
            _core(api).delete_node(name, _request_timeout=TIMEOUT)
        except Exception as exc:
            if status(exc) == 404:
                return False
            raise
    return True


def wait_ready(
    api: Any,
    name: str,
    *,
    timeout: float,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_wait: Callable[[str], None] = lambda _: None,
) -> NodeState:
    """Polls until the node is registered and Ready. An API that does not answer for a while
    (a server node rejoining behind the VIP) is waited out like a NotReady node."""
    start = clock()
    last = "not registered yet"
    while True:
        try:
            state = get_node(api, name)
        except Unreachable as exc:
            last = exc.message
        else:
            if state is not None and state.ready:
                return state
            last = "not registered yet" if state is None else f"NotReady {state.message}".strip()
        waited = clock() - start
        on_wait(f"{seconds(waited)}: {last}")
        if waited >= timeout:
            raise HomelabError(
                f"node {name} was not Ready after {seconds(waited)}; last seen: {last}",
                hint=(
                    f"look at the VM's console or `journalctl -u k3s` on {name},"
                    " or wait longer with a larger timeout"
                ),
            )
        sleep(min(interval, max(timeout - waited, 0.0)))
