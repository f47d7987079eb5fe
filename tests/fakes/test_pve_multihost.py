"""The fake PVE as a cluster of three hosts (issue 17): shared and per-host storage,
/cluster/resources across hosts, clones to another host, a host going offline,
migration. Driven over HTTPS through proxmoxer (what generator/proxmox/client.py uses),
asserting PVE's status code and exact text; each test names the upstream rule it pins
(repo file, sub)."""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from proxmoxer import ProxmoxAPI
from proxmoxer.core import ResourceException

from tests.fakes.pve import FOREIGN_VMID, TEMPLATE_VMID, FakePVE, Vm, running_fake
from tests.fakes.pve.server import NO_UPLOAD_PROXY
from tests.fakes.pve.state import PveState, cluster_state

pytestmark = pytest.mark.pve_probe

LOCAL_TEMPLATE = TEMPLATE_VMID  # 9000 on pve1's local-lvm
SHARED_TEMPLATE = TEMPLATE_VMID + 1  # 9001 on pve1's NFS `shared`


def _state(**kw: Any) -> PveState:
    kw.setdefault("templates", (("pve1", "local-lvm"), ("pve1", "shared")))
    return cluster_state(secrets.token_hex(16), **kw)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePVE]:
    with running_fake(tmp_path, _state()) as fake:
        yield fake


def api_of(fake: FakePVE) -> Any:
    user, _, name = fake.state.token_id.partition("!")
    return ProxmoxAPI(
        "127.0.0.1",
        port=fake.port,
        user=user,
        token_name=name,
        token_value=fake.state.token_secret,
        verify_ssl=str(fake.tls.ca_file),
        backend="https",
        timeout=10,
    )


def refused(call: Any, status: int, reason: str) -> ResourceException:
    with pytest.raises(ResourceException) as caught:
        call()
    assert (caught.value.status_code, caught.value.content) == (status, reason)
    return caught.value


def wait(api: Any, upid: str) -> dict[str, Any]:
    node = upid.split(":")[1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status: dict[str, Any] = api.nodes(node).tasks(upid).status.get()
        if status["status"] == "stopped":
            return status
        time.sleep(0.01)
    raise AssertionError("task did not finish")


def body_message(fake: FakePVE, method: str, path: str, **params: Any) -> str:
    """The error answer's JSON `message` (proxmoxer keeps only the reason line)."""
    answer = requests.request(
        method,
        f"https://127.0.0.1:{fake.port}/api2/json{path}",
        data=params,
        headers={"Authorization": f"PVEAPIToken={fake.state.token_id}={fake.state.token_secret}"},
        verify=str(fake.tls.ca_file),
        timeout=10,
    )
    return str(answer.json()["message"])


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


# -- storages: pve-storage API2/Storage/Config.pm and Status.pm, Plugin.pm parse_config --------
def test_shared_storage_is_one_storage_on_every_host(fake: FakePVE) -> None:
    api = api_of(fake)
    config = {row["storage"]: row for row in api.storage.get()}
    assert set(config) == {"local", "local-lvm", "shared"}
    # Config.pm $api_storage_config: `shared` only where storage.cfg has it (set for nfs
    # by parse_config's @SHARED_STORAGE); no `nodes`: every host has all three.
    assert config["shared"]["shared"] == 1 and config["shared"]["type"] == "nfs"
    assert "shared" not in config["local"] and "shared" not in config["local-lvm"]
    assert not any("nodes" in row for row in config.values())
    fake.state.permissions["/storage"]["Datastore.Allocate"] = 1  # Config.pm, read
    assert api.storage("shared").get()["shared"] == 1
    assert [row["storage"] for row in api.storage.get(type="nfs")] == ["shared"]
    for host in ("pve1", "pve2", "pve3"):
        status = {row["storage"]: row for row in api.nodes(host).storage.get()}
        assert {k: v["shared"] for k, v in status.items()} == {
            "local": 0,
            "local-lvm": 0,
            "shared": 1,
        }
        assert all(row["enabled"] == 1 and row["active"] == 1 for row in status.values())


def test_a_shared_volume_is_seen_from_every_host_a_local_one_only_from_its_own(
    fake: FakePVE,
) -> None:
    api = api_of(fake)
    volume = {"content": "iso", "size": 4, "data": b"seed", "ctime": 1}
    fake.state.storage("pve1", "shared").volumes["shared:iso/seed.iso"] = dict(volume)
    fake.state.storage("pve1", "local").volumes["local:iso/mine.iso"] = dict(volume)
    for host in ("pve1", "pve2", "pve3"):
        listed = [v["volid"] for v in api.nodes(host).storage("shared").content.get()]
        assert listed == ["shared:iso/seed.iso"], host
    assert [v["volid"] for v in api.nodes("pve1").storage("local").content.get()] == [
        "local:iso/mine.iso"
    ]
    assert api.nodes("pve2").storage("local").content.get() == []


# -- /cluster/resources: pve-manager API2/Cluster.pm resources, API2Tools.pm extract_*_stats ----
def test_resources_name_each_vms_host_and_every_host(fake: FakePVE) -> None:
    api = api_of(fake)
    fake.state.migrate(FOREIGN_VMID, "pve3")
    rows = by_id(api.cluster.resources.get())
    assert rows[f"qemu/{FOREIGN_VMID}"]["node"] == "pve3"
    assert rows[f"qemu/{LOCAL_TEMPLATE}"]["node"] == "pve1"
    for host in ("pve1", "pve2", "pve3"):
        node = rows[f"node/{host}"]
        assert (node["type"], node["status"]) == ("node", "online")
        assert node["maxmem"] == 64 * 2**30 and 0 < node["mem"] <= node["maxmem"]
        # one storage entry per host, for the shared one too
        assert rows[f"storage/{host}/shared"]["shared"] == 1
        assert rows[f"storage/{host}/local-lvm"]["shared"] == 0
    # Cluster.pm, resources: a disabled storage has no entry (storage_check_enabled)
    fake.state.storage("pve2", "local").disable = True
    listed = {r["id"] for r in api.cluster.resources.get(type="storage")}
    assert "storage/pve2/local" not in listed and "storage/pve1/local" in listed
    assert [r["id"] for r in api.cluster.resources.get(type="node")] == [
        "node/pve1",
        "node/pve2",
        "node/pve3",
    ]


# -- a host offline: pve-manager HTTPServer.pm rest_handler -> pve-http-server AnyEvent.pm
# proxy_request (AnyEvent::HTTP's 595); pmxcfs status.c rrd_entry_is_old ----------------------
def test_calls_to_an_offline_host_fail_595_with_the_connect_error(fake: FakePVE) -> None:
    api = api_of(fake)
    fake.state.set_offline("pve2")
    refused(lambda: api.nodes("pve2").qemu.get(), 595, "No route to host")
    refused(lambda: api.nodes("pve2").status.get(), 595, "No route to host")
    # the schema check runs on the target host: a bad parameter still gets the 595
    refused(lambda: api.nodes("pve2").qemu(1).config.get(), 595, "No route to host")
    fake.state.set_offline("pve2", reason="Connection refused")
    refused(lambda: api.nodes("pve2").storage.get(), 595, "Connection refused")
    assert api.nodes("pve3").qemu.get() == []  # the others answer
    fake.state.set_online("pve2")
    assert api.nodes("pve2").qemu.get() == []


def test_resources_show_an_offline_host_and_its_vms_unknown(fake: FakePVE) -> None:
    api = api_of(fake)
    fake.state.migrate(FOREIGN_VMID, "pve2")
    fake.state.set_offline("pve2")
    rows = by_id(api.cluster.resources.get())
    assert rows["node/pve2"] == {"id": "node/pve2", "node": "pve2", "type": "node"} | {
        "status": "offline"
    }
    # extract_vm_stats without an rrd entry: no name, no sizes; tags come from the config
    assert rows[f"qemu/{FOREIGN_VMID}"] == {
        "id": f"qemu/{FOREIGN_VMID}",
        "type": "qemu",
        "vmid": FOREIGN_VMID,
        "node": "pve2",
        "status": "unknown",
        "tags": "dns",
    }
    assert rows["storage/pve2/shared"]["status"] == "unknown"
    assert "maxdisk" not in rows["storage/pve2/shared"]
    assert rows["storage/pve1/shared"]["status"] == "available"
    assert {n["node"]: n["status"] for n in api.nodes.get()} == {
        "pve1": "online",
        "pve2": "offline",
        "pve3": "online",
    }


def test_in_its_first_five_minutes_offline_a_hosts_vms_keep_their_last_status(
    fake: FakePVE,
) -> None:
    api = api_of(fake)
    fake.state.migrate(FOREIGN_VMID, "pve2")
    fake.state.set_offline("pve2", recent_stats=True)
    rows = by_id(api.cluster.resources.get())
    assert rows[f"qemu/{FOREIGN_VMID}"]["status"] == "running"  # stale, not live
    node = rows["node/pve2"]
    assert node["status"] == "offline" and node["maxmem"] == 64 * 2**30
    assert "mem" not in node and "uptime" not in node


def test_the_host_the_client_talks_to_going_down_leaves_no_answer(fake: FakePVE) -> None:
    fake.state.set_offline("pve1")
    with pytest.raises(requests.ConnectionError):
        api_of(fake).version.get()


def test_an_upload_through_another_host_is_refused(fake: FakePVE) -> None:
    api = api_of(fake)

    def upload(host: str) -> Any:
        iso = io.BytesIO(b"x" * 1024)
        iso.name = "seed.iso"
        return api.nodes(host).storage("shared").upload.post(content="iso", filename=iso)

    refused(lambda: upload("pve2"), 500, NO_UPLOAD_PROXY)
    wait(api, upload("pve1"))
    assert "shared:iso/seed.iso" in fake.state.storage("pve3", "shared").volumes


# -- clone to another host: qemu-server API2/Qemu.pm clone_vm ($load_and_check,
# $check_storage_access_clone), pve-cluster Cluster.pm check_node_exists/check_cfs_quorum -----
def clone(api: Any, vmid: int, **params: Any) -> Any:
    return lambda: api.nodes("pve1").qemu(vmid).clone.post(newid=201, **params)


def test_clone_to_another_host_refusals(fake: FakePVE) -> None:
    api = api_of(fake)
    local = "can't clone VM to node 'pve2' (VM uses local storage)"
    refused(clone(api, LOCAL_TEMPLATE, target="pve2"), 500, local)
    # `storage` names where the copies go; the source's storages decide
    refused(clone(api, LOCAL_TEMPLATE, target="pve2", full=1, storage="shared"), 500, local)
    refused(
        clone(api, SHARED_TEMPLATE, target="pve2", full=1, storage="local-lvm"),
        500,
        "can't clone to non-shared storage 'local-lvm'",
    )
    refused(clone(api, SHARED_TEMPLATE, target="pve9"), 500, "no such cluster node 'pve9'")
    # the local-storage check comes before the linked-clone feature check
    refused(clone(api, FOREIGN_VMID, target="pve2", full=0), 500, local)
    # a CD-ROM counts too: a cloud-init drive (or an ISO) on local storage
    fake.state.vms[SHARED_TEMPLATE].config["ide2"] = "local-lvm:vm-9001-cloudinit,media=cdrom"
    refused(clone(api, SHARED_TEMPLATE, target="pve2"), 500, local)
    fake.state.vms[SHARED_TEMPLATE].config["ide2"] = "local:iso/seed.iso,media=cdrom"
    refused(clone(api, SHARED_TEMPLATE, target="pve2"), 500, local)
    fake.state.vms[SHARED_TEMPLATE].config["ide2"] = "none,media=cdrom"
    wait(api, clone(api, SHARED_TEMPLATE, target="pve2")())
    assert fake.state.vms[201].node == "pve2"


def test_linked_clone_from_shared_storage_lands_on_the_target(fake: FakePVE) -> None:
    api = api_of(fake)
    status = wait(api, clone(api, SHARED_TEMPLATE, target="pve2", name="k3s-server-1")())
    assert (status["node"], status["exitstatus"]) == ("pve1", "OK")
    vm = fake.state.vms[201]
    assert vm.node == "pve2" and vm.clone_of == SHARED_TEMPLATE
    config = api.nodes("pve2").qemu(201).config.get()
    assert config["scsi0"] == "shared:9001/base-9001-disk-0.qcow2/201/vm-201-disk-0.qcow2,size=3G"
    assert config["ide2"] == "shared:201/vm-201-cloudinit.qcow2,media=cdrom"
    refused(
        lambda: api.nodes("pve1").qemu(201).config.get(),
        500,
        "Configuration file 'nodes/pve1/qemu-server/201.conf' does not exist",
    )
    # `target` naming the source host is no move at all (undef $target)
    wait(api, api.nodes("pve1").qemu(SHARED_TEMPLATE).clone.post(newid=202, target="pve1"))
    assert fake.state.vms[202].node == "pve1"


def test_full_clone_to_another_host_on_ceph(tmp_path: Path) -> None:
    state = _state(shared_kind="rbd")
    with running_fake(tmp_path, state) as fake:
        api = api_of(fake)
        wait(api, clone(api, SHARED_TEMPLATE, target="pve3", full=1, storage="shared")())
        assert fake.state.vms[201].node == "pve3"
        assert fake.state.vms[201].config["scsi0"] == "shared:vm-201-disk-0,size=3G"
        # a linked clone on RBD names its base (RBDPlugin.pm, clone_image)
        wait(api, api.nodes("pve1").qemu(SHARED_TEMPLATE).clone.post(newid=202, target="pve2"))
        assert fake.state.vms[202].config["scsi0"] == (
            "shared:base-9001-disk-0/vm-202-disk-0,size=3G"
        )


def test_clone_without_quorum_is_refused(fake: FakePVE) -> None:
    api = api_of(fake)
    fake.state.set_offline("pve2")
    wait(api, clone(api, SHARED_TEMPLATE)())  # two of three: still quorate
    fake.state.set_offline("pve3")
    refused(
        lambda: api.nodes("pve1").qemu(SHARED_TEMPLATE).clone.post(newid=202),
        500,
        "cluster not ready - no quorum?",
    )


# -- migration (a test helper standing in for HA) ----------------------------------------------
def test_a_migrated_vm_answers_on_its_new_host_only(fake: FakePVE) -> None:
    api = api_of(fake)
    wait(api, clone(api, SHARED_TEMPLATE, target="pve2")())
    fake.state.migrate(201, "pve3")
    assert api.nodes("pve3").qemu(201).config.get()["name"] == "Copy-of-VM-debian-12-cloud"
    assert [vm["vmid"] for vm in api.nodes("pve3").qemu.get()] == [201]
    refused(
        lambda: api.nodes("pve2").qemu(201).status.current.get(),
        500,
        "Configuration file 'nodes/pve2/qemu-server/201.conf' does not exist",
    )
    assert by_id(api.cluster.resources.get(type="vm"))["qemu/201"]["node"] == "pve3"


# -- HA: pve-ha-manager API2/HA/Resources.pm, Rules.pm (PVE 9), Groups.pm (PVE 8) --------------
def grant_ha(fake: FakePVE) -> None:
    # Sys.Audit on / to read, Sys.Console on / to change (the endpoints' permissions)
    fake.state.permissions["/"] = {"Sys.Audit": 0, "Sys.Console": 0}


def test_ha_changes_need_sys_console_on_root(fake: FakePVE) -> None:
    api = api_of(fake)
    refused(
        lambda: api.cluster.ha.resources.post(sid=f"vm:{FOREIGN_VMID}"),
        403,
        "Permission check failed (/, Sys.Console)",
    )
    refused(lambda: api.cluster.ha.resources.get(), 403, "Permission check failed (/, Sys.Audit)")


def test_ha_resources_create_list_delete(fake: FakePVE) -> None:
    api = api_of(fake)
    grant_ha(fake)
    api.cluster.ha.resources.post(sid=str(FOREIGN_VMID), state="started")  # parse_sid: vm:100
    [row] = api.cluster.ha.resources.get()
    assert {k: row[k] for k in ("sid", "type", "state")} == {
        "sid": "vm:100",
        "type": "vm",
        "state": "started",
    }
    assert by_id(api.cluster.resources.get(type="vm"))["qemu/100"]["hastate"] == "started"
    refused(
        lambda: api.cluster.ha.resources.post(sid="vm:100"),
        500,
        "create resource failed: resource ID 'vm:100' already defined",
    )
    refused(
        lambda: api.cluster.ha.resources.post(sid="vm:555"),
        500,
        "resource 'vm:555' does not exist in cluster",
    )
    refused(
        lambda: api.cluster.ha.resources.post(sid="555"),
        500,
        "unable to detect SID from VMID - VM/CT 555 does not exist",
    )
    refused(
        lambda: api.cluster.ha.resources.post(sid="vm:9000", group="servers"),
        500,
        "invalid parameter 'group': ha groups have been migrated to rules",
    )
    refused(
        lambda: api.cluster.ha.resources.post(sid="vm:9000", type="ct"),
        500,
        "types does not match",
    )
    api.cluster.ha.resources("vm:100").delete()
    assert api.cluster.ha.resources.get() == []
    refused(
        lambda: api.cluster.ha.resources("vm:100").delete(),
        500,
        "cannot delete service 'vm:100', not HA managed!",
    )


def test_ha_rules_keep_servers_apart(fake: FakePVE) -> None:
    api = api_of(fake)
    grant_ha(fake)
    for sid in ("vm:100", "vm:9000"):
        api.cluster.ha.resources.post(sid=sid)
    rules = api.cluster.ha.rules

    def create(rule: str, resources: str, **kw: Any) -> Any:
        return lambda: rules.post(rule=rule, resources=resources, **kw)

    refused(
        create("apart", "vm:100,vm:9000,vm:9001", type="resource-affinity", affinity="negative"),
        500,
        "create ha rule failed: cannot use unmanaged resource(s) vm:9001.",
    )
    refused(
        create("pin", "vm:100", type="node-affinity", nodes="pve1,pve9:2"),
        500,
        "create ha rule failed: cannot use non-existent node(s) pve9.",
    )
    refused(
        create("alone", "vm:100", type="resource-affinity", affinity="negative"),
        500,
        "create ha rule failed: 400 Rule 'alone' is invalid.",
    )
    # the whole text (PVE 8.4+ puts it in the body): the exception's errors, one a line
    alone = {"resources": "vm:100", "type": "resource-affinity", "affinity": "negative"}
    assert body_message(fake, "POST", "/cluster/ha/rules", rule="alone", **alone) == (
        "create ha rule failed: 400 Rule 'alone' is invalid.\n"
        "resources: rule is ineffective as there are less than two resources\n"
    )
    refused(
        create("apart", "vm:100,vm:9000", type="resource-affinity"),
        500,
        "missing value for required option 'affinity'",
    )
    refused(
        create("apart", "vm:100,vm:9000", type="node-affinity", nodes="pve1", affinity="negative"),
        500,
        "unexpected property 'affinity'",
    )
    create("apart", "vm:9000,vm:100", type="resource-affinity", affinity="negative")()
    [rule] = rules.get()
    assert {k: rule[k] for k in ("rule", "type", "affinity", "resources")} == {
        "rule": "apart",
        "type": "resource-affinity",
        "affinity": "negative",
        "resources": "vm:100,vm:9000",
    }
    refused(
        create("apart", "vm:100,vm:9000", type="resource-affinity", affinity="negative"),
        500,
        "create ha rule failed: HA rule 'apart' already defined",
    )
    # more resources kept apart than hosts
    api.cluster.ha.resources.post(sid="vm:9001")
    fake.state.vms[101] = Vm(101, "pve2", {"name": "other"})
    api.cluster.ha.resources.post(sid="vm:101")
    refused(
        create(
            "four", "vm:100,vm:101,vm:9000,vm:9001", type="resource-affinity", affinity="negative"
        ),
        500,
        "create ha rule failed: 400 Rule 'four' is invalid.",
    )
    # delete_service_from_config with purge: the rule keeps the other resource
    api.cluster.ha.resources("vm:100").delete()
    assert rules("apart").get()["resources"] == "vm:9000"
    refused(
        lambda: api.cluster.ha.groups.post(group="servers", nodes="pve1,pve2"),
        500,
        "cannot create group: ha groups have been migrated to rules",
    )
    rules("apart").delete()
    assert rules.get() == []


def test_pve8_has_groups_and_no_rules(tmp_path: Path) -> None:
    state = _state()
    state.version = "8.4.1"
    with running_fake(tmp_path, state) as fake:
        api = api_of(fake)
        grant_ha(fake)
        refused(
            lambda: api.cluster.ha.rules.get(),
            501,
            "Method 'GET /cluster/ha/rules' not implemented",
        )
        api.cluster.ha.groups.post(group="servers", nodes="pve1,pve2,pve3", restricted=1)
        refused(
            lambda: api.cluster.ha.groups.post(group="servers", nodes="pve1"),
            500,
            "create ha group failed: ha group ID 'servers' already defined",
        )
        api.cluster.ha.resources.post(sid="vm:100", group="servers")
        assert api.cluster.ha.resources.get()[0]["group"] == "servers"
        refused(
            lambda: api.cluster.ha.groups("servers").delete(),
            500,
            "delete ha group failed: ha group is used by service 'vm:100'",
        )
        refused(
            lambda: api.cluster.ha.resources.post(sid="555"),
            500,
            "unable do add resource - VM/CT 555 does not exist",
        )
        refused(
            lambda: api.cluster.ha.resources("vm:9000").delete(),
            500,
            "resource 'vm:9000' is not HA managed",
        )
        api.cluster.ha.resources("vm:100").delete()
        api.cluster.ha.groups("servers").delete()
        assert api.cluster.ha.groups.get() == []
