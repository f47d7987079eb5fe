"""Pure lifecycle planning: the etcd quorum rule, the rows per node, resuming from the
journal, and which seed a rebuilt first server gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.config import edit
from generator.config.load import load
from generator.config.model import Cluster
from generator.kube.nodes import NodeState
from generator.lifecycle import journal, steps
from generator.lifecycle.journal import Journal
from generator.proxmox.actions import Kind
from generator.render import k3s
from tests import clusters


def _cluster(servers: int, agents: int = 1, **cluster: object) -> Cluster:
    data = clusters.cluster_data(
        nodes=clusters.small_nodes(servers, agents),
        network=clusters.small_network(servers),
        cluster=cluster or None,
    )
    return clusters.build(data)


def _state(name: str, ready: bool = True, server: bool = True) -> NodeState:
    return NodeState(name, ready, False, "v1.33.4+k3s1", server)


def _kube(cluster: Cluster, not_ready: tuple[str, ...] = ()) -> dict[str, NodeState]:
    return {n.name: _state(n.name, n.name not in not_ready, n.is_server) for n in cluster.nodes}


# -- quorum --------------------------------------------------------------------------------------
QUORUM = [
    # servers, not ready, leaving, safe?
    (3, (), "k3s-server-2", True),
    (3, ("k3s-server-3",), "k3s-server-2", False),  # two down of three
    (3, ("k3s-server-2",), "k3s-server-2", True),  # the one leaving is the one down
    (5, ("k3s-server-5",), "k3s-server-2", True),  # 3 of 5 stay up
    (5, ("k3s-server-4", "k3s-server-5"), "k3s-server-2", False),
    (5, ("k3s-server-4",), "k3s-server-5", True),  # 4 members stay, 3 Ready of them
    (1, (), "k3s-server-1", False),  # its datastore goes with it
    (3, (), "k3s-agent-1", True),  # agents hold no etcd member
]


@pytest.mark.parametrize(("servers", "down", "leaving", "safe"), QUORUM)
def test_quorum_rule(servers: int, down: tuple[str, ...], leaving: str, safe: bool) -> None:
    cluster = _cluster(servers)
    problem = steps.quorum_problem(cluster, _kube(cluster, down), leaving)
    assert (problem is None) is safe, problem
    if problem and servers > 1:
        assert "below quorum" in problem and ", ".join(down) in problem


def test_two_members_can_shrink_to_one_but_not_with_the_other_down() -> None:
    cluster = _cluster(3)
    kube = _kube(cluster)
    del kube["k3s-server-3"]  # only two members registered
    # the member leaves while its node runs: one member stays, up, and is a quorum of one
    assert steps.quorum_problem(cluster, kube, "k3s-server-1") is None
    kube["k3s-server-2"] = _state("k3s-server-2", ready=False)
    problem = steps.quorum_problem(cluster, kube, "k3s-server-1")
    assert problem and "leave 1 members with 0 Ready" in problem


def test_external_datastore_has_no_quorum_to_keep() -> None:
    cluster = _cluster(3, datastore_endpoint="postgres://k3s@db.lab:5432/k3s")
    assert (
        steps.quorum_problem(
            cluster, _kube(cluster, ("k3s-server-2", "k3s-server-3")), "k3s-server-1"
        )
        is None
    )


# -- the first server's seed --------------------------------------------------------------------
def _repo(tmp_path: Path, servers: int) -> Path:
    data = clusters.cluster_data(
        nodes=clusters.small_nodes(servers, 1), network=clusters.small_network(servers)
    )
    (tmp_path / "cluster.yaml").write_text("# mine\n" + clusters.text_of(data))
    return tmp_path


def test_first_server_starts_the_cluster_until_initialized_then_joins(tmp_path: Path) -> None:
    directory = _repo(tmp_path, 3)
    original = (directory / "cluster.yaml").read_text()
    cluster = load(directory).cluster
    first = cluster.first_server
    assert k3s.join_settings(cluster, first) == {"cluster-init": True}
    assert edit.set_initialized(directory, True) is True
    assert edit.set_initialized(directory, True) is False  # already set: nothing written
    text = (directory / "cluster.yaml").read_text()
    assert text.startswith("# mine\n") and "initialized: true" in text
    joined = load(directory).cluster
    assert k3s.join_settings(joined, joined.first_server) == {"server": "https://10.0.0.5:6443"}
    # the other servers and agents are as before
    for old, new in zip(cluster.nodes[1:], joined.nodes[1:], strict=True):
        assert k3s.join_settings(cluster, old) == k3s.join_settings(joined, new)
    # unset again (destroy): the key goes, and the file is as the user wrote it
    assert edit.set_initialized(directory, False) is True
    assert (directory / "cluster.yaml").read_text() == original


def test_a_single_server_always_starts_its_cluster(tmp_path: Path) -> None:
    directory = _repo(tmp_path, 1)
    edit.set_initialized(directory, True)
    cluster = load(directory).cluster
    assert k3s.join_settings(cluster, cluster.first_server) == {"cluster-init": True}


# -- rows ------------------------------------------------------------------------------------------
def test_teardown_order_and_resume() -> None:
    from generator.proxmox.observe import VMFacts

    target = steps.Target("k3s-agent-1", 301, False, steps.REPLACE)
    vm = VMFacts(301, "pve", "running", {"name": "k3s-agent-1"})
    kinds = [a.kind for a in steps.teardown(target, vm, True, "pve")]
    # The VM goes before the Node: a running kubelet would register it again at once.
    assert kinds == [Kind.DRAIN, Kind.STOP, Kind.DELETE, Kind.DELETE_NODE]
    resumed = steps.Target("k3s-agent-1", 301, False, steps.REPLACE, (Kind.DRAIN, Kind.STOP))
    stopped = VMFacts(301, "pve", "stopped", {"name": "k3s-agent-1"})
    assert [a.kind for a in steps.teardown(resumed, stopped, True, "pve")] == [
        Kind.DELETE,
        Kind.DELETE_NODE,
    ]
    # never registered in Kubernetes: nothing to drain or delete there
    assert [a.kind for a in steps.teardown(target, vm, False, "pve")] == [Kind.STOP, Kind.DELETE]
    # a server's etcd member leaves while it still runs, before it is stopped
    server = steps.Target("k3s-server-2", 202, True, steps.REPLACE)
    assert [a.kind for a in steps.teardown(server, vm, True, "pve", etcd=True)] == [
        Kind.DRAIN,
        Kind.LEAVE_ETCD,
        Kind.STOP,
        Kind.DELETE,
        Kind.DELETE_NODE,
    ]


def test_journal_round_trip_and_removal(tmp_path: Path) -> None:
    book = Journal().with_step("a", steps.REPLACE, 301, Kind.DRAIN)
    book = book.with_step("a", steps.REPLACE, 301, Kind.STOP)
    journal.save(tmp_path, book)
    path = tmp_path / journal.JOURNAL_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert journal.load(tmp_path).entries["a"].done == (Kind.DRAIN, Kind.STOP)
    journal.save(tmp_path, journal.load(tmp_path).without("a"))
    assert not path.exists()


def test_a_broken_journal_is_a_clear_error(tmp_path: Path) -> None:
    from generator.errors import HomelabError

    (tmp_path / ".homelab-gen").mkdir()
    (tmp_path / journal.JOURNAL_FILE).write_text("{not json")
    with pytest.raises(HomelabError, match="unfinished boot --replace"):
        journal.load(tmp_path)


def test_settings_leave_out_every_form_of_the_k3s_version() -> None:
    from generator.config.checks.k3s_version import without_versions as settings_of

    old = "INSTALL_K3S_VERSION=v1.33.4+k3s1\nurl: .../k3s/v1.33.4%2Bk3s1/install.sh\nuser: a\n"
    new = old.replace("v1.33.4+k3s1", "v1.34.1-rc2+k3s1").replace("v1.33.4%2B", "v1.34.1%2B")
    assert settings_of(old) == settings_of(new)
    assert settings_of(old) != settings_of(old.replace("user: a", "user: b"))
