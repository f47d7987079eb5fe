"""A small mutable cluster behind the fake API: nodes, pods, ReplicaSets and
PodDisruptionBudgets, and the controllers drain meets, on a clock of requests.

Each request the API answers is one tick (it passes once the answer is taken). Things that
take "a moment" in a real cluster take a few ticks here: a deleted pod terminates for
TERMINATING ticks, a replacement pod becomes ready STARTING ticks after it is scheduled,
pods of a deleted node are collected GC ticks later, and a joining node registers
(NotReady) and turns Ready when told.

    cluster = Cluster()
    cluster.add_node("k3s-server-1", control_plane=True)
    cluster.add_node("k3s-agent-1"); cluster.add_node("k3s-agent-2")
    cluster.add_replicaset("web", replicas=2, nodes=["k3s-agent-1", "k3s-agent-2"])
    cluster.add_pod("svclb-x", node="k3s-agent-1", owner=("DaemonSet", "svclb"))
    cluster.add_pdb("web", selector={"app": "web"}, min_available=1)
    cluster.join("k3s-agent-3", after=2, ready_after=3)
    world = World([Moment()], cluster=cluster)

Every rule here is ported from upstream Kubernetes, whose file and function are named in a
comment beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.kube.objects import STAMP, node

TERMINATING = 2
STARTING = 2
GC = 2
DEFAULT_JOIN_AFTER = 2
DEFAULT_READY_AFTER = 3
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
# K3s's managed etcd (k3s pkg/etcd/metadata_controller.go handleSelf): every etcd server
# labels its own Node and names its member and address in annotations.
ETCD_ROLE = "node-role.kubernetes.io/etcd"
ETCD_NODE_NAME = "etcd.k3s.cattle.io/node-name"
ETCD_NODE_ADDRESS = "etcd.k3s.cattle.io/node-address"
ETCD_REMOVE = "etcd.k3s.cattle.io/remove"
ETCD_REMOVED = "etcd.k3s.cattle.io/removed-node-name"
# wrangler's OnRemove adds "wrangler.cattle.io/<handler>" to every Node the handler sees
# (k3s pkg/etcd/member_controller.go registerMemberHandlers: "managed-etcd-controller").
ETCD_FINALIZER = "wrangler.cattle.io/managed-etcd-controller"
MEMBER_REMOVAL = 2  # ticks the elected controller takes to remove a member
MIRROR = "kubernetes.io/config.mirror"
# What a K3s kubelet reports until flannel is up.
CNI_NOT_READY = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady"
    " message:Network plugin returns error: cni plugin not initialized"
)


class ApiError(Exception):
    """An answer other than 2xx: the Status body the API server would send."""

    def __init__(self, code: int, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
        if details:
            self.body["details"] = details


def not_found(plural: str, name: str) -> ApiError:
    # apimachinery pkg/api/errors NewNotFound: `<resource> "<name>" not found`.
    return ApiError(404, "NotFound", f'{plural} "{name}" not found', name=name, kind=plural)


def success(code: int = 200, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
    body.update(status="Success", code=code)
    if details:
        body["details"] = details
    return body


def _ready(pod: dict[str, Any]) -> bool:
    # pkg/api/v1/pod IsPodReady: the Ready condition is True.
    conditions = pod["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _controller(pod: dict[str, Any]) -> dict[str, Any] | None:
    # apimachinery metav1.GetControllerOf: the ownerReference with controller: true.
    owners = pod["metadata"].get("ownerReferences") or []
    return next((o for o in owners if o.get("controller")), None)


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _node_ready(obj: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj["status"]["conditions"])


@dataclass
class Cluster:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    replicasets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pdbs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    ticks: int = 0
    # etcd member name -> node name, as K3s's embedded etcd lists them
    members: dict[str, str] = field(default_factory=dict)
    removed_members: list[str] = field(default_factory=list)
    join_after: int = DEFAULT_JOIN_AFTER  # what vm_created() uses
    ready_after: int = DEFAULT_READY_AFTER
    _due: list[tuple[int, int, Callable[[], None]]] = field(default_factory=list)
    _serial: int = 0

    # -- setting up ----------------------------------------------------------------------
    def add_node(
        self,
        name: str,
        ready: bool = True,
        control_plane: bool = False,
        version: str = "v1.33.4+k3s1",
        message: str = "",
    ) -> dict[str, Any]:
        obj = node(name, ready=ready, version=version, message=message)
        obj["metadata"]["finalizers"] = [ETCD_FINALIZER]
        if control_plane:
            obj["metadata"]["labels"][CONTROL_PLANE] = "true"
            obj["metadata"]["labels"]["node-role.kubernetes.io/master"] = "true"
            obj["metadata"]["labels"][ETCD_ROLE] = "true"
            # k3s pkg/etcd/etcd.go setName: <node name>-<first 8 of a uuid>, new per data dir.
            self._serial += 1
            member = f"{name}-{self._serial:08x}"
            self.members[member] = name
            obj["metadata"]["annotations"] = {
                ETCD_NODE_NAME: member,
                ETCD_NODE_ADDRESS: f"10.0.0.{len(self.members) + 10}",
            }
        self.nodes[name] = obj
        return obj

    def stale_member(self, name: str) -> str | None:
        """k3s pkg/etcd/etcd.go join(): a listed member whose name, cut at its last '-', is
        this node's name stops the join ("duplicate node name found, please use a unique
        name for this node"); K3s exits and systemd restarts it, forever."""
        return next((m for m, n in self.members.items() if n == name), None)

    def add_pod(
        self,
        name: str,
        node: str | None,
        namespace: str = "default",
        labels: dict[str, str] | None = None,
        owner: tuple[str, str] | None = None,
        ready: bool = True,
        phase: str = "Running",
        mirror: bool = False,
        terminating: bool = False,
    ) -> dict[str, Any]:
        """A pod bound to `node`; `owner` is its controller, e.g. ("DaemonSet", "svclb")."""
        self._serial += 1
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": f"pod-uid-{self._serial}",
            "labels": dict(labels or {}),
            "annotations": {MIRROR: "mirror"} if mirror else {},
            "creationTimestamp": STAMP,
        }
        if owner:
            kind, owner_name = owner
            group = "apps/v1" if kind in ("ReplicaSet", "DaemonSet", "StatefulSet") else "v1"
            meta["ownerReferences"] = [
                {
                    "apiVersion": group,
                    "kind": kind,
                    "name": owner_name,
                    "uid": f"uid-{kind}-{owner_name}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {
                "containers": [{"name": "main", "image": "registry.example/app:1"}],
                **({"nodeName": node} if node else {}),
            },
            "status": {"phase": phase, "conditions": [self._pod_ready(ready)]},
        }
        self.pods[(namespace, name)] = pod
        if terminating:
            self.delete_pod(namespace, name)
        return pod

    def add_replicaset(
        self,
        name: str,
        replicas: int,
        nodes: list[str],
        namespace: str = "default",
        labels: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """A ReplicaSet's `replicas` ready pods, spread over `nodes` in turn; labels default
        to app=<name>."""
        labels = labels or {"app": name}
        self.replicasets[(namespace, name)] = {"replicas": replicas, "labels": labels}
        return [
            self.add_pod(
                f"{name}-{i}", nodes[i % len(nodes)], namespace, labels, ("ReplicaSet", name)
            )
            for i in range(replicas)
        ]

    def add_pdb(
        self,
        name: str,
        selector: dict[str, str],
        namespace: str = "default",
        min_available: int | str | None = None,
        max_unavailable: int | str | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"selector": {"matchLabels": dict(selector)}}
        if min_available is not None:
            spec["minAvailable"] = min_available
        if max_unavailable is not None:
            spec["maxUnavailable"] = max_unavailable
        pdb = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": spec,
            "status": {"observedGeneration": 1, "disruptedPods": {}},
        }
        self.pdbs[(namespace, name)] = pdb
        return pdb

    def join(
        self,
        name: str,
        after: int = 0,
        ready_after: int = DEFAULT_READY_AFTER,
        control_plane: bool | None = None,
    ) -> None:
        """The node's kubelet registers `after` ticks from now (NotReady, CNI not up; an
        existing Node of that name is re-registered) and is Ready `ready_after` ticks later.
        control_plane None keeps what an existing node had."""
        existing = self.nodes.get(name)
        if control_plane is None:
            control_plane = bool(existing and CONTROL_PLANE in existing["metadata"]["labels"])

        def register() -> None:
            if control_plane and name not in self.nodes and self.stale_member(name):
                self.at(1, register)  # K3s exits on the duplicate name and systemd retries
                return
            old = self.nodes.get(name)
            self.add_node(name, ready=False, control_plane=bool(control_plane))
            if old and old["spec"].get("unschedulable"):
                self.nodes[name]["spec"]["unschedulable"] = True
            self.nodes[name]["status"]["conditions"][0]["message"] = CNI_NOT_READY
            self.at(ready_after, become_ready)

        def become_ready() -> None:
            if name in self.nodes:
                self._set_node_ready(name, True)
                self._finish_terminating(name)
                self._schedule_pending()

        self.at(after, register)

    def vm_created(self, name: str, control_plane: bool | None = None) -> None:
        """Hook for fakes that (re)create a VM: its kubelet joins with the cluster's
        join_after / ready_after."""
        self.join(name, self.join_after, self.ready_after, control_plane)

    # -- time ----------------------------------------------------------------------------
    def at(self, ticks: int, then: Callable[[], None]) -> None:
        """Runs `then` once `ticks` more requests are answered (0 or less: now)."""
        if ticks <= 0:
            then()
            return
        self._serial += 1
        self._due.append((self.ticks + ticks, self._serial, then))

    def tick(self) -> None:
        self.ticks += 1
        while due := sorted(d for d in self._due if d[0] <= self.ticks):
            for entry in due:
                self._due.remove(entry)
                entry[2]()

    # -- nodes ---------------------------------------------------------------------------
    def get_node(self, name: str) -> dict[str, Any]:
        if name not in self.nodes:
            raise not_found("nodes", name)
        return self.nodes[name]

    def patch_node(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        obj = self.get_node(name)
        added = (patch.get("metadata") or {}).get("annotations") or {}
        if added:
            # strategic merge patch of a map: keys merge, a null value deletes the key.
            annotations = obj["metadata"].setdefault("annotations", {})
            for key, value in added.items():
                if value is None:
                    annotations.pop(key, None)
                else:
                    annotations[key] = value
            if annotations.get(ETCD_REMOVE) == "true":
                self.at(MEMBER_REMOVAL, lambda: self._etcd_sync(name))
        spec = patch.get("spec") or {}
        if "unschedulable" in spec:
            if spec["unschedulable"]:
                obj["spec"]["unschedulable"] = True
                # nodelifecycle controller doNoScheduleTaintingPass: an unschedulable node
                # carries the node.kubernetes.io/unschedulable:NoSchedule taint.
                obj["spec"]["taints"] = [
                    {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
                ]
            else:
                obj["spec"].pop("unschedulable", None)
                obj["spec"].pop("taints", None)
                self._schedule_pending()
        return obj

    def delete_node(self, name: str) -> dict[str, Any]:
        obj = self.get_node(name)
        meta = obj["metadata"]
        if meta.get("finalizers"):
            # apiserver registry store Delete: an object with finalizers only gets its
            # deletionTimestamp; it goes once the last finalizer is removed.
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = STAMP
                self.at(MEMBER_REMOVAL, lambda: self._etcd_on_remove(name))
            return obj
        return self._gone(name, obj)

    def _leader(self, but: str) -> bool:
        """K3s's etcd controllers run on the elected server: one Ready, other than `but`."""
        return any(
            n != but and CONTROL_PLANE in o["metadata"]["labels"] and _node_ready(o)
            for n, o in self.nodes.items()
        )

    def _etcd_sync(self, name: str) -> None:
        """k3s pkg/etcd/member_controller.go sync: a Node annotated remove=true has its member
        removed (RemovePeer), then gets removed-node-name and loses node-name and
        node-address; an already removed one is left alone."""
        obj = self.nodes.get(name)
        if obj is None or not self._leader(name):
            return
        annotations = obj["metadata"].get("annotations") or {}
        if annotations.get(ETCD_REMOVE) != "true" or annotations.get(ETCD_REMOVED):
            return
        member = annotations.get(ETCD_NODE_NAME)
        if not member:
            return
        # etcd's strict reconfig check (ErrMemberNotEnoughStarted): what stays must have a
        # quorum of started members; K3s then drops the remove annotation.
        left = len(self.members) - 1
        started = sum(
            1
            for n in self.members.values()
            if n != name and n in self.nodes and _node_ready(self.nodes[n])
        )
        if started < left // 2 + 1:
            annotations.pop(ETCD_REMOVE, None)
            return
        self.members.pop(member, None)
        self.removed_members.append(member)
        annotations[ETCD_REMOVED] = member
        annotations.pop(ETCD_NODE_NAME, None)
        annotations.pop(ETCD_NODE_ADDRESS, None)

    def _etcd_on_remove(self, name: str) -> None:
        """k3s pkg/etcd/member_controller.go onRemove, run by the elected controller on a
        Ready server: no etcd label, nothing to do; both annotations needed, else an error
        and the finalizer stays; else RemovePeer, and the finalizer goes. A member already
        removed on request (removed-node-name) is skipped."""
        obj = self.nodes.get(name)
        if obj is None:
            return
        meta = obj["metadata"]
        leaders = [
            n
            for n, o in self.nodes.items()
            if n != name and CONTROL_PLANE in o["metadata"]["labels"] and _node_ready(o)
        ]
        annotations = meta.get("annotations") or {}
        if meta["labels"].get(ETCD_ROLE) == "true" and not annotations.get(ETCD_REMOVED):
            if not leaders or not {ETCD_NODE_NAME, ETCD_NODE_ADDRESS} <= annotations.keys():
                return  # stays Terminating
            member = annotations[ETCD_NODE_NAME]
            self.members.pop(member, None)
            self.removed_members.append(member)
        meta["finalizers"] = [f for f in meta["finalizers"] if f != ETCD_FINALIZER]
        if not meta["finalizers"]:
            self._gone(name, obj)

    def _gone(self, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        del self.nodes[name]

        # pkg/controller/podgc gcOrphaned: pods bound to a node that no longer exists are
        # deleted (after its quarantine), and their controllers replace them elsewhere.
        def collect() -> None:
            if name in self.nodes:
                return
            for pod in [p for p in self.pods.values() if p["spec"].get("nodeName") == name]:
                self.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], grace=0)

        self.at(GC, collect)
        # registry store Delete without ReturnDeletedObject: a Success Status naming it.
        return success(name=name, kind="nodes", uid=obj["metadata"]["uid"])

    def _set_node_ready(self, name: str, ready: bool) -> None:
        condition = self.nodes[name]["status"]["conditions"][0]
        condition.update(
            status="True" if ready else "False",
            reason="KubeletReady" if ready else "KubeletNotReady",
            message="kubelet is posting ready status" if ready else CNI_NOT_READY,
        )

    def _schedulable(self) -> list[str]:
        # kube-scheduler: a Ready node that is not cordoned (NodeUnschedulable plugin).
        return sorted(
            n
            for n, obj in self.nodes.items()
            if _node_ready(obj) and not obj["spec"].get("unschedulable")
        )

    # -- pods ----------------------------------------------------------------------------
    def pods_on(self, node_name: str | None, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            p
            for (ns, _), p in sorted(self.pods.items())
            if (namespace is None or ns == namespace)
            and (node_name is None or p["spec"].get("nodeName") == node_name)
        ]

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.pods:
            raise not_found("pods", name)
        return self.pods[(namespace, name)]

    def delete_pod(self, namespace: str, name: str, grace: int = TERMINATING) -> None:
        """Graceful deletion: the pod terminates for `grace` ticks, then is gone; its
        ReplicaSet makes a replacement at once."""
        pod = self.get_pod(namespace, name)
        if pod["metadata"].get("deletionTimestamp"):
            if grace <= 0:  # a delete with grace 0 finishes one already under way
                del self.pods[(namespace, name)]
            return
        pod["metadata"]["deletionTimestamp"] = STAMP
        pod["metadata"]["deletionGracePeriodSeconds"] = 30
        uid = pod["metadata"]["uid"]

        def gone() -> None:
            if (namespace, name) in self.pods and self.pods[(namespace, name)]["metadata"][
                "uid"
            ] == uid:
                del self.pods[(namespace, name)]

        host = self.nodes.get(pod["spec"].get("nodeName") or "")
        if grace <= 0:
            gone()
        elif host is None or _node_ready(host):
            self.at(grace, gone)
        # else: a graceful delete is finished by the pod's kubelet (pkg/kubelet status manager
        # sends the final delete), and a NotReady node has none: the pod stays Terminating
        # until pod GC removes it with its Node (podgc gcOrphaned, grace 0 above).
        owner = _controller(pod)
        if owner and owner["kind"] == "ReplicaSet":
            self._replace(namespace, owner["name"])

    def _finish_terminating(self, node_name: str) -> None:
        """A kubelet that starts finds pods bound to it that are being deleted and runs none
        of them: its status manager finishes their deletion (pkg/kubelet/status
        status_manager.go syncPod, canBeDeleted, then a delete with grace 0)."""
        for pod in self.pods_on(node_name):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                self.delete_pod(meta["namespace"], meta["name"], grace=0)

    def _replace(self, namespace: str, rs: str) -> None:
        # pkg/controller/replicaset manageReplicas: a terminating pod is not active
        # (controller.FilterActivePods), so the ReplicaSet creates one to reach its replicas.
        spec = self.replicasets.get((namespace, rs))
        if spec is None:
            return
        self._serial += 1
        name = f"{rs}-r{self._serial}"
        self.add_pod(name, None, namespace, spec["labels"], ("ReplicaSet", rs), ready=False)
        self.pods[(namespace, name)]["status"]["phase"] = "Pending"
        self._schedule_pending()

    def _schedule_pending(self) -> None:
        for (namespace, name), pod in sorted(self.pods.items()):
            if pod["spec"].get("nodeName") or pod["metadata"].get("deletionTimestamp"):
                continue
            nodes = self._schedulable()
            if not nodes:
                return
            # Spread like the scheduler's PodTopologySpread default: fewest pods first.
            pod["spec"]["nodeName"] = min(nodes, key=lambda n: (len(self.pods_on(n)), n))
            self.at(STARTING, lambda key=(namespace, name): self._started(key))

    def _started(self, key: tuple[str, str]) -> None:
        pod = self.pods.get(key)
        if pod and not pod["metadata"].get("deletionTimestamp"):
            pod["status"]["phase"] = "Running"
            pod["status"]["conditions"] = [self._pod_ready(True)]

    @staticmethod
    def _pod_ready(ready: bool) -> dict[str, Any]:
        return {
            "type": "Ready",
            "status": "True" if ready else "False",
            "lastTransitionTime": STAMP,
        }

    # -- disruption budgets --------------------------------------------------------------
    def _selected(self, pdb: dict[str, Any]) -> list[dict[str, Any]]:
        namespace = pdb["metadata"]["namespace"]
        selector = pdb["spec"]["selector"].get("matchLabels") or {}
        return [
            p
            for p in self.pods_on(None, namespace)
            if selector and _matches(selector, p["metadata"]["labels"])
        ]

    def pdb_status(self, pdb: dict[str, Any]) -> dict[str, Any]:
        """The status the disruption controller would write now
        (pkg/controller/disruption/disruption.go trySync)."""
        pods = self._selected(pdb)
        status = pdb["status"]
        # buildDisruptedPodMap: entries for pods that are gone or already deleting drop out.
        status["disruptedPods"] = {
            name: when
            for name, when in status["disruptedPods"].items()
            if any(
                p["metadata"]["name"] == name and not p["metadata"].get("deletionTimestamp")
                for p in pods
            )
        }
        expected, desired = self._expected(pdb, pods)
        # countHealthyPods: ready pods, minus those deleting or promised to an eviction.
        healthy = sum(
            1
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and p["metadata"]["name"] not in status["disruptedPods"]
            and _ready(p)
        )
        # updatePdbStatus: allowed = healthy - desired, never below 0, 0 with no pods expected.
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0
        status.update(
            currentHealthy=healthy,
            desiredHealthy=desired,
            expectedPods=expected,
            disruptionsAllowed=allowed,
        )
        return pdb

    def _expected(self, pdb: dict[str, Any], pods: list[dict[str, Any]]) -> tuple[int, int]:
        """disruption.go getExpectedPodCount: (expected pods, desired healthy)."""
        spec = pdb["spec"]
        min_available = spec.get("minAvailable")
        if isinstance(min_available, int) and "maxUnavailable" not in spec:
            # An absolute minAvailable needs no controller: expected is the pods there are.
            return len(pods), min_available
        scale = self._scale(pods)
        if scale is None:
            # getExpectedScale fails for a pod without a controller; trySync's failSafe
            # then leaves no disruptions allowed.
            return 0, 0
        if "maxUnavailable" in spec:
            unavailable = _int_or_percent(spec["maxUnavailable"], scale)
            return scale, max(scale - unavailable, 0)
        return scale, _int_or_percent(min_available or 0, scale)

    def _scale(self, pods: list[dict[str, Any]]) -> int | None:
        # getExpectedScale: the sum of the replicas of each distinct controller.
        owners: dict[str, int] = {}
        for pod in pods:
            owner = _controller(pod)
            if owner is None:
                return None
            rs = self.replicasets.get((pod["metadata"]["namespace"], owner["name"]))
            owners[owner["uid"]] = rs["replicas"] if rs else 1
        return sum(owners.values())

    def evict(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST pods/<name>/eviction, after pkg/registry/core/pod/storage/eviction.go
        EvictionREST.Create."""
        if (body.get("metadata") or {}).get("name") != name:
            raise ApiError(400, "BadRequest", "name in URL does not match name in Eviction object")
        pod = self.get_pod(namespace, name)  # store.Get: 404 pods "x" not found
        if self._can_ignore_pdb(pod):
            self.delete_pod(namespace, name)
            return success(201)
        pdbs = [self.pdb_status(p) for p in self._matching_pdbs(pod)]
        if len(pdbs) > 1:
            # Create: more than one budget is not supported (a 500 Status, not an error).
            raise ApiError(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction"
                " subresource does not support.",
            )
        if pdbs:
            pdb = pdbs[0]
            status = pdb["status"]
            # Create: an unready pod does not count as healthy, so when the rest already
            # meet the budget it goes without spending a disruption.
            unready_spare = (
                not _ready(pod)
                and status["currentHealthy"] >= status["desiredHealthy"]
                and status["desiredHealthy"] > 0
            )
            if not unready_spare:
                self._check_and_decrement(pdb, name)
        self.delete_pod(namespace, name)
        return success(201)

    @staticmethod
    def _can_ignore_pdb(pod: dict[str, Any]) -> bool:
        # eviction.go canIgnorePDB: finished, pending or already deleting pods go directly.
        phase = pod["status"].get("phase")
        return phase in ("Succeeded", "Failed", "Pending") or bool(
            pod["metadata"].get("deletionTimestamp")
        )

    def _matching_pdbs(self, pod: dict[str, Any]) -> list[dict[str, Any]]:
        # eviction.go getPodDisruptionBudgets: same namespace; an empty selector matches none.
        namespace = pod["metadata"]["namespace"]
        labels = pod["metadata"]["labels"]
        found = []
        for (ns, _), pdb in sorted(self.pdbs.items()):
            selector = pdb["spec"]["selector"].get("matchLabels") or {}
            if ns == namespace and selector and _matches(selector, labels):
                found.append(pdb)
        return found

    def _check_and_decrement(self, pdb: dict[str, Any], pod_name: str) -> None:
        # eviction.go checkAndDecrement.
        name, status = pdb["metadata"]["name"], pdb["status"]
        budget = "Cannot evict pod as it would violate the pod's disruption budget."
        if status["observedGeneration"] < pdb["metadata"]["generation"]:
            cause = f"The disruption budget {name} is still being processed by the server."
            raise _too_many(budget, cause, retry_after=10)
        if status["disruptionsAllowed"] < 0:
            raise ApiError(
                403,
                "Forbidden",
                f'poddisruptionbudgets.policy "{name}" is forbidden:'
                " pdb disruptions allowed is negative",
            )
        if status["disruptionsAllowed"] == 0:
            cause = (
                f"The disruption budget {name} needs {status['desiredHealthy']} healthy pods"
                f" and has {status['currentHealthy']} currently"
            )
            raise _too_many(budget, cause)
        status["disruptionsAllowed"] -= 1
        status["disruptedPods"][pod_name] = STAMP


def _too_many(message: str, cause: str, retry_after: int = 0) -> ApiError:
    # apimachinery NewTooManyRequests plus the policy/v1 DisruptionBudget cause.
    details: dict[str, Any] = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return ApiError(429, "TooManyRequests", message, **details)


def _int_or_percent(value: int | str, total: int) -> int:
    # apimachinery intstr.GetScaledValueFromIntOrPercent with roundUp, as the PDB uses it.
    if isinstance(value, int):
        return value
    return math.ceil(int(value.rstrip("%")) * total / 100)
