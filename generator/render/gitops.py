"""The Flux tree under gitops/: what the first server's FluxInstance syncs after boot.

Layout (Flux's canonical example): clusters/<name>/ holds the Flux Kustomizations,
infrastructure/controllers/<component>/ a namespace, a HelmRepository and a HelmRelease,
infrastructure/configs/ the objects that need the controllers' CRDs, and apps/ the user's own
apps plus a demo. Disabled components leave no file, no entry and no dependsOn behind.
"""

from __future__ import annotations

from typing import Any

from generator.config.model import Cluster
from generator.render import components as comps
from generator.render.components import Spec
from generator.render.output import RenderedFile
from generator.render.templating import render_template

ROOT = "gitops"
FLUX_NAMESPACE = "flux-system"
FLUX_SOURCE = {"kind": "GitRepository", "name": "flux-system"}  # made by the FluxInstance
CONTROLLERS = "infra-controllers"
CONFIGS = "infra-configs"
APPS = "apps"
WHOAMI_IMAGE = "traefik/whoami:v1.11.0"
WHOAMI_PORT = 8080


def render_gitops(cluster: Cluster) -> dict[str, RenderedFile]:
    files: dict[str, list[dict[str, Any]]] = {}
    files.update(controllers(cluster))
    files.update(configs(cluster))
    files.update(apps(cluster))
    files.update(cluster_kustomizations(cluster, files))
    out = {path: RenderedFile(emit(docs)) for path, docs in sorted(files.items())}
    out[f"{ROOT}/apps/README.md"] = RenderedFile(render_template(ROOT, "apps-README.md.j2"))
    return out


def emit(documents: list[dict[str, Any]]) -> str:
    return render_template(ROOT, "object.yaml.j2", documents=documents)


# --- helpers ---------------------------------------------------------------------------------


def meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out.update(extra)
    return out


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


# --- infrastructure/controllers --------------------------------------------------------------


def helm_repository(spec: Spec) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": meta(spec.chart.repository, spec.namespace),
        "spec": {"interval": "12h", "url": spec.chart.url},
    }


def helm_release(cluster: Cluster, spec: Spec) -> dict[str, Any]:
    remediation = {"retries": 3}
    install: dict[str, Any] = {"crds": "CreateReplace", "remediation": remediation}
    upgrade: dict[str, Any] = {"crds": "CreateReplace", "remediation": dict(remediation)}
    if spec.key == "traefik":
        # Its LoadBalancer Service gets an address only once the MetalLB pool (in configs,
        # applied after the controllers are Ready) exists: waiting for it would deadlock.
        install["disableWait"] = True
        upgrade["disableWait"] = True
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": meta(spec.chart.name, spec.namespace),
        "spec": {
            "interval": "30m",
            "timeout": "10m",
            "chart": {
                "spec": {
                    "chart": spec.chart.name,
                    "version": comps.chart_version(cluster, spec),
                    "sourceRef": {
                        "kind": "HelmRepository",
                        "name": spec.chart.repository,
                        "namespace": spec.namespace,
                    },
                    "interval": "12h",
                }
            },
            "install": install,
            "upgrade": upgrade,
            "values": comps.release_values(cluster, spec),
        },
    }


def controllers(cluster: Cluster) -> dict[str, list[dict[str, Any]]]:
    base = f"{ROOT}/infrastructure/controllers"
    out: dict[str, list[dict[str, Any]]] = {}
    enabled = comps.enabled_specs(cluster)
    for spec in enabled:
        out.update(
            folder(
                f"{base}/{spec.folder}",
                {
                    "namespace": namespace(spec.namespace, spec.privileged),
                    "repository": helm_repository(spec),
                    "release": helm_release(cluster, spec),
                },
            )
        )
    out.update(index(base, [spec.folder for spec in enabled]))
    return out


# --- infrastructure/configs ------------------------------------------------------------------


def metallb_configs(cluster: Cluster) -> dict[str, dict[str, Any]]:
    ns = comps.SPEC_BY_KEY["metallb"].namespace
    return {
        "ipaddresspool": {
            "apiVersion": "metallb.io/v1beta1",
            "kind": "IPAddressPool",
            "metadata": meta("default", ns),
            "spec": {"addresses": [cluster.network.metallb_range]},
        },
        "l2advertisement": {
            "apiVersion": "metallb.io/v1beta1",
            "kind": "L2Advertisement",
            "metadata": meta("default", ns),
            "spec": {"ipAddressPools": ["default"]},
        },
    }


def cluster_issuer(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": meta(name),
        "spec": spec,
    }


def selfsigned_chain(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """A self-signed root signs one CA certificate; the CA issuer signs every ingress's."""
    ns = comps.SPEC_BY_KEY["cert_manager"].namespace
    return {
        "selfsigned-issuer": cluster_issuer("selfsigned", {"selfSigned": {}}),
        "root-ca": {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": meta("homelab-root-ca", ns),
            "spec": {
                "isCA": True,
                "commonName": f"{cluster.name} home lab CA",
                "secretName": "homelab-root-ca",
                "duration": "87600h",  # ten years: re-trusting a new root is a chore
                "privateKey": {"algorithm": "ECDSA", "size": 256},
                "issuerRef": {
                    "name": "selfsigned",
                    "kind": "ClusterIssuer",
                    "group": "cert-manager.io",
                },
            },
        },
        "ca-issuer": cluster_issuer(
            comps.cluster_issuer_name(cluster), {"ca": {"secretName": "homelab-root-ca"}}
        ),
    }


def acme_issuer(cluster: Cluster) -> dict[str, dict[str, Any]]:
    cert = cluster.components.cert_manager
    server = comps.ACME_SERVERS[comps.option(cert, "acme_server", "production")]
    solver = {
        "dns01": {
            "cloudflare": {
                "apiTokenSecretRef": {
                    "name": comps.CLOUDFLARE_TOKEN_SECRET,
                    "key": comps.CLOUDFLARE_TOKEN_KEY,
                }
            }
        }
    }
    spec = {
        "acme": {
            "server": server,
            "email": comps.option(cert, "acme_email", ""),
            "privateKeySecretRef": {"name": "letsencrypt-account-key"},
            "solvers": [solver],
        }
    }
    return {"acme-issuer": cluster_issuer(comps.cluster_issuer_name(cluster), spec)}


def configs(cluster: Cluster) -> dict[str, list[dict[str, Any]]]:
    base = f"{ROOT}/infrastructure/configs"
    parts: dict[str, dict[str, dict[str, Any]]] = {}
    if cluster.components.metallb.enabled:
        parts["metallb"] = metallb_configs(cluster)
    if cluster.components.cert_manager.enabled:
        parts["cert-manager"] = (
            acme_issuer(cluster)
            if comps.issuer_kind(cluster) == "acme"
            else selfsigned_chain(cluster)
        )
    out: dict[str, list[dict[str, Any]]] = {}
    for name, objects in parts.items():
        out.update(folder(f"{base}/{name}", objects))
    out.update(index(base, list(parts)))
    return out


# --- apps ------------------------------------------------------------------------------------


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


def apps(cluster: Cluster) -> dict[str, list[dict[str, Any]]]:
    # gitops/apps/ itself has no kustomization.yaml on purpose: Flux generates one that takes
    # in every folder there, so a user's app never needs an edit to a file we render.
    if not (cluster.components.whoami.enabled and cluster.components.traefik.enabled):
        return {}
    return folder(f"{ROOT}/apps/whoami", whoami_objects(cluster))


# --- clusters/<name> -------------------------------------------------------------------------


def flux_kustomization(
    name: str, path: str, depends_on: str | None, timeout: str
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if depends_on is not None:
        spec["dependsOn"] = [{"name": depends_on}]
    spec.update(
        {
            "interval": "1h",
            "retryInterval": "1m",
            "timeout": timeout,
            "sourceRef": dict(FLUX_SOURCE),
            "path": f"./{path}",
            "prune": True,
            "wait": True,
        }
    )
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": meta(name, FLUX_NAMESPACE),
        "spec": spec,
    }


def cluster_kustomizations(
    cluster: Cluster, files: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """controllers -> configs -> apps, each step only if its folder has anything in it."""
    base = f"{ROOT}/clusters/{cluster.name}"
    infra: list[dict[str, Any]] = []
    last: str | None = None
    for name, sub, timeout in ((CONTROLLERS, "controllers", "15m"), (CONFIGS, "configs", "5m")):
        path = f"{ROOT}/infrastructure/{sub}"
        if f"{path}/kustomization.yaml" in files:
            infra.append(flux_kustomization(name, path, last, timeout))
            last = name
    out = {f"{base}/apps.yaml": [flux_kustomization(APPS, f"{ROOT}/apps", last, "5m")]}
    if infra:
        out[f"{base}/infrastructure.yaml"] = infra
    return out
