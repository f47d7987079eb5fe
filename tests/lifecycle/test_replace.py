"""boot --replace, --prune and plan through the console entry point, against the fake PVE and
the fake K3s API: the order of the steps, quorum, PDBs, the first server, resuming."""

from __future__ import annotations

import re

import pytest

from generator.lifecycle import run
from tests.fakes.pve.harness import cluster_yaml
from tests.lifecycle.labs import Lab, journal_exists

REPLACE_STEPS = ["drain", "stop", "delete", "delete-node", "clone", "configure", "resize"]


def _done_order(out: str, vm: str) -> list[str]:
    """The steps of `vm` in the order the plain progress lines said they were done."""
    return re.findall(rf"^{re.escape(vm)}: ([a-z-]+) done$", out, re.MULTILINE)


def test_plan_shows_every_step_per_node_and_changes_nothing(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lab.cli("plan", "--replace", "k3s-agent-1") == 0
    out = capsys.readouterr().out
    steps = ", ".join([*REPLACE_STEPS, "start", "wait-ready"])
    assert f"k3s-agent-1 (301): {steps}" in out
    assert not lab.pve.state.mutating_calls()
    assert not [r for r in lab.world.requests if not r.startswith("GET")]


def test_replacing_an_agent_drains_rebuilds_and_waits(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lab.boot("--replace", "k3s-agent-1") == 0
    out = capsys.readouterr().out
    assert _done_order(out, "k3s-agent-1") == [*REPLACE_STEPS, "start", "wait-ready"]
    # drained through evictions: the app's pod moved, the DaemonSet's stayed
    evictions = [r for r in lab.world.requests if r.endswith("/eviction")]
    assert evictions == ["POST /api/v1/namespaces/default/pods/web-0/eviction"]
    assert "DELETE /api/v1/nodes/k3s-agent-1" in lab.world.requests
    assert lab.pve_calls("DELETE", "/qemu/301") and lab.pve.state.vms[301].status == "running"
    clones = [c for c in lab.pve.state.calls if c.path.endswith("/clone")]
    assert [c.params["newid"] for c in clones] == ["301"]
    assert lab.node_ready("k3s-agent-1")
    assert not journal_exists(lab.directory)
    # nothing else was touched
    assert {c.path for c in lab.pve.state.mutating_calls()} <= {
        p for p in (c.path for c in lab.pve.state.calls) if "/301" in p or "/9000/clone" in p
    }
    assert lab.boot() == 0 and "nothing to do" in capsys.readouterr().out


def test_replacing_a_server_removes_its_etcd_member_before_it_rejoins(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    old_member = lab.k8s.stale_member("k3s-server-2")
    assert lab.boot("--replace", "k3s-server-2") == 0
    assert _done_order(capsys.readouterr().out, "k3s-server-2")[:3] == [
        "drain",
        "leave-etcd",  # while the node still runs
        "stop",
    ]
    assert lab.k8s.removed_members == [old_member]
    new_member = lab.k8s.stale_member("k3s-server-2")
    assert new_member and new_member != old_member
    assert lab.node_ready("k3s-server-2")
    # the other servers' seeds and cluster.yaml are as they were
    assert "initialized" not in (lab.directory / "cluster.yaml").read_text()


def test_replacing_the_first_server_makes_it_join_through_the_vip(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = lab.directory / "cloud-init" / "k3s-server-1" / "user-data"
    assert "cluster-init: true" in seed.read_text()
    others = {
        p: p.read_text()
        for p in (lab.directory / "cloud-init").glob("*/*")
        if p.parent.name != "k3s-server-1"
    }
    assert lab.boot("--replace", "k3s-server-1") == 0
    out = capsys.readouterr().out
    assert "joins through https://10.0.0.5:6443" in out and "commit" in out
    text = seed.read_text()
    assert "cluster-init" not in text and "server: https://10.0.0.5:6443" in text
    assert "cluster.initialized" not in text
    assert "initialized: true" in (lab.directory / "cluster.yaml").read_text()
    # the rebuilt VM booted the joining seed, not the one that starts a cluster
    booted = lab.pve.state.vms[201].booted_user_data or b""
    assert b"server: https://10.0.0.5:6443" in booted and b"cluster-init" not in booted
    assert lab.cli("render", "--check") == 0
    assert {p: p.read_text() for p in others} == others  # the other seeds did not change


def test_refused_when_etcd_would_lose_quorum(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    lab.k8s._set_node_ready("k3s-server-3", False)
    assert lab.boot("--replace", "k3s-server-2") == 1
    err = capsys.readouterr().err
    assert "below quorum" in err and "not Ready: k3s-server-3" in err
    assert not lab.pve.state.mutating_calls()
    assert not [r for r in lab.world.requests if not r.startswith("GET")]


def test_a_blocking_budget_stops_the_drain_with_its_message(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.k8s.pdbs[("default", "web")]["spec"]["minAvailable"] = 2
    assert lab.boot("--replace", "k3s-agent-1", "--drain-timeout", "0.2") == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "default/web-0" in text and "disruption budget" in text
    assert "--drain-timeout" in text
    assert "delete .homelab-gen/lifecycle.json" in text and "kubectl uncordon k3s-agent-1" in text
    assert not lab.pve_calls("DELETE") and lab.pve.state.vms[301].status == "running"
    assert "DELETE /api/v1/nodes/k3s-agent-1" not in lab.world.requests


def test_unmanaged_pods_need_force(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    lab.k8s.add_pod("scratch", "k3s-agent-2")
    assert lab.boot("--replace", "k3s-agent-2") == 1
    assert "--force" in capsys.readouterr().err
    assert not lab.pve_calls("DELETE")
    assert lab.boot("--replace", "k3s-agent-2", "--force") == 0


def test_a_typo_in_a_node_name_is_told_with_a_suggestion(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lab.boot("--replace", "k3s-agnt-1") == 2
    assert "did you mean k3s-agent-1?" in capsys.readouterr().err
    assert not lab.pve.state.mutating_calls()


def test_prune_drains_and_deletes_a_node_dropped_from_cluster_yaml(lab: Lab) -> None:
    (lab.directory / "cluster.yaml").write_text(cluster_yaml(lab.pve, 3, 1))
    assert lab.cli("render") == 0
    assert lab.boot("--prune") == 0
    assert 302 not in lab.pve.state.vms
    assert "k3s-agent-2" not in lab.k8s.nodes
    evictions = [r for r in lab.world.requests if r.endswith("/eviction")]
    assert evictions == ["POST /api/v1/namespaces/default/pods/web-1/eviction"]


def test_plain_boot_refuses_to_start_a_second_cluster(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    del lab.pve.state.vms[201]  # the first server's VM is gone
    assert lab.boot() == 1
    err = capsys.readouterr().err
    assert "would split this one" in err and "boot --replace k3s-server-1" in err
    assert not lab.pve.state.mutating_calls()
    assert lab.boot("--replace", "k3s-server-1") == 0
    assert 201 in lab.pve.state.vms and lab.node_ready("k3s-server-1")


class Killed(BaseException):
    """Stands in for the process dying: nothing below catches it."""


@pytest.mark.parametrize("after", range(1, 11))  # every journaled step
@pytest.mark.parametrize("journaled", [True, False], ids=["after-journal", "before-journal"])
def test_killed_at_any_step_resumes_to_the_same_end(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, after: int, journaled: bool
) -> None:
    real = run._record
    seen: list[str] = []

    def dying(r: run.Run, target: object, kind: str) -> None:
        seen.append(kind)
        if journaled:
            real(r, target, kind)  # type: ignore[arg-type]
        if len(seen) == after:
            raise Killed
        if not journaled:
            real(r, target, kind)  # type: ignore[arg-type]

    monkeypatch.setattr(run, "_record", dying)
    with pytest.raises(Killed):
        lab.boot("--replace", "k3s-server-2")
    monkeypatch.setattr(run, "_record", real)
    assert lab.boot() == 0  # no flags: the journal names the unfinished node
    assert not journal_exists(lab.directory)
    assert lab.node_ready("k3s-server-2") and lab.pve.state.vms[202].status == "running"
    assert len(lab.pve_calls("DELETE", "/qemu/202")) == 1
    assert len(lab.k8s.removed_members) == 1
    assert sorted(lab.k8s.nodes) == sorted(n.name for n in lab.config.nodes)


def _with_yaml(lab: Lab, old: str, new: str) -> None:
    path = lab.directory / "cluster.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    assert lab.cli("render") == 0


def test_replace_stale_leaves_a_version_bump_to_the_upgrade_plans(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_yaml(lab, "v1.33.4+k3s1", "v1.33.5+k3s1")
    assert lab.boot() == 0  # the new seeds are uploaded and attached
    capsys.readouterr()
    assert lab.cli("plan", "--replace-stale") == 0
    out = capsys.readouterr().out
    assert "drain" not in out and "nothing to do" in out


def test_replace_stale_takes_every_node_that_booted_other_settings(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_yaml(lab, "me@laptop", "me@desktop")  # the login keys live in every seed
    assert lab.boot() == 0  # attaching the new seeds does not make the nodes boot them
    capsys.readouterr()
    before = len(lab.pve.state.mutating_calls())
    assert lab.cli("plan", "--replace-stale") == 0
    assert len(lab.pve.state.mutating_calls()) == before
    out = capsys.readouterr().out
    for node in lab.config.nodes:
        leave = "leave-etcd, " if node.is_server else ""
        assert f"{node.name} ({node.vmid}): drain, {leave}stop, delete, delete-node" in out
    assert "joins through https://10.0.0.5:6443" in out  # the first server is among them
    assert "initialized" not in (lab.directory / "cluster.yaml").read_text()  # plan writes not


def test_destroy_lets_the_next_boot_start_a_new_cluster(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    from generator.config import edit

    edit.set_initialized(lab.directory, True)
    assert lab.cli("render") == 0
    seed = lab.directory / "cloud-init" / "k3s-server-1" / "user-data"
    assert "cluster-init" not in seed.read_text()
    assert lab.cli("destroy", "--yes") == 0
    assert "cluster.initialized is false again" in capsys.readouterr().out
    assert "initialized" not in (lab.directory / "cluster.yaml").read_text()  # back to default
    assert "cluster-init: true" in seed.read_text()
    assert lab.cli("render", "--check") == 0


def test_boot_refuses_when_every_server_of_an_initialized_cluster_is_gone(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    from generator.config import edit

    edit.set_initialized(lab.directory, True)
    assert lab.cli("render") == 0
    for vmid in (201, 202, 203):
        del lab.pve.state.vms[vmid]
    capsys.readouterr()
    assert lab.boot() == 1
    assert "no server of the cluster exists" in capsys.readouterr().err
    assert not lab.pve.state.mutating_calls()


def test_a_broken_node_is_replaced_without_waiting_for_its_pods(lab: Lab) -> None:
    # Its kubelet is gone: evicted pods stay Terminating until the Node goes.
    lab.k8s._set_node_ready("k3s-agent-1", False)
    old = lab.k8s.pods[("default", "web-0")]["metadata"]["uid"]
    assert lab.boot("--replace", "k3s-agent-1", "--drain-timeout", "5") == 0
    assert "POST /api/v1/namespaces/default/pods/web-0/eviction" in lab.world.requests
    assert lab.node_ready("k3s-agent-1")
    uids = {p["metadata"]["uid"] for p in lab.k8s.pods.values()}
    assert old not in uids  # collected with its Node


def test_a_broken_server_is_replaced_when_the_others_keep_quorum(lab: Lab) -> None:
    lab.k8s._set_node_ready("k3s-server-3", False)
    assert lab.boot("--replace", "k3s-server-3") == 0
    assert lab.node_ready("k3s-server-3") and len(lab.k8s.removed_members) == 1


def test_prune_shrinks_three_servers_to_one_a_member_at_a_time(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    (lab.directory / "cluster.yaml").write_text(cluster_yaml(lab.pve, 1, 2))
    assert lab.cli("render") == 0
    capsys.readouterr()
    assert lab.boot("--prune") == 0
    out = capsys.readouterr().out
    assert out.index("k3s-server-2: delete-node done") < out.index("k3s-server-3: drain done")
    assert not {202, 203} & set(lab.pve.state.vms)
    assert sorted(lab.k8s.members.values()) == ["k3s-server-1"]
    assert sorted(lab.k8s.nodes) == ["k3s-agent-1", "k3s-agent-2", "k3s-server-1"]


def test_without_the_kubeconfig_nothing_is_torn_down_and_the_message_says_why(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    (lab.directory / f"{lab.config.name}.kubeconfig").unlink()
    assert lab.boot("--replace", "k3s-agent-1") == 1
    err = capsys.readouterr().err
    assert "replacing or removing k3s-agent-1 needs the K3s API" in err
    assert "run 'homelab-gen kubeconfig' first" in err
    assert not lab.pve.state.mutating_calls()
