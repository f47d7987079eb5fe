"""Meaning checks on a schema-valid cluster.yaml (plain data, defaults filled in).

Each check returns messages shaped `field.path: what is wrong (hint)`, naming every offender.
One module per topic: cluster (identity, git, datastore), network (ranges and addresses),
nodes (names, VMIDs, sizes, topology, keys), proxmox, placement (hosts, pins, spread),
components.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generator.config.checks import cluster, components, network, nodes, placement, proxmox
from generator.config.checks.findings import Findings

RULES: tuple[Callable[[dict[str, Any], Findings], None], ...] = (
    cluster.check_cluster_identity,
    cluster.check_git,
    cluster.check_datastore,
    cluster.check_cni,
    network.check_pod_networks,
    network.check_addresses,
    network.check_unique_addresses,
    network.check_metallb_range,
    nodes.check_nodes,
    nodes.check_topology,
    nodes.check_ssh_keys,
    proxmox.check_proxmox,
    placement.check_hosts,
    placement.check_spread,
    placement.check_ha,
    components.check_components,
)


def check(data: dict[str, Any]) -> Findings:
    """Run every meaning check; data is schema-valid with defaults applied."""
    found = Findings()
    for rule in RULES:
        rule(data, found)
    return found


def check_what_can_run(data: dict[str, Any]) -> Findings:
    """Run every meaning check on data that failed the schema and lost the refused values:
    a check whose own input is missing or malformed is skipped, whole, so it reports nothing
    half-done."""
    found = Findings()
    for rule in RULES:
        own = Findings()
        try:
            rule(data, own)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            continue
        found.problems += own.problems
        found.warnings += own.warnings
    return found
