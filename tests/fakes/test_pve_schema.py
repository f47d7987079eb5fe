"""The fake's parameter check (tests/fakes/pve/schema.py) against pve-common's JSONSchema.pm:
each ported rule with PVE's exact message, per major release where they differ, and every
call homelab-gen makes validating clean."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from generator import naming
from generator.proxmox import ha
from generator.proxmox.images import IMAGES, choose_source
from generator.proxmox.template_vm import create_params
from tests.fakes.pve import ha_routes, schema
from tests.fakes.pve.harness import make_cluster
from tests.proxmox.pve_endpoints import TABLE

# ha_routes registers the HA formats it ports (pve-ha-manager HA/Tools.pm).
assert ha_routes.HA_ROUTES

pytestmark = pytest.mark.skipif(
    not schema.using_upstream(), reason="needs ../shared/upstream/proxmox API schemas"
)

CONFIG = ("POST", "/nodes/{node}/qemu/{vmid}/config")
MAJORS = (8, 9)
VM = {"node": "pve", "vmid": "100"}
UNKNOWN = "property is not defined in schema and the schema does not allow additional properties"


def config(major: int = 9, **params: str) -> dict[str, str]:
    return schema.validate(*CONFIG, {**VM, **params}, major)


def prop(value: Any, spec: dict[str, Any], major: int = 9) -> dict[str, str]:
    errors: dict[str, str] = {}
    schema.check_prop(value, spec, "p", errors, schema.Ctx(major))
    return errors


def nested(param: str, key: str, message: str) -> str:
    """parse_property_string's "format error" as Exception.pm stringifies it in check_prop."""
    return f"invalid format - format error\n{param}.{key}: {message}\n"


# -- check_object / check_prop / check_type --------------------------------------------------
@pytest.mark.parametrize("major", MAJORS)
def test_unknown_and_missing_properties(major: int) -> None:
    errors = schema.validate("POST", "/nodes/{node}/qemu/{vmid}/clone", {**VM, "bogus": "1"}, major)
    assert errors == {"bogus": UNKNOWN, "newid": "property is missing and it is not optional"}


@pytest.mark.parametrize("major", MAJORS)
def test_boolean_takes_only_1_and_0(major: int) -> None:
    # check_type: the yes/on/true forms are commented out upstream.
    assert config(major, onboot="1") == {}
    assert config(major, onboot="true") == {"onboot": "type check ('boolean') failed - got 'true'"}


@pytest.mark.parametrize("major", MAJORS)
def test_integer_number_and_bounds(major: int) -> None:
    assert config(major, cores="two") == {"cores": "type check ('integer') failed - got 'two'"}
    assert config(major, cores="0") == {"cores": "value must have a minimum value of 1"}
    assert prop("1e3", {"type": "number", "maximum": 10}) == {
        "p": "value must have a maximum value of 10"
    }
    assert prop("1.5.", {"type": "number"}) == {"p": "type check ('number') failed - got '1.5.'"}


def test_newid_format_comes_before_minimum() -> None:
    # check_prop: format, pattern, maxLength, minLength, maximum/minimum, enum, in that order.
    errors = schema.validate("POST", "/nodes/{node}/qemu/{vmid}/clone", {**VM, "newid": "50"})
    assert errors == {"newid": "invalid format - value does not look like a valid VM ID\n"}


def test_enum_length_and_pattern() -> None:
    assert prop("x", {"type": "string", "enum": ["a", "b"]}) == {
        "p": "value 'x' does not have a value in the enumeration 'a, b'"
    }
    assert prop("x", {"type": "string", "enum": None}) == {}  # 9.1 dumps some enums as null
    assert prop("abc", {"type": "string", "maxLength": 2}) == {
        "p": "value may only be 2 characters long"
    }
    assert prop("a", {"type": "string", "minLength": 2}) == {
        "p": "value must be at least 2 characters long"
    }
    # m/^$pattern$/: the anchors bind to the outer alternatives of an ungrouped a|b.
    pattern = {"type": "string", "pattern": "/dev/parport\\d+|/dev/usb/lp\\d+"}
    assert prop("/dev/parport0-anything", pattern) == {}
    assert prop("x/dev/parport0", pattern) == {"p": "value does not match the regex pattern"}
    assert prop("anything/dev/usb/lp1", pattern) == {}
    assert prop("10G", {"type": "string", "pattern": "\\+?\\d+(\\.\\d+)?[KMGT]?"}) == {}
    assert prop("10GB", {"type": "string", "pattern": "\\+?\\d+(\\.\\d+)?[KMGT]?"}) == {
        "p": "value does not match the regex pattern"
    }


def test_enum_null_on_download_url_compression() -> None:
    params = {"node": "pve", "storage": "local", "url": "https://x/y.img", "content": "import"}
    params |= {"filename": "y.qcow2", "compression": "zst"}
    assert schema.validate("POST", "/nodes/{node}/storage/{storage}/download-url", params) == {}


@pytest.mark.parametrize(
    ("major", "text"),
    [
        (8, "missing property - 'checksum' requires this property"),
        (9, "missing property required by 'checksum'"),
    ],
)
def test_requires_text_by_release(major: int, text: str) -> None:
    params = {"node": "pve", "storage": "local", "url": "https://x/y", "content": "iso"}
    params |= {"filename": "y.iso", "checksum": "ab"}
    errors = schema.validate("POST", "/nodes/{node}/storage/{storage}/download-url", params, major)
    assert errors == {"checksum-algorithm": text}


@pytest.mark.parametrize("major", MAJORS)
def test_array_parameters(major: int) -> None:
    # RESTHandler.pm, $normalize_legacy_param_formats: a true scalar becomes an array...
    exec_ = ("POST", "/nodes/{node}/qemu/{vmid}/agent/exec")
    assert schema.validate(*exec_, {**VM, "command": "cloud-init\0status"}, major) == {}
    assert schema.validate(*exec_, {**VM, "command": "ls"}, major) == {}
    # ...a false one does not, and fails check_type.
    assert schema.validate(*exec_, {**VM, "command": "0"}, major) == {
        "command": "type check ('array') failed"
    }
    # An array given to a string '-list' format is joined by ','.
    assert config(major, delete="ide2\0cicustom") == {}
    assert config(major, name="a\0b") == {"name": "type check ('string') failed - got ARRAY"}


@pytest.mark.parametrize("major", MAJORS)
def test_indexed_options_stop_at_qemu_server_limits(major: int) -> None:
    assert config(major, net31="virtio,bridge=vmbr0") == {}
    assert config(major, net32="virtio,bridge=vmbr0") == {"net32": UNKNOWN}
    assert config(major, scsi31="local:1") == {"scsi31": UNKNOWN}
    assert config(major, ide4="local:1") == {"ide4": UNKNOWN}
    assert config(major, net01="virtio") == {"net01": UNKNOWN}


# -- parse_property_string --------------------------------------------------------------------
@pytest.mark.parametrize("major", MAJORS)
def test_property_string_keys(major: int) -> None:
    # keyAlias: `virtio=MAC` sets model=virtio and macaddr=MAC.
    assert config(major, net0="virtio=BC:24:11:00:00:01,bridge=vmbr0") == {}
    assert config(major, net0="virtio,bridge=vmbr0") == {}
    assert config(major, net0="virtio,e1000") == {
        "net0": "invalid format - duplicate key in comma-separated list property: model\n"
    }
    assert config(major, net0="virtio,bridge=a,bridge=b") == {
        "net0": "invalid format - duplicate key in comma-separated list property: bridge\n"
    }
    assert config(major, net0="virtio=BC:24:11:00:00:01,e1000=BC:24:11:00:00:02") == {
        "net0": "invalid format - key alias 'model' is already defined\n"
    }
    assert config(major, net0="virtio,colour=red") == {
        "net0": "invalid format - invalid key in comma-separated list property: colour\n"
    }
    assert config(major, net0="virtio,bridge=") == {
        "net0": "invalid format - missing key in comma-separated list property\n"
    }
    assert config(major, cicustom="local:snippets/u.yaml") == {
        "cicustom": "invalid format - value without key, but schema does not define a default key\n"
    }
    assert config(major, net0="bridge=vmbr0") == {
        "net0": nested("net0", "model", "property is missing and it is not optional")
    }
    assert config(major, net0="virtio,bridge=vm br0") == {
        "net0": nested("net0", "bridge", "invalid format - invalid bridge ID 'vm br0'\n")
    }
    assert config(major, net0="virtio,tag=5000") == {
        "net0": nested("net0", "tag", "value must have a maximum value of 4094")
    }
    assert config(major, net0="virtio=01:24:11:00:00:01") == {
        "net0": nested(
            "net0", "macaddr", "invalid format - value does not look like a valid unicast MAC"
            " address\n"
        )
    }  # fmt: skip
    # Booleans inside a property string go through parse_boolean.
    assert config(major, scsi0="local-lvm:0,import-from=local:import/x.qcow2,discard=on,iothread=1") == {}  # fmt: skip  # noqa: E501


def test_alias_conflict_is_9_only() -> None:
    value = "macaddr=BC:24:11:00:00:01,virtio=BC:24:11:00:00:02"
    assert config(9, net0=value) == {
        "net0": "invalid format - key 'macaddr' is already defined (via alias)\n"
    }
    assert config(8, net0=value) == {}


def test_boolean_default_key_is_parsed_from_9_on() -> None:
    assert config(9, agent="yes") == {}
    assert config(8, agent="yes") == {
        "agent": nested("agent", "enabled", "type check ('boolean') failed - got 'yes'")
    }
    assert config(8, agent="1,type=isa") == {}


@pytest.mark.parametrize("major", MAJORS)
def test_memory_default_key(major: int) -> None:
    assert config(major, memory="4096") == {}
    assert config(major, memory="current=4096") == {}
    assert config(major, memory="8") == {
        "memory": nested("memory", "current", "value must have a minimum value of 16")
    }
    assert config(major, memory="4096,current=2048") == {
        "memory": "invalid format - duplicate key in comma-separated list property: current\n"
    }


# -- check_format and the named formats -------------------------------------------------------
@pytest.mark.parametrize("major", MAJORS)
def test_named_formats_on_the_config(major: int) -> None:
    def one(key: str, value: str) -> str | None:
        return config(major, **{key: value}).get(key)

    assert one("name", "k3s_1") == "invalid format - value does not look like a valid DNS name\n"
    assert one("tags", "homelab-gen;cluster-home") is None
    assert one("tags", "ok;b@d") == "invalid format - invalid characters in tag\n"
    assert one("delete", "ide2,cicustom") is None
    assert one("delete", "ide2,-x") == "invalid format - invalid configuration ID '-x'\n"
    assert one("boot", "order=scsi0;net0") is None
    assert one("boot", "order=efidisk0") == nested(
        "boot", "order", "invalid format - invalid boot device 'efidisk0'\n"
    )
    assert one("boot", "cdn") is None
    assert one("boot", "xyz") == nested("boot", "legacy", "value does not match the regex pattern")
    assert one("bootdisk", "scsi40") == "invalid format - invalid boot disk 'scsi40'\n"
    assert one("cicustom", "user=local:snippets/u.yaml,meta=local:snippets/m.yaml") is None
    assert one("cicustom", "user=snippets/u.yaml") == nested(
        "cicustom", "user", "invalid format - unable to parse volume ID 'snippets/u.yaml'\n"
    )
    assert one("ide2", "local:iso/x.iso,media=cdrom") is None
    assert one("ide2", "none,media=cdrom") is None
    assert one("ide2", "x.iso,media=cdrom") == nested(
        "ide2", "file", "invalid format - unable to parse volume ID 'x.iso'\n"
    )
    assert one("cdrom", "local:iso/x.iso") is None  # pve-qm-ide
    assert one("ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1") is None
    assert one("ipconfig0", "gw=10.0.0.1") == nested(
        "ipconfig0", "ip", "missing property required by 'ipconfig0.gw'"
        if major >= 9 else "missing property - 'ipconfig0.gw' requires this property"
    )  # fmt: skip
    assert one("ipconfig0", "ip=10.0.0.5") == nested(
        "ipconfig0", "ip",
        "invalid format - value does not look like a valid ipv4 network configuration\n",
    )  # fmt: skip
    assert one("nameserver", "1.1.1.1 dns.example") is None
    assert one("nameserver", "1.1.1.1,b@d") == (
        "invalid format - value does not look like a valid address: b@d\n"
    )
    assert one("hotplug", "disk,usb") is None
    assert one("hotplug", "disk,gpu") == "invalid format - invalid hotplug feature 'gpu'\n"
    assert one("startup", "order=1,up=5") is None
    assert one("startup", "later") == "invalid format - unable to parse startup options\n"
    assert one("affinity", "0-3,8") is None
    assert one("affinity", "3-1") == "invalid format - unable to parse cpuset option\n"
    assert one("watchdog", "i6300esb,action=reset") is None
    assert one("rng0", "max_bytes=1024") == nested(
        "rng0", "source", "property is missing and it is not optional"
    )
    assert one("sshkeys", "ssh-rsa%20AAA") is None
    assert (
        one("sshkeys", "ssh-rsa AAA") == "invalid format - invalid urlencoded string: ssh-rsa AAA\n"
    )
    assert one("scsi1", "local:10,size=10X") == nested(
        "scsi1", "size", "invalid format - value does not look like a valid disk size: 10X\n"
    )


@pytest.mark.parametrize("major", MAJORS)
def test_cpu_conf(major: int) -> None:
    assert config(major, cpu="x86-64-v2-AES") == {}
    assert config(major, cpu="host,flags=+aes;-pcid") == {}
    assert config(major, cpu="flags=+aes") == {"cpu": "invalid format - CPU is missing cputype\n"}
    assert config(major, cpu="custom-mine") == {
        "cpu": "invalid format - Custom cputype 'mine' not found\n"
    }
    assert config(major, cpu="host,reported-model=kvm64") == {
        "cpu": "invalid format - Property 'reported-model' not allowed in VM-specific CPU config.\n"
    }
    level = config(major, cpu="host,level=30")
    assert level == ({} if major >= 9 else {
        "cpu": "invalid format - invalid key in comma-separated list property: level\n"
    })  # fmt: skip


@pytest.mark.parametrize(
    ("major", "text"),
    [
        (8, "storage ID 'a' contains illegal characters\n"),
        (9, "storage ID 'a' cannot be shorter than 2 characters\n"),
    ],
)
def test_storage_id_by_release(major: int, text: str) -> None:
    assert schema.validate("GET", "/storage/{storage}", {"storage": "a"}, major) == {
        "storage": f"invalid format - {text}"
    }
    assert schema.validate("GET", "/storage/{storage}", {"storage": "local-lvm"}, major) == {}


@pytest.mark.parametrize("major", MAJORS)
def test_path_parameters_are_checked(major: int) -> None:
    status = ("GET", "/nodes/{node}/qemu/{vmid}/status/current")
    assert schema.validate(*status, {"node": "pve_1", "vmid": "100"}, major) == {
        "node": "invalid format - value does not look like a valid node name\n"
    }
    assert schema.validate(*status, {"node": "pve", "vmid": "0100"}, major) == {
        "vmid": "invalid format - value does not look like a valid VM ID\n"
    }
    content = ("GET", "/nodes/{node}/storage/{storage}/content")
    assert schema.validate(*content, {"node": "pve", "storage": "local", "content": "iso"}) == {}
    assert schema.validate(*content, {"node": "pve", "storage": "local", "content": "isos"}) == {
        "content": "invalid format - invalid content type 'isos'\n"
    }


@pytest.mark.parametrize("major", MAJORS)
def test_storage_pair_list(major: int) -> None:
    start = ("POST", "/nodes/{node}/qemu/{vmid}/status/start")
    assert schema.validate(*start, {**VM, "targetstorage": "local:other,fallback"}, major) == {}
    assert schema.validate(*start, {**VM, "targetstorage": "1"}, major) == {}
    # $verify_idpair re-dies "$@\n": the nested newlines pile up.
    assert schema.validate(*start, {**VM, "targetstorage": "a:b:c"}, major) == {
        "targetstorage": "invalid format - entry 'a:b:c' contains invalid ID - storage ID"
        " 'a:b:c' contains illegal characters\n\n\n"
    }


def test_unported_named_format_fails_loudly() -> None:
    with pytest.raises(schema.NotPorted, match="pve-made-up"):
        prop("x", {"type": "string", "format": "pve-made-up"})
    with pytest.raises(schema.NotPorted):
        config(hostpci0="0000:01:00.0")


def test_helpers() -> None:
    assert schema.split_list("a,b;c d\n") == ["a", "b", "c", "d"]
    assert schema.split_list("a,b\0c") == ["a,b", "c"]
    assert schema.parse_size("1.5G") == 1610612736
    assert schema.parse_size("2GiB") == 2 * 2**30
    assert schema.parse_size("2GB") is None
    errors: dict[str, str] = {}
    schema.add_error(errors, "", "one")
    schema.add_error(errors, "", "two")
    assert errors == {"_root": "one\\ntwo"}


def test_fallback_does_not_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "_upstream", lambda major=9: None)
    assert schema.validate(*CONFIG, {**VM, "cores": "2", "bogus": "1"}) == {"bogus": UNKNOWN}
    assert schema.validate(*CONFIG, {**VM, "cores": "0"}) == {
        "cores": "value must have a minimum value of 1"
    }


# -- everything homelab-gen sends --------------------------------------------------------------
MAC = naming.node_mac("home", "k3s-server-1")
SEEDS = "user=local:snippets/homelab-gen-home-k3s-server-1-ab12.user.yaml"
SEEDS += ",network=local:snippets/homelab-gen-home-k3s-server-1-ab12.network.yaml"
SEEDS += ",meta=local:snippets/homelab-gen-home-k3s-server-1-ab12.meta.yaml"
DESCRIPTION = "homelab-gen: cluster=home node=k3s-server-1\nManaged by homelab-gen."
UPID = "UPID:pve:0000C0DE:00ABCDEF:65A1B2C3:qmclone:9000:root@pam!homelab-gen:"
TEMPLATE_CLUSTER = make_cluster(None)
# What boot sends to put a server into HA: the planner's own parameters, PVE 8's group too.
HA_CLUSTER = make_cluster(None, 3, 0, ha=True, node="pve", nodes=["pve", "pve2", "pve3"])
HA_SERVER = HA_CLUSTER.servers[0]
HA_STEPS = {
    str(a.kind): dict(a.params)
    for a in ha.node_additions(HA_CLUSTER, ha.HaFacts(uses_rules=False), HA_SERVER, "pve")
}
HA_RULE = dict(ha.rule_params(HA_CLUSTER, [ha.sid(n.vmid) for n in HA_CLUSTER.servers]))
TEMPLATE_SOURCES = [
    (replace(source, machine=machine), source.filename)
    for source in (choose_source(key, None, False)[0] for key in IMAGES)
    for machine in ("pc", "q35")
]
SENT: dict[tuple[str, str], list[dict[str, str]]] = {
    ("GET", "/version"): [{}],
    ("GET", "/access/permissions"): [{}],
    ("GET", "/cluster/resources"): [{"type": "vm"}],
    ("GET", "/nodes/{node}/status"): [{"node": "pve"}],
    ("GET", "/nodes/{node}/network"): [{"node": "pve"}],
    ("GET", "/nodes/{node}/storage"): [{"node": "pve"}],
    ("GET", "/storage/{storage}"): [{"storage": "local"}],
    ("GET", "/nodes/{node}/storage/{storage}/content"): [
        {"node": "pve", "storage": "local", "content": c} for c in ("iso", "snippets", "import")
    ],
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}"): [
        {"node": "pve", "storage": "local", "volume": "local:iso/homelab-gen-home-a-ab12.iso"}
    ],
    ("POST", "/nodes/{node}/storage/{storage}/upload"): [
        {
            "node": "pve",
            "storage": "local",
            "content": "iso",
            "checksum-algorithm": "sha256",
            "checksum": "ab" * 32,
            "filename": "homelab-gen-home-a-ab12.iso",
        }
    ],
    ("POST", "/nodes/{node}/storage/{storage}/download-url"): [
        {
            "node": "pve",
            "storage": "local",
            "content": "import",
            "url": "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2",
            "filename": "debian-12-generic-amd64.qcow2",
            "checksum": "ab" * 64,
            "checksum-algorithm": "sha512",
        }
    ],
    ("GET", "/nodes/{node}/qemu/{vmid}/config"): [{**VM, "current": "1"}],
    ("GET", "/nodes/{node}/qemu/{vmid}/status/current"): [VM],
    ("GET", "/nodes/{node}/qemu"): [{"node": "pve"}],
    ("GET", "/nodes/{node}/qemu/{vmid}/pending"): [VM],
    # What `homelab-gen template` sends for every image it offers, on pc and on q35.
    ("POST", "/nodes/{node}/qemu"): [
        {"node": "pve", **create_params(TEMPLATE_CLUSTER, source, f"local:import/{name}")}
        for source, name in TEMPLATE_SOURCES
    ],
    ("POST", "/nodes/{node}/qemu/{vmid}/template"): [{"node": "pve", "vmid": "9000"}],
    ("POST", "/nodes/{node}/qemu/{vmid}/clone"): [
        {
            "node": "pve",
            "vmid": "9000",
            "newid": "100",
            "name": "k3s-server-1",
            "description": DESCRIPTION,
            "full": "1",
            "storage": "local-lvm",
            "target": "pve2",
        },
        {
            "node": "pve",
            "vmid": "9000",
            "newid": "101",
            "name": "k3s-agent-1",
            "description": DESCRIPTION,
            "full": "0",
        },
    ],
    ("POST", "/nodes/{node}/qemu/{vmid}/config"): [
        {
            **VM,
            "name": "k3s-server-1",
            "cores": "4",
            "memory": "4096",
            "agent": "1",
            "net0": f"virtio={MAC},bridge=vmbr0",
            "onboot": "1",
            "tags": "homelab-gen;cluster-home",
            "description": DESCRIPTION,
            "ide2": "local-lvm:cloudinit",
            "cicustom": SEEDS,
        },
        {
            **VM,
            "scsi1": "local:iso/homelab-gen-home-k3s-server-1-ab12.iso,media=cdrom",
            "delete": "ide2,cicustom",
        },
        {**VM, "ide2": "none,media=cdrom", "delete": "cicustom"},
    ],
    ("PUT", "/nodes/{node}/qemu/{vmid}/resize"): [{**VM, "disk": "scsi0", "size": "20G"}],
    ("POST", "/nodes/{node}/qemu/{vmid}/status/start"): [VM],
    ("POST", "/nodes/{node}/qemu/{vmid}/status/stop"): [VM],
    ("DELETE", "/nodes/{node}/qemu/{vmid}"): [
        {**VM, "purge": "1", "destroy-unreferenced-disks": "1"}
    ],
    ("GET", "/nodes/{node}/tasks/{upid}/status"): [{"node": "pve", "upid": UPID}],
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces"): [VM],
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/file-read"): [
        {**VM, "file": "/etc/rancher/k3s/k3s.yaml"}
    ],
    ("POST", "/nodes/{node}/qemu/{vmid}/agent/exec"): [
        {**VM, "command": "cloud-init\0status\0--wait"}
    ],
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/exec-status"): [{**VM, "pid": "1234"}],
    ("GET", "/cluster/ha/resources"): [{}],
    ("POST", "/cluster/ha/resources"): [HA_STEPS["ha-add"]],
    ("DELETE", "/cluster/ha/resources/{sid}"): [{"sid": "vm:201"}],
    ("GET", "/cluster/ha/groups"): [{}],
    ("POST", "/cluster/ha/groups"): [HA_STEPS["ha-group"]],
    ("DELETE", "/cluster/ha/groups/{group}"): [{"group": HA_STEPS["ha-group"]["group"]}],
    ("GET", "/cluster/ha/rules"): [{}],
    ("POST", "/cluster/ha/rules"): [HA_RULE],
    ("DELETE", "/cluster/ha/rules/{rule}"): [{"rule": HA_RULE["rule"]}],
}


def test_every_table_endpoint_is_covered() -> None:
    assert set(SENT) == set(TABLE)


@pytest.mark.parametrize("major", MAJORS)
@pytest.mark.parametrize("key", sorted(TABLE), ids=" ".join)
def test_what_homelab_gen_sends_validates_clean(key: tuple[str, str], major: int) -> None:
    if TABLE[key].since > major:
        pytest.skip(f"{' '.join(key)} is new in PVE {TABLE[key].since}")
    for params in SENT[key]:
        assert schema.validate(*key, params, major) == {}, params
