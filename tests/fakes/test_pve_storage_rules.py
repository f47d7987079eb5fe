"""The fake's storage endpoints answer as pve-storage (PVE 8.4: stable-8, PVE 9.x: master)
does: upload, download-url, storage list and config, content list and delete. Each case
names the upstream rule it holds the fake to; removing the rule makes the case fail."""

from __future__ import annotations

import gzip
import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.pve import FakePVE, default_state, running_fake
from tests.fakes.pve.state import NodeState, Storage, revoke
from tests.fakes.pve.template_routes import RemoteImage, running_template_fake, template_state

pytestmark = pytest.mark.pve_probe

DATA = b"\x00CD001 seed"
IMAGE = b"QFI\xfb image"


@pytest.fixture(params=["9.1.1", "8.4.1"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fake(tmp_path: Path, version: str) -> Iterator[FakePVE]:
    state = default_state("s3cret", snippets=True)
    state.version = version
    state.nodes["pve"].storages["local"].path = str(tmp_path / "vz")
    with running_fake(tmp_path, state) as running:
        yield running


INTERNET = {
    "https://example.org/disk.qcow2": RemoteImage(IMAGE, "3G"),
    "https://example.org/x.iso.gz": RemoteImage(gzip.compress(DATA)),
    "https://example.org/bad.iso.gz": RemoteImage(b"not gzip"),
}


@pytest.fixture
def web(tmp_path: Path, version: str) -> Iterator[FakePVE]:
    state = template_state("s3cret")
    state.version = version
    with running_template_fake(tmp_path, dict(INTERNET), state) as running:
        yield running


def send(fake: FakePVE, method: str, path: str, **kw: Any) -> requests.Response:
    token = f"PVEAPIToken={fake.state.token_id}={fake.state.token_secret}"
    return requests.request(
        method,
        f"https://127.0.0.1:{fake.port}/api2/json/{path}",
        headers={"Authorization": token},
        verify=fake.tls.ca_file,
        timeout=10,
        **kw,
    )


def data_of(answer: requests.Response) -> Any:
    assert answer.status_code == 200, (answer.status_code, answer.reason)
    return answer.json()["data"]


def task(fake: FakePVE, upid: str) -> tuple[str, str, str | None]:
    """(type, id, exitstatus) once the task has stopped."""
    fake.wait_idle()
    status = data_of(send(fake, "GET", f"nodes/pve/tasks/{upid}/status"))
    return status["type"], status["id"], status.get("exitstatus")


def upload(
    fake: FakePVE, name: str, content: str = "iso", data: bytes = DATA, **sums: str
) -> requests.Response:
    """Fields in pve-http-server's order: content, checksum-algorithm, checksum, file."""
    fields = {"content": content}
    if "algorithm" in sums:
        fields["checksum-algorithm"] = sums["algorithm"]
    if "checksum" in sums:
        fields["checksum"] = sums["checksum"]
    files = {"filename": (name, io.BytesIO(data), "application/octet-stream")}
    return send(fake, "POST", "nodes/pve/storage/local/upload", data=fields, files=files)


def refused(answer: requests.Response) -> tuple[int, str, dict[str, str] | None]:
    return answer.status_code, answer.reason, answer.json().get("errors")


def volumes(fake: FakePVE, storage: str = "local") -> dict[str, dict[str, Any]]:
    return fake.state.storage("pve", storage).volumes


# -- upload: pve-storage API2/Storage/Status.pm, upload -----------------------------------------
def test_upload_normalizes_the_name_and_runs_imgcopy(fake: FakePVE) -> None:
    # Storage.pm, normalize_content_filename; the worker is fork_worker('imgcopy', undef).
    upid = data_of(upload(fake, "my seed (1).ISO"))
    assert task(fake, upid) == ("imgcopy", "", "OK")
    assert volumes(fake)["local:iso/my_seed__1_.ISO"]["data"] == DATA


@pytest.mark.parametrize(
    ("content", "name", "error"),
    [
        ("iso", "seed.txt", "wrong file extension"),  # $ISO_EXT_RE_0
        ("vztmpl", "ct.tar.lz4", "wrong file extension"),  # $VZTMPL_EXT_RE_1
        ("import", "disk.ovf", "invalid filename or wrong extension"),  # $UPLOAD_IMPORT_EXT_RE_1
        ("import", "disk.QCOW2", "invalid filename or wrong extension"),  # case-sensitive
    ],
)
def test_upload_file_name_rules(fake: FakePVE, content: str, name: str, error: str) -> None:
    answer = upload(fake, name, content)
    assert refused(answer) == (400, "Parameter verification failed.", {"filename": error})
    assert not volumes(fake)


def test_plain_tar_templates_since_pve_9_1(fake: FakePVE) -> None:
    # pve-storage commit "allow .tar container templates" (9.0.14).
    answer = upload(fake, "ct.tar", "vztmpl")
    if fake.state.version.startswith("8."):
        assert refused(answer)[2] == {"filename": "wrong file extension"}
    else:
        assert task(fake, data_of(answer))[2] == "OK"


def test_upload_name_is_checked_before_the_content_type(fake: FakePVE) -> None:
    fake.state.storage("pve", "local").content = {"iso"}
    answer = upload(fake, "disk.txt", "import")
    assert refused(answer)[2] == {"filename": "invalid filename or wrong extension"}
    answer = upload(fake, "disk.qcow2", "import", IMAGE)
    assert refused(answer)[:2] == (500, "storage 'local' does not support 'import' content")


def test_upload_needs_a_file_storage_that_is_enabled(fake: FakePVE) -> None:
    answer = send(
        fake,
        "POST",
        "nodes/pve/storage/local-lvm/upload",
        data={"content": "iso"},
        files={"filename": ("a.iso", io.BytesIO(DATA))},
    )
    assert refused(answer)[:2] == (500, "can't upload to storage type 'lvmthin'")
    fake.state.storage("pve", "local").disable = True  # Storage.pm, storage_check_enabled
    assert refused(upload(fake, "a.iso"))[:2] == (500, "storage 'local' is disabled")


def test_upload_checksum_mismatch_is_the_exit_status(fake: FakePVE) -> None:
    # Status.pm, upload worker; RESTEnvironment.pm fork_worker writes "TASK ERROR: ...",
    # UPID.pm read_status hands back the text only.
    wrong = "AB" * 32
    upid = data_of(upload(fake, "a.iso", algorithm="sha256", checksum=wrong))
    got = hashlib.sha256(DATA).hexdigest()
    assert task(fake, upid)[2] == f"checksum mismatch: got '{got}' != expect '{wrong}'"
    assert not volumes(fake)
    upper = got.upper()  # lc() on both sides
    upid = data_of(upload(fake, "a.iso", algorithm="sha256", checksum=upper))
    assert task(fake, upid)[2] == "OK"


def test_upload_checksum_needs_its_algorithm(fake: FakePVE) -> None:
    # pve-common JSONSchema.pm, validate: `requires`; the text changed in pve-common 9.0.8.
    answer = upload(fake, "a.iso", checksum="ab")
    if fake.state.version.startswith("8."):
        text = "missing property - 'checksum' requires this property"
    else:
        text = "missing property required by 'checksum'"
    assert refused(answer) == (400, "Parameter verification failed.", {"checksum-algorithm": text})


def test_upload_overwrites_an_existing_file(fake: FakePVE) -> None:
    # Status.pm, upload: "we simply overwrite the destination file if it already exists".
    assert task(fake, data_of(upload(fake, "a.iso")))[2] == "OK"
    assert task(fake, data_of(upload(fake, "a.iso", data=b"new")))[2] == "OK"
    assert volumes(fake)["local:iso/a.iso"]["data"] == b"new"


# -- download-url: Status.pm, download_url; pve-common Tools.pm, download_file_from_url --------
def download(fake: FakePVE, **params: str) -> requests.Response:
    params.setdefault("content", "import")
    storage = params.pop("storage", "local")
    return send(fake, "POST", f"nodes/pve/storage/{storage}/download-url", data=params)


def test_download_normalizes_and_names_the_task(web: FakePVE) -> None:
    url = "https://example.org/disk.qcow2"
    upid = data_of(download(web, url=url, filename="Debian 12.qcow2"))
    assert task(web, upid) == ("download", "Debian_12.qcow2", "OK")
    assert volumes(web)["local:import/Debian_12.qcow2"]["data"] == IMAGE


def test_download_refuses_an_existing_file_in_its_task(web: FakePVE) -> None:
    url = "https://example.org/disk.qcow2"
    assert task(web, data_of(download(web, url=url, filename="d.qcow2")))[2] == "OK"
    upid = data_of(download(web, url=url, filename="d.qcow2"))
    assert task(web, upid)[2] == "refusing to override existing file '/var/lib/vz/import/d.qcow2'"
    # With a checksum: the same file is kept, another one aborts.
    good = hashlib.sha256(IMAGE).hexdigest()
    sums = {"checksum-algorithm": "sha256"}
    upid = data_of(download(web, url=url, filename="d.qcow2", checksum=good, **sums))
    assert task(web, upid)[2] == "OK"
    upid = data_of(download(web, url=url, filename="d.qcow2", checksum="00", **sums))
    assert task(web, upid)[2] == f"checksum mismatch: got '{good}' != expect '00', aborting"


def test_download_failures_are_task_texts(web: FakePVE) -> None:
    upid = data_of(download(web, url="https://example.org/gone.qcow2", filename="g.qcow2"))
    assert task(web, upid)[2] == "download failed: exit code 8"
    url, got = "https://example.org/disk.qcow2", hashlib.sha1(IMAGE).hexdigest()
    sums = {"checksum-algorithm": "sha1", "checksum": "ABC"}
    upid = data_of(download(web, url=url, filename="d.qcow2", **sums))
    assert task(web, upid)[2] == f"checksum mismatch: got '{got}' != expect 'ABC'"
    assert not volumes(web)


def test_download_checks_in_upstream_order(web: FakePVE) -> None:
    url = "https://example.org/disk.qcow2"
    web.state.storage("pve", "local").content = {"iso"}
    # The content type comes before the name (unlike upload).
    answer = download(web, url=url, filename="d.txt", content="vztmpl")
    assert refused(answer)[:2] == (
        500,
        "storage 'local' is not configured for content-type 'vztmpl'",
    )
    answer = download(web, url=url, filename="d.txt", content="iso")
    assert refused(answer)[2] == {"filename": "wrong file extension"}
    answer = download(web, url=url, filename="d.qcow2", storage="local-lvm")
    assert refused(answer)[:2] == (
        500,
        "can't upload to storage type 'lvmthin', not a file based storage!",
    )


# The API schema has `"enum": null` for `compression` (Status.pm names an undefined
# variable), which PVE's JSONSchema.pm skips; schema.py (not this module's) still crashes
# on it and the server drops the connection.
def test_download_decompression(web: FakePVE) -> None:
    # Status.pm, download_url worker; Storage.pm, decompressor_info('iso', ...).
    url = "https://example.org/disk.qcow2"
    upid = data_of(download(web, url=url, filename="d.qcow2", compression="gz"))
    assert task(web, upid)[2] == "decompression not supported for import"
    iso = {"content": "iso", "compression": "gz"}
    upid = data_of(download(web, url="https://example.org/x.iso.gz", filename="x.iso", **iso))
    assert task(web, upid)[2] == "OK"
    assert volumes(web)["local:iso/x.iso"]["data"] == DATA
    upid = data_of(download(web, url="https://example.org/bad.iso.gz", filename="b.iso", **iso))
    pid = int(upid.split(":")[2], 16)
    tmp = f"/var/lib/vz/template/iso/b.iso.tmp_dwnl.{pid}"
    assert task(web, upid)[2] == f"command 'zcat {tmp}' failed: exit code 1"


# -- GET /nodes/{node}/storage: Status.pm, index; Storage.pm, storage_info ----------------------
def listed(fake: FakePVE, **params: str) -> dict[str, dict[str, Any]]:
    rows = data_of(send(fake, "GET", "nodes/pve/storage", params=params))
    return {row["storage"]: row for row in rows}


def test_storage_list_fields_and_filters(fake: FakePVE) -> None:
    local = listed(fake)["local"]
    assert set(local) == {
        "storage",
        "type",
        "content",
        "shared",
        "enabled",
        "active",
        "total",
        "used",
        "avail",
        "used_fraction",
    }
    assert local["used_fraction"] == local["used"] / local["total"]
    assert set(listed(fake, content="iso")) == {"local"}
    assert set(listed(fake, content="images,iso")) == {"local", "local-lvm"}
    fake.state.storage("pve", "local-lvm").disable = True
    row = listed(fake)["local-lvm"]
    assert (row["enabled"], row["active"], row["total"]) == (0, 0, 0)
    assert "local-lvm" not in listed(fake, content="images")
    assert "local-lvm" not in listed(fake, enabled="1")
    answer = send(fake, "GET", "nodes/pve/storage", params={"storage": "nope"})
    assert refused(answer)[2] == {"storage": "No such storage."}


def test_storage_list_hides_what_the_token_may_not_see(fake: FakePVE) -> None:
    fake.state.permissions["/storage/local-lvm"] = {"Datastore.AllocateTemplate": 1}
    assert set(listed(fake)) == {"local"}


def test_a_storage_of_another_node_is_not_enabled_here(fake: FakePVE) -> None:
    fake.state.nodes["pve2"] = NodeState(storages={"nfs": Storage(content={"iso"}, type="nfs")})
    row = listed(fake)["nfs"]
    assert (row["enabled"], row["active"]) == (0, 0)


# -- GET /storage/{storage}: Config.pm, read -------------------------------------------------------
def test_storage_config(fake: FakePVE) -> None:
    fake.state.permissions["/storage"]["Datastore.Allocate"] = 1
    lvm = data_of(send(fake, "GET", "storage/local-lvm"))
    assert {k: lvm[k] for k in ("storage", "type", "thinpool", "vgname")} == {
        "storage": "local-lvm",
        "type": "lvmthin",
        "thinpool": "data",
        "vgname": "pve",
    }
    assert len(lvm["digest"]) == 40 and "path" not in lvm
    fake.state.storage("pve", "local").content = set()
    assert data_of(send(fake, "GET", "storage/local"))["content"] == "none"
    assert refused(send(fake, "GET", "storage/nope"))[:2] == (500, "storage 'nope' does not exist")


# -- content: Content.pm, index; Plugin.pm, list_volumes and $get_subdir_files -------------------
def seed_files(fake: FakePVE) -> None:
    store = fake.state.storage("pve", "local")
    for volid in ("local:iso/b.iso", "local:iso/A.iso", "local:import/d.qcow2"):
        volumes(fake)[volid] = {"content": "x", "size": 3, "data": b"abc", "ctime": 7}
    volumes(fake)["local:vztmpl/ct.tar.zst"] = {"content": "vztmpl", "size": 1, "ctime": 7}
    folder = Path(str(store.path)) / "snippets"
    folder.mkdir(parents=True)
    (folder / "user.yaml").write_text("#cloud-config\n")


def test_content_list_fields_order_and_filters(fake: FakePVE) -> None:
    revoke(fake.state.permissions, "Datastore.Allocate")
    seed_files(fake)
    rows = data_of(send(fake, "GET", "nodes/pve/storage/local/content"))
    assert [r["volid"] for r in rows] == [
        "local:import/d.qcow2",
        "local:iso/A.iso",
        "local:iso/b.iso",
        "local:vztmpl/ct.tar.zst",
    ]  # sorted by lc(volid); snippets only with Datastore.Allocate
    assert rows[1] == {
        "volid": "local:iso/A.iso",
        "content": "iso",
        "format": "iso",
        "size": 3,
        "ctime": 7,
    }
    assert [r["format"] for r in rows] == ["qcow2", "iso", "iso", "tzst"]
    only = data_of(send(fake, "GET", "nodes/pve/storage/local/content", params={"content": "iso"}))
    assert [r["volid"] for r in only] == ["local:iso/A.iso", "local:iso/b.iso"]
    with_vmid = data_of(send(fake, "GET", "nodes/pve/storage/local/content", params={"vmid": 100}))
    assert [r["volid"] for r in with_vmid] == ["local:import/d.qcow2"]
    none = send(fake, "GET", "nodes/pve/storage/local/content", params={"content": "images"})
    assert data_of(none) == []


def test_snippets_are_listed_only_with_datastore_allocate(fake: FakePVE) -> None:
    revoke(fake.state.permissions, "Datastore.Allocate")
    # Storage.pm, check_volume_access: snippets fall to "missing privileges" otherwise.
    seed_files(fake)
    params = {"content": "snippets"}
    assert data_of(send(fake, "GET", "nodes/pve/storage/local/content", params=params)) == []
    fake.state.permissions["/storage/local"]["Datastore.Allocate"] = 1
    rows = data_of(send(fake, "GET", "nodes/pve/storage/local/content", params=params))
    assert [(r["volid"], r["format"]) for r in rows] == [("local:snippets/user.yaml", "snippet")]


def test_content_of_a_disabled_storage(fake: FakePVE) -> None:
    fake.state.storage("pve", "local").disable = True
    answer = send(fake, "GET", "nodes/pve/storage/local/content")
    assert refused(answer)[:2] == (500, "storage 'local' is disabled")


# -- DELETE content/{volume}: Content.pm, delete; Storage.pm, vdisk_free -------------------------
def delete(fake: FakePVE, volume: str, storage: str = "local", **kw: Any) -> requests.Response:
    return send(fake, "DELETE", f"nodes/pve/storage/{storage}/content/{volume}", **kw)


def test_delete_needs_datastore_allocate(fake: FakePVE) -> None:
    revoke(fake.state.permissions, "Datastore.Allocate")
    seed_files(fake)
    answer = delete(fake, "local:iso/b.iso")
    assert refused(answer)[:2] == (
        403,
        "Permission check failed (/storage/local, Datastore.Allocate)",
    )
    assert "local:iso/b.iso" in volumes(fake)


def test_delete_is_a_task_even_for_an_iso_in_use(fake: FakePVE) -> None:
    seed_files(fake)
    fake.state.permissions["/storage"]["Datastore.Allocate"] = 1
    fake.state.vms[100].config["ide2"] = "local:iso/b.iso,media=cdrom"
    assert task(fake, data_of(delete(fake, "local:iso/b.iso"))) == ("imgdel", "local", "OK")
    assert "local:iso/b.iso" not in volumes(fake)
    # Without the storage prefix; a missing file is only a warn(), the task ends OK.
    assert task(fake, data_of(delete(fake, "iso/A.iso")))[2] == "OK"
    assert task(fake, data_of(delete(fake, "iso/never.iso")))[2] == "OK"
    snippet = Path(str(fake.state.storage("pve", "local").path)) / "snippets/user.yaml"
    assert task(fake, data_of(delete(fake, "local:snippets/user.yaml")))[2] == "OK"
    assert not snippet.exists()
    upid = data_of(delete(fake, "local-lvm:vm-100-disk-0", "local-lvm"))
    assert task(fake, upid)[:2] == ("imgdel", "100@local-lvm")


def test_delete_volume_forms(fake: FakePVE) -> None:
    fake.state.permissions["/storage"]["Datastore.Allocate"] = 1
    answer = delete(fake, "local-lvm:vm-100-disk-0")
    assert refused(answer)[2] == {"volume": "storage ID mismatch (local-lvm != local)\n"}
    answer = delete(fake, "1x:iso/a.iso")
    assert refused(answer)[2] == {"volume": "unable to parse volume ID '1x:iso/a.iso'\n"}
    answer = delete(fake, "local:iso/a.txt")
    assert refused(answer)[:2] == (500, "unable to parse directory volume name 'iso/a.txt'")
    answer = delete(fake, "local-lvm:data", "local-lvm")
    assert refused(answer)[:2] == (500, "unable to parse lvm volume name 'data'")


def test_delete_with_delay_waits_for_the_task(fake: FakePVE) -> None:
    seed_files(fake)
    fake.state.permissions["/storage"]["Datastore.Allocate"] = 1
    started = time.monotonic()
    assert data_of(delete(fake, "local:iso/b.iso", params={"delay": 5})) is None
    assert time.monotonic() - started < 5
    fake.state.storage("pve", "local").disable = True  # vdisk_free's activate_storage fails
    answer = delete(fake, "local:iso/A.iso", params={"delay": 5})
    assert refused(answer)[:2] == (500, "storage 'local' is disabled")
