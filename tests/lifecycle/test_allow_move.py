"""A Proxmox host lost (issue 17, host loss), through the CLI on three hosts of the fake PVE
with the fake K3s API: `boot --replace NODE --allow-move` makes the node again as a new VM on
another host, cluster.yaml says so, and the old VM goes once its host is back; destroy does
what it can and says what is left."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.lifecycle import run
from tests.fakes.pve.state import HOSTS, cluster_state
from tests.lifecycle.labs import Lab, booted_lab, journal_exists

OLD, NEW = 202, 204  # k3s-server-2 on pve2; 203 (k3s-server-3) is taken
NAME = "k3s-server-2"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setattr(run, "POLL_INTERVAL", 0.01)
    state = cluster_state(secrets.token_hex(16), templates=(("pve1", "shared"),))
    multi = {"node": "pve1", "nodes": list(HOSTS), "storage": "shared", "seed_storage": "shared"}
    with booted_lab(tmp_path, 3, 1, monkeypatch.setenv, state, template_vmid=9000, **multi) as made:
        assert made.pve.state.vms[OLD].node == "pve2"
        path = made.directory / "cluster.yaml"
        path.write_text("# my lab: edit by hand\n" + path.read_text())
        yield made


def _lose_pve2(lab: Lab) -> None:
    lab.pve.state.set_offline("pve2")
    lab.k8s._set_node_ready(NAME, False)  # its kubelet stopped posting


def _journal(lab: Lab) -> dict[str, object]:
    return dict(json.loads((lab.directory / ".homelab-gen" / "lifecycle.json").read_text()))


def test_replace_on_an_offline_host_needs_allow_move(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    _lose_pve2(lab)
    assert lab.boot("--replace", NAME) == 1
    err = capsys.readouterr().err
    assert f"its VM {OLD} is on pve2, which is offline" in err
    assert "cannot delete a VM while its host is down" in err
    assert "Bring pve2 back" in err and "--allow-move" in err
    assert not lab.pve.state.mutating_calls()
    assert not [r for r in lab.world.requests if not r.startswith("GET")]
    assert not journal_exists(lab.directory)


def test_allow_move_without_an_offline_host_is_a_usage_error(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lab.boot("--replace", NAME, "--allow-move") == 2
    err = capsys.readouterr().err
    assert "--allow-move only makes again a node whose VM is on an offline" in err
    assert lab.cli("plan", "--allow-move") == 2
    assert "--allow-move goes with --replace NODE" in capsys.readouterr().err
    assert not lab.pve.state.mutating_calls()


def test_a_still_ready_node_is_not_moved(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    lab.pve.state.set_offline("pve2")  # corosync lost it, but the kubelet still posts: a split
    assert lab.boot("--replace", NAME, "--allow-move") == 1
    assert f"{NAME} is still Ready in Kubernetes" in capsys.readouterr().err
    assert not lab.pve.state.mutating_calls()


def test_a_server_on_a_lost_host_is_made_again_elsewhere(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    _lose_pve2(lab)
    old_member = lab.k8s.stale_member(NAME)
    yaml_before = (lab.directory / "cluster.yaml").read_text()
    capsys.readouterr()

    assert lab.cli("plan", "--replace", NAME, "--allow-move") == 1  # pve2 is still offline
    out, err = capsys.readouterr()
    steps = "delete-node, upload, clone, configure, resize, start, wait-ready"
    assert f"{NAME} ({NEW}): {steps}" in out  # a new seed: its instance-id names the VMID
    assert "Run `homelab-gen boot` as soon as pve2 is back" in err
    assert f"once boot runs, cluster.yaml: {NAME} is now vmid {NEW}" in out
    assert not lab.pve.state.mutating_calls()
    assert (lab.directory / "cluster.yaml").read_text() == yaml_before

    assert lab.boot("--replace", NAME, "--allow-move") == 1  # done, but VM 202 is left on pve2
    out, err = capsys.readouterr()
    assert f"cluster.yaml: {NAME} is now vmid {NEW}" in out and "commit both" in out
    assert "Run `homelab-gen boot` as soon as pve2 is back" in err
    assert f"pve2 is offline: VM {OLD} not reached" in err
    new = lab.pve.state.vms[NEW]
    assert new.node in {"pve1", "pve3"} and new.status == "running"
    assert lab.node_ready(NAME) and lab.k8s.removed_members == [old_member]
    assert "POST /api/v1/namespaces/default/pods/web-0/eviction" not in lab.world.requests
    text = (lab.directory / "cluster.yaml").read_text()
    assert text.startswith("# my lab: edit by hand\n")
    assert f"vmid: {NEW}  # set by homelab-gen boot --allow-move: was VM {OLD} on pve2" in text
    assert lab.reload().nodes[1].vmid == NEW
    assert _journal(lab) == {"nodes": {}, "moved": {str(OLD): {"name": NAME, "host": "pve2"}}}

    calls = len(lab.pve.state.mutating_calls())
    assert lab.cli("plan") == 1
    out, err = capsys.readouterr()
    assert "nothing to do" in out and "as soon as pve2 is back" in err
    assert len(lab.pve.state.mutating_calls()) == calls

    lab.pve.state.set_online("pve2")  # VM 202 starts on its own there (onboot)
    assert lab.cli("plan") == 0
    assert f"{NAME} ({OLD}): stop, delete" in capsys.readouterr().out
    assert lab.boot() == 0
    assert OLD not in lab.pve.state.vms and lab.pve.state.vms[NEW].status == "running"
    assert lab.world.requests.count(f"DELETE /api/v1/nodes/{NAME}") == 1  # the new Node stays
    assert lab.node_ready(NAME) and not journal_exists(lab.directory)
    capsys.readouterr()
    assert lab.cli("plan") == 0
    assert "nothing to do" in capsys.readouterr().out


class Killed(BaseException):
    """Stands in for the process dying: nothing below catches it."""


@pytest.mark.parametrize("after", [1, 2, 4])  # delete-node, rebuild, clone
def test_a_move_killed_halfway_resumes(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, after: int
) -> None:
    _lose_pve2(lab)
    real, seen = run._record, []

    def dying(r: run.Run, target: object, kind: str) -> None:
        real(r, target, kind)  # type: ignore[arg-type]
        seen.append(kind)
        if len(seen) == after:
            raise Killed

    monkeypatch.setattr(run, "_record", dying)
    with pytest.raises(Killed):
        lab.boot("--replace", NAME, "--allow-move")
    monkeypatch.setattr(run, "_record", real)
    entry = _journal(lab)["nodes"][NAME]  # type: ignore[index]
    assert entry["what"] == "move" and entry["vmid"] == NEW
    assert entry["host"] in {"pve1", "pve3"}
    assert lab.boot() == 1  # no flags: the journal names it; pve2 is still offline
    assert lab.node_ready(NAME) and lab.pve.state.vms[NEW].status == "running"
    assert lab.reload().nodes[1].vmid == NEW
    assert [c for c in lab.pve.state.calls if c.path.endswith("/clone")][-1].params["newid"] == (
        str(NEW)
    )
    assert not {205, 206} & set(lab.pve.state.vms)  # no second new VM
    lab.pve.state.set_online("pve2")
    assert lab.boot() == 0 and OLD not in lab.pve.state.vms


def test_destroy_with_a_host_offline_deletes_the_rest_and_remembers_the_cluster(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    from generator.config import edit

    edit.set_initialized(lab.directory, True)
    lab.pve.state.set_offline("pve2")
    capsys.readouterr()
    assert lab.cli("destroy", "--yes") == 1
    err = capsys.readouterr().err
    assert f"pve2 is offline: {NAME} not reached; bring it back and run destroy again" in err
    assert not {201, 203, 301} & set(lab.pve.state.vms) and OLD in lab.pve.state.vms
    assert "initialized: true" in (lab.directory / "cluster.yaml").read_text()

    lab.pve.state.set_online("pve2")
    assert lab.cli("destroy", "--yes") == 0
    assert OLD not in lab.pve.state.vms
    assert "initialized" not in (lab.directory / "cluster.yaml").read_text()


def test_the_journal_names_the_host_of_a_node_being_replaced(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    def dying(r: run.Run, target: object, kind: str) -> None:
        raise Killed

    monkeypatch.setattr(run, "_record", dying)
    with pytest.raises(Killed):
        lab.boot("--replace", "k3s-server-3")
    entry = _journal(lab)["nodes"]["k3s-server-3"]  # type: ignore[index]
    assert (entry["what"], entry["vmid"], entry["host"]) == ("replace", 203, "pve3")
