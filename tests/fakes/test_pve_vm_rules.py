"""The fake PVE's VM and cluster rules, each ported from the upstream source: driven over
HTTPS with plain `requests`, asserting PVE's status code and exact text.

Each test names the upstream rule it pins (repo file, sub); see tests/fakes/pve/routes.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.pve import FOREIGN_VMID, TEMPLATE_VMID, FakePVE, Vm, running_fake
from tests.fakes.pve.template_routes import RemoteImage, running_template_fake

pytestmark = pytest.mark.pve_probe


class Api:
    def __init__(self, fake: FakePVE) -> None:
        self.fake = fake
        self.base = f"https://127.0.0.1:{fake.port}/api2/json"
        self.session = requests.Session()
        self.verify = str(fake.tls.ca_file)  # per request: REQUESTS_CA_BUNDLE beats session.verify
        token = f"PVEAPIToken={fake.state.token_id}={fake.state.token_secret}"
        self.session.headers["Authorization"] = token

    def call(self, method: str, path: str, **params: Any) -> requests.Response:
        if method == "GET":
            return self.session.request(
                method, self.base + path, params=params, timeout=10, verify=self.verify
            )
        return self.session.request(
            method, self.base + path, data=params, timeout=10, verify=self.verify
        )

    def ok(self, method: str, path: str, **params: Any) -> Any:
        answer = self.call(method, path, **params)
        assert answer.status_code == 200, (answer.status_code, answer.reason)
        return answer.json()["data"]

    def task(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        upid = self.ok(method, path, **params)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status: dict[str, Any] = self.ok("GET", f"/nodes/pve/tasks/{upid}/status")
            if status["status"] == "stopped":
                return status
            time.sleep(0.01)
        raise AssertionError("task did not finish")


def refused(answer: requests.Response, status: int, reason: str) -> dict[str, Any]:
    assert (answer.status_code, answer.reason) == (status, reason)
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with running_fake(tmp_path) as fake:
        yield Api(fake)


VM = "/nodes/pve/qemu"


def _stopped_vm(api: Api, vmid: int = 250, **config: Any) -> Vm:
    vm = Vm(vmid, "pve", {"name": "x", "scsi0": "local-lvm:vm-250-disk-0,size=4G", **config})
    api.fake.state.vms[vmid] = vm
    return vm


# -- tasks: pve-common RESTEnvironment.pm fork_worker, UPID.pm read_status ----------------------
def test_task_status_fields_and_ok(api: Api) -> None:
    status = api.task("POST", f"{VM}/{TEMPLATE_VMID}/clone", newid=201, full=1)
    assert status["exitstatus"] == "OK"
    assert status["type"] == "qmclone" and status["id"] == str(TEMPLATE_VMID)
    # pve-manager API2/Tasks.pm read_task_status: a token's task splits user and tokenid
    assert (status["user"], status["tokenid"]) == ("homelab@pve", "homelab-gen")
    assert {"pid", "pstart", "starttime", "node", "upid"} <= status.keys()


def test_task_error_has_no_task_error_prefix(api: Api) -> None:
    status = api.task("POST", f"{VM}/{TEMPLATE_VMID}/status/start")
    assert status["exitstatus"] == "you can't start a vm if it's a template"


def test_task_warnings_count(api: Api) -> None:
    _stopped_vm(api)
    status = api.task("POST", f"{VM}/250/config", delete="tags")
    assert status["exitstatus"] == "WARNINGS: 1"  # "cannot delete 'tags' - not set ..."


def test_unknown_task_is_a_parameter_error(api: Api) -> None:
    body = refused(api.call("GET", "/nodes/pve/tasks/UPID:bogus/status"), 400, PARAM)
    assert body["errors"] == {"upid": "unable to parse worker upid"}
    upid = "UPID:pve:00001234:00001234:00001234:qmstart:101:root@pam:"
    body = refused(api.call("GET", f"/nodes/pve/tasks/{upid}/status"), 400, PARAM)
    assert body["errors"] == {"upid": "no such task"}


PARAM = "Parameter verification failed."


# -- cluster: pve-manager API2/Cluster.pm nextid, resources ------------------------------------
def test_nextid(api: Api) -> None:
    assert api.ok("GET", "/cluster/nextid") == "101"
    assert api.ok("GET", "/cluster/nextid", vmid=555) == "555"
    body = refused(api.call("GET", "/cluster/nextid", vmid=FOREIGN_VMID), 400, PARAM)
    assert body["errors"] == {"vmid": "VM 100 already exists"}


def test_resources_order_filter_and_audit(api: Api) -> None:
    _stopped_vm(api, 1000)
    listed = api.ok("GET", "/cluster/resources", type="vm")
    assert [r["vmid"] for r in listed] == [100, 1000, 9000]  # vmids sorted as strings
    template = listed[-1]
    assert (template["id"], template["type"], template["template"]) == ("qemu/9000", "qemu", 1)
    everything = api.ok("GET", "/cluster/resources")
    assert {r["type"] for r in everything} == {"qemu", "node", "storage"}
    del api.fake.state.permissions["/vms"]["VM.Audit"]
    api.fake.state.permissions["/vms/100"] = {"VM.Audit": 1}
    assert [r["vmid"] for r in api.ok("GET", "/cluster/resources", type="vm")] == [100]


def test_node_status_memory(api: Api) -> None:
    node = api.fake.state.nodes["pve"]
    node.memory_available = node.memory_free + 2**30
    memory = api.ok("GET", "/nodes/pve/status")["memory"]
    assert memory["used"] == node.memory_total - node.memory_available
    assert memory["available"] == node.memory_available
    api.fake.state.version = "8.4.1"
    assert "available" not in api.ok("GET", "/nodes/pve/status")["memory"]


# -- clone: qemu-server API2/Qemu.pm clone_vm ---------------------------------------------------
def test_clone_of_missing_vm_uses_check_running_text(api: Api) -> None:
    refused(
        api.call("POST", f"{VM}/777/clone", newid=201),
        500,
        "unable to find configuration file for VM 777 on node 'pve'",
    )


def test_clone_refusals(api: Api) -> None:
    refused(
        api.call("POST", f"{VM}/{FOREIGN_VMID}/clone", newid=201, full=0),
        500,
        "Linked clone feature is not supported for 'local-lvm:vm-100-disk-0' (scsi0)",
    )
    refused(
        api.call("POST", f"{VM}/{TEMPLATE_VMID}/clone", newid=201, full=0, storage="local-lvm"),
        500,
        "parameter 'storage' not allowed for linked clones",
    )
    refused(
        api.call("POST", f"{VM}/{TEMPLATE_VMID}/clone", newid=FOREIGN_VMID),
        500,
        "unable to create VM 100: config file already exists",
    )
    refused(
        api.call("POST", f"{VM}/{TEMPLATE_VMID}/clone", newid=201, target="pve2"),
        500,
        "no such cluster node 'pve2'",
    )
    body = refused(
        api.call("POST", f"{VM}/{TEMPLATE_VMID}/clone", newid=201, full=1, storage="local"),
        400,
        PARAM,
    )
    assert body["errors"] == {"storage": "storage 'local' does not support vm images"}
    api.fake.state.vms[TEMPLATE_VMID].config["lock"] = "backup"
    refused(
        api.call("POST", f"{VM}/{TEMPLATE_VMID}/clone", newid=201), 500, "VM is locked (backup)"
    )


def test_clone_of_a_vm_defaults_to_full_and_keeps_description(api: Api) -> None:
    assert api.task("POST", f"{VM}/{FOREIGN_VMID}/clone", newid=201)["exitstatus"] == "OK"
    config = api.ok("GET", f"{VM}/201/config")
    assert config["name"] == "Copy-of-VM-pihole"
    assert config["description"] == "my DNS server"
    assert config["scsi0"] == "local-lvm:vm-201-disk-0,size=8G"
    assert config["net0"] != api.fake.state.vms[FOREIGN_VMID].config["net0"]


def test_clone_holds_lock_clone_while_copying(api: Api) -> None:
    api.fake.state.latency.clone = 0.5
    upid = api.ok("POST", f"{VM}/{TEMPLATE_VMID}/clone", newid=201)
    time.sleep(0.2)
    assert api.ok("GET", f"{VM}/201/config") == {
        "lock": "clone",
        "digest": api.ok("GET", f"{VM}/201/config")["digest"],
    }
    refused(api.call("POST", f"{VM}/201/config", cores=2), 500, "VM is locked (clone)")
    api.fake.wait_idle()
    config = api.ok("GET", f"{VM}/201/config")
    assert "lock" not in config and "template" not in config
    assert config["scsi0"] == "local-lvm:vm-201-disk-0,size=3G"  # lvmthin linked clone
    assert upid.startswith("UPID:pve:")


# -- config: qemu-server API2/Qemu.pm update_vm_api ---------------------------------------------
def test_config_early_refusals(api: Api) -> None:
    _stopped_vm(api)
    refused(api.call("PUT", f"{VM}/250/config"), 500, "no options specified")
    body = refused(api.call("PUT", f"{VM}/250/config", delete="bogus"), 400, PARAM)
    assert body["errors"] == {"delete": "unknown option 'bogus'"}
    body = refused(api.call("PUT", f"{VM}/250/config", name="a", delete="name"), 400, PARAM)
    assert body["errors"] == {"delete": "you can't use '-name' and -delete name' at the same time"}
    body = refused(api.call("PUT", f"{VM}/250/config", name="a", skiplock=1), 400, PARAM)
    assert body["errors"] == {"skiplock": "Only root may use this option."}
    refused(
        api.call("PUT", f"{VM}/250/config", name="a", digest="0" * 40),
        500,
        "checksum mismatch (file change by other user?)",
    )
    refused(
        api.call("PUT", f"{VM}/999/config", name="a"),
        500,
        "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist",
    )


def test_running_vm_keeps_cores_pending(api: Api) -> None:
    vm = api.fake.state.vms[FOREIGN_VMID]
    api.ok("PUT", f"{VM}/{FOREIGN_VMID}/config", cores=4, name="dns", delete="tags")
    assert (vm.config["cores"], vm.pending) == (1, {"cores": "4"})
    assert vm.config["name"] == "dns" and "tags" not in vm.config  # fast-plug options
    assert api.ok("GET", f"{VM}/{FOREIGN_VMID}/config")["cores"] == "4"
    assert api.ok("GET", f"{VM}/{FOREIGN_VMID}/config", current=1)["cores"] == 1
    assert api.task("POST", f"{VM}/{FOREIGN_VMID}/status/stop")["exitstatus"] == "OK"
    assert (vm.config["cores"], vm.pending) == ("4", {})  # vm_stop_cleanup applies it


def test_stopped_vm_applies_at_once_and_delete_detaches_disks(api: Api) -> None:
    vm = _stopped_vm(api, cores=1)
    api.ok("PUT", f"{VM}/250/config", cores=2, delete="scsi0")
    assert vm.config["cores"] == "2" and "scsi0" not in vm.config
    assert vm.config["unused0"] == "local-lvm:vm-250-disk-0"


# -- resize: qemu-server API2/Qemu.pm resize_vm -------------------------------------------------
def test_resize_absolute_and_relative(api: Api) -> None:
    vm = _stopped_vm(api)
    assert api.task("PUT", f"{VM}/250/resize", disk="scsi0", size="+1G")["exitstatus"] == "OK"
    assert vm.config["scsi0"] == "local-lvm:vm-250-disk-0,size=5G"
    assert api.task("PUT", f"{VM}/250/resize", disk="scsi0", size="5632M")["exitstatus"] == "OK"
    assert vm.config["scsi0"] == "local-lvm:vm-250-disk-0,size=5632M"


@pytest.mark.parametrize(
    ("disk", "size", "text"),
    [
        ("scsi0", "1G", "shrinking disks is not supported"),
        ("scsi5", "10G", "disk 'scsi5' does not exist"),
        ("ide2", "10G", "you can't resize a cdrom"),
    ],
)
def test_resize_failures_fail_the_task(api: Api, disk: str, size: str, text: str) -> None:
    _stopped_vm(api, ide2="local:iso/x.iso,media=cdrom")
    assert api.task("PUT", f"{VM}/250/resize", disk=disk, size=size)["exitstatus"] == text


def test_resize_of_missing_or_locked_vm_fails_the_task(api: Api) -> None:
    status = api.task("PUT", f"{VM}/999/resize", disk="scsi0", size="10G")
    assert (
        status["exitstatus"] == "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist"
    )
    _stopped_vm(api, lock="clone")
    status = api.task("PUT", f"{VM}/250/resize", disk="scsi0", size="10G")
    assert status["exitstatus"] == "VM is locked (clone)"


# -- start/stop: qemu-server QemuServer.pm vm_start, _do_vm_stop --------------------------------
def test_start_refusals_are_task_failures(api: Api) -> None:
    status = api.task("POST", f"{VM}/{FOREIGN_VMID}/status/start")
    assert status["exitstatus"] == "VM 100 already running"
    _stopped_vm(api, lock="create")
    assert api.task("POST", f"{VM}/250/status/start")["exitstatus"] == "VM is locked (create)"
    status = api.task("POST", f"{VM}/999/status/start")
    assert (
        status["exitstatus"] == "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist"
    )


def test_start_checks_the_bridge(api: Api) -> None:
    _stopped_vm(api, net0="virtio=BC:24:11:00:00:09,bridge=vmbr9")
    assert (
        api.task("POST", f"{VM}/250/status/start")["exitstatus"] == "bridge 'vmbr9' does not exist"
    )


def test_stop_of_stopped_vm_is_ok_and_missing_vm_fails(api: Api) -> None:
    _stopped_vm(api, lock="backup")
    assert api.task("POST", f"{VM}/250/status/stop")["exitstatus"] == "OK"
    status = api.task("POST", f"{VM}/999/status/stop")
    assert status["exitstatus"] == "unable to find configuration file for VM 999 on node 'pve'"


# -- destroy: qemu-server API2/Qemu.pm destroy_vm, QemuServer.pm destroy_vm ---------------------
def test_destroy_rules(api: Api) -> None:
    refused(api.call("DELETE", f"{VM}/{FOREIGN_VMID}"), 500, "VM 100 is running - destroy failed")
    _stopped_vm(api, lock="clone")
    assert api.task("DELETE", f"{VM}/250")["exitstatus"] == "VM is locked (clone)"
    _stopped_vm(api, 251, protection=1)
    refused(api.call("DELETE", f"{VM}/251"), 500, "can't remove VM 251 - protection mode enabled")


def test_template_with_linked_clone_cannot_be_destroyed(api: Api) -> None:
    api.task("POST", f"{VM}/{TEMPLATE_VMID}/clone", newid=201, full=0)
    status = api.task("DELETE", f"{VM}/{TEMPLATE_VMID}")
    assert status["exitstatus"] == (
        "base volume 'local-lvm:base-9000-disk-0' is still in use by linked cloned"
    )


# -- create/template: qemu-server API2/Qemu.pm create_vm, template -------------------------------
def test_create_and_template(tmp_path: Path) -> None:
    with running_template_fake(tmp_path, {"https://x/i.qcow2": RemoteImage(b"x")}) as fake:
        api = Api(fake)
        refused(
            api.call("POST", VM, vmid=FOREIGN_VMID, name="a"),
            500,
            "unable to create VM 100 - VM 100 already exists on node 'pve'",
        )
        # a missing bridge is not checked on create
        assert api.task("POST", VM, vmid=300, net0="virtio,bridge=vmbr9")["exitstatus"] == "OK"
        config = api.ok("GET", f"{VM}/300/config")
        assert config["net0"].startswith("virtio=BC:24:11:") and "lock" not in config
        assert api.task("POST", f"{VM}/300/template")["exitstatus"] == "OK"
        refused(
            api.call("POST", f"{VM}/300/template"),
            500,
            "you can't convert a template to a template",
        )
        refused(
            api.call("POST", f"{VM}/{FOREIGN_VMID}/template"),
            500,
            "you can't convert a VM to template if VM is running",
        )


# -- agent: qemu-server QemuServer/Agent.pm assert_agent_available ------------------------------
def test_agent_zero_is_configured_but_not_running(tmp_path: Path) -> None:
    from tests.fakes.pve import default_state
    from tests.fakes.pve.agent_routes import Guests, agent_routes
    from tests.fakes.pve.routes import ROUTES
    from tests.fakes.tls import make_tls

    state = default_state("s" * 32)
    fake = FakePVE(state, make_tls(tmp_path / "tls"), routes=ROUTES + agent_routes(Guests()))
    with fake:
        api = Api(fake)
        path = f"{VM}/{FOREIGN_VMID}/agent/network-get-interfaces"
        refused(api.call("GET", path), 500, "No QEMU guest agent configured")
        state.vms[FOREIGN_VMID].config["agent"] = "0"
        refused(api.call("GET", path), 500, "QEMU guest agent is not running")
