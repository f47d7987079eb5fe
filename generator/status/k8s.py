"""The K3s API through the kubernetes package (the only module that imports it): nodes,
the FluxInstance, Kustomizations and HelmReleases, as generator.status.facts records.

Any way the API can fail to answer becomes Kube(error=...) with a reason a user can act on,
so `status` keeps showing what it does know.
"""

from __future__ import annotations

from typing import Any

from generator.status.facts import FluxObject, Kube, KubeNode

FLUX_NAMESPACE = "flux-system"
FLUX_INSTANCE = "flux"
INSTANCE_API = ("fluxcd.controlplane.io", "v1", "fluxinstances")
KUSTOMIZATION_API = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
HELMRELEASE_API = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
# (connect, read) seconds: a VIP that is not up yet must not freeze the view for long.
TIMEOUT = (5.0, 20.0)


def api_client(kubeconfig: dict[str, Any]) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    load: Any = config.load_kube_config_from_dict  # untyped upstream
    load(kubeconfig, client_configuration=configuration, persist_config=False)
    # One try per refresh: `status --wait` is the retry loop, urllib3's own would stall it.
    configuration.retries = 0
    return client.ApiClient(configuration)


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
    )


def kube_node(obj: Any) -> KubeNode:
    conditions = obj.status.conditions or []
    ready = next((c for c in conditions if c.type == "Ready"), None)
    return KubeNode(
        name=obj.metadata.name,
        ready=bool(ready and ready.status == "True"),
        version=obj.status.node_info.kubelet_version if obj.status.node_info else "",
        message="" if ready is None or ready.status == "True" else str(ready.message or ""),
    )


def _server(kubeconfig: dict[str, Any]) -> str:
    clusters = kubeconfig.get("clusters") or [{}]
    return str((clusters[0].get("cluster") or {}).get("server", ""))


def explain(exc: Exception, server: str) -> str:
    """Why the API did not answer, in a user's words."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        if exc.status in (401, 403):
            return (
                f"{server} refused the kubeconfig's credentials ({exc.status} {exc.reason});"
                " run homelab-gen kubeconfig again"
            )
        return f"{server} answered {exc.status} {exc.reason}"
    if type(exc).__name__ == "ConfigException":
        return f"the kubeconfig cannot be used: {exc}"
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in type(exc).__name__:
        return (
            f"TLS verification of {server} failed (a kubeconfig from an earlier cluster?"
            " run homelab-gen kubeconfig again)"
        )
    for needle, said in (
        ("Connection refused", "connection refused (K3s not started yet?)"),
        ("timed out", "timed out"),
        ("Connection reset", "connection reset (K3s starting?)"),
        ("RemoteDisconnected", "connection closed (K3s starting?)"),
        ("No route to host", "no route to host"),
    ):
        if needle in text:
            return f"{server} not answering: {said}"
    return f"{server} not answering: {type(exc).__name__}"


def _list_custom(api: Any, group_version_plural: tuple[str, str, str]) -> list[dict[str, Any]]:
    from kubernetes.client.exceptions import ApiException

    group, version, plural = group_version_plural
    try:
        listed = api.list_cluster_custom_object(group, version, plural, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:  # the CRD is not installed yet
            return []
        raise
    items: list[dict[str, Any]] = listed.get("items") or []
    return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))


def _instance(api: Any) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    group, version, plural = INSTANCE_API
    try:
        found: dict[str, Any] = api.get_namespaced_custom_object(
            group, version, FLUX_NAMESPACE, plural, FLUX_INSTANCE, _request_timeout=TIMEOUT
        )
        return found
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def read(kubeconfig: dict[str, Any]) -> Kube:
    """Nodes and Flux's objects; Kube(error=...) when the API cannot be asked."""
    from kubernetes import client

    server = _server(kubeconfig)
    try:
        with api_client(kubeconfig) as api:
            core = client.CoreV1Api(api)
            custom = client.CustomObjectsApi(api)
            nodes = core.list_node(_request_timeout=TIMEOUT).items
            instance = _instance(custom)
            kustomizations = _list_custom(custom, KUSTOMIZATION_API)
            releases = _list_custom(custom, HELMRELEASE_API)
    except Exception as exc:  # urllib3, ssl and the client raise many kinds; all mean "unknown"
        return Kube(error=explain(exc, server), server=server)
    return Kube(
        server=server,
        nodes=tuple(sorted((kube_node(n) for n in nodes), key=lambda n: n.name)),
        instance=flux_object("FluxInstance", instance) if instance else None,
        kustomizations=tuple(flux_object("Kustomization", o) for o in kustomizations),
        helmreleases=tuple(flux_object("HelmRelease", o) for o in releases),
    )
