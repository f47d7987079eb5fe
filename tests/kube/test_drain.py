"""generator.kube.drain against the fake K3s API's cluster."""

from __future__ import annotations

import pytest

from generator.errors import HomelabError
from generator.kube.drain import DrainResult, drain
from tests.kube.conftest import Clock, Lab


def _drain(lab: Lab, clock: Clock, node: str = "k3s-agent-1", **kw: object) -> DrainResult:
    options: dict[str, object] = {"timeout": 60.0, "force": False, "interval": 1.0, **kw}
    return drain(lab.api, node, sleep=clock.sleep, clock=clock, **options)  # type: ignore[arg-type]


def test_drain_evicts_replicaset_pods_and_leaves_daemonsets(lab: Lab, clock: Clock) -> None:
    lab.cluster.add_replicaset("web", replicas=2, nodes=["k3s-agent-1", "k3s-agent-2"])
    lab.cluster.add_pod("svclb-web-x", "k3s-agent-1", "kube-system", owner=("DaemonSet", "svclb"))
    lab.cluster.add_pod("static", "k3s-agent-1", "kube-system", mirror=True)
    result = _drain(lab, clock)
    assert result == DrainResult(("default/web-0",))
    on_agent = {p["metadata"]["name"] for p in lab.cluster.pods_on("k3s-agent-1")}
    assert on_agent == {"svclb-web-x", "static"}
    web = [p for p in lab.cluster.pods.values() if p["metadata"]["labels"].get("app") == "web"]
    assert len(web) == 2 and all(p["spec"]["nodeName"] != "k3s-agent-1" for p in web)
    assert lab.cluster.nodes["k3s-agent-1"]["spec"]["unschedulable"] is True
    assert lab.world.requests[:3] == [
        "PATCH /api/v1/nodes/k3s-agent-1",
        "GET /api/v1/pods",
        "POST /api/v1/namespaces/default/pods/web-0/eviction",
    ]


def test_a_budget_lets_evictions_through_one_at_a_time(lab: Lab, clock: Clock) -> None:
    lab.cluster.add_replicaset("web", replicas=2, nodes=["k3s-agent-1"])
    lab.cluster.add_pdb("web", selector={"app": "web"}, min_available=1)
    result = _drain(lab, clock)
    assert result == DrainResult(("default/web-0", "default/web-1"))
    evictions = lab.calls("POST")
    assert evictions[:2] == [
        "POST /api/v1/namespaces/default/pods/web-0/eviction",
        "POST /api/v1/namespaces/default/pods/web-1/eviction",
    ]
    assert len(evictions) > 2  # web-1 waited for web-0's replacement to be ready
    assert clock.slept and not lab.cluster.pods_on("k3s-agent-1")


def test_a_budget_that_never_allows_times_out_with_its_message(lab: Lab, clock: Clock) -> None:
    lab.cluster.add_replicaset("db", replicas=1, nodes=["k3s-agent-1"])
    lab.cluster.add_pdb("db", selector={"app": "db"}, min_available=1)
    with pytest.raises(HomelabError) as caught:
        _drain(lab, clock, timeout=3.0)
    error = caught.value
    assert error.message == (
        "draining k3s-agent-1 timed out after 3.0s; still there:\n"
        "  default/db-0: eviction refused: Cannot evict pod as it would violate the pod's"
        " disruption budget. The disruption budget db needs 1 healthy pods and has 1 currently"
    )
    assert error.hint and "--drain-timeout" in error.hint and "kubectl get pdb -A" in error.hint
    assert clock.slept == [1.0, 1.0, 1.0]


def test_unmanaged_pods_are_refused_unless_forced(lab: Lab, clock: Clock) -> None:
    lab.cluster.add_pod("debug", "k3s-agent-1")
    lab.cluster.add_pod("shell", "k3s-agent-1", "tools")
    with pytest.raises(HomelabError) as caught:
        _drain(lab, clock)
    assert "default/debug, tools/shell" in caught.value.message
    assert caught.value.hint and "--force" in caught.value.hint
    assert not lab.calls("POST")
    assert _drain(lab, clock, force=True) == DrainResult(("default/debug", "tools/shell"))
    assert not lab.cluster.pods_on("k3s-agent-1")


def test_terminating_pods_are_waited_for(lab: Lab, clock: Clock) -> None:
    lab.cluster.add_pod("old", "k3s-agent-1", owner=("ReplicaSet", "gone"), terminating=True)
    assert _drain(lab, clock) == DrainResult(())
    assert not lab.calls("POST")
    assert lab.calls("GET /api/v1/namespaces/default/pods/old")
    assert not lab.cluster.pods_on("k3s-agent-1")


def test_a_node_that_does_not_exist_is_drained_already(lab: Lab, clock: Clock) -> None:
    assert _drain(lab, clock, node="k3s-agent-9") == DrainResult(())
    assert lab.world.requests == ["PATCH /api/v1/nodes/k3s-agent-9"]
