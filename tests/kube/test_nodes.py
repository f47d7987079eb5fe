"""generator.kube.nodes against the fake K3s API."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from generator.errors import HomelabError
from generator.kube import nodes
from generator.kube.client import Unreachable, connect
from generator.kube.drain import drain
from tests.fakes.kube import World, running_kube
from tests.kube.conftest import Clock, Lab, kubeconfig_for


def test_list_and_get_nodes(lab: Lab) -> None:
    found = nodes.list_nodes(lab.api)
    assert list(found) == ["k3s-agent-1", "k3s-agent-2", "k3s-server-1"]
    server = found["k3s-server-1"]
    assert server.control_plane and server.ready and not server.unschedulable
    assert server.version == "v1.33.4+k3s1"
    assert not found["k3s-agent-1"].control_plane
    assert nodes.get_node(lab.api, "k3s-agent-9") is None


def test_cordon_patches_unschedulable(lab: Lab) -> None:
    assert nodes.cordon(lab.api, "k3s-agent-1")
    assert lab.cluster.nodes["k3s-agent-1"]["spec"]["unschedulable"] is True
    state = nodes.get_node(lab.api, "k3s-agent-1")
    assert state is not None and state.unschedulable
    assert not nodes.cordon(lab.api, "k3s-agent-9")
    assert lab.calls("PATCH") == [
        "PATCH /api/v1/nodes/k3s-agent-1",
        "PATCH /api/v1/nodes/k3s-agent-9",
    ]


def test_delete_node_twice(lab: Lab) -> None:
    lab.cluster.add_pod("web", "k3s-agent-2", owner=("ReplicaSet", "web"))
    assert nodes.delete_node(lab.api, "k3s-agent-2") is True
    # K3s's etcd controller holds a finalizer on every Node: the Node stays, Terminating,
    # until the controller lets it go (an agent's at once, having no etcd member).
    assert nodes.get_node(lab.api, "k3s-agent-2") is not None
    assert nodes.get_node(lab.api, "k3s-agent-2") is None
    assert nodes.delete_node(lab.api, "k3s-agent-2") is False
    assert lab.calls("DELETE") == ["DELETE /api/v1/nodes/k3s-agent-2"] * 2
    nodes.list_nodes(lab.api)
    nodes.list_nodes(lab.api)
    assert ("default", "web") not in lab.cluster.pods  # pod GC collected it a moment later


def test_the_not_found_answer_is_the_real_one(lab: Lab) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(lab.api).delete_node("gone")
    assert caught.value.status == 404
    body = json.loads(caught.value.body)
    assert (body["reason"], body["message"]) == ("NotFound", 'nodes "gone" not found')


def test_wait_ready_follows_a_join(lab: Lab, clock: Clock) -> None:
    lab.cluster.join("k3s-agent-3", after=2, ready_after=3)
    seen: list[str] = []
    state = nodes.wait_ready(
        lab.api,
        "k3s-agent-3",
        timeout=60,
        interval=1,
        sleep=clock.sleep,
        clock=clock,
        on_wait=seen.append,
    )
    assert state.ready and not state.control_plane
    assert len(lab.calls("GET /api/v1/nodes/k3s-agent-3")) == 6  # 2 absent, 3 NotReady, Ready
    # what the live view shows while it waits: how long, and the node's last word
    assert seen[0] == "0.0s: not registered yet" and seen[2].startswith("2.0s: NotReady ")


def test_a_recreated_vm_goes_not_ready_then_ready(lab: Lab, clock: Clock) -> None:
    lab.cluster.join_after, lab.cluster.ready_after = 0, 2
    lab.cluster.vm_created("k3s-server-1")
    first = nodes.get_node(lab.api, "k3s-server-1")
    assert first is not None and not first.ready and "cni plugin not initialized" in first.message
    state = nodes.wait_ready(
        lab.api, "k3s-server-1", timeout=60, interval=1, sleep=clock.sleep, clock=clock
    )
    assert state.ready and state.control_plane


def test_wait_ready_times_out_with_the_last_message(lab: Lab, clock: Clock) -> None:
    lab.cluster.join("k3s-agent-3", after=0, ready_after=1000)
    with pytest.raises(HomelabError) as caught:
        nodes.wait_ready(
            lab.api, "k3s-agent-3", timeout=30, interval=10, sleep=clock.sleep, clock=clock
        )
    text = str(caught.value)
    assert text.startswith("node k3s-agent-3 was not Ready after 30s; last seen: NotReady ")
    assert "cni plugin not initialized" in text
    assert caught.value.hint and "journalctl -u k3s" in caught.value.hint


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_api_that_is_down_is_a_homelab_error(tmp_path: Path, clock: Clock) -> None:
    with running_kube(tmp_path, World()) as kube:
        config = kubeconfig_for(kube, f"https://127.0.0.1:{_closed_port()}")
    with connect(config) as api:
        with pytest.raises(Unreachable) as caught:
            nodes.list_nodes(api)
        assert "listing the nodes" in str(caught.value)
        assert "not answering: connection refused (K3s not started yet?)" in str(caught.value)
        with pytest.raises(HomelabError, match=r"cordoning node k3s-agent-1: .*refused"):
            drain(api, "k3s-agent-1", timeout=1, force=False, sleep=clock.sleep, clock=clock)
        with pytest.raises(HomelabError, match=r"not Ready after 2\.0s; last seen: .*refused"):
            nodes.wait_ready(
                api, "k3s-agent-1", timeout=2, interval=1, sleep=clock.sleep, clock=clock
            )
