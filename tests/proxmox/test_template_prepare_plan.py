"""`template --prepare`'s planner is pure: a table of {the template VM as observed → the
steps before CONVERT}, and the notes on a template of another K3s version. No fake here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from generator.proxmox import template as tpl
from generator.proxmox import template_vm
from generator.proxmox.actions import Kind
from generator.proxmox.observe import VMFacts
from generator.proxmox.template_marks import with_mark
from generator.proxmox.template_prepare import Preparation
from tests.fakes.pve.state import revoke
from tests.proxmox.test_template_plan import CLUSTER, DEBIAN, VMID, VOLID, _facts

VERSION = CLUSTER.cluster.k3s_version
PREP = Preparation(VERSION, {"user-data": "#cloud-config\n", "meta-data": "", "network-config": ""})
ISO = f"local:iso/{PREP.iso_name(VMID)}"
PREPARE = [Kind.PREPARE_SEED, Kind.START, Kind.WAIT_STOPPED, Kind.RECORD]


def _half_made(status: str = "stopped", template: bool = False, **marks: str) -> VMFacts:
    """Our VM after CREATE, with the description marks given and, while preparing, the
    preparation seed in the cloud-init drive's slot."""
    config = template_vm.create_params(CLUSTER, DEBIAN, VOLID)
    config["scsi0"] = "local-lvm:vm-9000-disk-0,size=3G"
    config["ide2"] = "local-lvm:vm-9000-cloudinit,media=cdrom"
    for key, value in marks.items():
        config["description"] = with_mark(config["description"], key, value)
    if "preparing" in marks:
        config["ide2"] = f"{ISO},media=cdrom"
    if template:
        config["template"] = "1"
    return VMFacts(VMID, "pve", status, config)


TABLE = [
    ("nothing there", None, PREP, [Kind.DOWNLOAD, Kind.CREATE, *PREPARE, Kind.CONVERT]),
    ("nothing there, no --prepare", None, None, [Kind.DOWNLOAD, Kind.CREATE, Kind.CONVERT]),
    ("created, not prepared", _half_made(), PREP, [*PREPARE, Kind.CONVERT]),
    ("created, no --prepare", _half_made(), None, [Kind.CONVERT]),
    ("seed attached, never started", _half_made(preparing=VERSION), None,
     [Kind.START, Kind.WAIT_STOPPED, Kind.RECORD, Kind.CONVERT]),
    ("preparation boot under way", _half_made("running", preparing=VERSION), None,
     [Kind.WAIT_STOPPED, Kind.RECORD, Kind.CONVERT]),
    ("recorded, not converted", _half_made(k3s=VERSION), PREP, [Kind.CONVERT]),
    ("prepared template", _half_made(template=True, k3s=VERSION), PREP, []),
]  # fmt: skip


@pytest.mark.parametrize(("case", "vm", "prep", "kinds"), TABLE, ids=[row[0] for row in TABLE])
def test_plan(case: str, vm: VMFacts | None, prep: Preparation | None, kinds: list[Kind]) -> None:
    plan = tpl.plan_template(CLUSTER, DEBIAN, _facts(vm=vm), False, prep)
    assert not plan.problems, plan.problems
    assert [a.kind for a in plan.actions] == kinds
    if Kind.PREPARE_SEED in kinds:
        attach = next(a for a in plan.actions if a.kind == Kind.PREPARE_SEED)
        assert dict(attach.params) == {"k3s": VERSION, "slot": "ide2", "volid": ISO}
    if Kind.RECORD in kinds:
        record = next(a for a in plan.actions if a.kind == Kind.RECORD)
        assert dict(record.params) == {"k3s": VERSION, "slot": "ide2"}


def test_q35_prepares_through_the_scsi_slot() -> None:
    cluster = CLUSTER
    source = replace(DEBIAN, machine="q35")
    plan = tpl.plan_template(cluster, source, _facts(), False, PREP)
    attach = next(a for a in plan.actions if a.kind == Kind.PREPARE_SEED)
    assert attach.param("slot") == "scsi1"


@pytest.mark.parametrize(
    ("baked", "prep", "note"),
    [
        (VERSION, PREP, None),
        ("v1.30.0+k3s1", PREP, "is prepared with K3s v1.30.0+k3s1, not cluster.k3s_version"),
        ("v1.30.0+k3s1", None, "is prepared with K3s v1.30.0+k3s1, not cluster.k3s_version"),
        (None, PREP, "is not prepared"),
        (None, None, None),
    ],
)
def test_a_template_of_another_version_stays_with_a_note(
    baked: str | None, prep: Preparation | None, note: str | None
) -> None:
    vm = _half_made(template=True, **({"k3s": baked} if baked else {}))
    plan = tpl.plan_template(CLUSTER, DEBIAN, _facts(vm=vm), False, prep)
    assert plan.is_noop and not plan.problems
    if note is None:
        assert plan.warnings == ()
    else:
        (warning,) = plan.warnings
        assert note in warning and "download K3s at first boot" in warning


def test_preparing_needs_power_and_the_right_to_delete_its_seed() -> None:
    for privilege, path in (
        ("VM.PowerMgmt", f"/vms/{VMID}"),
        ("Datastore.Allocate", "/storage/local"),
    ):
        facts = _facts()
        revoke(facts.permissions, privilege)
        assert tpl.plan_template(CLUSTER, DEBIAN, facts, False, None).problems == ()
        plan = tpl.plan_template(CLUSTER, DEBIAN, facts, False, PREP)
        assert any(f"{privilege} on {path}" in p for p in plan.problems), plan.problems
