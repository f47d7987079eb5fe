"""Building blocks of the Flux tree: object metadata, namespaces, and folders of one object per
file with the kustomization.yaml that lists them.
"""

from __future__ import annotations

from typing import Any

from generator.render import components as comps

FLUX_NAMESPACE = "flux-system"  # where Flux and its own objects live


def meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out.update(extra)
    return out


def flux_sync(
    name: str,
    source: dict[str, str],
    path: str,
    depends_on: str | list[str] | None,
    timeout: str = "5m",
    **extra: Any,
) -> dict[str, Any]:
    """A Flux Kustomization in flux-system that applies `path` of `source`, pruning what
    leaves it, ready only once what it applied is (wait). `depends_on`: one name or several,
    in the order given; none leaves dependsOn out."""
    spec: dict[str, Any] = {}
    names = [depends_on] if isinstance(depends_on, str) else list(depends_on or [])
    if names:
        spec["dependsOn"] = [{"name": name} for name in names]
    spec.update(
        {
            "interval": "1h",
            "retryInterval": "1m",
            "timeout": timeout,
            "sourceRef": dict(source),
            "path": path,
            "prune": True,
            "wait": True,
            **extra,
        }
    )
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": meta(name, FLUX_NAMESPACE),
        "spec": spec,
    }


def kustomization(resources: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }


def namespace(name: str, privileged: bool = False) -> dict[str, Any]:
    metadata = meta(name)
    if privileged:
        metadata["labels"] = dict(comps.PRIVILEGED_LABELS)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def folder(base: str, objects: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """One object per file, plus the kustomization.yaml listing them in order."""
    out = {f"{base}/{name}.yaml": [obj] for name, obj in objects.items()}
    out[f"{base}/kustomization.yaml"] = [kustomization([f"{name}.yaml" for name in objects])]
    return out


def index(base: str, children: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {f"{base}/kustomization.yaml": [kustomization(children)]} if children else {}
