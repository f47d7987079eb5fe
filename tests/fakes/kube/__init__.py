"""An HTTPS fake of the Kubernetes API on 127.0.0.1, for the real kubernetes client.

    world = World([Moment(nodes=[node("k3s-server-1", ready=False)]),
                   Moment(nodes=[node("k3s-server-1")], instance=flux_instance(True), ...)])
    with running_kube(tmp_path, world) as kube:
        text = kube.k3s_yaml()            # what K3s writes: server https://127.0.0.1:6443
        ... rewrite the server to kube.url and read the API ...

A poll starts with GET /api/v1/nodes, so that request moves the world to its next moment
(the last one repeats); the FluxInstance, Kustomizations and HelmReleases are then read
from the same moment. `refuse=N` drops the first N connections unanswered, like an API
server that is not listening yet. Token auth (Bearer), TLS from its own throw-away CA.

`World(cluster=Cluster())` adds a mutable cluster (cluster.py) for the node lifecycle: GET,
PATCH and DELETE of a node, pod lists by spec.nodeName, single pods, PDBs and the policy/v1
Eviction subresource, with each request one tick of its clock. `world.requests` logs every
request as "METHOD /path", in order.
"""

from tests.fakes.kube.cluster import Cluster
from tests.fakes.kube.objects import (
    flux_instance,
    helmrelease,
    kustomization,
    node,
)
from tests.fakes.kube.server import FakeKube, Moment, World, running_kube

__all__ = [
    "Cluster",
    "FakeKube",
    "Moment",
    "World",
    "flux_instance",
    "helmrelease",
    "kustomization",
    "node",
    "running_kube",
]
