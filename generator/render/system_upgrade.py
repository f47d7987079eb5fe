"""K3s upgrades as a git commit: Rancher's system-upgrade-controller (SUC) and two Plans.

Changing `cluster.k3s_version` and pushing changes the Plans' `version`; the controller then
runs rancher/k3s-upgrade on each node: servers one at a time (cordoned), then agents one at a
time (drained). New nodes boot the same version from their seed (render/k3s.py).

How the controller gets into the cluster, and why:
- A Flux GitRepository for github.com/rancher/system-upgrade-controller, pinned to tag
  v0.20.1 and to that tag's commit (Flux checks out the commit; the tag says which release it
  is). Its `ignore` keeps only the paths below, not the vendored Go code.
- Kustomization `system-upgrade-crds` applies ./pkg/crds/yaml/generated: it holds only the
  Plan CRD, the file the release ships as crd.yaml, and no kustomization.yaml, so Flux
  applies every file in it (that one).
- Kustomization `system-upgrade-controller` applies the repository root. Its kustomization.yaml
  is the one the release is built from (`kustomize build` after `kustomize edit set image`,
  scripts/package-controller): manifests/' Namespace, ServiceAccount, ConfigMap, Deployment and
  RBAC, with the namespace set on every object. In git it pins the image to v0.14.0; Flux's
  `images:` replaces that entry by name, so the result is the v0.20.1 release manifest.
  Pointing at ./manifests instead would lose the root's `namespace:`, which the RBAC
  bindings need.
- The Plans live in our own tree (layout.SYSTEM_UPGRADE_DIR), applied by
  `system-upgrade-plans`, which dependsOn the controller (which dependsOn its CRD).
None of them waits on a switchable component, and nothing switchable waits on them: K3s
upgrades must work whatever is switched on, and a broken Traefik must never hold them up.
"""

from __future__ import annotations

from typing import Any

from generator.config.model import Cluster
from generator.render import layout
from generator.render.kustomize import FLUX_NAMESPACE, flux_sync, folder, meta

SUC_URL = "https://github.com/rancher/system-upgrade-controller"
SUC_TAG = "v0.20.1"
SUC_COMMIT = "f1362a3fe1a8d55a0c65847f7c2779909dc7ec95"  # what the tag v0.20.1 points at
SUC_IMAGE = "rancher/system-upgrade-controller"
SUC_CRD_PATH = "./pkg/crds/yaml/generated"
SUC_SOURCE = "system-upgrade-controller"  # the GitRepository's name
# Everything but the root kustomization.yaml, manifests/ and the CRD folder is left out of the
# artifact. Each parent folder is let back in before its unwanted children are dropped again,
# which is how .gitignore-style rules re-include a nested path.
SUC_IGNORE = "\n".join(
    (
        "/*",
        "!/kustomization.yaml",
        "!/manifests/",
        "!/pkg/",
        "/pkg/*",
        "!/pkg/crds/",
        "/pkg/crds/*",
        "!/pkg/crds/yaml/",
        "",
    )
)
CRDS = "system-upgrade-crds"
CONTROLLER = "system-upgrade-controller"
PLANS = "system-upgrade-plans"

# Set by the controller's manifests (manifests/system-upgrade-controller.yaml).
NAMESPACE = "system-upgrade"
SERVICE_ACCOUNT = "system-upgrade"

UPGRADE_IMAGE = "rancher/k3s-upgrade"  # tagged by SUC with the Plan's version ("+" -> "-")
SERVER_PLAN = "k3s-server"
AGENT_PLAN = "k3s-agent"
PLAN_PATHS = {
    name: f"{layout.SYSTEM_UPGRADE_DIR}/{name}.yaml" for name in (SERVER_PLAN, AGENT_PLAN)
}
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
# kubectl drain's own timeout: PodDisruptionBudgets are honoured (evictions), and a drain that
# one blocks longer fails the job, which the controller retries; it stays under the controller's
# job deadline (SYSTEM_UPGRADE_JOB_ACTIVE_DEADLINE_SECONDS, 900 s) so the drain's message wins.
DRAIN_TIMEOUT = "10m"


# --- the Plans -------------------------------------------------------------------------------


def _plan(name: str, version: str, selector: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "upgrade.cattle.io/v1",
        "kind": "Plan",
        "metadata": meta(name, NAMESPACE, labels={"k3s-upgrade": name.removeprefix("k3s-")}),
        "spec": {
            "concurrency": 1,
            "version": version,
            "nodeSelector": {"matchExpressions": [{"key": CONTROL_PLANE, "operator": selector}]},
            "serviceAccountName": SERVICE_ACCOUNT,
            **spec,
            "upgrade": {"image": UPGRADE_IMAGE},
        },
    }


def server_plan(cluster: Cluster) -> dict[str, Any]:
    """Servers one at a time, cordoned: etcd keeps quorum, and pods stay put (no drain)."""
    return _plan(SERVER_PLAN, cluster.cluster.k3s_version, "Exists", cordon=True)


def agent_plan(cluster: Cluster) -> dict[str, Any]:
    """Agents one at a time, drained; `prepare` waits until the server Plan is done, as in
    upstream's examples/k3s-upgrade.yaml: agents never run a newer kubelet than the servers."""
    return _plan(
        AGENT_PLAN,
        cluster.cluster.k3s_version,
        "DoesNotExist",
        prepare={"image": UPGRADE_IMAGE, "args": ["prepare", SERVER_PLAN]},
        drain={
            # Evictions, never deletions: PodDisruptionBudgets hold, up to the timeout.
            "disableEviction": False,
            "timeout": DRAIN_TIMEOUT,
            "ignoreDaemonSets": True,
            "deleteEmptydirData": True,
            # kubectl's --force: only lets a drain go on past pods no controller recreates.
            "force": True,
        },
    )


def plans(cluster: Cluster) -> dict[str, list[dict[str, Any]]]:
    return folder(
        layout.SYSTEM_UPGRADE_DIR,
        {SERVER_PLAN: server_plan(cluster), AGENT_PLAN: agent_plan(cluster)},
    )


# --- the controller, from its own repository -------------------------------------------------


def git_repository() -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": meta(SUC_SOURCE, FLUX_NAMESPACE),
        "spec": {
            "interval": "12h",
            "url": SUC_URL,
            "ref": {"tag": SUC_TAG, "commit": SUC_COMMIT},
            "ignore": SUC_IGNORE,
        },
    }


def _upstream_kustomization(
    name: str, path: str, depends_on: str | None, **extra: Any
) -> dict[str, Any]:
    source = {"kind": "GitRepository", "name": SUC_SOURCE}
    return flux_sync(name, source, path, depends_on, **extra)


def controller_objects() -> list[dict[str, Any]]:
    """The GitRepository and the two Kustomizations applying the CRD and the controller."""
    return [
        git_repository(),
        _upstream_kustomization(CRDS, SUC_CRD_PATH, None),
        _upstream_kustomization(
            CONTROLLER, "./", CRDS, images=[{"name": SUC_IMAGE, "newTag": SUC_TAG}]
        ),
    ]
