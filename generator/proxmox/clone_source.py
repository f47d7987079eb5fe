"""Which template a new VM is cloned from, and how: pure, from cluster.yaml and the facts.

qemu-server API2/Qemu.pm, clone_vm, decides what a clone with `target=<other host>` may do:
- $check_storage_access_clone's $sharedvm: every volume of the source (disks, the
  cloud-init drive, a CD-ROM's ISO; not `none`/`cdrom`) must be on a storage marked
  shared, else "can't clone VM to node 'X' (VM uses local storage)";
- with `storage=` (our full clones) that storage must be shared too, else "can't clone to
  non-shared storage";
- a linked clone takes no `storage=` and stays on its base's storage, so a shared base is
  all it needs.
So a template on local storage serves its own host only; the other hosts get a copy of
their own (`homelab-gen template --all-hosts`, found by template_marks) and clone locally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from generator.config.model import Cluster
from generator.proxmox.observe import NodeFacts, Observed, VMFacts

# Storage types on which PVE can make a linked clone of a template.
LINKABLE = frozenset({"lvmthin", "zfspool", "rbd", "dir", "nfs", "cifs", "glusterfs", "btrfs"})
# qemu-server's foreach_volume: every drive, the EFI disk and the TPM state included.
VOLUME_KEY = re.compile(r"^((scsi|virtio|sata|ide)\d+|efidisk0|tpmstate0)$")


def use_full_clone(cluster: Cluster, observed: Observed, host: str) -> bool:
    if cluster.proxmox.clone == "full":
        return True
    facts = observed.nodes.get(host)
    storage = facts.storages.get(cluster.proxmox.storage) if facts else None
    return storage is not None and storage.type not in LINKABLE


def local_storages(template: VMFacts, nodes: Mapping[str, NodeFacts]) -> list[str]:
    """The storages of the template's volumes that are not shared ($sharedvm's rule); one
    the template's host does not list counts as local, since nothing says it is shared."""
    facts = nodes.get(template.node)
    local: list[str] = []
    for key, value in sorted(template.config.items()):
        volid = value.split(",", 1)[0]
        if not VOLUME_KEY.match(key) or volid in ("", "none", "cdrom") or ":" not in volid:
            continue
        storage = facts.storages.get(volid.split(":", 1)[0]) if facts else None
        if storage is None or not storage.shared:
            local.append(volid.split(":", 1)[0])
    return list(dict.fromkeys(local))


def _storage_shared(cluster: Cluster, observed: Observed, host: str) -> bool:
    facts = observed.nodes.get(host)
    storage = facts.storages.get(cluster.proxmox.storage) if facts else None
    return storage is not None and storage.shared


def moves_to(cluster: Cluster, observed: Observed, host: str) -> bool:
    """Whether the main template can be cloned onto `host` with `target=` (clone_vm's rules
    above): all its volumes shared, and for a full clone proxmox.storage shared as well."""
    template = observed.template
    if template is None or local_storages(template, observed.nodes):
        return False
    full = use_full_clone(cluster, observed, host)
    return not full or _storage_shared(cluster, observed, template.node)


def clone_source(cluster: Cluster, observed: Observed, host: str) -> VMFacts | None:
    """The template a new VM on `host` is cloned from: the main one on its own host, or
    moved there with `target=`; else that host's own copy; None when neither can serve."""
    template = observed.template
    if template is None or host == template.node or moves_to(cluster, observed, host):
        return template
    return observed.host_templates.get(host)


def unserved_problems(cluster: Cluster, observed: Observed, hosts: Mapping[str, str]) -> list[str]:
    """One problem naming the hosts whose new VMs no template can serve, before anything
    changes (boot would otherwise fail at the clone, half done)."""
    template = observed.template
    if template is None:
        return []  # preflight's template_problems says so
    blocked: dict[str, list[str]] = {}
    for node in cluster.nodes:
        host = hosts[node.name]
        if node.vmid in observed.vms or clone_source(cluster, observed, host) is not None:
            continue
        blocked.setdefault(host, []).append(node.name)
    if not blocked:
        return []
    local = local_storages(template, observed.nodes)
    why = (
        f"its volumes are on storage not shared between hosts ({', '.join(local)})"
        if local
        else f"a full clone onto another host needs proxmox.storage ({cluster.proxmox.storage})"
        " to be a shared storage"
    )
    where = "; ".join(f"{host}: {', '.join(names)}" for host, names in blocked.items())
    return [
        f"template {template.vmid} on {template.node} cannot be cloned to another host: {why}."
        f" VMs that would go where no template is: {where}. Run 'homelab-gen template"
        " --all-hosts' to make a copy of the template on each host, or make the template on"
        " shared storage (proxmox.storage), or keep these nodes on"
        f" {template.node} (placement: pack, or proxmox_node: {template.node})"
    ]
