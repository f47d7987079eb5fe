"""gitops/apps/: the sample app (whoami) behind Traefik; users add their own folders beside it."""

from __future__ import annotations

from typing import Any

from generator.config.model import Cluster
from generator.render import components as comps
from generator.render.kustomize import folder, meta, namespace

WHOAMI_IMAGE = "traefik/whoami:v1.11.0"
WHOAMI_PORT = 8080


def whoami_objects(cluster: Cluster) -> dict[str, dict[str, Any]]:
    host = f"whoami.{cluster.cluster.domain}"
    labels = {"app.kubernetes.io/name": "whoami"}
    container = {
        "name": "whoami",
        "image": WHOAMI_IMAGE,
        "args": ["--port", str(WHOAMI_PORT)],
        "ports": [{"name": "http", "containerPort": WHOAMI_PORT}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("whoami", "whoami", labels=labels),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("whoami", "whoami", labels=labels),
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    ingress_meta = meta("whoami", "whoami", labels=labels)
    annotations = comps.issuer_annotations(cluster)
    if annotations:
        ingress_meta["annotations"] = annotations
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": ingress_meta,
        "spec": {
            "ingressClassName": "traefik",
            "tls": [comps.tls_entry(cluster, host, "whoami-tls")],
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "whoami", "port": {"name": "http"}}
                                },
                            }
                        ]
                    },
                }
            ],
        },
    }
    return {
        "namespace": namespace("whoami"),
        "deployment": deployment,
        "service": service,
        "ingress": ingress,
    }


def apps(cluster: Cluster, base: str) -> dict[str, list[dict[str, Any]]]:
    # gitops/apps/ itself has no kustomization.yaml on purpose: Flux generates one that takes
    # in every folder there, so a user's app never needs an edit to a file we render.
    if not (cluster.components.whoami.enabled and cluster.components.traefik.enabled):
        return {}
    return folder(f"{base}/whoami", whoami_objects(cluster))
