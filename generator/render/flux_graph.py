"""The names of the Flux Kustomizations in gitops/clusters/<name>/ and what each one waits for.

Each component gets its own pair: `infra-<folder>` applies its controller (namespace,
HelmRepository, HelmRelease) and `config-<folder>` the objects that need its CRDs (MetalLB's
pool, cert-manager's issuers), depending on that controller only. `apps` depends on what the
rendered apps reference, nothing more. So a failing optional component (Longhorn, monitoring)
holds back nobody else: the MetalLB pool, the issuers and Traefik still come up.

`infra-controllers` and `infra-configs` are the names the tree used before, when one
Kustomization applied every controller; see RETIRED.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from generator.render.layout import CONFIGS_DIR, CONTROLLERS_DIR

APPS = "apps"
# Annotations by which cert-manager's ingress-shim asks an issuer for a certificate.
ISSUER_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")
INGRESS_CLASS_FOLDERS = {"traefik": "traefik"}  # ingressClassName -> component folder
CERT_MANAGER_FOLDER = "cert-manager"

# The single `infra-controllers` -> `infra-configs` chain the tree used to render. A cluster
# synced from that tree still has both, created by its root sync (the FluxInstance's). Were
# they simply dropped from git, the root sync would delete them, and kustomize-controller's
# finaliser garbage-collects a deleted Kustomization's whole inventory when its spec.prune is
# true (deletionPolicy MirrorPrune): every object whose kustomize.toolkit.fluxcd.io/name label
# still names it, i.e. each namespace and HelmRelease the new per-component Kustomizations had
# not re-applied (re-labelled) yet, and those are created in the same apply, so they lose that
# race. Flux's FAQ, "How can I safely rename a Flux Kustomization?": "If a Flux Kustomization
# has spec.prune set to true and you rename the object, then all reconciled workloads will be
# deleted and recreated ... first set spec.prune to false and sync the change"
# (fluxcd.io/flux/faq; kustomize-controller finalize(): DeleteAll with the owner labels as
# Inclusions, skipped when suspended). Deleting Longhorn's namespace would take its volumes.
# So they stay in the tree, suspended (never apply, never prune, never fight the new ones
# over the ownership labels), with prune: false and deletionPolicy: Orphan (the CRD: "Orphan"
# leaves the objects when the Kustomization is deleted), and the new Kustomizations adopt the
# same objects by name. Safe to drop from the tree once every cluster has synced them.
RETIRED = {"infra-controllers": CONTROLLERS_DIR, "infra-configs": CONFIGS_DIR}  # name: path


def controller_name(folder: str) -> str:
    """The Kustomization applying a component's controller folder."""
    return f"infra-{folder}"


def config_name(folder: str) -> str:
    """The Kustomization applying a component's configs folder."""
    return f"config-{folder}"


def _annotations(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = (doc.get("metadata") or {}).get("annotations") or {}
    return found


def app_needs(docs: Iterable[dict[str, Any]]) -> list[str]:
    """The Kustomizations the given app objects use: the ingress controller their Ingresses
    name, and cert-manager's issuers when they ask for a certificate. A name the objects do
    not reference (MetalLB, Longhorn) is not waited for."""
    needs: list[str] = []
    for doc in docs:
        if doc.get("kind") == "Ingress":
            ingress_class = str((doc.get("spec") or {}).get("ingressClassName", ""))
            folder = INGRESS_CLASS_FOLDERS.get(ingress_class)
            if folder is not None:
                needs.append(controller_name(folder))
        if any(key in _annotations(doc) for key in ISSUER_ANNOTATIONS):
            needs.append(config_name(CERT_MANAGER_FOLDER))
    return list(dict.fromkeys(needs))


def config_needs(folder: str, docs: Iterable[dict[str, Any]]) -> list[str]:
    """What a component's configs wait for besides its own controller: cert-manager's issuers
    when they hold a Certificate (cert-manager's own configs are the issuers)."""
    if folder == CERT_MANAGER_FOLDER:
        return []
    if any(doc.get("kind") == "Certificate" for doc in docs):
        return [config_name(CERT_MANAGER_FOLDER)]
    return []
