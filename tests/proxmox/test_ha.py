"""proxmox.ha against the fake's HA API on three hosts, on PVE 9 (rules) and PVE 8 (groups):
each VM an HA resource, the servers kept apart, switching HA off, destroy and a VM that HA
moved to another host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.cli import main
from generator.config.model import Cluster
from generator.proxmox import core
from generator.proxmox.actions import Kind, Plan
from tests.fakes.pve import FakePVE, running_fake
from tests.fakes.pve.harness import boot, client_for, cluster_yaml, make_cluster, seed_texts
from tests.fakes.pve.state import NodeState
from tests.proxmox.test_boot_hosts import HOSTS, _three_hosts

RULE = "homelab-gen-home-servers"
SERVERS = ("vm:201", "vm:202", "vm:203")


def _world(version: str) -> Any:
    state = _three_hosts()
    state.version = version
    # HA resources, rules and groups are read with Sys.Audit and changed with Sys.Console
    # on / (API2/HA/Resources.pm): the README's grant, not propagated.
    state.permissions["/"] = {"Sys.Audit": 0, "Sys.Console": 0}
    return state


@pytest.fixture(params=["9.1.1", "8.4.1"], ids=["pve9", "pve8"])
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakePVE]:
    with running_fake(tmp_path, _world(request.param)) as running:
        yield running


@pytest.fixture
def fake9(tmp_path: Path) -> Iterator[FakePVE]:
    with running_fake(tmp_path, _world("9.1.1")) as running:
        yield running


def _lab(fake: FakePVE, servers: int = 3, agents: int = 1, **kw: Any) -> Cluster:
    for key, value in (
        ("ha", True),
        ("node", "pve"),
        ("nodes", HOSTS),
        ("storage", "ceph"),
        ("seed_storage", "isos"),
    ):
        kw.setdefault(key, value)
    return make_cluster(fake, servers, agents, **kw)


def _plan(fake: FakePVE, cluster: Cluster) -> Plan:
    client = client_for(fake, cluster)
    return core.prepare(client, cluster, seed_texts(cluster)).plan


def _changes(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, p) for m, p in calls if m != "GET" and "cluster/ha" in p]


def _pve9(fake: FakePVE) -> bool:
    return fake.state.version.startswith("9")


# -- HA on ------------------------------------------------------------------------------------
def test_ha_on_makes_every_vm_an_ha_resource_and_keeps_the_servers_apart(fake: FakePVE) -> None:
    cluster = _lab(fake)
    run = boot(fake, cluster)
    assert run.errors == []
    resources = fake.state.ha_resources
    assert sorted(resources) == [*SERVERS, "vm:301"]
    for sid, resource in resources.items():
        assert resource["state"] == "started"
        assert resource["comment"].startswith("homelab-gen: cluster=home node=k3s-")
        assert fake.state.vms[int(sid[3:])].status == "running"
    if _pve9(fake):
        rule = fake.state.ha_rules[RULE]
        assert rule["type"] == "resource-affinity" and rule["affinity"] == "negative"
        assert rule["resources"] == list(SERVERS)
        assert fake.state.ha_groups == {}
    else:
        assert fake.state.ha_rules == {}
        for sid in SERVERS:
            vm = fake.state.vms[int(sid[3:])]
            group = resources[sid]["group"]
            assert group == f"homelab-gen-home-{vm.config['name']}"
            # Preferred: the host placement put it on; the others as fallbacks.
            nodes = fake.state.ha_groups[group]["nodes"].split(",")
            assert nodes[0] == f"{vm.node}:2" and len(nodes) == 3
        assert "group" not in resources["vm:301"]  # agents need no place of their own
    assert _plan(fake, cluster).is_noop


def test_the_ha_step_comes_after_the_vm_is_started(fake9: FakePVE) -> None:
    cluster = _lab(fake9, servers=1, agents=0)
    row = next(vm for vm in _plan(fake9, cluster).vms if vm.vmid == 201)
    kinds = [a.kind for a in row.actions]
    assert kinds[-2:] == [Kind.START, Kind.HA_ADD]


def test_ha_off_changes_nothing_in_ha(fake: FakePVE) -> None:
    cluster = _lab(fake, ha=False)
    calls: list[tuple[str, str]] = []
    client = client_for(fake, cluster, before_call=lambda m, p: calls.append((m, p)))
    for _ in range(2):
        prepared = core.prepare(client, cluster, seed_texts(cluster))
        assert not any(o.error for o in core.boot(client, prepared, 4, lambda _: None))
    assert prepared.plan.is_noop
    # No VM of ours is HA-managed: the HA config is not even read.
    assert [p for _, p in calls if "cluster/ha" in p] == []
    assert fake.state.ha_resources == {} and fake.state.ha_rules == {}


# -- HA switched off later -------------------------------------------------------------------
def test_switching_ha_off_removes_ours_and_leaves_the_vms_and_a_foreign_resource(
    fake: FakePVE,
) -> None:
    assert boot(fake, _lab(fake)).errors == []
    fake.state.ha_resources["vm:100"] = {"type": "vm", "state": "started", "comment": "mine"}
    off = _lab(fake, ha=False)
    calls: list[tuple[str, str]] = []
    client = client_for(fake, off, before_call=lambda m, p: calls.append((m, p)))
    prepared = core.prepare(client, off, seed_texts(off))
    kinds = {a.kind for a in prepared.plan.actions}
    assert Kind.HA_REMOVE in kinds and Kind.STOP not in kinds and Kind.DELETE not in kinds
    assert not any(o.error for o in core.boot(client, prepared, 4, lambda _: None))
    assert list(fake.state.ha_resources) == ["vm:100"]
    assert fake.state.ha_rules == {} and fake.state.ha_groups == {}
    assert all(fake.state.vms[v].status == "running" for v in (201, 202, 203, 301))
    assert ("DELETE", "cluster/ha/resources/vm:100") not in calls
    assert _plan(fake, off).is_noop


def test_adding_servers_replaces_the_rule(tmp_path: Path) -> None:
    state = _world("9.1.1")
    for host in ("pve4", "pve5"):  # five hosts: room for five servers apart
        state.nodes[host] = NodeState(storages=dict(state.nodes["pve2"].storages))
        state.nodes[host].memory_free = 48 * 2**30
    five = [*HOSTS, "pve4", "pve5"]
    with running_fake(tmp_path, state) as fake:
        assert boot(fake, _lab(fake, servers=3, agents=0, nodes=five)).errors == []
        assert fake.state.ha_rules[RULE]["resources"] == list(SERVERS)
        bigger = _lab(fake, servers=5, agents=0, nodes=five)
        plan = _plan(fake, bigger)
        rule_row = next(vm for vm in plan.vms if vm.name == RULE)
        assert [a.kind for a in rule_row.actions] == [Kind.HA_RULE_DELETE, Kind.HA_RULE]
        assert boot(fake, bigger).errors == []
        assert fake.state.ha_rules[RULE]["resources"] == [*SERVERS, "vm:204", "vm:205"]
        assert _plan(fake, bigger).is_noop


# -- destroy ------------------------------------------------------------------------------
def test_destroy_takes_each_vm_out_of_ha_before_stopping_it(fake: FakePVE) -> None:
    cluster = _lab(fake)
    assert boot(fake, cluster).errors == []
    calls: list[tuple[str, str]] = []
    client = client_for(fake, cluster, before_call=lambda m, p: calls.append((m, p)))
    observed = core.observe(client, cluster)
    plan = core.destroy_plan(cluster, observed)
    outcomes = core.destroy(client, cluster, observed, plan, lambda _: None)
    assert not any(o.error for o in outcomes)
    for vmid in (201, 202, 203, 301):
        removed = calls.index(("DELETE", f"cluster/ha/resources/vm:{vmid}"))
        stops = [i for i, (m, p) in enumerate(calls) if p.endswith(f"/{vmid}/status/stop")]
        assert stops and removed < stops[0]
    assert set(fake.state.vms) == {9000, 100}
    assert fake.state.ha_resources == {} and fake.state.ha_rules == {}
    assert fake.state.ha_groups == {}


def test_a_stop_behind_has_back_only_asks_ha(fake9: FakePVE) -> None:
    """Why destroy goes through HA first: the fake, as qemu-server, answers a stop of an
    HA-managed VM with a `hastop` task that leaves the VM running."""
    cluster = _lab(fake9, servers=1, agents=0)
    assert boot(fake9, cluster).errors == []
    client = client_for(fake9, cluster)
    client.task("POST", "nodes/pve/qemu/201/status/stop")
    assert fake9.state.vms[201].status == "running"


# -- a VM HA moved -------------------------------------------------------------------------
def test_a_vm_ha_moved_is_still_ours(fake: FakePVE) -> None:
    cluster = _lab(fake)
    assert boot(fake, cluster).errors == []
    vm = fake.state.vms[202]
    moved_to = next(h for h in HOSTS if h != vm.node)
    fake.state.migrate(202, moved_to)
    plan = _plan(fake, cluster)
    assert plan.is_noop, plan
    assert next(row for row in plan.vms if row.vmid == 202).host == moved_to
    client = client_for(fake, cluster)
    observed = core.observe(client, cluster)
    destroy = core.destroy_plan(cluster, observed)
    row = next(r for r in destroy.vms if r.vmid == 202)
    assert {a.pve_node for a in row.actions} == {moved_to}
    assert not any(
        o.error for o in core.destroy(client, cluster, observed, destroy, lambda _: None)
    )
    assert 202 not in fake.state.vms


# -- pre-flight ---------------------------------------------------------------------------
def test_a_token_without_sys_console_is_told_the_grant(fake9: FakePVE) -> None:
    fake9.state.permissions["/"] = {"Sys.Audit": 0}
    plan = _plan(fake9, _lab(fake9))
    problem = next(p for p in plan.problems if "proxmox.ha" in p)
    assert "lacks Sys.Console on /" in problem
    assert "pveum acl modify / --tokens 'homelab@pve!homelab-gen' --roles HomelabGenHA" in problem
    assert fake9.state.ha_resources == {}


def test_a_local_vm_storage_is_a_problem_with_ha(fake9: FakePVE) -> None:
    for host in HOSTS:
        fake9.state.nodes[host].storages["local"].content.add("images")
    plan = _plan(fake9, _lab(fake9, storage="local"))
    assert any("proxmox.storage 'local' is local to pve, pve2, pve3" in p for p in plan.problems), (
        plan.problems
    )


def test_through_the_cli_a_moved_vm_is_planned_shown_and_destroyed_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_fake(tmp_path, _world("9.1.1")) as fake:
        directory = tmp_path / "lab"
        directory.mkdir()
        text = cluster_yaml(
            fake, 3, 1, node="pve", nodes=HOSTS, storage="ceph", seed_storage="isos", ha=True
        )
        (directory / "cluster.yaml").write_text(text)
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", fake.state.token_secret)
        assert main(["render", "-C", str(directory)]) == 0
        assert main(["boot", "-C", str(directory), "--yes"]) == 0
        moved_to = next(h for h in HOSTS if h != fake.state.vms[202].node)
        fake.state.migrate(202, moved_to)
        capsys.readouterr()

        assert main(["plan", "-C", str(directory)]) == 0
        out = capsys.readouterr().out
        assert (
            "nothing to do" in out and f"k3s-server-2 (202): -  [up to date]  on {moved_to}" in out
        )

        main(["status", "-C", str(directory), "--server", "https://127.0.0.1:1", "--json"])
        facts = json.loads(capsys.readouterr().out)["facts"]
        guest = next(g for g in facts["guests"] if g["vmid"] == 202)
        assert guest["vm"] == "running"

        assert main(["destroy", "-C", str(directory), "--yes"]) == 0
        out = capsys.readouterr().out
        assert f"{RULE}: ha-rule-delete" in out
        assert set(fake.state.vms) == {9000, 100}
        assert fake.state.ha_resources == {} and fake.state.ha_rules == {}
