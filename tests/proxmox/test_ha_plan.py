"""generator.proxmox.ha's pure planning as tables: rows in, HA steps out; and the config and
pre-flight checks of proxmox.ha."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from generator.config.model import Cluster
from generator.proxmox import ha
from generator.proxmox.actions import Action, Kind, Plan, VMPlan
from generator.proxmox.ha import HaFacts
from tests.clusters import cluster_data, small_network, small_nodes, text_of
from tests.fakes.pve.harness import make_cluster
from tests.test_cli import run_cli

HOSTS = ["pve1", "pve2", "pve3"]
RULE = "homelab-gen-home-servers"


def _cluster(on: bool = True, servers: int = 3) -> Cluster:
    return make_cluster(None, servers, 1, node="pve1", nodes=HOSTS, ha=on)


def _rows(cluster: Cluster) -> list[VMPlan]:
    """Every VM up to date, each on its own host."""
    return [
        VMPlan(n.name, n.vmid, (), "up to date", host=HOSTS[i % 3])
        for i, n in enumerate(cluster.nodes)
    ]


def _resource(node: str) -> dict[str, str]:
    return {"type": "vm", "state": "started", "comment": f"homelab-gen: cluster=home node={node}"}


ALL_IN = {
    "vm:201": _resource("k3s-server-1"),
    "vm:202": _resource("k3s-server-2"),
    "vm:203": _resource("k3s-server-3"),
    "vm:301": _resource("k3s-agent-1"),
}
RULE_OF_THREE = {RULE: {"resources": "vm:201,vm:202,vm:203", "type": "resource-affinity"}}


def _kinds(rows: list[VMPlan]) -> dict[str, list[str]]:
    return {row.name: [str(a.kind) for a in row.actions] for row in rows if row.actions}


@pytest.mark.parametrize(
    ("on", "facts", "expected"),
    [
        # HA on, nothing in HA yet: each VM added, then the rule.
        (
            True,
            HaFacts(read=True),
            {
                "k3s-server-1": ["ha-add"],
                "k3s-server-2": ["ha-add"],
                "k3s-server-3": ["ha-add"],
                "k3s-agent-1": ["ha-add"],
                RULE: ["ha-rule"],
            },
        ),
        # Everything in place: nothing.
        (True, HaFacts(resources=ALL_IN, rules=RULE_OF_THREE, read=True), {}),
        # The rule misses a server: replaced.
        (
            True,
            HaFacts(
                resources=ALL_IN,
                rules={RULE: {"resources": "vm:201,vm:202"}},
                read=True,
            ),
            {RULE: ["ha-rule-delete", "ha-rule"]},
        ),
        # PVE 8: a group before each server's resource, none for the agent.
        (
            True,
            HaFacts(uses_rules=False, read=True),
            {
                "k3s-server-1": ["ha-group", "ha-add"],
                "k3s-server-2": ["ha-group", "ha-add"],
                "k3s-server-3": ["ha-group", "ha-add"],
                "k3s-agent-1": ["ha-add"],
            },
        ),
        # HA off: ours out, the rule deleted; a user's own resource on vm:301 stays.
        (
            False,
            HaFacts(
                resources={**ALL_IN, "vm:301": {"comment": "added by hand"}},
                rules=RULE_OF_THREE,
                read=True,
            ),
            {
                "k3s-server-1": ["ha-remove"],
                "k3s-server-2": ["ha-remove"],
                "k3s-server-3": ["ha-remove"],
                RULE: ["ha-rule-delete"],
            },
        ),
        # HA off on PVE 8: each group after its resource.
        (
            False,
            HaFacts(
                resources={"vm:201": _resource("k3s-server-1")},
                groups={"homelab-gen-home-k3s-server-1": {"nodes": "pve1:2"}},
                uses_rules=False,
                read=True,
            ),
            {"k3s-server-1": ["ha-remove", "ha-group-delete"]},
        ),
        # HA off and never on: nothing.
        (False, HaFacts(), {}),
    ],
)
def test_with_ha(on: bool, facts: HaFacts, expected: dict[str, list[str]]) -> None:
    cluster = _cluster(on)
    assert _kinds(ha.with_ha(cluster, facts, _rows(cluster))) == expected


def test_a_new_vm_gets_its_ha_step_after_its_start_and_a_group_for_its_host() -> None:
    cluster = _cluster()
    start = Action(Kind.START, 202, "pve2")
    rows = [
        replace(r, actions=(start,), reason="create") if r.vmid == 202 else r
        for r in _rows(cluster)
    ]
    others = {sid: r for sid, r in ALL_IN.items() if sid != "vm:202"}
    facts = HaFacts(resources=others, uses_rules=False, read=True)
    row = next(r for r in ha.with_ha(cluster, facts, rows) if r.vmid == 202)
    assert [a.kind for a in row.actions] == [Kind.START, Kind.HA_GROUP, Kind.HA_ADD]
    assert row.actions[1].param("nodes") == "pve2:2,pve1:1,pve3:1"
    add = row.actions[2]
    assert add.param("sid") == "vm:202" and add.param("state") == "started"
    assert add.param("group") == "homelab-gen-home-k3s-server-2"
    assert add.param("comment") == "homelab-gen: cluster=home node=k3s-server-2"
    assert row.reason == "create"


def test_a_node_on_an_offline_host_is_left_alone() -> None:
    cluster = _cluster()
    rows = ha.with_ha(cluster, HaFacts(read=True), _rows(cluster), skip={"k3s-server-2"})
    kinds = _kinds(rows)
    assert "k3s-server-2" not in kinds
    assert [a.param("resources") for a in next(r for r in rows if r.name == RULE).actions] == [
        "vm:201,vm:203"
    ]


@pytest.mark.parametrize(
    ("facts", "first"),
    [
        # Made HA by us, or by hand: out of HA before the stop, either way.
        (HaFacts(resources={"vm:205": {"comment": "by hand"}}, read=True), ["ha-remove"]),
        # Not readable (no Sys.Audit), but /cluster/resources shows it HA-managed.
        (HaFacts(managed=frozenset({205})), ["ha-remove"]),
        (HaFacts(read=True), []),
    ],
)
def test_a_removed_vm_leaves_ha_before_it_is_stopped(facts: HaFacts, first: list[str]) -> None:
    row = VMPlan(
        "k3s-server-5",
        205,
        (Action(Kind.STOP, 205, "pve2"), Action(Kind.DELETE, 205, "pve2")),
        "orphan: delete (--prune)",
    )
    (out,) = ha.with_ha(_cluster(False), facts, [row])
    assert [str(a.kind) for a in out.actions] == [*first, "stop", "delete"]
    assert all(a.pve_node == "pve2" for a in out.actions)


def test_destroy_rows_delete_the_rule_in_the_phase_after_the_vms() -> None:
    cluster = _cluster()
    row = VMPlan("k3s-server-1", 201, (Action(Kind.DELETE, 201, "pve1"),), "delete")
    facts = HaFacts(resources=ALL_IN, rules=RULE_OF_THREE, read=True)
    plan = Plan(tuple(ha.destroy_rows(cluster, facts, [row])))
    assert [str(a.kind) for a in plan.vm_part.actions] == ["ha-remove", "delete"]
    assert [str(a.kind) for a in plan.rule_part.actions] == ["ha-rule-delete"]
    assert plan.seed_part.vms == ()


def test_more_servers_than_hosts_get_no_rule() -> None:
    cluster = make_cluster(None, 5, 0, node="pve1", nodes=HOSTS, ha=True)
    assert RULE not in _kinds(ha.with_ha(cluster, HaFacts(read=True), _rows(cluster)))


# -- pre-flight ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Storage:
    type: str
    shared: bool


@pytest.mark.parametrize(
    ("storage", "seeds", "problems", "warnings"),
    [
        (_Storage("rbd", True), _Storage("nfs", True), 0, 0),
        (_Storage("lvmthin", False), _Storage("nfs", True), 1, 0),
        # ISO seeds are CD images: a local one stops every migration (QemuMigrate.pm).
        (_Storage("rbd", True), _Storage("dir", False), 1, 0),
        # A local ZFS pool may be replicated by pvesr: a warning only.
        (_Storage("zfspool", False), _Storage("nfs", True), 0, 1),
    ],
)
def test_storage_findings(storage: Any, seeds: Any, problems: int, warnings: int) -> None:
    cluster = make_cluster(
        None, 3, 0, node="pve1", nodes=HOSTS, ha=True, storage="vms", seed_storage="isos"
    )
    found = ha.storage_findings(cluster, {h: {"vms": storage, "isos": seeds} for h in HOSTS})
    assert (len(found[0]), len(found[1])) == (problems, warnings)
    for text in found[0] + found[1]:
        assert "is local to pve1, pve2, pve3" in text
    off = make_cluster(None, 3, 0, node="pve1", nodes=HOSTS, storage="vms", seed_storage="isos")
    assert ha.storage_findings(off, {h: {"vms": storage, "isos": seeds} for h in HOSTS}) == (
        [],
        [],
    )


# -- cluster.yaml --------------------------------------------------------------------------------
def _validate(tmp_path: Path, hosts: list[str], **pve: Any) -> tuple[int, str]:
    data = cluster_data(
        small_nodes(3, 1), small_network(3), proxmox={"node": hosts[0], "nodes": hosts, **pve}
    )
    (tmp_path / "cluster.yaml").write_text(text_of(data))
    result = run_cli("validate", "-C", str(tmp_path))
    return result.returncode, result.stdout + result.stderr


def test_ha_on_one_host_is_refused(tmp_path: Path) -> None:
    code, out = _validate(tmp_path, ["pve1"], ha=True, placement="pack")
    assert code == 2
    assert "proxmox.ha: needs at least 2 Proxmox hosts (3 for quorum)" in out


def test_ha_defaults_to_off_and_three_hosts_are_fine(tmp_path: Path) -> None:
    assert make_cluster(None, 1, 0).proxmox.ha is False
    code, out = _validate(tmp_path, HOSTS, ha=True)
    assert code == 0, out
    assert "proxmox.ha" not in out
