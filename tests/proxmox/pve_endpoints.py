"""Every Proxmox API call homelab-gen makes: (method, path template) → the parameters it
may send, and the upstream handler that answers it.

tests/conftest.py holds every test to this table: a call the project sends to a fake PVE
(recognised by its User-Agent) with an endpoint or a parameter missing here fails the test.
So a new call is added here, with its upstream reference, before it ships; and
tests/proxmox/test_endpoint_table.py checks each row against the real API schemas of the
supported PVE releases.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    params: frozenset[str]
    upstream: str  # repository, file, API method name (the `name =>` of its definition)
    why: str
    since: int = 8  # the first PVE major release that has it


def _e(params: str, upstream: str, why: str, since: int = 8) -> Endpoint:
    return Endpoint(frozenset(params.split()), upstream, why, since)


_QEMU = "qemu-server src/PVE/API2/Qemu.pm"
_AGENT = "qemu-server src/PVE/API2/Qemu/Agent.pm"
_STORAGE = "pve-storage src/PVE/API2/Storage"
_HA = "pve-ha-manager src/PVE/API2/HA"

TABLE: dict[tuple[str, str], Endpoint] = {
    ("GET", "/version"): _e("", "pve-manager PVE/API2.pm, version", "release check, reachability"),
    ("GET", "/access/permissions"): _e(
        "", "pve-access-control src/PVE/API2/AccessControl.pm, permissions", "token pre-flight"
    ),
    ("GET", "/cluster/resources"): _e(
        "type", "pve-manager PVE/API2/Cluster.pm, resources", "find VMs on every host"
    ),
    ("GET", "/nodes/{node}/status"): _e(
        "", "pve-manager PVE/API2/Nodes.pm, status", "free memory pre-flight"
    ),
    ("GET", "/nodes/{node}/network"): _e(
        "", "pve-manager PVE/API2/Network.pm, index", "the bridge exists"
    ),
    ("GET", "/nodes/{node}/storage"): _e(
        "", f"{_STORAGE}/Status.pm, index", "storages, content types, free space"
    ),
    ("GET", "/storage/{storage}"): _e(
        "", f"{_STORAGE}/Config.pm, read", "the snippets storage's path"
    ),
    ("GET", "/nodes/{node}/storage/{storage}/content"): _e(
        "content", f"{_STORAGE}/Content.pm, index", "uploaded seeds, imported images"
    ),
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}"): _e(
        "", f"{_STORAGE}/Content.pm, delete", "remove seeds no VM uses"
    ),
    ("POST", "/nodes/{node}/storage/{storage}/upload"): _e(
        "content checksum-algorithm checksum filename",
        f"{_STORAGE}/Status.pm, upload; pve-http-server AnyEvent.pm, file_upload_multipart",
        "the NoCloud seed ISO",
    ),
    ("POST", "/nodes/{node}/storage/{storage}/download-url"): _e(
        "url content filename checksum checksum-algorithm",
        f"{_STORAGE}/Status.pm, download_url",
        "the cloud image, fetched by Proxmox",
    ),
    ("GET", "/nodes/{node}/qemu/{vmid}/config"): _e(
        "current", f"{_QEMU}, vm_config", "observe a VM"
    ),
    ("GET", "/nodes/{node}/qemu/{vmid}/status/current"): _e(
        "", f"{_QEMU}, vm_status", "running or stopped"
    ),
    ("GET", "/nodes/{node}/qemu"): _e("", f"{_QEMU}, vmlist", "which of a host's VMs run"),
    ("GET", "/nodes/{node}/qemu/{vmid}/pending"): _e(
        "", f"{_QEMU}, vm_pending", "observe a VM: its config with and without pending changes"
    ),
    ("POST", "/nodes/{node}/qemu"): _e(
        "vmid name ostype machine cpu cores memory agent serial0 vga scsihw scsi0 ide2 scsi1"
        " boot net0 tags description",
        f"{_QEMU}, create_vm",
        "the template VM (import-from)",
    ),
    ("POST", "/nodes/{node}/qemu/{vmid}/template"): _e(
        "", f"{_QEMU}, template", "convert to a template"
    ),
    ("POST", "/nodes/{node}/qemu/{vmid}/clone"): _e(
        "newid name description full storage target",
        f"{_QEMU}, clone_vm",
        "one VM per node",
    ),
    ("POST", "/nodes/{node}/qemu/{vmid}/config"): _e(
        "name cores memory agent net0 onboot tags description cicustom delete"
        " ide0 ide1 ide2 ide3 " + " ".join(f"scsi{i}" for i in range(1, 31)),
        f"{_QEMU}, update_vm_async",
        "size, network, seed drive, ownership",
    ),
    ("PUT", "/nodes/{node}/qemu/{vmid}/resize"): _e(
        "disk size", f"{_QEMU}, resize_vm", "grow the boot disk"
    ),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/start"): _e("", f"{_QEMU}, vm_start", "power on"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/stop"): _e("", f"{_QEMU}, vm_stop", "destroy"),
    ("DELETE", "/nodes/{node}/qemu/{vmid}"): _e(
        "purge destroy-unreferenced-disks", f"{_QEMU}, destroy_vm", "destroy, prune"
    ),
    ("GET", "/nodes/{node}/tasks/{upid}/status"): _e(
        "", "pve-manager PVE/API2/Tasks.pm, read_task_status", "wait for every task"
    ),
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces"): _e(
        "", f"{_AGENT}, network-get-interfaces", "the node's address"
    ),
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/file-read"): _e(
        "file",
        f"{_AGENT}, file-read",
        "K3s's kubeconfig; the user-data the node booted with (seed drift, --replace-stale)",
    ),
    ("POST", "/nodes/{node}/qemu/{vmid}/agent/exec"): _e(
        "command",
        f"{_AGENT}, exec",
        "cloud-init status",
    ),
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/exec-status"): _e(
        "pid", f"{_AGENT}, exec-status", "its output"
    ),
    # proxmox.ha (generator/proxmox/ha.py)
    ("GET", "/cluster/ha/resources"): _e("", f"{_HA}/Resources.pm, index", "HA resources"),
    ("POST", "/cluster/ha/resources"): _e(
        "sid state comment group", f"{_HA}/Resources.pm, create", "a VM into HA"
    ),
    ("DELETE", "/cluster/ha/resources/{sid}"): _e(
        "", f"{_HA}/Resources.pm, delete", "a VM out of HA (HA off, destroy, prune)"
    ),
    ("GET", "/cluster/ha/groups"): _e("", f"{_HA}/Groups.pm, index", "PVE 8's server groups"),
    ("POST", "/cluster/ha/groups"): _e(
        "group nodes", f"{_HA}/Groups.pm, create", "PVE 8: a server's preferred host"
    ),
    ("DELETE", "/cluster/ha/groups/{group}"): _e("", f"{_HA}/Groups.pm, delete", "HA off"),
    ("GET", "/cluster/ha/rules"): _e("", f"{_HA}/Rules.pm, index", "PVE 9's rules", since=9),
    ("POST", "/cluster/ha/rules"): _e(
        "rule type affinity resources comment",
        f"{_HA}/Rules.pm, create_rule",
        "PVE 9: servers on different hosts",
        since=9,
    ),
    ("DELETE", "/cluster/ha/rules/{rule}"): _e(
        "", f"{_HA}/Rules.pm, delete_rule", "rule changed, HA off, destroy", since=9
    ),
}

# Path parameters come from the URL, not from the project's choice of parameters.
PATH_PARAMS = frozenset({"node", "vmid", "storage", "volume", "upid", "sid", "group", "rule"})


def unlisted(method: str, template: str, params: set[str]) -> str | None:
    """Why this call is missing from TABLE, or None when it is listed."""
    endpoint = TABLE.get((method, template))
    if endpoint is None:
        return f"{method} {template} is not in tests/proxmox/pve_endpoints.py"
    extra = params - endpoint.params - PATH_PARAMS
    if extra:
        return f"{method} {template} sends {sorted(extra)}, not in tests/proxmox/pve_endpoints.py"
    return None
