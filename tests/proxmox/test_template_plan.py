"""The template's planner is pure: tables of {observed facts → actions, reason, problems},
like the boot plan's TABLE (tests/proxmox/test_plan.py). No HTTPS fake here."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from generator.proxmox import template as tpl
from generator.proxmox import template_vm
from generator.proxmox.actions import Kind, Plan
from generator.proxmox.images import IMAGES, choose_source
from generator.proxmox.observe import NodeFacts, StorageFacts, VMFacts
from tests.fakes.pve.harness import make_cluster
from tests.fakes.pve.state import full_permissions, template_config

CLUSTER = make_cluster(None, 1)
DEBIAN = choose_source(None, None, False)[0]
VOLID = template_vm.image_volid(CLUSTER, DEBIAN)
VMID = CLUSTER.proxmox.template_vmid


def _node(**content: frozenset[str]) -> NodeFacts:
    storages = {
        "local": StorageFacts(
            "local", "dir", content.get("local", frozenset({"iso", "import"})), 2**40, 2**40, False
        ),
        "local-lvm": StorageFacts(
            "local-lvm", "lvmthin", frozenset({"images"}), 2**40, 2**40, False
        ),
    }
    return NodeFacts("pve", storages, frozenset({"vmbr0"}), 2**36)


def _ours(node: str = "pve", **changes: str) -> VMFacts:
    """The VM `template` creates, once imported and converted; `changes` edit its config
    ("" removes a key)."""
    config = template_vm.create_params(CLUSTER, DEBIAN, VOLID)
    config.update(scsi0="local-lvm:base-9000-disk-0,size=3G", template="1")
    config.update(changes)
    return VMFacts(VMID, node, "stopped", {k: v for k, v in config.items() if v})


def _by_hand(**changes: str) -> VMFacts:
    config = {k: str(v) for k, v in template_config().items()}
    config.update(changes)
    return VMFacts(VMID, "pve", "stopped", {k: v for k, v in config.items() if v})


def _facts(**kw: Any) -> tpl.TemplateFacts:
    permissions = full_permissions()
    permissions["/nodes"] = {**permissions["/nodes"], "Sys.AccessNetwork": 1}
    base = tpl.TemplateFacts("9.1.1", permissions, _node(), None, frozenset())
    return replace(base, **kw)


BUILD = [Kind.DOWNLOAD, Kind.CREATE, Kind.CONVERT]
# (case, facts, --image given, actions, reason or problem text)
TABLE = [
    ("bare Proxmox", _facts(), False, BUILD, "create"),
    ("image already there", _facts(images=frozenset({VOLID})), False, BUILD[1:], "create"),
    ("our template", _facts(vm=_ours()), False, [],
     f"template {VMID} exists (made by homelab-gen from debian-12) and is usable"),
    ("our template, same image named", _facts(vm=_ours()), True, [], "and is usable"),
    ("hand-made template", _facts(vm=_by_hand()), False, [], "(made by hand) and is usable"),
    ("hand-made template, an image named", _facts(vm=_by_hand()), True, [], "made by hand"),
    ("ours, killed before the convert", _facts(vm=_ours(template="")), False,
     [Kind.CONVERT], "finish: convert the half-made VM"),
    ("ours, killed before its disk", _facts(vm=_ours(template="", scsi0="")), False,
     [Kind.DOWNLOAD, Kind.DELETE, Kind.CREATE, Kind.CONVERT], "create"),
    ("ours, no disk, image there",
     _facts(vm=_ours(template="", scsi0=""), images=frozenset({VOLID})), False,
     [Kind.DELETE, Kind.CREATE, Kind.CONVERT], "create"),
]  # fmt: skip

REFUSALS = [
    ("locked", _facts(vm=_ours(template="", lock="create")), False,
     f"VM {VMID} is locked (create); wait for its task to end"),
    ("a foreign VM at the VMID", _facts(vm=_by_hand(template="", tags="", name="nas")), False,
     f"VMID {VMID} (proxmox.template_vmid) is taken by VM 'nas'"),
    ("our template of another image", _facts(vm=_ours()), "debian-13",
     "holds debian-12, not debian-13"),
    ("unusable: agent off", _facts(vm=_by_hand(agent="0")), False, "guest agent disabled"),
    ("unusable: no disk", _facts(vm=_by_hand(scsi0="")), False, "has no disk"),
    ("no such node", _facts(node=None), False, "Proxmox node 'pve' does not exist"),
    ("seed storage without import",
     _facts(node=_node(local=frozenset({"iso", "backup"}))), False,
     "pvesm set local --content backup,import,iso"),
    ("PVE 8.3", _facts(version="8.3.5"), False,
     "Proxmox VE 8.3.5 cannot download a disk image through the API"),
    ("no Sys.AccessNetwork", _facts(permissions=full_permissions()), False,
     "lacks: Sys.AccessNetwork on /nodes/pve"),
    ("no VM.Allocate", _facts(permissions={**full_permissions(), "/vms": {}}), False,
     f"VM.Allocate on /vms/{VMID}"),
]  # fmt: skip


def _plan(facts: tpl.TemplateFacts, image: bool | str) -> Plan:
    source = choose_source(image, None, False)[0] if isinstance(image, str) else DEBIAN
    return tpl.plan_template(CLUSTER, source, facts, explicit=bool(image))


@pytest.mark.parametrize(
    ("case", "facts", "image", "kinds", "reason"), TABLE, ids=[t[0] for t in TABLE]
)
def test_template_plan_table(
    case: str, facts: tpl.TemplateFacts, image: bool, kinds: list[str], reason: str
) -> None:
    plan = _plan(facts, image)
    assert not plan.problems, plan.problems
    (row,) = plan.vms
    assert (row.name, row.vmid) == (tpl.ROW, VMID)
    assert [a.kind for a in row.actions] == kinds
    assert reason in row.reason and not row.notes


@pytest.mark.parametrize(
    ("case", "facts", "image", "problem"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_template_refusals_table(
    case: str, facts: tpl.TemplateFacts, image: bool | str, problem: str
) -> None:
    plan = _plan(facts, image)
    assert any(problem in p for p in plan.problems), plan.problems


def test_refusals_with_a_way_out_list_the_commands_in_the_rows_notes() -> None:
    (old,) = _plan(_facts(version="8.3.5"), False).vms
    assert any(line.startswith(f"qm create {VMID} ") for line in old.notes)
    assert not any("pveum" in line for line in old.notes), "root on the host needs no grants"
    (ungranted,) = _plan(_facts(permissions=full_permissions()), False).vms
    assert 'pveum role add HomelabGenDownload --privs "Sys.AccessNetwork"' in ungranted.notes
    (taken,) = _plan(_facts(vm=_by_hand(template="", tags="")), False).vms
    assert taken.reason == "taken" and not taken.actions and not taken.notes


def test_the_actions_say_where_and_what() -> None:
    (row,) = _plan(_facts(vm=_ours("pve2", template="", scsi0="")), False).vms
    download, delete, create, convert = row.actions
    assert tpl.describe(download) == (
        f"download {DEBIAN.url} -> {VOLID} (sha512 from {IMAGES['debian-12'].sums_url})"
    )
    assert delete.pve_node == "pve2", "the half-made VM is deleted where it is"
    assert tpl.describe(create) == f"create VM from {VOLID}"
    assert (create.pve_node, convert.pve_node) == ("pve", "pve")
    assert tpl.describe(convert) == "convert"


def test_only_the_steps_planned_need_privileges() -> None:
    """Finishing a half-made VM needs no download rights: only the steps planned count."""
    perms = full_permissions()
    perms["/storage"] = perms["/storage/local"] = {"Datastore.Audit": 1}
    finish = _plan(_facts(vm=_ours(template=""), permissions=perms), False)
    assert not finish.problems and [a.kind for a in finish.actions] == [Kind.CONVERT]
    (problem,) = _plan(_facts(permissions=perms), False).problems
    assert "Datastore.AllocateTemplate on /storage/local" in problem
