"""kube-vip's environment against the names kube-vip v1.0.4 really reads."""

from __future__ import annotations

from generator.render.kube_vip import KUBE_VIP_VERSION, kube_vip_env
from tests.render.seed_clusters import fixture_cluster

# The environment names kube-vip v1.0.4 reads that homelab-gen may set, from the tag's
# pkg/kubevip/config_envvar.go (read by config_environment.go ParseEnvironment). There is no
# vip_cidr in that file: the VIP's mask is vip_subnet.
READ_BY_KUBE_VIP = {
    "address",
    "port",
    "vip_arp",
    "vip_subnet",
    "cp_enable",
    "cp_namespace",
    "svc_enable",
    "vip_leaderelection",
    "vip_leasename",
    "vip_leaseduration",
    "vip_renewdeadline",
    "vip_retryperiod",
    "vip_nodename",
    "vip_interface",
}


def test_the_mask_is_vip_subnet_a_name_kube_vip_reads() -> None:
    assert KUBE_VIP_VERSION == "v1.0.4", "re-check the names against the new tag's source"
    env = {e["name"]: e for e in kube_vip_env(fixture_cluster("seeds-ha"))}
    assert "vip_cidr" not in env
    # A bare prefix length, as kube-vip's own GenerateCidrRange writes it (cmd/kube-vip.go).
    assert env["vip_subnet"]["value"] == "32"
    assert set(env) <= READ_BY_KUBE_VIP, sorted(set(env) - READ_BY_KUBE_VIP)
