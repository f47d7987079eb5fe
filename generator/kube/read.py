"""One look at the cluster for `status`: its nodes and some custom objects, or why the API
could not be asked. Plain records and dicts; status turns them into its facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from generator.errors import HomelabError
from generator.kube.client import TIMEOUT, connect, explain, server
from generator.kube.nodes import NodeState, list_nodes
from generator.waiting import waiting_for

GroupVersionPlural = tuple[str, str, str]


@dataclass(frozen=True)
class Named:
    """One namespaced custom object to read: `group/version` `plural` `namespace/name`."""

    api: GroupVersionPlural
    namespace: str
    name: str


@dataclass(frozen=True)
class Snapshot:
    server: str
    error: str = ""  # set: the API could not be asked, and the rest is empty
    nodes: tuple[NodeState, ...] = ()
    objects: dict[Named, dict[str, Any] | None] = field(default_factory=dict)
    lists: dict[GroupVersionPlural, list[dict[str, Any]]] = field(default_factory=dict)


def list_custom(custom: Any, api: GroupVersionPlural) -> list[dict[str, Any]]:
    """Every object of a custom resource, sorted by namespace and name; none while its CRD
    is not installed."""
    from kubernetes.client.exceptions import ApiException

    group, version, plural = api
    try:
        listed = custom.list_cluster_custom_object(group, version, plural, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:  # the CRD is not installed yet
            return []
        raise
    items: list[dict[str, Any]] = listed.get("items") or []
    return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))


def get_custom(custom: Any, named: Named) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    group, version, plural = named.api
    try:
        found: dict[str, Any] = custom.get_namespaced_custom_object(
            group, version, named.namespace, plural, named.name, _request_timeout=TIMEOUT
        )
        return found
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def snapshot(
    kubeconfig: dict[str, Any],
    objects: tuple[Named, ...] = (),
    lists: tuple[GroupVersionPlural, ...] = (),
) -> Snapshot:
    """Nodes, the named objects (None when absent) and the listed kinds, or the reason why
    not: any way the API can fail becomes Snapshot(error=...), never an exception."""
    from kubernetes import client

    url = server(kubeconfig)
    waiting_for(f"the K3s API at {url}")
    try:
        with connect(kubeconfig) as api:
            custom = client.CustomObjectsApi(api)
            nodes = tuple(list_nodes(api).values())
            found = {named: get_custom(custom, named) for named in objects}
            listed = {kind: list_custom(custom, kind) for kind in lists}
    except HomelabError as exc:  # list_nodes' words for it; status wants the bare reason
        cause = exc.__cause__
        why = explain(cause, url) if isinstance(cause, Exception) else exc.message
        return Snapshot(server=url, error=why)
    except Exception as exc:  # urllib3, ssl and the client raise many kinds; all mean "unknown"
        return Snapshot(server=url, error=explain(exc, url))
    return Snapshot(server=url, nodes=nodes, objects=found, lists=listed)
