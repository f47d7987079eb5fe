"""`boot --replace` and `--prune` with proxmox.ha on, through the CLI on three hosts of the
fake PVE (PVE 9 with rules, PVE 8 with groups) and the fake K3s API: a VM leaves HA before it
is stopped (HA would only be asked to stop it), the rebuilt VM goes back into HA, and the
servers' rule holds every server again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.lifecycle import run
from tests.lifecycle.labs import Lab, booted_lab
from tests.proxmox.test_boot_hosts import HOSTS
from tests.proxmox.test_ha import RULE, SERVERS, _world

NAME, VMID = "k3s-server-2", 202
HA = {"ha": True, "node": "pve", "nodes": HOSTS, "storage": "ceph", "seed_storage": "isos"}


@pytest.fixture(params=["9.1.1", "8.4.1"], ids=["pve9", "pve8"])
def lab(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lab]:
    monkeypatch.setattr(run, "POLL_INTERVAL", 0.01)
    with booted_lab(tmp_path, 3, 1, monkeypatch.setenv, _world(request.param), **HA) as made:
        assert sorted(made.pve.state.ha_resources) == [*SERVERS, "vm:301"]
        yield made


def _order(lab: Lab) -> list[str]:
    return [f"{c.method} {c.path}" for c in lab.pve.state.mutating_calls()]


def _index(calls: list[str], end: str) -> int:
    return next(i for i, call in enumerate(calls) if call.endswith(end))


def test_a_replaced_server_leaves_ha_first_and_comes_back_into_it(lab: Lab) -> None:
    assert lab.boot("--replace", NAME) == 0
    calls = _order(lab)
    out_of_ha = _index(calls, f"cluster/ha/resources/vm:{VMID}")
    assert calls[out_of_ha].startswith("DELETE")
    assert out_of_ha < _index(calls, f"qemu/{VMID}/status/stop")
    back_in = [i for i, c in enumerate(calls) if c.endswith("cluster/ha/resources")]
    assert calls[back_in[-1]].startswith("POST") and _index(calls, "/clone") < back_in[-1]
    state = lab.pve.state
    assert sorted(state.ha_resources) == [*SERVERS, "vm:301"]
    assert state.vms[VMID].status == "running" and lab.node_ready(NAME)
    if state.version.startswith("9"):
        # Its delete purged it from the rule; the rule holds all three servers again.
        assert sorted(state.ha_rules[RULE]["resources"]) == list(SERVERS)
    else:
        assert state.ha_resources[f"vm:{VMID}"]["group"] == f"homelab-gen-home-{NAME}"
        assert f"homelab-gen-home-{NAME}" in state.ha_groups
    state.calls.clear()
    assert lab.cli("plan") == 0
    assert not state.mutating_calls()


def test_a_pruned_agent_leaves_ha_before_it_is_stopped(lab: Lab) -> None:
    text = (lab.directory / "cluster.yaml").read_text()
    agent = text[text.index("  - name: k3s-agent-1") :]
    (lab.directory / "cluster.yaml").write_text(text.replace(agent, ""))
    assert lab.cli("render") == 0
    assert lab.boot("--prune") == 0
    calls = _order(lab)
    assert _index(calls, "cluster/ha/resources/vm:301") < _index(calls, "qemu/301/status/stop")
    assert "vm:301" not in lab.pve.state.ha_resources and 301 not in lab.pve.state.vms
