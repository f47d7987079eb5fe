"""What the API token needs to make the template, and the `pveum` commands that grant it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from generator.config.model import Cluster
from generator.proxmox.actions import Action, Kind
from generator.proxmox.preflight import VM_CONFIG_PRIVS, has_privilege, pveum_commands

CREATE_PRIVS = ("VM.Allocate", "VM.Audit", *VM_CONFIG_PRIVS)
NETWORK_ROLE = "HomelabGenDownload"


def _network_ok(cluster: Cluster, perms: Mapping[str, Mapping[str, int]]) -> bool:
    """download-url lets the host fetch URLs, so PVE wants Sys.AccessNetwork on the node
    (or, the old way, both Sys.Audit and Sys.Modify on /)."""
    has = has_privilege
    node_path = f"/nodes/{cluster.proxmox.node}"
    return has(perms, node_path, "Sys.AccessNetwork") or (
        has(perms, "/", "Sys.Audit") and has(perms, "/", "Sys.Modify")
    )


def required_privileges(cluster: Cluster, steps: Sequence[Action]) -> list[tuple[str, str]]:
    pve = cluster.proxmox
    kinds = {s.kind for s in steps}
    vm_path = f"/vms/{pve.template_vmid}"
    needed = [(f"/storage/{pve.seed_storage}", "Datastore.Audit")]
    if Kind.DOWNLOAD in kinds:
        needed.append((f"/storage/{pve.seed_storage}", "Datastore.AllocateTemplate"))
    if Kind.CREATE in kinds:
        needed += [(vm_path, p) for p in CREATE_PRIVS]
        needed.append((f"/storage/{pve.storage}", "Datastore.AllocateSpace"))
        needed.append((f"/sdn/zones/localnetwork/{pve.bridge}", "SDN.Use"))
    if kinds & {Kind.CONVERT, Kind.DELETE}:
        needed.append((vm_path, "VM.Allocate"))
    if Kind.PREPARE_SEED in kinds:
        needed.append((f"/storage/{pve.seed_storage}", "Datastore.AllocateTemplate"))
    if kinds & {Kind.PREPARE_SEED, Kind.RECORD}:
        cd_privs = ("VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Config.Options")
        needed += [(vm_path, p) for p in cd_privs]
        needed.append((f"/storage/{pve.storage}", "Datastore.AllocateSpace"))
        # RECORD deletes the preparation seed once the cloud-init drive is back.
        needed.append((f"/storage/{pve.seed_storage}", "Datastore.Allocate"))
    if kinds & {Kind.START, Kind.WAIT_STOPPED}:
        needed += [(vm_path, "VM.PowerMgmt"), (vm_path, "VM.Audit")]
    return list(dict.fromkeys(needed))


def missing_privileges(
    cluster: Cluster, perms: Mapping[str, Mapping[str, int]], steps: Sequence[Action]
) -> list[str]:
    """Each privilege the steps need that the token's permissions (access/permissions) lack."""
    missing = [
        f"{priv} on {path}"
        for path, priv in required_privileges(cluster, steps)
        if not has_privilege(perms, path, priv)
    ]
    if any(s.kind == Kind.DOWNLOAD for s in steps) and not _network_ok(cluster, perms):
        missing.append(f"Sys.AccessNetwork on /nodes/{cluster.proxmox.node}")
    return missing


def grant_commands(cluster: Cluster, version: tuple[int, int], missing: list[str]) -> list[str]:
    """The `pveum` commands that grant what is missing on PVE `version` (major, minor)."""
    pve = cluster.proxmox
    commands: list[str] = []
    if any(not m.startswith("Sys.AccessNetwork") for m in missing):
        commands += pveum_commands(cluster, version)
    if any(m.startswith("Sys.AccessNetwork") for m in missing):
        commands += [
            f'pveum role add {NETWORK_ROLE} --privs "Sys.AccessNetwork"',
            f"pveum acl modify /nodes/{pve.node} --tokens '{pve.token_id}' --roles {NETWORK_ROLE}"
            "   # only needed while downloading; remove it afterwards with pveum acl delete",
        ]
    return commands
