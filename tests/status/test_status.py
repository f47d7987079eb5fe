"""`status`: facts from the fake PVE's guest agents and the fake K3s API, the table, the
first blocking reason, --wait and --json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import cli
from generator.environment import Environment
from generator.status import cloudinit
from generator.status.facts import CloudInit, Facts, FluxObject, Guest, Kube, KubeNode
from generator.status.verdict import report
from tests.fakes.kube import Moment, helmrelease, kustomization, node
from tests.fakes.pve.agent_routes import (
    AGENT_DOWN,
    JSON_COMMAND,
    LONG_COMMAND,
    NO_FORMAT_FLAG,
    ExecScript,
    cloud_init_long,
    exec_for_json,
)
from tests.labfakes import Lab, healthy, lab, ready_moment

CI_ERROR = "('scripts_user', RuntimeError('Runparts: 1 failures (k3s-install) in 1 attempted'))"


@pytest.fixture
def ready_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    with lab(tmp_path) as made:
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", made.pve.state.token_secret)
        healthy(made.guests, made.cluster, made.kube)
        yield made


def run_status(made: Lab, *args: str) -> int:
    return cli.main(made.cli("status", *args))


# -- the whole way, through the CLI -------------------------------------------------------
def test_all_ready_prints_every_node_and_flux_object(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_status(ready_lab) == 0
    out = capsys.readouterr().out
    for n in ready_lab.cluster.nodes:
        line = next(x for x in out.splitlines() if x.startswith(n.name))
        assert line.split()[1:6] == ["running", "up", str(n.ip), "done", "Ready"], line
        assert "v1.33.4+k3s1" in line
    assert "Flux (applied main@sha1:0c1b2a3d4e5f" in out
    assert "HelmRelease    longhorn-system/longhorn" in out
    assert out.rstrip().endswith("ready: everything is up")


def test_json_holds_the_same_facts(ready_lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_status(ready_lab, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ready"] is True and data["blocker"] is None
    guests = {g["name"]: g for g in data["facts"]["guests"]}
    assert guests["k3s-agent-2"]["addresses"] == ["10.0.0.102"]
    assert guests["k3s-agent-2"]["cloud_init"]["status"] == "done"
    assert [n["name"] for n in data["facts"]["kube"]["nodes"]] == [
        "k3s-agent-1",
        "k3s-agent-2",
        "k3s-server-1",
    ]
    assert data["facts"]["kube"]["instance"]["revision"].startswith("main@sha1:")
    assert {r["name"] for r in data["facts"]["kube"]["helmreleases"]} == {
        "metallb",
        "traefik",
        "longhorn",
    }


def test_node_stuck_in_cloud_init_error_is_the_blocker(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    stuck = ready_lab.cluster.nodes[-1]  # k3s-agent-2
    ready_lab.guests.vm(stuck.vmid).commands[JSON_COMMAND] = [
        exec_for_json("error", errors=(CI_ERROR,))
    ]
    moment = ready_moment(ready_lab.cluster)
    moment.nodes = [n for n in moment.nodes if n["metadata"]["name"] != stuck.name]
    ready_lab.world.moments = [moment]
    assert run_status(ready_lab, "--wait", "--timeout", "0.2", "--interval", "0.05") == 1
    captured = capsys.readouterr()
    assert f"error: not ready after 0 s: k3s-agent-2: cloud-init error: {CI_ERROR}" in (
        captured.err
    )
    row = next(x for x in captured.out.splitlines() if x.startswith("k3s-agent-2"))
    assert "error: ('scripts_user'" in row and "not joined" in row


def test_api_not_up_yet_shows_vm_and_cloud_init_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with lab(tmp_path) as made:
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", made.pve.state.token_secret)
        healthy(made.guests, made.cluster)  # K3s has not written its kubeconfig yet
        server = made.cluster.first_server
        made.guests.vm(server.vmid).commands[JSON_COMMAND] = [exec_for_json("running")]
        assert run_status(made, "--json") == 1
        data = json.loads(capsys.readouterr().out)
        assert data["facts"]["kube"]["error"] == (
            "no kubeconfig yet: K3s has not written /etc/rancher/k3s/k3s.yaml on k3s-server-1 yet"
        )
        rows = {r["node"]: r for r in data["rows"]["nodes"]}
        assert rows["k3s-server-1"]["cloud_init"] == "running"
        assert rows["k3s-agent-1"]["cloud_init"] == "done"
        assert rows["k3s-agent-1"]["vm"] == "running"
        assert rows["k3s-agent-1"]["k3s"] == "unknown"
        assert data["blocker"] == "k3s-server-1: cloud-init running"
        assert made.world.requests == []  # nothing to ask the API with yet


def test_api_not_answering_is_explained(ready_lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    ready_lab.world.refuse = 100
    assert run_status(ready_lab) == 1
    out = capsys.readouterr().out
    assert f"note: K3s and Flux unknown: {ready_lab.kube.url} not answering" in out
    assert "not ready: K3s API: " in out
    line = next(x for x in out.splitlines() if x.startswith("k3s-agent-1"))
    assert line.split()[1:6] == ["running", "up", "10.0.0.101", "done", "unknown"]


def test_one_helmrelease_failing_is_named_with_its_reason(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    moment = ready_moment(ready_lab.cluster)
    moment.helmreleases[2] = helmrelease(
        "longhorn",
        "longhorn-system",
        ready=False,
        reason="InstallFailed",
        message="Helm install failed for release longhorn-system/longhorn: context deadline",
        stalled=True,
    )
    moment.kustomizations[4] = kustomization(
        "infra-longhorn", ready=False, reason="HealthCheckFailed", message="timeout"
    )
    ready_lab.world.moments = [moment]
    assert run_status(ready_lab, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["blocker"] == (
        "HelmRelease longhorn: install retries exhausted (Helm install failed for release"
        " longhorn-system/longhorn: context deadline)"
    )
    flux = {r["name"]: r for r in data["rows"]["flux"]}
    assert flux["longhorn-system/longhorn"]["ready"] == "False"
    assert flux["longhorn-system/longhorn"]["reason"] == "InstallFailed"
    assert flux["traefik/traefik"]["message"] == ""  # ready: no message shown


def test_a_failing_component_is_named_and_the_others_stay_ready(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    moment = ready_moment(ready_lab.cluster)
    moment.kustomizations[4] = kustomization(
        "infra-longhorn", ready=False, reason="HealthCheckFailed", message="timeout"
    )
    ready_lab.world.moments = [moment]
    assert run_status(ready_lab, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["blocker"] == "Kustomization infra-longhorn: HealthCheckFailed (timeout)"
    flux = {r["name"]: r["ready"] for r in data["rows"]["flux"]}
    for name in ("infra-metallb", "config-metallb", "infra-traefik", "apps"):
        assert flux[f"flux-system/{name}"] == "True"


def test_retired_kustomizations_once_suspended_are_left_out(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """Day 2: the old one-chain Kustomizations stay, suspended, their Ready frozen at a
    failure from before the re-render. Not a blocker, not a row; still judged while a
    cluster on the old tree runs them (not suspended)."""
    stale = {"ready": False, "reason": "HealthCheckFailed", "message": "timeout"}
    moment = ready_moment(ready_lab.cluster)
    moment.kustomizations += [
        kustomization("infra-controllers", suspend=True, **stale),
        kustomization("infra-configs", suspend=True, **stale),
    ]
    ready_lab.world.moments = [moment]
    assert run_status(ready_lab, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert not [r for r in data["rows"]["flux"] if r["name"].endswith("infra-controllers")]
    moment.kustomizations[-2] = kustomization("infra-controllers", **stale)
    assert run_status(ready_lab, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["blocker"] == "Kustomization infra-controllers: HealthCheckFailed (timeout)"


def test_wait_returns_as_soon_as_all_is_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with lab(tmp_path) as made:
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", made.pve.state.token_secret)
        cluster = made.cluster
        server, agent_1, agent_2 = cluster.nodes
        healthy(made.guests, cluster, made.kube)
        # agent-2 boots slowly: agent down twice, then cloud-init runs for a poll.
        made.guests.vm(agent_2.vmid).interfaces = [AGENT_DOWN, AGENT_DOWN, [str(agent_2.ip)]]
        made.guests.vm(agent_2.vmid).commands[JSON_COMMAND] = [
            exec_for_json("running", running=2),
            exec_for_json("done"),
        ]
        ready = ready_moment(cluster)
        joining = Moment(nodes=[node(server.name), node(agent_1.name, ready=False)])
        two_of_three = Moment(nodes=[node(server.name), node(agent_1.name)])
        syncing = Moment(
            nodes=[*two_of_three.nodes, node(agent_2.name, ready=False)],
            instance=ready.instance,
            kustomizations=ready.kustomizations,
            helmreleases=[helmrelease("metallb", "metallb-system", False, "Progressing", "")],
        )
        made.world.moments = [joining, two_of_three, syncing, ready, ready]
        code = cli.main(made.cli("status", "--wait", "--interval", "0.01", "--timeout", "30"))
        out = capsys.readouterr().out
    assert code == 0, out
    assert made.world.polls == 4  # stopped on the first poll where all was ready
    progress = [x.split("] ", 1)[1] for x in out.splitlines() if x.startswith("[")]
    assert progress == [
        "not ready: k3s-agent-1: K3s node NotReady: container runtime down",
        "not ready: k3s-agent-2: guest agent not answering yet (QEMU guest agent is not running)",
        "not ready: k3s-agent-2: cloud-init running",
        "ready: everything is up",
    ]


def test_wait_json_prints_only_the_final_json(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_status(ready_lab, "--wait", "--json", "--interval", "0.01") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ready"] is True
    assert "ready: everything is up" in captured.err


def test_missing_exec_privilege_is_explained_not_fatal(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    perms = ready_lab.pve.state.permissions["/vms"]
    del perms["VM.GuestAgent.Unrestricted"]
    perms["VM.GuestAgent.FileRead"] = 1
    assert run_status(ready_lab, "--json") == 0  # K3s says Ready; cloud-init is a nicety
    data = json.loads(capsys.readouterr().out)
    note = data["facts"]["guests"][0]["cloud_init_note"]
    assert note.startswith("token lacks VM.GuestAgent.Unrestricted (PVE 9 needs it")
    assert all(g["cloud_init_note"] == note for g in data["facts"]["guests"])

    from generator.status import gather

    env = Environment.read()
    src = gather.open_sources(ready_lab.cluster, ready_lab.directory, env=env, warn=print)
    src.server = ready_lab.kube.url
    gather.gather(src)
    before = len(ready_lab.pve.state.calls)
    assert gather.gather(src).guests[0].cloud_init_note == note
    later = [c for c in ready_lab.pve.state.calls[before:] if "/agent/exec" in c.path]
    assert later == []  # forbidden once is remembered: no more 403s per refresh


def test_cloud_init_22_4_falls_back_to_long_once(ready_lab: Lab) -> None:
    from generator.status import gather

    first = ready_lab.cluster.first_server
    guest = ready_lab.guests.vm(first.vmid)
    guest.commands[JSON_COMMAND] = [ExecScript(err=NO_FORMAT_FLAG, exitcode=2)]
    guest.commands[LONG_COMMAND] = [
        ExecScript(out=cloud_init_long("running")),
        ExecScript(out=cloud_init_long("done")),
    ]
    env = Environment.read()
    src = gather.open_sources(ready_lab.cluster, ready_lab.directory, env=env, warn=print)
    src.server = ready_lab.kube.url
    states = [
        next(g for g in gather.gather(src).guests if g.name == first.name).cloud_init
        for _ in range(3)
    ]
    assert [s.status if s else None for s in states] == ["running", "done", "done"]
    execs = [
        c.params["command"]
        for c in ready_lab.pve.state.calls
        if c.path == f"/nodes/pve/qemu/{first.vmid}/agent/exec"
    ]
    # --format json tried once; --long twice (done is remembered, not asked again)
    assert execs == [
        "cloud-init\0status\0--format\0json",
        "cloud-init\0status\0--long",
        "cloud-init\0status\0--long",
    ]


def test_proxmox_unreachable_still_reports_the_cluster(
    ready_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(ready_lab.cli("kubeconfig")) == 0  # written while Proxmox answered
    capsys.readouterr()
    (ready_lab.directory / "cluster.yaml").write_text(
        (ready_lab.directory / "cluster.yaml")
        .read_text()
        .replace(f"port: {ready_lab.pve.port}", "port: 1")
    )
    assert run_status(ready_lab, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["facts"]["pve_error"] == (
        "cannot reach 127.0.0.1:1: connection refused (is pveproxy running? check proxmox.port)"
    )
    assert data["rows"]["nodes"][0]["vm"] == "unknown"
    assert data["rows"]["nodes"][0]["k3s"].startswith("Ready")
    assert data["blocker"].startswith("Proxmox: ")


# -- the verdict alone ----------------------------------------------------------------------
def _guest(name: str, **kw: object) -> Guest:
    base: dict[str, object] = {
        "vm": "running",
        "agent": True,
        "addresses": ("10.0.0.1",),
        "cloud_init": CloudInit("done"),
    }
    base.update(kw)
    return Guest(name, "agent", 300, "10.0.0.1", **base)  # type: ignore[arg-type]


def _kube(*names: str, **kw: object) -> Kube:
    ready = FluxObject("FluxInstance", "flux-system", "flux", True, revision="main@sha1:1")
    fields: dict[str, object] = {
        "nodes": tuple(KubeNode(n, True, "v1") for n in names),
        "instance": ready,
        "kustomizations": (FluxObject("Kustomization", "flux-system", "apps", True),),
    }
    fields.update(kw)
    return Kube(**fields)  # type: ignore[arg-type]


def test_a_failure_outranks_an_earlier_node_still_waiting() -> None:
    facts = Facts(
        "home",
        (
            _guest("a", cloud_init=CloudInit("running")),
            _guest("b", cloud_init=CloudInit("error", errors=("boom",))),
        ),
        _kube("a"),
    )
    assert report(facts).blocker == "b: cloud-init error: boom"


def test_a_ready_node_is_not_blocked_by_a_silent_agent() -> None:
    facts = Facts("home", (_guest("a", agent=False, addresses=()),), _kube("a"))
    assert report(facts).ready


def test_flux_instance_missing_and_no_kustomizations_block() -> None:
    assert report(Facts("home", (_guest("a"),), _kube("a", instance=None))).blocker == (
        "FluxInstance flux-system/flux not created yet (the first server applies it"
        " from its manifests folder once K3s runs)"
    )
    empty = report(Facts("home", (_guest("a"),), _kube("a", kustomizations=())))
    assert empty.blocker == "no Kustomizations yet (Flux has not applied the git tree)"


@pytest.mark.parametrize(
    ("vm", "expected"),
    [
        ("stopped", "a: VM is stopped (start it, or run homelab-gen boot)"),
        ("missing", "a: VM 300 does not exist on Proxmox (run homelab-gen boot)"),
        ("foreign", "a: VM 300 is not this cluster's (check nodes[].vmid)"),
    ],
)
def test_vm_states_that_block(vm: str, expected: str) -> None:
    facts = Facts("home", (_guest("a", vm=vm, agent=None, cloud_init=None),), _kube())
    assert report(facts).blocker == expected


def test_address_other_than_the_configured_one_blocks() -> None:
    facts = Facts("home", (_guest("a", addresses=("10.0.0.99",)),), _kube())
    assert report(facts).blocker == "a: address 10.0.0.1 not seen yet (seen: 10.0.0.99)"


# -- cloud-init parsing -------------------------------------------------------------------
def test_parse_cloud_init_long_22_4() -> None:
    text = (
        "status: error\ntime: Thu, 26 Nov 2026 08:00:00 +0000\ndetail:\n"
        "('scripts_user', RuntimeError('Runparts: 1 failures'))\n"
    )
    parsed = cloudinit.parse_cloud_init_long(text)
    assert parsed == CloudInit("error", "('scripts_user', RuntimeError('Runparts: 1 failures'))")
    assert cloudinit.parse_cloud_init_long(NO_FORMAT_FLAG) is None


def test_parse_cloud_init_json_degraded_done() -> None:
    from tests.fakes.pve.agent_routes import cloud_init_json

    parsed = cloudinit.parse_cloud_init_json(cloud_init_json("done", degraded=True))
    assert parsed is not None and parsed.status == "done" and parsed.degraded
    assert cloudinit.parse_cloud_init_json(NO_FORMAT_FLAG) is None


def test_rich_view_shows_rows_flux_and_the_verdict() -> None:
    from rich.console import Console

    from generator.status import view

    facts = Facts(
        "home",
        (_guest("k3s-server-1", cloud_init=CloudInit("error", errors=("boom",))),),
        _kube("k3s-server-1"),
    )
    console = Console(record=True, width=160)
    console.print(view.rich_view(report(facts), "homelab-gen status home"))
    text = console.export_text()
    assert "k3s-server-1" in text and "error: boom" in text
    assert "Flux (applied main@sha1:1)" in text
    assert "not ready: k3s-server-1: cloud-init error: boom" in text


def test_wait_on_a_terminal_refreshes_one_live_view(
    ready_lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "160")
    assert run_status(ready_lab, "--wait", "--interval", "0.01") == 0
    out = capsys.readouterr().out
    assert "homelab-gen status home" in out and "ready: everything is up" in out
    assert "[    0s]" not in out  # the live view, not plain progress lines


# -- seed drift: the user-data a node booted with against the rendered one -----------------
@pytest.fixture
def booted_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """A lab that `render` and `boot` made, so each fake VM booted from its rendered seed."""
    with lab(tmp_path) as made:
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", made.pve.state.token_secret)
        for n in made.cluster.nodes:
            del made.pve.state.vms[n.vmid]  # boot makes them itself
        assert cli.main(["render", "-C", str(made.directory)]) == 0
        assert cli.main(["boot", "-C", str(made.directory), "--yes"]) == 0
        healthy(made.guests, made.cluster, made.kube)
        yield made


def booted_reads(made: Lab) -> int:
    """file-read calls for the user-data each node booted with."""
    return sum(
        1
        for c in made.pve.state.calls
        if c.path.endswith("/agent/file-read")
        and c.params.get("file") == "/var/lib/cloud/instance/user-data.txt"
    )


def test_seed_drift_is_noted_per_node_without_failing_readiness(
    booted_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    made = booted_lab
    capsys.readouterr()
    assert run_status(made, "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [g["seed_changed"] for g in data["facts"]["guests"]] == [False, False, False]
    assert data["notes"] == []
    assert booted_reads(made) == len(made.cluster.nodes)

    # A new K3s version alone is no drift: the upgrade Plans move running nodes to it.
    config = made.directory / "cluster.yaml"
    config.write_text(config.read_text().replace("v1.33.4+k3s1", "v1.34.1+k3s1"))
    assert cli.main(["render", "-C", str(made.directory)]) == 0
    capsys.readouterr()
    made.pve.state.calls.clear()
    assert run_status(made) == 0
    out = capsys.readouterr().out
    assert "older seed" not in out and "keeps the settings" not in out
    assert booted_reads(made) == len(made.cluster.nodes)

    # New login keys are: they reach a node only when it is rebuilt.
    config.write_text(config.read_text().replace("me@laptop", "me@desktop"))
    assert cli.main(["render", "-C", str(made.directory)]) == 0
    capsys.readouterr()
    assert run_status(made) == 0
    out = capsys.readouterr().out
    for n in made.cluster.nodes:
        row = next(x for x in out.splitlines() if x.startswith(n.name))
        assert "done (older seed)" in row, row
        note = next(x for x in out.splitlines() if x.startswith(f"note: {n.name}: "))
        assert f"cloud-init/{n.name}/user-data" in note
        assert "keeps the settings it booted with (login user, SSH keys" in note
        assert "--replace-stale" in note
    assert out.rstrip().endswith("ready: everything is up")


def test_wait_asks_for_the_booted_seed_once_per_node(
    booted_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    made = booted_lab
    server, agent_1, agent_2 = made.cluster.nodes
    ready = ready_moment(made.cluster)
    joining = Moment(nodes=[node(server.name), node(agent_1.name), node(agent_2.name, False)])
    made.world.moments = [joining, joining, ready]
    assert run_status(made, "--wait", "--interval", "0.01", "--timeout", "30") == 0
    assert made.world.polls == 3
    assert booted_reads(made) == len(made.cluster.nodes)


def test_a_guest_without_the_booted_user_data_gets_no_note(
    booted_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    made = booted_lab
    for n in made.cluster.nodes:
        made.pve.state.vms[n.vmid].booted_user_data = None  # file-read: no such file
    seed = made.directory / "cloud-init" / made.cluster.nodes[0].name / "user-data"
    seed.write_text(seed.read_text() + "# changed\n")
    capsys.readouterr()
    assert run_status(made) == 0
    out = capsys.readouterr().out
    assert "older seed" not in out and "keeps the settings" not in out
