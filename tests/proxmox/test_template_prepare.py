"""`homelab-gen template --prepare` against the fake PVE: the template boots once with the
preparation seed (as an ISO in the cloud-init drive's slot) and powers itself off, then
gets its cloud-init drive back and the K3s version in its description; resumable, and a
second run plans nothing. The guest's part (installing, powering off) is the fake's
on_start hook: the VM stops a moment after it starts, as the preparation's power-off does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from generator import cli
from generator.config.model import Cluster
from generator.environment import TOKEN_ENV
from generator.errors import HomelabError
from generator.proxmox import core, template_job
from generator.proxmox import template as tpl
from generator.proxmox.actions import Kind, Plan
from generator.proxmox.images import IMAGES, choose_source
from generator.proxmox.template_marks import mark
from generator.proxmox.template_prepare import Preparation
from generator.render.prepared import preparation_seed
from tests.fakes.pve import TEMPLATE_VMID, FakePVE
from tests.fakes.pve.harness import boot, client_for, cluster_yaml, make_cluster, seed_texts
from tests.fakes.pve.state import Vm
from tests.fakes.pve.template_routes import RemoteImage, running_template_fake, sha

DEBIAN = IMAGES["debian-12"]
IMAGE_BYTES = b"QFI\xfb fake debian 12 genericcloud qcow2" * 64
FRESH = ["download", "create", "prepare-seed", "start", "wait-stopped", "record", "convert"]


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePVE]:
    with running_template_fake(tmp_path, {DEBIAN.url: RemoteImage(IMAGE_BYTES, "3G")}) as pve:
        yield pve


def _powers_off(fake: FakePVE, after: float = 0.3) -> list[bytes | None]:
    """The guest: it runs the preparation seed it booted with, then powers off."""
    booted: list[bytes | None] = []

    def hook(vm: Vm) -> None:
        booted.append(vm.booted_user_data)

        def off() -> None:
            with fake.lock:
                vm.status = "stopped"

        threading.Timer(after, off).start()

    fake.state.on_start.append(hook)
    return booted


def _prep(cluster: Cluster, timeout: float = 20.0) -> Preparation:
    return Preparation(cluster.cluster.k3s_version, preparation_seed(cluster), timeout, 0.05)


def _plan(fake: FakePVE, cluster: Cluster, prep: Preparation | None) -> Plan:
    source, _ = choose_source(None, None, False)
    client = client_for(fake, cluster)
    return tpl.plan_template(cluster, source, tpl.observe_template(client, cluster), False, prep)


def _apply(fake: FakePVE, cluster: Cluster, prep: Preparation | None) -> tuple[str, ...]:
    source, _ = choose_source(None, None, False)
    plan = _plan(fake, cluster, prep)
    client = client_for(fake, cluster)
    fetch = lambda url: f"{sha(IMAGE_BYTES)}  {DEBIAN.upstream_name}\n"  # noqa: E731
    return template_job.apply_template(client, cluster, source, plan, fetch=fetch, preparation=prep)


def test_a_prepared_template_boots_once_with_its_seed_and_records_the_version(
    fake: FakePVE,
) -> None:
    cluster = make_cluster(fake, 1)
    booted = _powers_off(fake)
    prep = _prep(cluster)
    assert [a.kind for a in _plan(fake, cluster, prep).actions] == FRESH
    assert list(_apply(fake, cluster, prep)) == FRESH
    (user_data,) = booted
    assert user_data == prep.seed["user-data"].encode()  # it booted the preparation seed
    vm = fake.state.vms[TEMPLATE_VMID]
    assert vm.is_template and vm.status == "stopped"
    assert vm.config["ide2"] == "local-lvm:vm-9000-cloudinit,media=cdrom"
    description = str(vm.config["description"])
    assert mark(description, "k3s") == cluster.cluster.k3s_version
    assert mark(description, "preparing") is None
    assert mark(description, "image") == "debian-12"
    isos = [v for v in fake.state.storage("pve", "local").volumes if "prepare" in v]
    assert isos == [], "the preparation seed is deleted once done"


def test_a_second_run_plans_nothing_and_boot_clones_the_prepared_template(
    fake: FakePVE,
) -> None:
    cluster = make_cluster(fake, 1, 1)
    _powers_off(fake)
    _apply(fake, cluster, _prep(cluster))
    before = len(fake.state.mutating_calls())
    plan = _plan(fake, cluster, _prep(cluster))
    assert plan.is_noop and not plan.warnings and not plan.problems
    assert f"prepared with K3s {cluster.cluster.k3s_version}" in plan.vms[0].reason
    assert len(fake.state.mutating_calls()) == before
    run = boot(fake, cluster)
    assert not run.prepared.plan.problems and not run.errors
    assert not any("falls back" in w for w in run.prepared.plan.warnings)


def test_without_prepare_nothing_boots(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    booted = _powers_off(fake)
    assert _apply(fake, cluster, None) == ("download", "create", "convert")
    assert booted == []
    assert mark(str(fake.state.vms[TEMPLATE_VMID].config["description"]), "k3s") is None


def _killed_after(fake: FakePVE, cluster: Cluster, kind: Kind) -> None:
    """Run the fresh plan up to and including `kind`, as a run killed right after it."""
    prep = _prep(cluster)
    plan = _plan(fake, cluster, prep)
    steps = plan.actions[: [a.kind for a in plan.actions].index(kind) + 1]
    row = replace(plan.vms[0], actions=steps)
    source, _ = choose_source(None, None, False)
    fetch = lambda url: f"{sha(IMAGE_BYTES)}  {DEBIAN.upstream_name}\n"  # noqa: E731
    template_job.apply_template(
        client_for(fake, cluster), cluster, source, Plan((row,)), fetch=fetch, preparation=prep
    )


@pytest.mark.parametrize(
    ("killed_after", "then"),
    [
        (Kind.CREATE, ["prepare-seed", "start", "wait-stopped", "record", "convert"]),
        (Kind.PREPARE_SEED, ["start", "wait-stopped", "record", "convert"]),
        (Kind.WAIT_STOPPED, ["start", "wait-stopped", "record", "convert"]),
        (Kind.RECORD, ["convert"]),
    ],
)
def test_a_run_killed_half_way_is_finished(
    fake: FakePVE, killed_after: Kind, then: list[str]
) -> None:
    cluster = make_cluster(fake, 1)
    _powers_off(fake)
    _killed_after(fake, cluster, killed_after)
    assert [a.kind for a in _plan(fake, cluster, _prep(cluster)).actions] == then
    assert list(_apply(fake, cluster, _prep(cluster))) == then
    vm = fake.state.vms[TEMPLATE_VMID]
    assert vm.is_template and mark(str(vm.config["description"]), "k3s")
    assert vm.config["ide2"] == "local-lvm:vm-9000-cloudinit,media=cdrom"


def test_a_preparation_under_way_is_waited_for_even_without_the_flag(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    _killed_after(fake, cluster, Kind.PREPARE_SEED)
    with fake.lock:
        fake.state.vms[TEMPLATE_VMID].status = "running"  # the preparation boot goes on
    plan = _plan(fake, cluster, None)
    assert [a.kind for a in plan.actions] == ["wait-stopped", "record", "convert"]


def test_a_preparation_that_never_powers_off_times_out_with_a_hint(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)  # no hook: the VM keeps running, as a failed seed leaves it
    with pytest.raises(HomelabError) as raised:
        _apply(fake, cluster, _prep(cluster, timeout=0.5))
    assert "still running" in str(raised.value)
    assert "qm terminal 9000" in str(raised.value.hint)
    vm = fake.state.vms[TEMPLATE_VMID]
    assert not vm.is_template and vm.status == "running"
    assert mark(str(vm.config["description"]), "preparing") == cluster.cluster.k3s_version


def test_a_template_of_another_k3s_version_is_kept_with_a_note(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    _powers_off(fake)
    _apply(fake, cluster, _prep(cluster))
    newer = replace(cluster, cluster=replace(cluster.cluster, k3s_version="v1.34.1+k3s1"))
    plan = _plan(fake, newer, _prep(newer))
    assert plan.is_noop and not plan.problems
    (note,) = plan.warnings
    assert f"prepared with K3s {cluster.cluster.k3s_version}" in note
    assert "not cluster.k3s_version v1.34.1+k3s1" in note and "download K3s" in note
    assert "qm destroy 9000" in note and "template --prepare" in note


def test_an_unprepared_template_gets_a_note_only_when_prepare_is_asked(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    _apply(fake, cluster, None)
    assert _plan(fake, cluster, None).warnings == ()
    (note,) = _plan(fake, cluster, _prep(cluster)).warnings
    assert "is not prepared" in note


def test_the_seed_storage_must_take_isos(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    fake.state.storage("pve", "local").content.discard("iso")
    plan = _plan(fake, cluster, _prep(cluster))
    assert any("does not accept 'iso' content" in p for p in plan.problems)


def test_cli_template_prepare(
    fake: FakePVE,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    booted = _powers_off(fake)
    project = tmp_path / "lab"
    project.mkdir()
    (project / "cluster.yaml").write_text(cluster_yaml(fake, 1))
    monkeypatch.setenv(TOKEN_ENV, fake.state.token_secret)
    checksum = f"sha512:{sha(IMAGE_BYTES)}"
    args = ["template", "-C", str(project), "--prepare", "--checksum", checksum, "--yes"]
    assert cli.main(args) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "attach the preparation seed for K3s" in out and "template(s) 9000 ready" in out
    assert cli.main([*args[:-1], "--dry-run"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len(booted) == 1


def test_plan_notes_nodes_that_fall_back_to_the_download(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1, 1)
    _powers_off(fake)
    _apply(fake, cluster, _prep(cluster))
    assert not any("falls back" in w for w in _boot_plan(fake, cluster).warnings)
    newer = replace(cluster, cluster=replace(cluster.cluster, k3s_version="v1.34.1+k3s1"))
    warnings = _boot_plan(fake, newer).warnings
    notes = [w for w in warnings if "falls back to the download" in w]
    assert len(notes) == len(cluster.nodes)
    assert notes[0].startswith(f"{cluster.nodes[0].name}: template 9000 is prepared with K3s")


def _boot_plan(fake: FakePVE, cluster: Cluster) -> Plan:
    """What `plan` shows: boot's plan, nothing applied."""
    client = client_for(fake, cluster)
    return core.prepare(client, cluster, seed_texts(cluster)).plan
