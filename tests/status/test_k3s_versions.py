"""`status` shows each node's K3s version beside the wanted one (cluster.k3s_version): a node
on another version is marked and noted, never a blocker, since the upgrade Plans roll it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from generator import cli
from generator.status.facts import Facts, Guest, Kube, KubeNode
from generator.status.verdict import report
from tests.fakes.kube import node
from tests.labfakes import Lab, healthy, lab, ready_moment

WANTED = "v1.33.4+k3s1"  # the lab's cluster.yaml
OLDER = "v1.32.7+k3s1"


@pytest.fixture
def ready_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    with lab(tmp_path) as made:
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", made.pve.state.token_secret)
        healthy(made.guests, made.cluster, made.kube)
        yield made


def mid_upgrade(made: Lab, behind: str) -> None:
    moment = ready_moment(made.cluster)
    moment.nodes = [
        node(n.name, version=OLDER if n.name == behind else WANTED) for n in made.cluster.nodes
    ]
    made.world.moments = [moment]


def test_a_node_on_another_version_shows_both_and_is_no_blocker(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ready_lab.cluster.cluster.k3s_version == WANTED
    mid_upgrade(ready_lab, "k3s-agent-1")
    assert cli.main(ready_lab.cli("status")) == 0
    out = capsys.readouterr().out
    behind = next(x for x in out.splitlines() if x.startswith("k3s-agent-1"))
    assert behind.rstrip().endswith(f"Ready {OLDER} \u2192 {WANTED}"), behind
    current = next(x for x in out.splitlines() if x.startswith("k3s-agent-2"))
    assert current.rstrip().endswith(f"Ready {WANTED}"), current
    assert "\u2192" not in current
    assert (
        f"note: K3s {WANTED} wanted (cluster.k3s_version), not yet on k3s-agent-1 ({OLDER})" in out
    )
    assert out.rstrip().endswith("ready: everything is up")


def test_json_carries_the_wanted_version_and_the_marked_row(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    mid_upgrade(ready_lab, "k3s-server-1")
    assert cli.main(ready_lab.cli("status", "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["facts"]["k3s_version"] == WANTED
    rows = {r["node"]: r for r in data["rows"]["nodes"]}
    assert rows["k3s-server-1"]["k3s"] == f"Ready {OLDER} \u2192 {WANTED}"
    assert rows["k3s-server-1"]["ready"] is True
    assert data["ready"] is True


def test_all_on_the_wanted_version_adds_no_mark_and_no_note() -> None:
    guest = Guest("a", "server", 100, "10.0.0.11")
    kube = Kube(nodes=(KubeNode("a", True, WANTED),))
    verdict = report(Facts("home", (guest,), kube, k3s_version=WANTED))
    assert verdict.nodes[0].k3s == f"Ready {WANTED}"
    assert not [n for n in verdict.notes if "wanted" in n]
    # Without a wanted version (older callers) nothing is compared.
    off = replace(kube, nodes=(KubeNode("a", True, OLDER),))
    assert report(Facts("home", (guest,), off)).nodes[0].k3s == f"Ready {OLDER}"
