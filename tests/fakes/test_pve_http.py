"""The fake's HTTP layer answers as pve-http-server and pve-manager's HTTPServer.pm do:
the upload reader's field order, status lines, error bodies by release, authentication
and permission checks. Each case names the upstream rule it holds the fake to."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from generator.proxmox import seeds
from generator.proxmox.client import Client
from generator.proxmox.failures import PveError
from generator.proxmox.seediso import build_seed_iso
from tests.fakes.pve import FakePVE, default_state, running_fake
from tests.fakes.pve.harness import FAST_RETRY, make_cluster
from tests.fakes.pve.state import revoke

pytestmark = pytest.mark.pve_probe

SOURCE = "/usr/share/perl5/PVE/APIServer/AnyEvent.pm"
UPLOAD = "nodes/pve/storage/local/upload"
ISO = b"\x00CD001 seed"


@pytest.fixture(params=["9.1.1", "8.4.1", "8.3.2"])
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakePVE]:
    state = default_state("s3cret")
    state.version = request.param
    with running_fake(tmp_path, state) as fake:
        yield fake


def modern(fake: FakePVE) -> bool:
    return fake.state.version >= "8.4"


def url(fake: FakePVE, path: str) -> str:
    return f"https://127.0.0.1:{fake.port}/api2/json/{path}"


def auth(fake: FakePVE) -> dict[str, str]:
    return {"Authorization": f"PVEAPIToken={fake.state.token_id}={fake.state.token_secret}"}


def send(fake: FakePVE, method: str, path: str, **kw: object) -> requests.Response:
    headers = {**auth(fake), **kw.pop("headers", {})}  # type: ignore[dict-item]
    return requests.request(
        method, url(fake, path), headers=headers, verify=fake.tls.ca_file, timeout=10, **kw
    )


def upload(
    fake: FakePVE, fields: dict[str, str], file_field: str = "filename"
) -> requests.Response:
    """A multipart body as requests (and so proxmoxer) builds it: CRLF, fields first."""
    handle = io.BytesIO(ISO)
    files = {file_field: ("seed.iso", handle, "application/octet-stream")}
    return send(fake, "POST", UPLOAD, data=fields, files=files)


def raw_upload(fake: FakePVE, body: bytes, boundary: str = "XyZ") -> requests.Response:
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return send(fake, "POST", UPLOAD, data=body, headers=headers)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the upload reader: AnyEvent.pm, file_upload_multipart --------------------------------------
def test_fields_in_the_servers_order_are_taken(fake: FakePVE) -> None:
    fields = {"content": "iso", "checksum-algorithm": "sha256", "checksum": sha256(ISO)}
    answer = upload(fake, fields)
    assert answer.status_code == 200, answer.reason
    fake.wait_idle()
    stored = fake.state.storage("pve", "local").volumes["local:iso/seed.iso"]
    assert stored["data"] == ISO


def test_checksum_before_its_algorithm_is_refused(fake: FakePVE) -> None:
    # The checksum-algorithm regex reaches across the checksum part, so the captured
    # disposition holds CRLFs; sub response turns a reason with a CR into 400, no body.
    fields = {"content": "iso", "checksum": sha256(ISO), "checksum-algorithm": "sha256"}
    answer = upload(fake, fields)
    assert (answer.status_code, answer.reason, answer.content) == (400, "Bad Request", b"")
    assert not fake.state.storage("pve", "local").volumes
    assert fake.state.calls[-1].status == 400  # the call log records what was sent


def test_the_same_die_with_bare_newlines_keeps_its_text(fake: FakePVE) -> None:
    body = (
        b'--XyZ\ncontent-disposition: x\nContent-Disposition: form-data; name="content"\n\n'
        b'iso\n--XyZ\nContent-Disposition: form-data; name="checksum"\n\nab\n'
        b'--XyZ\nContent-Disposition: form-data; name="checksum-algorithm"\n\nsha256\n'
        b'--XyZ\nContent-Disposition: form-data; name="filename"; filename="a.iso"\n\n'
        b"DATA\n--XyZ--\n"
    )
    answer = raw_upload(fake, body)
    assert answer.reason == 'wrong Content-Disposition \'form-data; name="checksum"'
    if modern(fake):
        assert answer.status_code == 500
        assert answer.text.endswith("in multipart, expected 'form-data'\n")
    else:
        assert (answer.status_code, answer.content) == (501, b"")


def test_a_file_part_not_named_filename_is_refused(fake: FakePVE) -> None:
    answer = upload(fake, {"content": "iso"}, file_field="file")
    line = 1325 if fake.state.version >= "9" else 1281
    want = f"wrong field name 'file' for file upload, expected 'filename' at {SOURCE} line {line}."
    assert answer.status_code == (500 if modern(fake) else 501)
    if fake.state.version >= "8.4":
        assert answer.reason == want


def test_a_body_without_a_file_part_fails_the_upload(fake: FakePVE) -> None:
    body = b'--XyZ\r\nContent-Disposition: form-data; name="content"\r\n\r\niso\r\n--XyZ--\r\n'
    answer = raw_upload(fake, body)
    assert answer.reason.startswith("upload failed at ")


def test_a_quoted_boundary_is_taken_with_its_quotes(fake: FakePVE) -> None:
    # parse_content_type keeps the quotes, so the body's delimiters never match.
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="content"\r\n\r\niso\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="filename"; filename="a.iso"\r\n\r\n'
        b"DATA\r\n--XyZ--\r\n"
    )
    assert raw_upload(fake, body, boundary='"XyZ"').reason.startswith("upload failed")
    assert raw_upload(fake, body).status_code == 200


def test_upload_needs_the_template_privilege_before_any_body(fake: FakePVE) -> None:
    # HTTPServer.pm, auth_handler: checked before reading; the answer has no body.
    revoke(fake.state.permissions, "Datastore.AllocateTemplate")
    answer = upload(fake, {"content": "iso"})
    assert answer.status_code == 403
    assert answer.reason == "Permission check failed (/storage/local, Datastore.AllocateTemplate)"
    assert answer.content == b""


# -- homelab-gen's own upload goes through that reader ----------------------------------------
def client_for(fake: FakePVE) -> Client:
    return Client(make_cluster(fake).proxmox, fake.state.token_secret, retry=FAST_RETRY)


TEXTS = {"user-data": "#cloud-config\n", "meta-data": "instance-id: x\n", "network-config": "{}\n"}


def test_the_projects_seed_upload_is_accepted_and_verified(fake: FakePVE) -> None:
    cluster = make_cluster(fake)
    ref = seeds.seed_ref(cluster, cluster.nodes[0], TEXTS)
    seeds.upload_iso(client_for(fake), "pve", ref, TEXTS)
    stored = fake.state.storage("pve", "local").volumes[ref.volids[0]]
    assert stored["data"] == build_seed_iso(TEXTS)
    sent = next(c for c in fake.state.calls if c.template.endswith("/upload"))
    assert sent.params["checksum"] == sha256(stored["data"])
    assert sent.params["checksum-algorithm"] == "sha256"


def test_the_old_field_order_is_a_permanent_error(fake: FakePVE) -> None:
    handle = io.BytesIO(ISO)
    handle.name = "seed.iso"
    old_order = {"content": "iso", "filename": handle, "checksum": sha256(ISO)}
    old_order["checksum-algorithm"] = "sha256"
    with pytest.raises(PveError) as caught:
        client_for(fake).task("POST", UPLOAD, **old_order)
    assert "400" in str(caught.value) and not caught.value.transient


# -- status lines and bodies: AnyEvent.pm (process_header, response, error), HTTPServer.pm --------
def test_an_unknown_path_is_not_implemented(fake: FakePVE) -> None:
    answer = send(fake, "GET", "nodes/pve/bogus")
    assert (answer.status_code, answer.reason) == (
        501,
        "Method 'GET /nodes/pve/bogus' not implemented",
    )
    body = answer.json()
    assert body["data"] is None
    if modern(fake):
        assert body["message"] == "Method 'GET /nodes/pve/bogus' not implemented\n"
    else:
        assert "message" not in body


def test_parameter_errors_carry_their_map(fake: FakePVE, upstream: Path) -> None:
    answer = send(fake, "POST", "nodes/pve/qemu/9000/clone", data={"newid": "50"})
    assert (answer.status_code, answer.reason) == (400, "Parameter verification failed.")
    body = answer.json()
    assert body["errors"] == {"newid": "invalid format - value does not look like a valid VM ID\n"}
    assert ("message" in body) == modern(fake)
    assert answer.headers["Connection"] == "close"


def test_a_body_parameter_may_not_contradict_the_path(fake: FakePVE) -> None:
    answer = send(fake, "POST", "nodes/pve/qemu/9000/clone", data={"newid": "201", "vmid": "1"})
    assert answer.status_code == 400
    assert "duplicate parameter" in answer.json()["errors"]["vmid"]


def test_a_wrong_token_is_refused_without_a_body(fake: FakePVE) -> None:
    headers = {"Authorization": f"PVEAPIToken={fake.state.token_id}=wrong"}
    answer = requests.get(
        url(fake, "version"), headers=headers, verify=fake.tls.ca_file, timeout=10
    )
    assert (answer.status_code, answer.reason, answer.content) == (
        401,
        "Authentication failed!",
        b"",
    )


@pytest.mark.parametrize(
    ("path", "data", "dropped", "reason"),
    [
        (
            "nodes/pve/qemu/9000/clone",
            {"newid": "201"},
            ("/vms", "VM.Clone"),
            "Permission check failed (/vms/9000, VM.Clone)",
        ),
        (
            "nodes/pve/qemu/9000/clone",
            {"newid": "201"},
            ("/vms", "VM.Allocate"),
            "Permission check failed",
        ),
        (
            "nodes/pve/qemu/100/config",
            {"cores": "2"},
            ("/vms", "VM.Config.*"),
            "Permission check failed (/vms/100, VM.Config.Disk|VM.Config.CDROM|VM.Config.CPU"
            "|VM.Config.Memory|VM.Config.Network|VM.Config.HWType|VM.Config.Options"
            "|VM.Config.Cloudinit)",
        ),
    ],
)
def test_schema_permission_checks(
    fake: FakePVE,
    upstream: Path,
    path: str,
    data: dict[str, str],
    dropped: tuple[str, str],
    reason: str,
) -> None:
    # RPCEnvironment.pm, exec_api2_perm_check: `perm` names the first missing privilege,
    # `any` names them all, a failed `or` names none.
    acl = fake.state.permissions[dropped[0]]
    for priv in [
        p
        for p in acl
        if p == dropped[1] or (dropped[1].endswith("*") and p.startswith(dropped[1][:-1]))
    ]:
        del acl[priv]
    answer = send(fake, "POST", path, data=data)
    assert (answer.status_code, answer.reason) == (403, reason)
    assert set(fake.state.vms) == {100, 9000}


def test_a_grant_on_a_parent_counts_only_where_it_propagates(fake: FakePVE, upstream: Path) -> None:
    fake.state.permissions["/vms"] = dict.fromkeys(fake.state.permissions["/vms"], 0)
    assert send(fake, "GET", "nodes/pve/qemu/9000/config").status_code == 403
    fake.state.permissions["/vms/9000"] = {"VM.Audit": 0}
    assert send(fake, "GET", "nodes/pve/qemu/9000/config").status_code == 200


@pytest.mark.parametrize(
    ("method", "headers", "body", "status", "reason"),
    [
        ("PATCH", {}, b"", 501, "method 'PATCH' not available"),
        ("GET", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1", 501,
         "Unexpected content for method 'GET'"),
        ("POST", {"Content-Type": "text/plain"}, b"a=1", 506,
         "upload 'Content-Type 'text/plain' not implemented"),
    ],
)  # fmt: skip
def test_http_server_refusals(
    fake: FakePVE, method: str, headers: dict[str, str], body: bytes, status: int, reason: str
) -> None:
    answer = send(fake, method, "version", data=body, headers=headers)
    assert (answer.status_code, answer.reason) == (status, reason)


def test_chunked_bodies_are_not_supported(fake: FakePVE) -> None:
    context = ssl.create_default_context(cafile=str(fake.tls.ca_file))
    token = auth(fake)["Authorization"].encode()
    with (
        socket.create_connection(("127.0.0.1", fake.port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            b"POST /api2/json/version HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + token
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        status_line = tls.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 501 chunked transfer encoding not supported"


def test_json_bodies_are_read(fake: FakePVE, upstream: Path) -> None:
    # AnyEvent.pm, extract_params: application/json bodies are decoded too.
    payload = json.dumps({"newid": "50"})
    headers = {"Content-Type": "application/json"}
    answer = send(fake, "POST", "nodes/pve/qemu/9000/clone", data=payload, headers=headers)
    assert answer.json()["errors"] == {
        "newid": "invalid format - value does not look like a valid VM ID\n"
    }
