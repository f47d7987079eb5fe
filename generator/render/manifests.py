"""What the first server drops into K3s's manifests folder: kube-vip and Flux, never a Secret.

K3s applies every file there and retries failures every 15 s, so objects whose CRDs or
namespaces arrive later converge on their own. K3s's deploy controller applies them with
wrangler, which keeps each object in the `objectset.rio.cattle.io/applied` annotation with
only strings over 64 characters cut short (rancher/wrangler pkg/apply/desiredset_compare.go,
pruneValues): a secret value here would sit readable in that annotation. The Secrets Flux
needs first come from render/bootstrap.py instead.
"""

from __future__ import annotations

import re
from typing import Any

from generator import yamlio
from generator.config.model import Cluster
from generator.render import calico, kube_vip, layout
from generator.render.templating import render_template

MANIFESTS_DIR = "/var/lib/rancher/k3s/server/manifests"

FLUX_OPERATOR_CHART = "oci://ghcr.io/controlplaneio-fluxcd/charts/flux-operator"
FLUX_OPERATOR_VERSION = "0.49.0"
# The operator resolves a semver range from the manifests bundled in its own (pinned) image,
# so the minor range below resolves to one fixed Flux release per operator version.
FLUX_VERSION = "2.8.x"
FLUX_NAMESPACE = "flux-system"
# The FluxInstance pulls with this Secret; render/bootstrap.py creates it on the first server.
GIT_SECRET = "flux-system"
FLUX_COMPONENTS = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
]

SCP_LIKE = re.compile(r"^(?P<user>[^@/]+)@(?P<host>[^:/]+):(?P<path>.+)$")

Manifest = dict[str, Any]


def first_server_manifests(cluster: Cluster) -> dict[str, str]:
    """File name (a valid Kubernetes name) -> text, for the first server's manifests folder."""
    groups: dict[str, list[Manifest]] = {}
    if cluster.network.api_vip is not None:
        groups["homelab-kube-vip"] = kube_vip.kube_vip(cluster)
    if calico.enabled(cluster):  # before Flux: its pods need a network
        groups[calico.MANIFEST_NAME] = calico.objects(cluster)
    groups["homelab-flux-operator"] = [flux_operator_chart()]
    groups["homelab-flux-instance"] = [namespace(FLUX_NAMESPACE), flux_instance(cluster)]
    return {
        f"{name}.yaml": render_template("cloud-init", "manifest.yaml.j2", documents=docs)
        for name, docs in groups.items()
    }


def namespace(name: str) -> Manifest:
    # The operator's chart creates it too; K3s would retry anyway, but this converges at once.
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def flux_operator_values() -> dict[str, Any]:
    # The FluxInstance in the next file needs the operator's CRDs.
    return {"installCRDs": True}


def flux_operator_chart() -> Manifest:
    return {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "flux-operator", "namespace": "kube-system"},
        "spec": {
            "chart": FLUX_OPERATOR_CHART,
            "version": FLUX_OPERATOR_VERSION,
            "targetNamespace": FLUX_NAMESPACE,
            "createNamespace": True,
            "valuesContent": yamlio.dump_text(flux_operator_values()),
        },
    }


def flux_git_url(url: str) -> str:
    """Flux takes ssh:// URLs only; turn git@host:path into ssh://git@host/path."""
    match = SCP_LIKE.match(url)
    if match and "://" not in url:
        return f"ssh://{match['user']}@{match['host']}/{match['path']}"
    return url


def flux_instance(cluster: Cluster) -> Manifest:
    git = cluster.cluster.git
    sync: dict[str, Any] = {
        "kind": "GitRepository",
        "url": flux_git_url(git.url),
        "ref": f"refs/heads/{git.branch}",
        "path": layout.flux_cluster_dir(cluster.name),
    }
    if git.private:
        sync["pullSecret"] = GIT_SECRET
    return {
        "apiVersion": "fluxcd.controlplane.io/v1",
        "kind": "FluxInstance",
        "metadata": {"name": "flux", "namespace": FLUX_NAMESPACE},
        "spec": {
            "distribution": {"version": FLUX_VERSION, "registry": "ghcr.io/fluxcd"},
            "components": list(FLUX_COMPONENTS),
            "cluster": {"type": "kubernetes", "networkPolicy": True},
            "sync": sync,
        },
    }
