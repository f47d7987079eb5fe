"""Calico, the alternative to K3s's Flannel (`cluster.cni: calico`), through the Tigera operator.

How it gets in, and why this way:
- Pods need a network before Flux can run, so the first server's seed drops the operator's
  HelmChart and our Installation into K3s's manifests folder (render/manifests.py). K3s's
  helm-controller installs the tigera-operator chart; `bootstrap: true` runs its job on the
  host network and tolerates the not-ready node, which is what a CNI install needs
  (helm.cattle.io/v1 HelmChart, spec.bootstrap: "needed to bootstrap the cluster (Cloud
  Controller Manager, CNI, etc)"). The operator installs its own CRDs (its Deployment runs
  with -manage-crds=true, tigera-operator.yaml v3.32.1), then the Installation below.
- Then Flux owns it: the same two objects are in the gitops tree (CALICO_DIR, Kustomization
  `calico`), so an upgrade is a commit that changes the chart version. K3s applies a
  manifests-folder file again at every start (docs.k3s.io/installation/packaged-components:
  "both on startup and when the file is changed"), which would put the seed's older version
  back after each K3s upgrade; so a oneshot unit removes the file once both objects exist.
  Removing it deletes nothing ("Deleting files out of this directory will not delete the
  corresponding resources from the cluster", same page).

The IP pool and its encapsulation: the pool is `cluster.cluster_cidr`, with
VXLANCrossSubnet, upstream's own default (custom-resources.yaml v3.32.1). On a home network
all nodes share one L2 subnet, so pod traffic between them goes unencapsulated at the full MTU
and only traffic that crosses a router is wrapped in VXLAN, which needs nothing from the
router (no BGP peering, unlike plain routing, and no IP-in-IP protocol 4, which some home
routers drop). The MTU is left to Calico's auto-detection (host MTU less the VXLAN header).
Nodes are addressed by their Kubernetes InternalIP, which K3s sets from `node-ip`, so Calico
never picks kube-vip's VIP or a MetalLB address that sits on the same interface.
"""

from __future__ import annotations

from typing import Any

from generator import yamlio
from generator.config.model import Cluster
from generator.render import layout
from generator.render.kustomize import folder, meta
from generator.render.templating import render_template

CALICO = "calico"
VERSION = "v3.32.1"  # the tigera-operator chart and Calico release; the operator is v1.42.3
CHART_REPO = "https://docs.tigera.io/calico/charts"
CHART = "tigera-operator"
OPERATOR_NAMESPACE = "tigera-operator"
HELM_NAMESPACE = "kube-system"  # where K3s's helm-controller watches HelmCharts
CALICO_DIR = f"{layout.GITOPS}/infrastructure/calico"
# What the first server's seed writes into K3s's manifests folder, and removes once applied.
MANIFEST_NAME = "homelab-calico"
MANIFEST_PATH = f"/var/lib/rancher/k3s/server/manifests/{MANIFEST_NAME}.yaml"
HANDOVER_UNIT = "homelab-gen-calico-handover.service"
HANDOVER_SCRIPT = "/usr/local/sbin/homelab-gen-calico-handover"
API_PORT = "6443"

Manifest = dict[str, Any]


def enabled(cluster: Cluster) -> bool:
    return cluster.cluster.cni == CALICO


def chart_values(cluster: Cluster) -> dict[str, Any]:
    """The tigera-operator chart's values (charts/tigera-operator/values.yaml). The chart's own
    Installation, APIServer, Goldmane and Whisker are off: we ship the one Installation below,
    and a small lab needs neither Calico's v3 API server nor its flow-log UI."""
    return {
        "installation": {"enabled": False},
        "apiServer": {"enabled": False},
        "goldmane": {"enabled": False},
        "whisker": {"enabled": False},
        # The operator starts before any pod network or kube-proxy rule: it reaches the API
        # where every node does, the VIP or the single server.
        "kubernetesServiceEndpoint": {"host": str(cluster.api_host), "port": API_PORT},
    }


def helm_chart(cluster: Cluster) -> Manifest:
    return {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": meta(CHART, HELM_NAMESPACE),
        "spec": {
            "repo": CHART_REPO,
            "chart": CHART,
            "version": VERSION,
            "targetNamespace": OPERATOR_NAMESPACE,
            "createNamespace": True,
            "bootstrap": True,
            "valuesContent": yamlio.dump_text(chart_values(cluster)),
        },
    }


def installation(cluster: Cluster) -> Manifest:
    """operator.tigera.io/v1 Installation `default`: the one the operator reconciles."""
    pool = {
        "name": "default-ipv4-ippool",
        "cidr": str(cluster.cluster.cluster_cidr),
        "blockSize": 26,
        "encapsulation": "VXLANCrossSubnet",
        "natOutgoing": "Enabled",
        "nodeSelector": "all()",
    }
    return {
        "apiVersion": "operator.tigera.io/v1",
        "kind": "Installation",
        "metadata": meta("default"),
        "spec": {
            "calicoNetwork": {
                "ipPools": [pool],
                "nodeAddressAutodetectionV4": {"kubernetes": "NodeInternalIP"},
            },
        },
    }


def objects(cluster: Cluster) -> list[Manifest]:
    """What both the seed and the gitops tree hold, identical, so the handover changes nothing."""
    return [helm_chart(cluster), installation(cluster)]


def gitops_folder(cluster: Cluster) -> dict[str, list[Manifest]]:
    """CALICO_DIR's files; empty with Flannel, so switching back leaves nothing behind."""
    if not enabled(cluster):
        return {}
    helm, install = objects(cluster)
    return folder(CALICO_DIR, {CHART: helm, "installation": install})


def handover_script() -> str:
    """Once K3s has applied both objects, take the copy away (see the module doc)."""
    return render_template(
        "cloud-init",
        "calico-handover.sh.j2",
        helm_namespace=HELM_NAMESPACE,
        chart=CHART,
        manifest=MANIFEST_PATH,
    )


def handover_unit() -> str:
    return render_template(
        "cloud-init", "calico-handover.service.j2", script=HANDOVER_SCRIPT, manifest=MANIFEST_PATH
    )
