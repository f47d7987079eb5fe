"""Which Proxmox host each VM goes on, decided once per run from cluster.yaml and what
observe saw. Pure: the same config and facts always give the same hosts, so a plan can be
shown, tested as a table and applied as it was shown.

The rules, in order:
- a VM that exists stays where Proxmox has it (moved by HA included): adding a host or a
  node never moves one;
- a node pinned with `proxmox_node` goes there;
- with `placement: pack` (or no listed host seen) the rest go on proxmox.node, as before
  several hosts were known;
- with `spread`, servers go to the host with the fewest servers (then the fewest VMs of this
  cluster, then list order), so they sit on distinct hosts while there are enough;
- agents go round-robin weighted by each host's free memory: the next one to the host with
  the lowest (VMs of this cluster + 1) / free memory, ties in list order.
A listed host that observe did not see (offline, or hidden from the token) gets nothing new.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from fractions import Fraction

from generator.config.checks.placement import most_servers_per_host
from generator.config.model import Cluster, Node
from generator.proxmox.observe import Observed


def place(cluster: Cluster, observed: Observed) -> dict[str, str]:
    """{node name: Proxmox host} for every node of the cluster, in cluster.yaml's order."""
    hosts = fixed_hosts(cluster, observed)
    new = [n for n in cluster.nodes if n.name not in hosts]
    targets = available_hosts(cluster, observed)
    if cluster.proxmox.placement == "pack" or not targets:
        hosts.update({n.name: cluster.proxmox.node for n in new})
    else:
        hosts.update(_spread(cluster, observed, targets, hosts, new))
    return {n.name: hosts[n.name] for n in cluster.nodes}


def fixed_hosts(cluster: Cluster, observed: Observed) -> dict[str, str]:
    """The hosts no choice is left for: where a VM already is, else where it is pinned."""
    hosts = {}
    for node in cluster.nodes:
        vm = observed.vms.get(node.vmid)
        if vm is not None:
            hosts[node.name] = vm.node
        elif node.vmid in observed.unreachable:  # it exists, on a host that is offline
            hosts[node.name] = observed.unreachable[node.vmid]
        elif node.proxmox_node:
            hosts[node.name] = node.proxmox_node
    return hosts


def available_hosts(cluster: Cluster, observed: Observed) -> list[str]:
    """The listed hosts observe saw, in the user's order."""
    return [h for h in cluster.proxmox.hosts if h in observed.nodes]


def unavailable_hosts(cluster: Cluster, observed: Observed) -> list[str]:
    return [h for h in cluster.proxmox.hosts if h not in observed.nodes]


def free_memory(observed: Observed, targets: Sequence[str]) -> dict[str, int]:
    """Each host's free memory as the API reports it; a host whose memory is unknown (the
    token may not read its status) counts as the average of the others, or all as equal."""
    known = {h: f.memory_free for h in targets if (f := observed.nodes[h]).memory_free is not None}
    average = sum(known.values()) // len(known) if known else 1
    return {h: max(known.get(h, average), 1) for h in targets}


def _spread(
    cluster: Cluster,
    observed: Observed,
    targets: Sequence[str],
    fixed: Mapping[str, str],
    new: Sequence[Node],
) -> dict[str, str]:
    roles = {n.name: n.is_server for n in cluster.nodes}
    vms = Counter(fixed.values())
    servers = Counter(host for name, host in fixed.items() if roles[name])
    order = {h: i for i, h in enumerate(targets)}
    memory = free_memory(observed, targets)
    chosen: dict[str, str] = {}
    for node in [n for n in new if n.is_server]:
        host = min(targets, key=lambda h: (servers[h], vms[h], order[h]))
        chosen[node.name] = host
        servers[host] += 1
        vms[host] += 1
    for node in [n for n in new if not n.is_server]:
        host = min(targets, key=lambda h: (Fraction(vms[h] + 1, memory[h]), order[h]))
        chosen[node.name] = host
        vms[host] += 1
    return chosen


def placement_findings(
    cluster: Cluster, observed: Observed, hosts: Mapping[str, str], asked: Collection[str] = ()
) -> tuple[list[str], list[str]]:
    """(problems, warnings) about where the VMs are. A listed host observe did not see
    takes nothing new: a warning. More servers on one host than quorum can lose: a problem
    when the plan would make one of them (a host is missing, so placement cannot keep them
    apart, and a VM once made never moves), a warning when they were all there before, or
    when the user asked for the new one (`asked`: a node re-made off an offline host, which
    brings etcd back to full strength however the rest sit)."""
    missing = unavailable_hosts(cluster, observed)
    warnings = [
        f"{host} is offline: no new VM goes there"
        if host in observed.offline_hosts
        else f"proxmox.nodes lists {host}, which Proxmox does not show (offline, or the"
        " token cannot see it): no new VM goes there"
        for host in missing
        if len(cluster.proxmox.hosts) > 1
    ]
    problems = []
    exist = observed.vms.keys() | observed.unreachable.keys()
    for host, names in _crowded(cluster, hosts).items():
        many = f"{len(names)} of the {len(cluster.servers)} servers are on {host}"
        made = [n for n in cluster.servers if n.name in names and n.vmid not in exist]
        if any(n.name not in asked for n in made):
            problems.append(
                f"{many} ({', '.join(names)}) with {', '.join(missing) or 'no other host'}"
                " not seen: losing it would lose etcd's quorum. Bring the hosts back, or set"
                " proxmox.placement: pack to accept the risk"
            )
        else:
            warnings.append(f"{many}: losing it loses etcd's quorum")
    return problems, warnings


def _crowded(cluster: Cluster, hosts: Mapping[str, str]) -> dict[str, list[str]]:
    """Hosts holding more servers than quorum can lose under spread, with their names."""
    servers = cluster.servers
    if cluster.proxmox.placement != "spread" or len(servers) < 2:
        return {}
    if cluster.cluster.datastore_endpoint is not None:
        return {}
    limit = most_servers_per_host(len(servers))
    by_host: dict[str, list[str]] = {}
    for node in servers:
        by_host.setdefault(hosts[node.name], []).append(node.name)
    return {host: names for host, names in by_host.items() if len(names) > limit}
