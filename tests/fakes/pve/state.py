"""The fake's world as plain data: nodes, storages, VMs, tasks, faults, latencies, calls.

Tests build or edit a PveState directly (add a VM, drop a privilege, queue a fault) and
read it back to assert what Proxmox would hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOKEN_ID = "homelab@pve!homelab-gen"
TEMPLATE_VMID = 9000
FOREIGN_VMID = 100

# What `pveum` would grant the role recommended in the README (PVE 9 privilege names).
VM_PRIVS = (
    "VM.Allocate",
    "VM.Audit",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.PowerMgmt",
    "VM.GuestAgent.Audit",
    "VM.GuestAgent.Unrestricted",
)
# pve-storage Plugin.pm, @SHARED_STORAGE.
SHARED_STORAGE_TYPES = frozenset(
    ("iscsi", "nfs", "cifs", "rbd", "cephfs", "iscsidirect", "zfs", "drbd", "pbs")
)
STORAGE_PRIVS = ("Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit")


@dataclass
class Storage:
    content: set[str]
    type: str = "dir"
    path: str | None = "/var/lib/vz"
    total: int = 100 * 2**30
    avail: int = 80 * 2**30
    shared: bool = False
    # volid -> {"content": ..., "size": ..., "data": bytes, "ctime": epoch seconds}
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # storage.cfg's `disable` flag; `active`: whether the plugin's status call succeeds.
    disable: bool = False
    active: bool = True
    # Further storage.cfg keys GET /storage/{storage} returns (e.g. vgname, thinpool).
    options: dict[str, Any] = field(default_factory=dict)

    def is_shared(self) -> bool:
        """pve-storage Plugin.pm, parse_config: types in @SHARED_STORAGE are always shared;
        for the rest, storage.cfg's `shared` flag."""
        return self.shared or self.type in SHARED_STORAGE_TYPES


@dataclass
class NodeState:
    storages: dict[str, Storage]
    bridges: list[str] = field(default_factory=lambda: ["vmbr0"])
    memory_total: int = 64 * 2**30
    memory_free: int = 48 * 2**30  # MemFree: what node status calls `free`
    # MemAvailable (page cache counts as available); None: the same as memory_free.
    memory_available: int | None = None
    cpus: int = 8
    # A cluster member corosync no longer sees (pve-cluster: members' `online` flag).
    online: bool = True
    # What pveproxy's proxy to this host meets: AnyEvent::HTTP's status 595 carries the
    # connect error ($!) as its reason ("No route to host" for a powered-off host,
    # "Connection refused" for one whose pveproxy is down).
    unreachable_reason: str = "No route to host"
    # Its last pvestatd stats are still in pmxcfs's rrd dump (younger than 5 minutes,
    # pve-cluster src/pmxcfs/status.c, rrd_entry_is_old); False: older, so dropped.
    recent_stats: bool = False


@dataclass
class Vm:
    vmid: int
    node: str
    config: dict[str, Any]
    status: str = "stopped"
    # The config file's [PENDING] section: values set, and keys deleted, while running.
    pending: dict[str, Any] = field(default_factory=dict)
    pending_delete: list[str] = field(default_factory=list)
    # The template whose base disks this VM's disks are linked clones of.
    clone_of: int | None = None
    # The user-data its cloud-init read at the last start (tests/fakes/pve/guest_seed.py).
    booted_user_data: bytes | None = None

    @property
    def is_template(self) -> bool:
        return str(self.config.get("template", 0)) == "1"


@dataclass
class Task:
    upid: str
    node: str
    type: str
    id: str
    user: str
    starttime: int
    status: str = "running"
    exitstatus: str | None = None
    # Lines the worker warned (log_warn / warn): a task that ends well then ends
    # "WARNINGS: n" instead of "OK" (pve-common RESTEnvironment.pm, fork_worker).
    warnings: list[str] = field(default_factory=list)


@dataclass
class Fault:
    """Make the next matching call fail. kind: "500" (a handler's die), "reset" (the call
    takes effect but the connection drops before the answer), "relay" (it takes effect but
    pveproxy answers 596), "lock" (a lock "got timeout" error), "task" (the call answers a
    UPID whose task fails), "task-lock" (its task fails waiting for a lock), "noupid"
    ("got no worker upid")."""

    step: str  # upload, clone, config, resize, start, stop, delete, or any
    kind: str
    vmid: int | None = None
    times: int = 1


@dataclass
class Latency:
    """Seconds. Tasks take their step's duration; the storage lock admits `clone_slots`
    clones at once and a clone waiting longer than `lock_timeout` fails like PVE's."""

    request: float = 0.0
    clone: float = 0.03
    config: float = 0.005
    resize: float = 0.005
    start: float = 0.01
    stop: float = 0.005
    delete: float = 0.005
    upload: float = 0.005
    clone_slots: int = 2
    lock_timeout: float = 10.0
    # pveproxy holds back every 401 for 3 s (pve-http-server AnyEvent.pm,
    # authenticate_and_handle_request); 0 here keeps the suite fast.
    unauthorized: float = 0.0


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    status: int = 0
    template: str = ""  # the route's path template, once matched
    user_agent: str = ""

    @property
    def mutating(self) -> bool:
        return self.method != "GET"


@dataclass
class PveState:
    token_secret: str
    version: str = "9.1.1"
    token_id: str = TOKEN_ID
    # The host whose pveproxy the client talks to; calls naming another host are proxied
    # to it (server.py, proxy_to_node). None: no proxying modelled (one box).
    entry: str | None = None
    permissions: dict[str, dict[str, int]] = field(default_factory=dict)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    vms: dict[int, Vm] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    latency: Latency = field(default_factory=Latency)
    calls: list[Call] = field(default_factory=list)
    # Called with each VM as it starts: a test's stand-in for the guest booting (a node
    # joining the fake K3s API, for example). Not part of Proxmox.
    on_start: list[Callable[[Vm], None]] = field(default_factory=list)
    # pve-ha-manager's config files: resources.cfg (sid "vm:<vmid>" -> its options, `type`
    # and `state` included), rules.cfg (PVE 9) and groups.cfg (PVE 8), rule/group id ->
    # options.
    ha_resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    ha_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    ha_groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def release(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def mutating_calls(self) -> list[Call]:
        return [c for c in self.calls if c.mutating]

    def storage(self, node: str, name: str) -> Storage:
        return self.nodes[node].storages[name]

    # -- a cluster of several hosts (see cluster_state) ----------------------------------
    def set_offline(
        self, host: str, reason: str = "No route to host", recent_stats: bool = False
    ) -> None:
        """`host` drops out of the cluster: calls proxied to it fail with 595 `reason`;
        /cluster/resources shows it offline and its VMs' status unknown (once its stats
        are older than pmxcfs keeps them; `recent_stats` for the first 5 minutes)."""
        node = self.nodes[host]
        node.online, node.unreachable_reason, node.recent_stats = False, reason, recent_stats

    def set_online(self, host: str) -> None:
        self.nodes[host].online = True

    @property
    def quorate(self) -> bool:
        """corosync votequorum with one vote per node: more than half must be online."""
        return 2 * sum(n.online for n in self.nodes.values()) > len(self.nodes)

    def migrate(self, vmid: int, host: str) -> Vm:
        """Move a VM's config to `host`, as an HA migration or recovery does (the config
        file is renamed into nodes/<host>/qemu-server/); its status is kept."""
        if host not in self.nodes:
            raise KeyError(f"no such cluster node '{host}'")
        vm = self.vms[vmid]
        vm.node = host
        return vm


def template_config(machine: str | None = None) -> dict[str, Any]:
    """A cloud-image template as `homelab-gen template` (or a user) would make it."""
    config: dict[str, Any] = {
        "name": "debian-12-cloud",
        "template": 1,
        "cores": 2,
        "memory": "2048",
        "agent": "1",
        "ostype": "l26",
        "scsihw": "virtio-scsi-pci",
        "scsi0": "local-lvm:base-9000-disk-0,size=3G",
        "ide2": "local-lvm:vm-9000-cloudinit,media=cdrom",
        "boot": "order=scsi0",
        "serial0": "socket",
        "vga": "serial0",
        "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
        "tags": "debian-12;template",
        "description": "Debian 12 cloud image",
    }
    if machine:
        config["machine"] = machine
    return config


def full_permissions() -> dict[str, dict[str, int]]:
    return {
        "/vms": dict.fromkeys(VM_PRIVS, 1),
        "/storage": dict.fromkeys(STORAGE_PRIVS, 1),
        # The README's PVEDatastoreAdmin on the seed storage: deleting seeds takes
        # Datastore.Allocate (pve-storage API2/Storage/Content.pm, delete).
        "/storage/local": dict.fromkeys((*STORAGE_PRIVS, "Datastore.Allocate"), 1),
        "/sdn/zones/localnetwork": {"SDN.Use": 1},
        "/nodes": {"Sys.Audit": 1},
    }


def revoke(permissions: dict[str, dict[str, int]], privilege: str) -> None:
    """Take `privilege` away on every path (an ACL deeper down would otherwise grant it)."""
    for acl in permissions.values():
        acl.pop(privilege, None)


def default_state(token_secret: str, snippets: bool = False) -> PveState:
    """One node `pve`: storages `local` (dir) and `local-lvm`, bridge vmbr0, template 9000
    and a foreign, running VM 100 that homelab-gen must never touch."""
    node = NodeState(storages=local_storages(snippets))
    state = PveState(token_secret=token_secret, permissions=full_permissions(), nodes={"pve": node})
    state.vms[TEMPLATE_VMID] = Vm(TEMPLATE_VMID, "pve", template_config())
    state.vms[FOREIGN_VMID] = foreign_vm("pve")
    return state


HOSTS = ("pve1", "pve2", "pve3")


def local_storages(snippets: bool = False) -> dict[str, Storage]:
    """A fresh install's `local` (dir) and `local-lvm` (LVM-thin): one set per host."""
    local_content = {"iso", "vztmpl", "backup", "import"} | ({"snippets"} if snippets else set())
    return {
        "local": Storage(content=local_content),
        "local-lvm": Storage(
            content={"images", "rootdir"},
            type="lvmthin",
            path=None,
            total=2**40,
            avail=2**40,
            options={"thinpool": "data", "vgname": "pve"},
        ),
    }


def shared_storage(kind: str = "nfs") -> Storage:
    """A storage every host mounts: NFS (a directory plugin, images as files) or Ceph RBD
    (block volumes). Both types are in pve-storage's @SHARED_STORAGE."""
    if kind == "rbd":
        return Storage(
            content={"images", "rootdir"},
            type="rbd",
            path=None,
            total=4 * 2**40,
            avail=3 * 2**40,
            options={"pool": "vms", "krbd": 0},
        )
    return Storage(
        content={"images", "iso", "import", "snippets"},
        type="nfs",
        path="/mnt/pve/shared",
        total=4 * 2**40,
        avail=3 * 2**40,
        options={"server": "192.0.2.10", "export": "/srv/pve", "options": "vers=4.2"},
    )


def cluster_state(
    token_secret: str,
    hosts: tuple[str, ...] = HOSTS,
    shared: str | None = "shared",
    shared_kind: str = "nfs",
    templates: tuple[tuple[str, str], ...] | None = None,
    snippets: bool = False,
) -> PveState:
    """A PVE cluster of `hosts`: each with its own `local` and `local-lvm` (separate
    Storage objects, volumes apart) and vmbr0; the storage named `shared` (if any) is one
    Storage object in every host's table, so its volumes are seen from every host, as a
    storage.cfg entry without `nodes` is. `templates`: (host, storage) of each template,
    VMIDs 9000, 9001, ... in order (default: 9000 on the first host's local-lvm, as on
    one box). The foreign VM 100 runs on the first host. The client talks to the first
    host (`entry`)."""
    nodes: dict[str, NodeState] = {}
    common = shared_storage(shared_kind) if shared else None
    for host in hosts:
        storages = local_storages(snippets)
        if shared and common is not None:
            storages[shared] = common
        nodes[host] = NodeState(storages=storages)
    state = PveState(
        token_secret=token_secret, permissions=full_permissions(), nodes=nodes, entry=hosts[0]
    )
    for index, (host, storage) in enumerate(templates or ((hosts[0], "local-lvm"),)):
        vmid = TEMPLATE_VMID + index
        config = template_config()
        # pve-storage: a base disk on a directory storage (NFS) is a qcow2 file under
        # images/<vmid>/; a block storage names the volume itself.
        block = nodes[host].storages[storage].path is None
        disk = f"base-{vmid}-disk-0" if block else f"{vmid}/base-{vmid}-disk-0.qcow2"
        cloudinit = f"vm-{vmid}-cloudinit" if block else f"{vmid}/vm-{vmid}-cloudinit.qcow2"
        config["scsi0"] = f"{storage}:{disk},size=3G"
        config["ide2"] = f"{storage}:{cloudinit},media=cdrom"
        state.vms[vmid] = Vm(vmid, host, config)
    state.vms[FOREIGN_VMID] = foreign_vm(hosts[0])
    return state


def foreign_vm(host: str) -> Vm:
    """A VM that is not homelab-gen's (a DNS server): every world has one to leave alone."""
    return Vm(
        FOREIGN_VMID,
        host,
        {
            "name": "pihole",
            "cores": 1,
            "memory": "1024",
            "scsi0": "local-lvm:vm-100-disk-0,size=8G",
            "net0": "virtio=BC:24:11:AA:AA:AA,bridge=vmbr0",
            "tags": "dns",
            "description": "my DNS server",
        },
        status="running",
    )
