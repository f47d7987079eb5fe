"""Templates per host on a three-host fake: a template on local storage serves its own host
only (qemu-server clone_vm refuses `target=` for it), so boot stops before any change
unless each host has its copy (`template --all-hosts`); one on shared storage is cloned
with `target=`. Day 2: a host added later gets only its own copy."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import cli
from generator.config.model import Cluster
from generator.environment import TOKEN_ENV
from generator.proxmox import core, template_job
from generator.proxmox import template as tpl
from generator.proxmox import template_hosts as hosts
from generator.proxmox.actions import Kind, Plan
from generator.proxmox.images import IMAGES, choose_source
from tests.fakes.pve import TEMPLATE_VMID, FakePVE
from tests.fakes.pve.harness import boot, client_for, cluster_yaml, make_cluster, seed_texts
from tests.fakes.pve.state import PveState, cluster_state
from tests.fakes.pve.template_routes import RemoteImage, running_template_fake, sha

DEBIAN = IMAGES["debian-12"]
IMAGE_BYTES = b"QFI\xfb fake debian 12 genericcloud qcow2" * 64
HOSTS = ("pve1", "pve2", "pve3")
SUMS = f"{sha(IMAGE_BYTES)}  {DEBIAN.upstream_name}\n"


def _world(hosts: tuple[str, ...] = HOSTS, template_storage: str = "local-lvm") -> PveState:
    """Template 9000 (made by hand) on pve1's `template_storage`; seeds on the NFS storage
    `shared` every host mounts; download-url allowed."""
    state = cluster_state(secrets.token_hex(16), hosts, templates=(("pve1", template_storage),))
    state.permissions["/nodes"] = {**state.permissions.get("/nodes", {}), "Sys.AccessNetwork": 1}
    return state


@pytest.fixture
def internet() -> dict[str, RemoteImage]:
    return {DEBIAN.url: RemoteImage(IMAGE_BYTES, "3G")}


@pytest.fixture
def fake(tmp_path: Path, internet: dict[str, RemoteImage]) -> Iterator[FakePVE]:
    with running_template_fake(tmp_path, internet, _world(("pve1", "pve2", "pve3", "pve4"))) as f:
        yield f


def _cluster(fake: FakePVE, hosts: tuple[str, ...] = HOSTS, storage: str = "local-lvm") -> Cluster:
    return make_cluster(
        fake, 3, 0, node="pve1", nodes=list(hosts), placement="spread", storage=storage,
        seed_storage="shared",
    )  # fmt: skip


def _all_hosts(fake: FakePVE, cluster: Cluster) -> tuple[Plan, tuple[str, ...]]:
    """`template --all-hosts`, through the library: observe, plan, apply."""
    source, _ = choose_source(None, None, False)
    client = client_for(fake, cluster)
    main = hosts.Target(cluster, None, tpl.observe_template(client, cluster))
    copies, offline = hosts.observe_copies(client, cluster)
    plan, targets = hosts.plan_all_hosts(cluster, source, main, copies, offline)
    assert not plan.problems, plan.problems
    done = template_job.apply_targets(client, source, plan, targets, fetch=lambda _: SUMS)
    return plan, done


def _clones(fake: FakePVE) -> dict[int, tuple[str, str | None]]:
    """newid -> (source VMID, target) of every clone call."""
    return {
        int(c.params["newid"]): (c.path.split("/")[4], c.params.get("target"))
        for c in fake.state.mutating_calls()
        if c.path.endswith("/clone")
    }


def test_a_local_template_with_spread_stops_the_plan_and_names_the_fix(fake: FakePVE) -> None:
    cluster = _cluster(fake)
    client = client_for(fake, cluster)
    plan = core.prepare(client, cluster, seed_texts(cluster)).plan
    (problem,) = [p for p in plan.problems if "cannot be cloned to another host" in p]
    assert "template 9000 on pve1" in problem and "(local-lvm)" in problem
    assert "pve2: k3s-server-2" in problem and "pve3: k3s-server-3" in problem
    assert "homelab-gen template --all-hosts" in problem and "shared storage" in problem
    assert "placement: pack" in problem
    assert not fake.state.mutating_calls()


def test_after_all_hosts_boot_spreads_and_clones_each_vm_from_its_hosts_copy(
    fake: FakePVE,
) -> None:
    cluster = _cluster(fake)
    plan, done = _all_hosts(fake, cluster)
    # The main template exists (by hand); one download onto the shared seed storage serves
    # both copies, each made on its own host at 9000 + its place among the other hosts.
    assert [(row.name, row.vmid) for row in plan.vms] == [
        ("template", 9000), ("template on pve2", 9001), ("template on pve3", 9002),
    ]  # fmt: skip
    assert done == ("download", "create", "convert", "create", "convert")
    for vmid, host in ((9001, "pve2"), (9002, "pve3")):
        copy = fake.state.vms[vmid]
        assert copy.node == host and copy.is_template
        assert copy.config["scsi0"].startswith(f"local-lvm:base-{vmid}-disk-0")
        assert f"copy-of=9000 host={host}" in copy.config["description"].splitlines()[0]
    again, redone = _all_hosts(fake, cluster)
    assert again.is_noop and redone == ()
    run = boot(fake, cluster)
    assert run.errors == [] and not run.prepared.plan.problems
    placed = {n.name: fake.state.vms[n.vmid].node for n in cluster.nodes}
    assert list(placed.values()) == list(HOSTS)
    vmids = {n.name: n.vmid for n in cluster.nodes}
    assert _clones(fake) == {
        vmids["k3s-server-1"]: ("9000", None),
        vmids["k3s-server-2"]: ("9001", None),
        vmids["k3s-server-3"]: ("9002", None),
    }
    second = core.prepare(client_for(fake, cluster), cluster, seed_texts(cluster)).plan
    assert second.is_noop, second


def test_a_template_on_shared_storage_is_cloned_with_target_and_needs_no_copies(
    tmp_path: Path, internet: dict[str, RemoteImage]
) -> None:
    with running_template_fake(tmp_path, internet, _world(template_storage="shared")) as fake:
        cluster = _cluster(fake, storage="shared")
        plan, done = _all_hosts(fake, cluster)
        assert done == () and [row.vmid for row in plan.vms] == [TEMPLATE_VMID]
        assert "every host clones it with target=" in plan.warnings[0]
        run = boot(fake, cluster)
        assert run.errors == [] and not run.prepared.plan.problems
        assert sorted(_clones(fake).values(), key=str) == [
            ("9000", "pve2"), ("9000", "pve3"), ("9000", None),
        ]  # fmt: skip
        assert {fake.state.vms[n.vmid].node for n in cluster.nodes} == set(HOSTS)


def test_a_fourth_host_added_later_gets_only_its_copy(fake: FakePVE) -> None:
    _all_hosts(fake, _cluster(fake))
    before = {vmid: dict(vm.config) for vmid, vm in fake.state.vms.items()}
    plan, done = _all_hosts(fake, _cluster(fake, (*HOSTS, "pve4")))
    assert [row.vmid for row in plan.vms if row.actions] == [9003]
    assert done == ("create", "convert")  # the image is on the shared seed storage already
    assert fake.state.vms[9003].node == "pve4"
    assert all(fake.state.vms[vmid].config == config for vmid, config in before.items())


def test_a_copy_is_found_by_its_marks_when_the_hosts_are_reordered(fake: FakePVE) -> None:
    _all_hosts(fake, _cluster(fake))
    # pve3 listed before pve2: their scheme VMIDs swap, but each copy is found where it is.
    plan, done = _all_hosts(fake, _cluster(fake, ("pve1", "pve3", "pve2")))
    assert done == () and plan.is_noop
    assert {row.name: row.vmid for row in plan.vms}["template on pve3"] == 9002


def test_a_taken_copy_vmid_is_a_problem_with_a_hint(fake: FakePVE) -> None:
    fake.state.vms[9001] = fake.state.vms[100].__class__(9001, "pve2", {"name": "dns"})
    cluster = _cluster(fake)
    source, _ = choose_source(None, None, False)
    client = client_for(fake, cluster)
    main = hosts.Target(cluster, None, tpl.observe_template(client, cluster))
    copies, _ = hosts.observe_copies(client, cluster)
    plan, _ = hosts.plan_all_hosts(cluster, source, main, copies)
    (problem,) = plan.problems
    assert "VMID 9001, where the copy of template 9000 for pve2 goes" in problem
    assert "taken by VM 'dns'" in problem and "Move that VM" in problem


def test_cli_dry_run_shows_a_row_per_host_and_plain_template_says_what_is_missing(
    fake: FakePVE, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    repo = tmp_path / "lab"
    repo.mkdir()
    text = cluster_yaml(
        fake, 3, 0, node="pve1", nodes=list(HOSTS), placement="spread", storage="local-lvm",
        seed_storage="shared",
    )  # fmt: skip
    (repo / "cluster.yaml").write_text(text)
    monkeypatch.setenv(TOKEN_ENV, fake.state.token_secret)
    assert cli.main(["template", "-C", str(repo), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "template 9000" in out and "--all-hosts" in out
    assert cli.main(["template", "-C", str(repo), "--all-hosts", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "template on pve2 9001: create" in out and "template on pve3 9002: create" in out
    assert not fake.state.mutating_calls()


def test_a_local_seed_storage_gets_the_image_on_each_host(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1, 0, node="pve1", nodes=list(HOSTS), seed_storage="local")
    source, _ = choose_source(None, None, False)
    client = client_for(fake, cluster)
    main = hosts.Target(cluster, None, tpl.observe_template(client, cluster))
    copies, _ = hosts.observe_copies(client, cluster)
    plan, _ = hosts.plan_all_hosts(cluster, source, main, copies)
    downloads = [(a.pve_node, a.param("volid")) for a in plan.actions if a.kind == Kind.DOWNLOAD]
    volid = "local:import/debian-12-genericcloud-amd64.qcow2"
    assert downloads == [("pve2", volid), ("pve3", volid)]
