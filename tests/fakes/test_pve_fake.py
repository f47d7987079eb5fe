"""The fake PVE itself and the client's connection rules: TLS, token, schema, tasks."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.errors import HomelabError
from generator.proxmox.client import Client, tls_verify
from generator.proxmox.failures import PveError
from tests.fakes.pve import FakePVE, make_tls, running_fake, schema
from tests.fakes.pve.harness import client_for, make_cluster


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePVE]:
    with running_fake(tmp_path) as running:
        yield running


def test_tls_is_verified_against_the_pinned_ca(fake: FakePVE) -> None:
    cluster = make_cluster(fake)
    assert client_for(fake, cluster).get("version")["release"] == "9.1"


def test_a_server_from_an_unknown_ca_is_refused(fake: FakePVE, tmp_path: Path) -> None:
    stranger = make_tls(tmp_path / "other", ca_name="someone else")
    cluster = make_cluster(fake, ca_file=str(stranger.ca_file))
    with pytest.raises(PveError, match=r"TLS verification .* failed") as caught:
        client_for(fake, cluster).call("GET", "version")
    assert not caught.value.transient
    assert not fake.state.calls  # refused before any request reached the server


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_tls_false_warns_every_time(fake: FakePVE) -> None:
    cluster = make_cluster(fake, verify_tls=False)
    warnings: list[str] = []
    for _ in range(2):
        Client(cluster.proxmox, fake.state.token_secret, warn=warnings.append).get("version")
    assert len(warnings) == 2 and "TLS verification is OFF" in warnings[0]


def test_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    cluster = make_cluster(None, ca_file=str(tmp_path / "nope.pem"))
    with pytest.raises(HomelabError, match="ca_file"):
        tls_verify(cluster.proxmox, print)


def test_wrong_token_is_refused(fake: FakePVE) -> None:
    cluster = make_cluster(fake)
    client = Client(cluster.proxmox, "wrong", warn=lambda _: None)
    with pytest.raises(PveError) as caught:
        client.call("GET", "version")
    assert str(caught.value).startswith(
        "GET /version: Proxmox refused the API token (401 Authentication failed!)"
    )


@pytest.mark.pve_probe
@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"newid": "201", "bogus": "1"}, "bogus"),
        ({"newid": "abc"}, "newid"),
        ({"newid": "50"}, "newid"),
        ({"newid": "201", "format": "iso"}, "format"),
        ({}, "newid"),
    ],
)
def test_bad_parameters_get_http_400(fake: FakePVE, params: dict[str, str], bad: str) -> None:
    client = client_for(fake, make_cluster(fake))
    with pytest.raises(PveError, match=f"400 .*'{bad}'") as caught:
        client.call("POST", "nodes/pve/qemu/9000/clone", **params)
    assert not caught.value.transient
    assert set(fake.state.vms) == {100, 9000}


def test_fallback_schema_rejects_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "_upstream", lambda *_: None)
    template = "/nodes/{node}/qemu/{vmid}/clone"
    clone = {"node": "pve", "vmid": "9000", "newid": "201", "bogus": "1"}
    assert "bogus" in schema.validate("POST", template, clone)
    assert "newid" in schema.validate("POST", template, {"node": "pve", "vmid": "9000"})
    upload = "/nodes/{node}/storage/{storage}/upload"
    params = {"node": "pve", "storage": "local", "filename": "x", "content": "snippets"}
    assert "content" in schema.validate("POST", upload, params)


def test_upstream_schema_is_used_when_present(upstream: Path) -> None:
    assert schema.using_upstream()


def test_snippets_cannot_be_uploaded(fake: FakePVE) -> None:
    client = client_for(fake, make_cluster(fake))
    handle = io.BytesIO(b"#cloud-config\n")
    handle.name = "user.yaml"
    with pytest.raises(PveError, match="400"):
        client.call("POST", "nodes/pve/storage/local/upload", content="snippets", filename=handle)


def test_clone_holds_lock_clone_until_its_task_ends(fake: FakePVE) -> None:
    fake.state.latency.clone = 0.3
    client = client_for(fake, make_cluster(fake))
    upid = client.call("POST", "nodes/pve/qemu/9000/clone", newid=201, name="a")
    assert client.get("nodes/pve/qemu/201/config")["lock"] == "clone"
    client.wait(upid)
    assert "lock" not in client.get("nodes/pve/qemu/201/config")


def test_waiting_clone_fails_with_pves_lock_text(fake: FakePVE) -> None:
    fake.state.latency.clone_slots = 1
    fake.state.latency.clone = 0.3
    fake.state.latency.lock_timeout = 0.05
    client = client_for(fake, make_cluster(fake))
    first = client.call("POST", "nodes/pve/qemu/9000/clone", newid=201)
    text = "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout"
    with pytest.raises(PveError, match=text) as caught:
        client.task("POST", "nodes/pve/qemu/9000/clone", newid=202)
    assert caught.value.transient
    client.wait(first)
    assert 202 not in fake.state.vms  # PVE removes the failed clone's config


@pytest.mark.pve_probe
def test_nextid_reserves_nothing(fake: FakePVE) -> None:
    client = client_for(fake, make_cluster(fake))
    assert client.get("cluster/nextid") == client.get("cluster/nextid") == "101"


def test_task_exitstatus_is_checked(fake: FakePVE) -> None:
    from tests.fakes.pve import Fault

    fake.state.faults.append(Fault("start", "task"))
    client = client_for(fake, make_cluster(fake))
    client.task("POST", "nodes/pve/qemu/9000/clone", newid=201)
    started = time.monotonic()
    with pytest.raises(PveError, match="task failed: injected task failure"):
        client.task("POST", "nodes/pve/qemu/201/status/start")
    assert time.monotonic() - started < 5
    assert fake.state.vms[201].status == "stopped"
