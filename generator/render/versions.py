"""Every version the rendered tree pins, in one list: K3s, the charts, kube-vip, the Flux
operator and Flux, the system-upgrade-controller and the demo app's image. Each value is read
from the module that pins it; cluster.yaml's overrides are shown beside the pin."""

from __future__ import annotations

from dataclasses import dataclass

from generator.config.model import COMPONENTS, Cluster
from generator.render import charts, gitops_apps, k3s, kube_vip, manifests, system_upgrade


@dataclass(frozen=True)
class Pin:
    name: str
    pinned: str  # what homelab-gen pins (for K3s: the scaffold's default)
    used: str  # what the rendered tree uses: the pin, or cluster.yaml's override
    note: str = ""

    @property
    def overridden(self) -> bool:
        return self.used != self.pinned


def pins(cluster: Cluster | None, k3s_default: str) -> list[Pin]:
    """The pins, with cluster.yaml's choices when there is one (else what a new repo gets)."""
    wanted = cluster.cluster.k3s_version if cluster else k3s_default
    found = [Pin("k3s", k3s_default, wanted, "cluster.k3s_version" if cluster else "")]
    for info in COMPONENTS:
        spec = charts.SPEC_BY_KEY.get(info.name)
        if spec is None:
            continue
        comp = charts.component(cluster, spec) if cluster else None
        used = charts.chart_version(cluster, spec) if cluster else spec.chart.version
        notes = [f"components.{info.name}.version"] if used != spec.chart.version else []
        if comp is not None and not comp.enabled:
            notes.append("switched off")
        found.append(Pin(f"{spec.chart.name} (chart)", spec.chart.version, used, ", ".join(notes)))
    whoami = gitops_apps.WHOAMI_IMAGE.rpartition(":")[2]
    whoami_off = cluster is not None and not cluster.components.whoami.enabled
    no_vip = cluster is not None and cluster.network.api_vip is None
    found += [
        Pin("whoami (image)", whoami, whoami, "switched off" if whoami_off else ""),
        _fixed(
            "kube-vip (image)", kube_vip.KUBE_VIP_VERSION, "unused: no network.api_vip" * no_vip
        ),
        _fixed("flux-operator (chart)", manifests.FLUX_OPERATOR_VERSION),
        _fixed("flux", manifests.FLUX_VERSION, "the operator picks the release in this range"),
        _fixed("system-upgrade-controller", system_upgrade.SUC_TAG),
        _fixed("k3s install.sh", k3s.K3S_INSTALLER_TAG, installer_note()),
    ]
    return found


def _fixed(name: str, version: str, note: str = "") -> Pin:
    """A pin cluster.yaml cannot change."""
    return Pin(name, version, version, note)


def installer_note() -> str:
    if k3s.K3S_INSTALLER_SHA256 is None:
        return "sha256 not pinned: runs unchecked"
    return f"sha256 {k3s.K3S_INSTALLER_SHA256}; runs once at first boot, whatever k3s version"
