"""The plan as data: what boot, destroy, prune and template will do, VM by VM.

One vocabulary for every command that changes Proxmox, so planning (plan, template),
running (apply) and showing (view) share it and never translate between copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """Every action kind, written once: boot's, destroy's and prune's, the seeds', the
    template's. A StrEnum, so `str(Kind.CLONE) == "clone"` in every output."""

    UPLOAD = "upload"
    STOP = "stop"
    DELETE = "delete"
    CLONE = "clone"
    CONFIGURE = "configure"
    RESIZE = "resize"
    START = "start"
    DELETE_SEED = "delete-seed"
    DOWNLOAD = "download"  # template: the cloud image onto the seed storage
    CREATE = "create"  # template: the VM, importing the image
    CONVERT = "convert"  # template: the VM into a template
    # template --prepare (template_prepare), between CREATE and CONVERT; START starts it.
    PREPARE_SEED = "prepare-seed"  # the preparation seed CD in the cloud-init drive's slot
    WAIT_STOPPED = "wait-stopped"  # the VM powers itself off once prepared
    RECORD = "record"  # the cloud-init drive back, the K3s version in the description
    # Node lifecycle (generator.lifecycle), on the Kubernetes side of a replaced or removed VM.
    DRAIN = "drain"  # cordon, then evict its pods as PodDisruptionBudgets allow
    LEAVE_ETCD = "leave-etcd"  # a server's etcd member removed while it still runs
    DELETE_NODE = "delete-node"  # delete the Node; K3s removes a server's etcd member
    WAIT_READY = "wait-ready"  # the rebuilt node registered and Ready
    # HA (generator.proxmox.ha), with proxmox.ha or to undo it.
    HA_ADD = "ha-add"  # the VM becomes an HA resource
    HA_REMOVE = "ha-remove"  # the VM is no HA resource any more (it stays)
    HA_GROUP = "ha-group"  # PVE 8: a server's node group
    HA_GROUP_DELETE = "ha-group-delete"
    HA_RULE = "ha-rule"  # PVE 9: the servers' anti-affinity rule
    HA_RULE_DELETE = "ha-rule-delete"


# Rows of these run after every VM's row: a rule may name only resources HA already has.
RULE_KINDS = frozenset({Kind.HA_RULE, Kind.HA_RULE_DELETE})


@dataclass(frozen=True)
class Action:
    kind: Kind
    vmid: int
    pve_node: str
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str:
        return dict(self.params)[name]

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params if k not in ("description",))
        return f"{self.kind} ({shown})" if shown else self.kind


@dataclass(frozen=True)
class VMPlan:
    name: str
    vmid: int
    actions: tuple[Action, ...]
    reason: str = ""  # why there is nothing to do, or what the actions are for
    notes: tuple[str, ...] = ()
    # The Proxmox host the VM is on, or goes on (placement decides it once per run); empty
    # for a row that is not one VM of cluster.yaml (a seed file, an orphan, the template).
    host: str = ""


@dataclass(frozen=True)
class Plan:
    vms: tuple[VMPlan, ...]
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    # One line per offline host, naming this cluster's VMs there: nothing is planned for
    # them (they still exist), the rest of the plan goes on, and the command exits 1.
    unreachable: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for vm in self.vms for a in vm.actions)

    @property
    def is_noop(self) -> bool:
        return not self.actions

    @property
    def vm_part(self) -> Plan:
        return Plan(tuple(vm for vm in self.vms if vm.vmid), self.problems, self.warnings)

    @property
    def seed_part(self) -> Plan:
        """Rows with no VM (vmid 0): seeds deleted once every VM is done with them."""
        return Plan(tuple(vm for vm in self.vms if not vm.vmid and not _is_rule_row(vm)))

    @property
    def rule_part(self) -> Plan:
        """The HA rule's row, run once the VMs' rows made their HA resources."""
        return Plan(tuple(vm for vm in self.vms if _is_rule_row(vm)))


def _is_rule_row(vm: VMPlan) -> bool:
    return not vm.vmid and any(a.kind in RULE_KINDS for a in vm.actions)
