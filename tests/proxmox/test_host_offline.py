"""A Proxmox host offline (issue 17, host loss), through the CLI against the fake on three
hosts: plan, boot and status name the host and the VMs on it, do the rest, exit 1; once the
host is back, boot finishes and a further plan is a no-op."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.cli import main
from tests.fakes.pve import FakePVE, running_fake
from tests.fakes.pve.harness import cluster_yaml
from tests.fakes.pve.state import HOSTS, cluster_state

SERVER_2, AGENT_2, AGENT_3 = 202, 302, 303  # small_nodes: servers 201.., agents 301..


def _write(directory: Path, fake: FakePVE, agents: int) -> None:
    text = cluster_yaml(
        fake,
        3,
        agents,
        node="pve1",
        nodes=list(HOSTS),
        storage="shared",
        seed_storage="shared",
        template_vmid=9000,
    )
    (directory / "cluster.yaml").write_text(text)
    assert main(["render", "-C", str(directory)]) == 0


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FakePVE]]:
    # The template on the shared NFS storage, so PVE can clone it to every host.
    state = cluster_state(secrets.token_hex(16), templates=(("pve1", "shared"),))
    with running_fake(tmp_path, state) as fake:
        directory = tmp_path / "lab"
        directory.mkdir()
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", fake.state.token_secret)
        _write(directory, fake, 1)
        assert main(["boot", "-C", str(directory), "--yes"]) == 0
        assert fake.state.vms[SERVER_2].node == "pve2"
        yield directory, fake


def _touching(fake: FakePVE, before: int, vmid: int, host: str) -> list[str]:
    return [
        c.path
        for c in fake.state.mutating_calls()[before:]
        if f"/{vmid}/" in c.path or c.path.startswith(f"/nodes/{host}/")
    ]


def test_host_offline_plan_boot_status_then_back(
    lab: tuple[Path, FakePVE], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, fake = lab
    _write(directory, fake, 3)  # two more agents, with pve2 down
    fake.state.set_offline("pve2")
    before, asked = len(fake.state.mutating_calls()), len(fake.state.calls)
    capsys.readouterr()

    assert main(["plan", "-C", str(directory)]) == 1
    out, err = capsys.readouterr()
    assert "pve2 is offline: k3s-server-2 not reached" in err
    assert "k3s-server-2 (202): -  [not reached: pve2 is offline]  on pve2" in out
    assert "k3s-agent-2 (302): upload, clone, configure, resize, start" in out
    assert len(fake.state.mutating_calls()) == before
    # pve2 is not even asked: /cluster/resources says it is offline
    assert not [c.path for c in fake.state.calls[asked:] if c.path.startswith("/nodes/pve2/")]

    assert main(["boot", "-C", str(directory), "--yes"]) == 1
    out, err = capsys.readouterr()
    assert "pve2 is offline: k3s-server-2 not reached" in err
    assert "k3s-agent-3: " in out and "start done" in out
    # the new agents on the hosts that are up; the VM on pve2 is left as it is
    assert {fake.state.vms[v].node for v in (AGENT_2, AGENT_3)} <= {"pve1", "pve3"}
    assert all(fake.state.vms[v].status == "running" for v in (AGENT_2, AGENT_3))
    assert fake.state.vms[SERVER_2].node == "pve2"
    assert _touching(fake, before, SERVER_2, "pve2") == []
    assert not [c for c in fake.state.mutating_calls()[before:] if c.method == "DELETE"]

    assert main(["status", "-C", str(directory), "--server", "https://127.0.0.1:1"]) == 1
    out = capsys.readouterr().out
    assert "host pve2 offline" in out
    assert "k3s-server-2: its Proxmox host pve2 is offline" in out

    fake.state.set_online("pve2")
    assert main(["boot", "-C", str(directory), "--yes"]) == 0
    capsys.readouterr()
    assert main(["plan", "-C", str(directory)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_a_host_just_gone_is_offline_too(
    lab: tuple[Path, FakePVE], capsys: pytest.CaptureFixture[str]
) -> None:
    """In its first 5 minutes offline, /cluster/resources still shows its VMs' last stats
    (status running): the host's own status decides, and nothing there is recreated."""
    directory, fake = lab
    fake.state.set_offline("pve2", reason="Connection refused", recent_stats=True)
    before = len(fake.state.mutating_calls())
    capsys.readouterr()
    assert main(["boot", "-C", str(directory), "--yes"]) == 1
    out, err = capsys.readouterr()
    assert "not done: pve2 is offline: k3s-server-2 not reached" in err
    assert "nothing to do" in out
    assert fake.state.mutating_calls()[before:] == []


def test_a_host_that_drops_after_the_cluster_read_is_offline_too(tmp_path: Path) -> None:
    """/cluster/resources still shows pve2 online, but reading its VMs answers pveproxy's
    595 (the host went down in between): that VM is unreachable, not an error, and the
    plan touches nothing of it."""
    from generator.proxmox import core
    from tests.fakes.pve import ApiError, Request, make_tls
    from tests.fakes.pve.harness import boot, client_for, make_cluster, seed_texts
    from tests.fakes.pve.routes import ROUTES

    vm_reads = ("/nodes/{node}/qemu", "/nodes/{node}/qemu/{vmid}")
    down = {"now": False}

    def dropped(original: Any) -> Any:
        def route(pve: FakePVE, req: Request) -> object:
            if down["now"] and req.params["node"] == "pve2":
                raise ApiError(595, "No route to host")
            return original(pve, req)

        return route

    state = cluster_state(secrets.token_hex(16), templates=(("pve1", "shared"),))
    reads = [("GET", t, dropped(h)) for m, t, h in ROUTES if m == "GET" and t.startswith(vm_reads)]
    routes = [*reads, *ROUTES]
    with FakePVE(state, make_tls(tmp_path / "tls"), routes) as fake:
        cluster = make_cluster(
            fake, 3, 0, node="pve1", nodes=list(HOSTS), storage="shared", seed_storage="shared"
        )
        assert boot(fake, cluster).errors == []
        down["now"] = True
        plan = core.prepare(client_for(fake, cluster), cluster, seed_texts(cluster)).plan
    assert plan.problems == ()
    assert plan.unreachable == (
        "pve2 is offline: k3s-server-2 not reached; bring it back and run boot again",
    )
    assert plan.is_noop, plan
    assert "pve2 is offline: no new VM goes there" in plan.warnings


def test_only_pveproxy_s_595_means_the_host_is_gone() -> None:
    """By the answer's status, not its text: VM 595's own errors name 595 too."""
    from generator.proxmox.failures import PveError
    from generator.proxmox.observe import is_host_unreachable

    gone = PveError("GET /nodes/pve2/qemu/202/config: 595 No route to host", status=595)
    vm_595 = PveError("GET /nodes/pve/qemu/595/config: 500 VM 595 is locked", status=500)
    assert is_host_unreachable(gone)
    assert not is_host_unreachable(vm_595)
    assert not is_host_unreachable(PveError("task failed: 595"))
