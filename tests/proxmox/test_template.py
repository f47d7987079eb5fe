"""`homelab-gen template` against the fake PVE: fresh, idempotent, refusals, failures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from generator import cli, naming
from generator.config.model import Cluster
from generator.environment import TOKEN_ENV
from generator.errors import UsageError
from generator.proxmox import template as tpl
from generator.proxmox import template_job, template_vm
from generator.proxmox.actions import Plan
from generator.proxmox.images import IMAGES, choose_source, digest_from_sums, parse_checksum
from generator.proxmox.pveconfig import drive_slot
from tests.fakes.pve import FOREIGN_VMID, TEMPLATE_VMID, FakePVE, running_fake
from tests.fakes.pve.harness import boot, client_for, cluster_yaml, make_cluster, snapshot
from tests.fakes.pve.template_routes import RemoteImage, running_template_fake, sha

DEBIAN = IMAGES["debian-12"]
IMAGE_BYTES = b"QFI\xfb fake debian 12 genericcloud qcow2" * 64


class Sums:
    """The publisher's SHA512SUMS as this machine would fetch it; records each fetch."""

    def __init__(self, digest: str) -> None:
        self.text = (
            f"{'0' * 128}  debian-12-nocloud-amd64.qcow2\n{digest}  {DEBIAN.upstream_name}\n"
        )
        self.fetched: list[str] = []

    def __call__(self, url: str) -> str:
        self.fetched.append(url)
        return self.text


@pytest.fixture
def internet() -> dict[str, RemoteImage]:
    return {DEBIAN.url: RemoteImage(IMAGE_BYTES, "3G")}


@pytest.fixture
def fake(tmp_path: Path, internet: dict[str, RemoteImage]) -> Iterator[FakePVE]:
    with running_template_fake(tmp_path, internet) as running:
        yield running


def _make(
    fake: FakePVE, cluster: Cluster, image: str | None = None, sums: Sums | None = None, **kw: str
) -> tuple[Plan, tuple[str, ...]]:
    source, _ = choose_source(image, kw.get("checksum"), False)
    client = client_for(fake, cluster)
    plan = tpl.plan_template(cluster, source, tpl.observe_template(client, cluster), bool(image))
    fetch = sums or Sums(sha(IMAGE_BYTES))
    return plan, template_job.apply_template(client, cluster, source, plan, fetch=fetch)


def _plan(fake: FakePVE, cluster: Cluster, image: str | None = None) -> Plan:
    source, _ = choose_source(image, None, False)
    client = client_for(fake, cluster)
    return tpl.plan_template(cluster, source, tpl.observe_template(client, cluster), bool(image))


def _reason(plan: Plan) -> str:
    (row,) = plan.vms
    return row.reason


def _manual(plan: Plan) -> tuple[str, ...]:
    """The commands to run by hand instead: the notes of the plan's one row."""
    (row,) = plan.vms
    return row.notes


# -- the scenarios ------------------------------------------------------------------------------
def test_fresh_template_is_downloaded_checked_created_and_converted(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    sums = Sums(sha(IMAGE_BYTES))
    _, done = _make(fake, cluster, sums=sums)
    assert done == ("download", "create", "convert")
    assert sums.fetched == [DEBIAN.sums_url]
    download = next(c for c in fake.state.calls if c.path.endswith("/download-url"))
    assert download.params["url"] == DEBIAN.url
    assert download.params["content"] == "import"
    assert download.params["checksum-algorithm"] == "sha512"
    assert download.params["checksum"] == sha(IMAGE_BYTES)
    assert (
        "local:import/debian-12-genericcloud-amd64.qcow2"
        in fake.state.storage("pve", "local").volumes
    )
    config = {k: str(v) for k, v in fake.state.vms[TEMPLATE_VMID].config.items()}
    assert config["template"] == "1" and "lock" not in config
    assert config["scsi0"].startswith("local-lvm:base-9000-disk-0,")
    assert config["scsi0"].endswith(",size=3G") and "import-from" not in config["scsi0"]
    assert config["ide2"] == "local-lvm:vm-9000-cloudinit,media=cdrom"
    assert (config["agent"], config["serial0"], config["vga"]) == ("1", "socket", "serial0")
    assert config["scsihw"] == "virtio-scsi-single" and config["boot"] == "order=scsi0"
    assert config["machine"] == "pc" and config["cpu"] == "x86-64-v2-AES"
    assert config["net0"].startswith("virtio=BC:24:11:") and config["net0"].endswith("bridge=vmbr0")
    assert naming.TOOL_TAG in config["tags"].split(";")
    assert config["description"].startswith("homelab-gen: template image=debian-12 ")


def test_boot_accepts_the_new_template_and_a_second_run_changes_nothing(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1, 1)
    _make(fake, cluster)
    run = boot(fake, cluster)
    assert not run.prepared.plan.problems and not run.errors
    seed_cd = fake.state.vms[201].config["ide2"]
    assert "media=cdrom" in seed_cd and "cloudinit" not in seed_cd  # boot reused the IDE slot
    before = len(fake.state.mutating_calls())
    sums = Sums(sha(IMAGE_BYTES))
    plan, done = _make(fake, cluster, sums=sums)
    assert plan.actions == () and done == () and not plan.problems
    assert "exists (made by homelab-gen from debian-12)" in _reason(plan)
    assert len(fake.state.mutating_calls()) == before
    assert sums.fetched == [], "nothing to download, so no checksum fetch either"


def test_hand_made_usable_template_is_left_as_it_is(tmp_path: Path) -> None:
    with running_fake(tmp_path) as fake:  # the base world: a hand-made Debian template
        cluster = make_cluster(fake, 1)
        plan = _plan(fake, cluster)
        assert plan.actions == () and not plan.problems and "made by hand" in _reason(plan)
        assert not fake.state.mutating_calls()


def test_vmid_taken_by_a_foreign_vm_is_refused_untouched(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1, template_vmid=FOREIGN_VMID)
    before = snapshot(fake, FOREIGN_VMID)
    plan = _plan(fake, cluster)
    assert plan.actions == ()
    assert "VMID 100 (proxmox.template_vmid) is taken by VM 'pihole'" in plan.problems[0]
    with pytest.raises(template_job.TemplateFailed):
        template_job.apply_template(
            client_for(fake, cluster), cluster, choose_source(None, None, False)[0], plan
        )
    assert snapshot(fake, FOREIGN_VMID) == before
    assert not fake.state.mutating_calls()


def test_pve_83_refuses_with_the_manual_commands(fake: FakePVE) -> None:
    fake.state.version = "8.3.5"
    cluster = make_cluster(fake, 1)
    plan = _plan(fake, cluster)
    assert "Proxmox VE 8.3.5" in plan.problems[0] and "8.4" in plan.problems[0]
    manual = "\n".join(_manual(plan))
    assert f"wget -O {DEBIAN.upstream_name} {DEBIAN.url}" in manual
    assert f"wget -qO- {DEBIAN.sums_url} | grep -E '[ *]{DEBIAN.upstream_name}$'" in manual
    assert "| sha512sum -c -" in manual
    assert "qm create 9000 " in manual and "qm template 9000" in manual
    assert f"--scsi0 local-lvm:0,import-from=/var/tmp/{DEBIAN.upstream_name}" in manual
    assert "--net0 virtio,bridge=vmbr0" in manual and "--ide2 local-lvm:cloudinit" in manual
    assert "pveum" not in manual, "the manual route runs as root: no token grants needed"
    assert not fake.state.mutating_calls()


def test_checksum_mismatch_reports_the_failed_task(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    with pytest.raises(template_job.TemplateFailed) as failed:
        _make(fake, cluster, sums=Sums(sha(b"the image before it was republished")))
    message = str(failed.value)
    assert f"Proxmox could not download {DEBIAN.url}: checksum mismatch" in message
    assert "does not match its checksum" in message  # the hint
    assert TEMPLATE_VMID not in fake.state.vms
    assert not fake.state.storage("pve", "local").volumes
    assert not any(c.path.endswith("/qemu") for c in fake.state.mutating_calls())


def test_missing_network_privilege_is_refused_with_pveum_commands(fake: FakePVE) -> None:
    del fake.state.permissions["/nodes"]["Sys.AccessNetwork"]
    cluster = make_cluster(fake, 1)
    plan = _plan(fake, cluster)
    assert "lacks: Sys.AccessNetwork on /nodes/pve" in plan.problems[-1]
    assert 'pveum role add HomelabGenDownload --privs "Sys.AccessNetwork"' in _manual(plan)
    assert any(
        line.startswith(f"pveum acl modify /nodes/pve --tokens '{cluster.proxmox.token_id}'")
        for line in _manual(plan)
    )
    assert not fake.state.mutating_calls()


def test_missing_vm_privilege_lists_the_role_commands(fake: FakePVE) -> None:
    del fake.state.permissions["/vms"]["VM.Config.HWType"]
    cluster = make_cluster(fake, 1)
    plan = _plan(fake, cluster)
    assert "VM.Config.HWType on /vms/9000" in plan.problems[-1]
    assert any(line.startswith("pveum role add HomelabGen ") for line in _manual(plan))


def test_present_image_is_not_downloaded_again(fake: FakePVE) -> None:
    volid = f"local:import/{DEBIAN.filename}"
    fake.state.storage("pve", "local").volumes[volid] = {
        "content": "import", "size": 1, "data": b"", "virtual_size": "2G"
    }  # fmt: skip
    sums = Sums("f" * 128)
    _, done = _make(fake, make_cluster(fake, 1), sums=sums)
    assert done == ("create", "convert") and sums.fetched == []
    assert fake.state.vms[TEMPLATE_VMID].config["scsi0"].endswith(",size=2G")


def test_half_made_template_of_ours_is_finished(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    _make(fake, cluster)
    fake.state.vms[TEMPLATE_VMID].config.pop("template")  # killed before the convert step
    plan, done = _make(fake, cluster)
    assert [a.kind for a in plan.actions] == ["convert"] and done == ("convert",)
    assert fake.state.vms[TEMPLATE_VMID].is_template


def test_template_of_another_image_is_a_conflict(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    _make(fake, cluster)
    assert _plan(fake, cluster).actions == ()  # no --image: the template as it is
    plan = _plan(fake, cluster, "debian-13")
    assert "holds debian-12, not debian-13" in plan.problems[0]


def test_seed_storage_without_import_content_says_how_to_allow_it(fake: FakePVE) -> None:
    fake.state.storage("pve", "local").content.discard("import")
    plan = _plan(fake, make_cluster(fake, 1))
    assert any("pvesm set local --content backup,import,iso,vztmpl" in p for p in plan.problems)


# -- the command line ---------------------------------------------------------------------------
def test_cli_custom_url_with_checksum_end_to_end(
    fake: FakePVE,
    internet: dict[str, RemoteImage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "https://images.example.org/alma-9.raw"
    internet[url] = RemoteImage(b"raw disk", "10G")
    repo = tmp_path / "lab"
    repo.mkdir()
    (repo / "cluster.yaml").write_text(cluster_yaml(fake, 1))
    monkeypatch.setenv(TOKEN_ENV, fake.state.token_secret)
    args = [
        "template",
        "-C",
        str(repo),
        "--image",
        url,
        "--checksum",
        f"sha256:{sha(b'raw disk', 'sha256')}",
    ]
    assert cli.main([*args, "--dry-run"]) == 0
    assert not fake.state.mutating_calls()
    assert f"download {url} -> local:import/alma-9.raw" in capsys.readouterr().out
    assert cli.main([*args, "--yes"]) == 0
    assert "ready; next: homelab-gen boot" in capsys.readouterr().out
    assert fake.state.vms[TEMPLATE_VMID].config["scsi0"].endswith(",size=10G")
    assert cli.main([*args, "--yes"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_cli_refusal_exits_1_and_prints_commands(
    fake: FakePVE,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.state.version = "8.2.7"
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(fake, 1))
    monkeypatch.setenv(TOKEN_ENV, fake.state.token_secret)
    assert cli.main(["template", "-C", str(tmp_path), "--yes"]) == 1
    err = capsys.readouterr().err
    assert "    qm create 9000 " in err and "nothing was changed" in err


# -- choosing the image and its checksum ----------------------------------------------------------
def test_custom_url_needs_a_checksum_or_an_explicit_opt_out() -> None:
    with pytest.raises(UsageError, match="needs --checksum"):
        choose_source("https://x.example/a.qcow2", None, False)
    source, warnings = choose_source("https://x.example/a.qcow2", None, True)
    assert source.checksum is None and "without checking it" in warnings[0]
    with pytest.raises(UsageError, match="only for custom URLs"):
        choose_source("debian-13", None, True)
    with pytest.raises(UsageError, match="disk image"):
        choose_source("https://x.example/a.iso", "sha256:" + "a" * 64, False)
    assert choose_source("https://x.example/noble.img", None, True)[0].filename == "noble.qcow2"


def test_checksum_flag_is_checked_and_overrides_the_published_file() -> None:
    with pytest.raises(UsageError, match="128 hex digits"):
        parse_checksum("sha512:abc")
    with pytest.raises(UsageError, match="ALGO:HEX"):
        parse_checksum("crc32:abcd")
    source, _ = choose_source("debian-13", "SHA512:" + "A" * 128, False)
    assert source.checksum is not None and source.checksum.digest == "a" * 128
    assert source.checksum.sums_url is None


def test_known_images_read_the_publishers_checksum_file() -> None:
    ubuntu = IMAGES["ubuntu-24.04"]
    assert ubuntu.filename.endswith(".qcow2") and ubuntu.algorithm == "sha256"
    text = f"{'b' * 64} *noble-server-cloudimg-amd64.img\n{'c' * 64} *other.img\n"
    assert digest_from_sums(text, ubuntu.upstream_name, "sha256") == "b" * 64
    bsd = f"SHA512 (debian-12-genericcloud-amd64.qcow2) = {'d' * 128}\n"
    assert digest_from_sums(bsd, DEBIAN.upstream_name, "sha512") == "d" * 128
    assert digest_from_sums(text, "missing.img", "sha256") is None


def test_q35_puts_the_cloud_init_drive_on_scsi() -> None:
    source = replace(choose_source(None, None, False)[0], machine="q35")
    params = template_vm.create_params(make_cluster(None, 1), source, "local:import/x.qcow2")
    assert params["scsi1"] == "local-lvm:cloudinit" and "ide2" not in params
    assert drive_slot("pc", {}) == "ide2"


# -- the fake speaks PVE's schema for the new endpoints ------------------------------------------
@pytest.mark.pve_probe
def test_fake_rejects_what_pve_rejects(fake: FakePVE) -> None:
    from generator.proxmox.failures import PveError

    client = client_for(fake, make_cluster(fake, 1))
    path = "nodes/pve/storage/local/download-url"
    good = {"url": DEBIAN.url, "content": "import", "filename": DEBIAN.filename}
    for bad, field in (
        ({**good, "checksum": "ab"}, "checksum-algorithm"),  # checksum needs its algorithm
        ({**good, "filename": "debian.img"}, "filename"),  # import content needs a disk extension
        ({**good, "content": "images"}, "content"),  # not in the endpoint's enum
        ({**good, "verify": "1"}, "verify"),  # unknown parameter
    ):
        with pytest.raises(PveError, match=field):
            client.call("POST", path, **bad)
    with pytest.raises(PveError, match="already exists"):
        client.call("POST", "nodes/pve/qemu", vmid=FOREIGN_VMID, name="again")
    assert not fake.state.storage("pve", "local").volumes


def test_fresh_template_with_the_built_in_schema(
    fake: FakePVE, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.pve import schema

    monkeypatch.setattr(schema, "_upstream", lambda *_: None)
    _, done = _make(fake, make_cluster(fake, 1))
    assert done == ("download", "create", "convert")


@pytest.mark.parametrize(
    ("step", "kind"),
    [("create", "reset"), ("template", "reset"), ("template", "lock"), ("download", "reset"),
     ("download", "noupid")],
)  # fmt: skip
def test_faults_converge_to_one_template(
    fake: FakePVE, monkeypatch: pytest.MonkeyPatch, step: str, kind: str
) -> None:
    from tests.fakes.pve import Fault, server

    extra = (("POST", "/qemu", "create"), ("POST", "/template", "template"))
    monkeypatch.setattr(
        server, "STEPS", (*server.STEPS, *extra, ("POST", "/download-url", "download"))
    )
    fake.state.faults.append(Fault(step, kind))
    cluster = make_cluster(fake, 1)
    _make(fake, cluster)
    fake.wait_idle()
    assert fake.state.faults[0].times == 0, "the fault never fired"
    assert fake.state.vms[TEMPLATE_VMID].is_template
    assert set(fake.state.vms) == {TEMPLATE_VMID, FOREIGN_VMID}
    assert _plan(fake, cluster).actions == ()


@pytest.mark.parametrize("kind", ["500", "task"])
def test_a_permanent_failure_is_reported_once(
    fake: FakePVE, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A 500 that is a handler's die, or a task failed on something else than a lock wait,
    is not retried (tests/proxmox/test_retry_policy.py has the whole table)."""
    from tests.fakes.pve import Fault, server

    monkeypatch.setattr(server, "STEPS", (*server.STEPS, ("POST", "/qemu", "create")))
    fake.state.faults.append(Fault("create", kind))
    with pytest.raises(template_job.TemplateFailed, match="template 9000: create failed: "):
        _make(fake, make_cluster(fake, 1))
    creates = [c for c in fake.state.mutating_calls() if c.path == "/nodes/pve/qemu"]
    assert len(creates) == 1


def test_publishers_checksum_file_is_fetched_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import http.server
    import threading

    from generator.errors import HomelabError
    from generator.proxmox.images import Checksum, fetch_https, resolve

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)  # a CI proxy must not carry loopback requests
    (tmp_path / "SHA512SUMS").write_text(f"{'e' * 128}  {DEBIAN.upstream_name}\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        rule = Checksum("sha512", None, f"{base}/SHA512SUMS", DEBIAN.upstream_name)
        assert resolve(rule, fetch_https) == ("sha512", "e" * 128)
        with pytest.raises(HomelabError, match="lists no sha512 digest"):
            resolve(replace(rule, sums_name="gone.qcow2"), fetch_https)
        with pytest.raises(HomelabError, match="--checksum"):
            fetch_https(f"{base}/missing")
    finally:
        server.shutdown()
        server.server_close()


# -- the delete is boot's own, with the template's ownership rule --------------------------------
def _half_made_without_disk(fake: FakePVE, cluster: Cluster) -> None:
    _make(fake, cluster)
    config = fake.state.vms[TEMPLATE_VMID].config
    config.pop("template")
    config.pop("scsi0")  # killed before the import gave it its disk


def test_half_made_template_without_its_disk_is_deleted_and_built_again(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    _half_made_without_disk(fake, cluster)
    _, done = _make(fake, cluster)
    assert done == ("delete", "create", "convert")
    delete = next(c for c in fake.state.mutating_calls() if c.method == "DELETE")
    assert delete.path == f"/nodes/pve/qemu/{TEMPLATE_VMID}"
    assert fake.state.vms[TEMPLATE_VMID].is_template


def test_a_vm_that_changed_owner_since_the_plan_is_not_deleted(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    _half_made_without_disk(fake, cluster)
    plan = _plan(fake, cluster)
    fake.state.vms[TEMPLATE_VMID].config["description"] = "someone's own VM"
    with pytest.raises(template_job.TemplateFailed, match=f"VM {TEMPLATE_VMID} changed under us"):
        template_job.apply_template(
            client_for(fake, cluster), cluster, choose_source(None, None, False)[0], plan
        )
    assert TEMPLATE_VMID in fake.state.vms
    assert not any(c.method == "DELETE" for c in fake.state.mutating_calls())


def test_a_half_made_vm_gone_before_its_delete_is_not_an_error(fake: FakePVE) -> None:
    cluster = make_cluster(fake, 1)
    _half_made_without_disk(fake, cluster)
    plan = _plan(fake, cluster)
    del fake.state.vms[TEMPLATE_VMID]  # someone else removed it meanwhile
    source = choose_source(None, None, False)[0]
    done = template_job.apply_template(client_for(fake, cluster), cluster, source, plan)
    assert done == ("create", "convert") and fake.state.vms[TEMPLATE_VMID].is_template
