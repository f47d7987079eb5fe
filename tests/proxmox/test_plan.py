"""Planning is pure: tables of {config, observed facts, expected actions}."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from generator import naming
from generator.config.model import Cluster
from generator.proxmox.observe import NodeFacts, Observed, StorageFacts, VMFacts
from generator.proxmox.plan import desired_config, make_plan, seed_slot
from generator.proxmox.preflight import has_privilege
from generator.proxmox.pveconfig import config_changes
from generator.proxmox.seeds import SeedRef, seed_ref
from tests.fakes.pve.harness import make_cluster, seed_texts
from tests.fakes.pve.state import full_permissions, template_config

CLUSTER = make_cluster(None, 1, 1)
REFS = {n.name: seed_ref(CLUSTER, n, seed_texts(CLUSTER)[n.name]) for n in CLUSTER.nodes}
SERVER, AGENT = CLUSTER.nodes


def _template(**overrides: str) -> VMFacts:
    config = {k: str(v) for k, v in template_config().items()}
    config.update(overrides)
    return VMFacts(9000, "pve", "stopped", {k: v for k, v in config.items() if v != ""})


def _observed(vms: dict[int, VMFacts] | None = None, seeds: bool = False, **kw: Any) -> Observed:
    storages = {
        "local": StorageFacts("local", "dir", frozenset({"iso", "vztmpl"}), 2**40, 2**40, False),
        "local-lvm": StorageFacts(
            "local-lvm", "lvmthin", frozenset({"images"}), 2**40, 2**40, False
        ),
    }
    held = frozenset(v for r in REFS.values() for v in r.volids) if seeds else frozenset()
    base = Observed(
        version="9.1.1",
        permissions=full_permissions(),
        nodes={"pve": NodeFacts("pve", storages, frozenset({"vmbr0"}), 2**36)},
        template=_template(),
        vms=vms or {},
        seeds={"pve": held},
    )
    return replace(base, **kw)


def _finished(cluster: Cluster, node_index: int, **changes: str) -> VMFacts:
    """A VM as boot leaves it; `changes` edit its config ("" removes a key; status=...)."""
    node = cluster.nodes[node_index]
    config = {k: str(v) for k, v in template_config().items() if k != "template"}
    config.update(desired_config(cluster, node, _template(), REFS[node.name]))
    config["scsi0"] = f"local-lvm:vm-{node.vmid}-disk-0,size={node.disk}G"
    status = changes.pop("status", "running")
    config.update(changes)
    return VMFacts(node.vmid, "pve", status, {k: v for k, v in config.items() if v})


def _server_is(vm: VMFacts) -> Observed:
    """The agent finished, the seeds uploaded, and the server VM as given."""
    return _observed({201: vm, 301: _finished(CLUSTER, 1)}, seeds=True)


def _kinds(observed: Observed, prune: bool = False) -> dict[str, list[str]]:
    plan = make_plan(CLUSTER, observed, REFS, prune)
    assert not plan.problems, plan.problems
    return {vm.name: [a.kind for a in vm.actions] for vm in plan.vms}


FULL = ["upload", "clone", "configure", "resize", "start"]
TABLE = [
    ("empty Proxmox", _observed(), {"k3s-server-1": FULL, "k3s-agent-1": FULL}),
    (
        "seeds already uploaded",
        _observed(seeds=True),
        {"k3s-server-1": FULL[1:], "k3s-agent-1": FULL[1:]},
    ),
    (
        "finished cluster",
        _server_is(_finished(CLUSTER, 0)),
        {"k3s-server-1": [], "k3s-agent-1": []},
    ),
    (
        "stopped VM",
        _server_is(_finished(CLUSTER, 0, status="stopped")),
        {"k3s-server-1": ["start"], "k3s-agent-1": []},
    ),
    (
        "memory changed by hand",
        _server_is(_finished(CLUSTER, 0, memory="1024")),
        {"k3s-server-1": ["configure"], "k3s-agent-1": []},
    ),
    (
        "disk still template-sized",
        _server_is(_finished(CLUSTER, 0, scsi0="local-lvm:vm-201-disk-0,size=3G")),
        {"k3s-server-1": ["resize"], "k3s-agent-1": []},
    ),
    (
        "half-made clone: description only, not configured, stopped",
        _observed(
            {
                201: VMFacts(201, "pve", "stopped", {
                    **{k: str(v) for k, v in template_config().items() if k != "template"},
                    "description": "homelab-gen: cluster=home node=k3s-server-1",
                }),
                301: _finished(CLUSTER, 1),
            },
            seeds=True,
        ),
        {"k3s-server-1": ["configure", "resize", "start"], "k3s-agent-1": []},
    ),
    (
        "owned VM that lost its disk",
        _server_is(_finished(CLUSTER, 0, scsi0="", status="stopped")),
        {"k3s-server-1": ["delete", "clone", "configure", "resize", "start"], "k3s-agent-1": []},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("case", "observed", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_plan_table(case: str, observed: Observed, expected: dict[str, list[str]]) -> None:
    vms = {
        k: VMFacts(v.vmid, v.node, v.status, {a: b for a, b in v.config.items() if b})
        for k, v in observed.vms.items()
    }
    assert _kinds(replace(observed, vms=vms)) == expected


def test_orphan_needs_prune() -> None:
    smaller = make_cluster(None, 1, 0)
    observed = _server_is(_finished(CLUSTER, 0))
    refs = {"k3s-server-1": REFS["k3s-server-1"]}
    kept = make_plan(smaller, observed, refs, prune=False)
    assert [(vm.name, vm.actions) for vm in kept.vms if vm.vmid == 301] == [("k3s-agent-1", ())]
    pruned = make_plan(smaller, observed, refs, prune=True)
    assert [[a.kind for a in vm.actions] for vm in pruned.vms if vm.vmid == 301] == [
        ["stop", "delete"]
    ]


def test_vm_without_our_tags_is_never_an_orphan() -> None:
    smaller = make_cluster(None, 1, 0)
    stranger = _finished(CLUSTER, 1, tags="homelab-gen")  # tag set but not this cluster's
    observed = _observed({201: _finished(CLUSTER, 0), 301: stranger}, seeds=True)
    plan = make_plan(smaller, observed, {"k3s-server-1": REFS["k3s-server-1"]}, prune=True)
    assert [vm.vmid for vm in plan.vms] == [201]


PROBLEMS = [
    ("old PVE", {"version": "7.4.1"}, "too old"),
    ("no template", {"template": None}, "homelab-gen template"),
    ("template not a template", {"template": _template(template="")}, "is not a template"),
    ("template without disk", {"template": _template(scsi0="")}, "has no disk"),
    ("agent off", {"template": _template(agent="0")}, "guest agent disabled"),
    ("q35 no virtio-scsi", {"template": _template(machine="q35", scsihw="lsi")}, "virtio SCSI"),
    ("no node", {"nodes": {}}, "node 'pve' does not exist"),
    ("foreign VMID", {"vms": {201: VMFacts(201, "pve", "up", {"name": "nas"})}}, "does not own"),
    ("locked", {"vms": {201: _finished(CLUSTER, 0, lock="backup")}}, "locked (backup)"),
    ("no permissions", {"permissions": {}}, "pveum role add"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "overrides", "message"), PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_preflight_problems(case: str, overrides: dict[str, Any], message: str) -> None:
    plan = make_plan(CLUSTER, _observed(**overrides), REFS)
    assert plan.is_noop
    assert any(message in p for p in plan.problems), plan.problems


def test_seed_storage_without_iso_content() -> None:
    observed = _observed()
    node = observed.nodes["pve"]
    local = replace(node.storages["local"], content=frozenset({"backup"}))
    observed = replace(
        observed, nodes={"pve": replace(node, storages={**node.storages, "local": local})}
    )
    (problem,) = make_plan(CLUSTER, observed, REFS).problems
    assert "does not accept 'iso' content" in problem


@pytest.mark.parametrize(
    ("machine", "cloudinit", "slot"),
    [
        (None, "ide2", "ide2"),
        ("pc-i440fx-9.0", "ide2", "ide2"),
        ("q35", "ide2", "scsi1"),
        ("pc-q35-9.0", "scsi1", "scsi1"),
    ],
)
def test_seed_bus_follows_the_machine_type(machine: str | None, cloudinit: str, slot: str) -> None:
    config = {k: str(v) for k, v in template_config(machine).items() if k != "ide2"}
    config[cloudinit] = "local-lvm:vm-9000-cloudinit,media=cdrom"
    assert seed_slot(VMFacts(9000, "pve", "stopped", config)) == slot


def test_desired_config_and_iso_mode_drops_the_cloudinit_drive() -> None:
    template = _template(machine="q35")
    want = desired_config(CLUSTER, SERVER, template, REFS[SERVER.name])
    assert want["net0"] == f"virtio={naming.node_mac('home', 'k3s-server-1')},bridge=vmbr0"
    assert want["scsi1"].endswith(".iso,media=cdrom")
    changes = config_changes(want, template.config)
    assert changes["delete"] == "ide2"
    assert changes["tags"] == "homelab-gen;cluster-home"


def test_snippet_mode_sets_cicustom_with_meta() -> None:
    cluster = make_cluster(None, 1, 0, seed_method="snippets")
    ref = seed_ref(cluster, cluster.nodes[0], seed_texts(cluster)["k3s-server-1"])
    want = desired_config(cluster, cluster.nodes[0], _template(), ref)
    user, network, meta = ref.volids
    assert want["cicustom"] == f"user={user},network={network},meta={meta}"
    assert want["ide2"] == "local-lvm:cloudinit"
    assert isinstance(ref, SeedRef) and all(
        ":snippets/homelab-gen-home-k3s-server-1-" in v for v in ref.volids
    )


@pytest.mark.parametrize(
    ("perms", "path", "expected"),
    [
        ({"/vms": {"VM.Audit": 1}}, "/vms/201", True),
        ({"/vms": {"VM.Audit": 0}}, "/vms/201", False),
        ({"/vms": {"VM.Audit": 0}}, "/vms", True),
        ({"/": {"VM.Audit": 1}}, "/vms/201", True),
        ({"/storage": {"VM.Audit": 1}}, "/vms/201", False),
    ],
)
def test_privilege_propagation(perms: dict[str, dict[str, int]], path: str, expected: bool) -> None:
    assert has_privilege(perms, path, "VM.Audit") is expected


OLD_REFS = {
    n.name: seed_ref(CLUSTER, n, seed_texts(CLUSTER, version="0")[n.name]) for n in CLUSTER.nodes
}


def _booted_with_old_seed(status: str) -> VMFacts:
    node = CLUSTER.nodes[0]
    config = {k: str(v) for k, v in template_config().items() if k != "template"}
    config.update(desired_config(CLUSTER, node, _template(), OLD_REFS[node.name]))
    config["scsi0"] = f"local-lvm:vm-{node.vmid}-disk-0,size={node.disk}G"
    return VMFacts(node.vmid, "pve", status, config)


@pytest.mark.parametrize(
    ("status", "drift"),
    [("running", True), ("stopped", True)],
)
def test_a_node_whose_seed_changed_is_told_it_keeps_its_old_settings(
    status: str, drift: bool
) -> None:
    observed = _observed({201: _booted_with_old_seed(status), 301: _finished(CLUSTER, 1)})
    plan = make_plan(CLUSTER, observed, REFS, False)
    notes = {vm.name: vm.notes for vm in plan.vms}
    assert any("keeps the settings it booted with" in n for n in notes["k3s-server-1"]) is drift
    assert not any("booted with" in n for n in notes["k3s-agent-1"])


def _seeds_with_k3s(version: str, user: str = "homelab") -> dict[str, dict[str, str]]:
    return {
        n.name: {
            "user-data": f"#cloud-config\nuser: {user}\n"
            f"INSTALL_K3S_VERSION='{version}'\n"
            f"url: https://raw.githubusercontent.com/k3s-io/k3s/{version.replace('+', '%2B')}/\n",
            "meta-data": f"instance-id: {n.name}\n",
            "network-config": "version: 2\n",
        }
        for n in CLUSTER.nodes
    }


def _refs(texts: dict[str, dict[str, str]]) -> dict[str, SeedRef]:
    return {n.name: seed_ref(CLUSTER, n, texts[n.name]) for n in CLUSTER.nodes}


def _booted_with(ref: SeedRef) -> VMFacts:
    node = CLUSTER.nodes[0]
    config = {k: str(v) for k, v in template_config().items() if k != "template"}
    config.update(desired_config(CLUSTER, node, _template(), ref))
    config["scsi0"] = f"local-lvm:vm-{node.vmid}-disk-0,size={node.disk}G"
    return VMFacts(node.vmid, "pve", "running", config)


def test_a_new_k3s_version_alone_is_swapped_in_place_and_is_no_drift() -> None:
    old = _refs(_seeds_with_k3s("v1.33.4+k3s1"))
    bumped = _refs(_seeds_with_k3s("v1.34.1+k3s1"))
    name = CLUSTER.nodes[0].name
    # the file names share the settings part and differ in the whole
    assert old[name].digest[:6] == bumped[name].digest[:6]
    assert old[name].digest != bumped[name].digest
    observed = _observed({201: _booted_with(old[name]), 301: _finished(CLUSTER, 1)})
    row = make_plan(CLUSTER, observed, bumped, False).vms[0]
    assert not row.notes
    configure = next(a for a in row.actions if a.kind == "configure")
    assert bumped[name].volids[0] in configure.param(seed_slot(_template()))


def test_other_settings_keep_the_booted_seed_attached_and_are_noted() -> None:
    old = _refs(_seeds_with_k3s("v1.33.4+k3s1"))
    changed = _refs(_seeds_with_k3s("v1.33.4+k3s1", user="ops"))
    name = CLUSTER.nodes[0].name
    assert old[name].digest[:6] != changed[name].digest[:6]
    observed = _observed({201: _booted_with(old[name]), 301: _finished(CLUSTER, 1)})
    row = make_plan(CLUSTER, observed, changed, False).vms[0]
    assert [a.kind for a in row.actions] == ["upload"]  # ready for the rebuild, not attached
    assert any("--replace-stale" in n for n in row.notes)
