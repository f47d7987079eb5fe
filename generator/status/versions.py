"""K3s versions in `status`: each node's beside the wanted one (cluster.k3s_version), and a
note while the upgrade Plans have not reached every node. Never a blocker."""

from __future__ import annotations

from generator.status.facts import Facts


def version_text(running: str, wanted: str) -> str:
    """The node's K3s version, and the wanted one beside it when they differ."""
    return f"{running} \N{RIGHTWARDS ARROW} {wanted}" if off_version(running, wanted) else running


def off_version(running: str, wanted: str) -> bool:
    return bool(wanted) and running != wanted


def version_notes(facts: Facts) -> list[str]:
    # A note, not a blocker: after a k3s_version change the upgrade Plans roll the nodes one
    # at a time, and each keeps working on its old version until its turn.
    if facts.kube.error:
        return []
    off = [n for n in facts.kube.nodes if off_version(n.version, facts.k3s_version)]
    if not off:
        return []
    names = ", ".join(f"{n.name} ({n.version})" for n in off)
    return [
        f"K3s {facts.k3s_version} wanted (cluster.k3s_version), not yet on {names}: the"
        " system-upgrade-controller's Plans upgrade servers, then agents, one node at a time"
        " once the change is pushed (kubectl -n system-upgrade get plans,jobs)"
    ]
