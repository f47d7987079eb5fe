"""homelab-gen: one Proxmox box to a K3s cluster run by GitOps."""

__version__ = "0.1.0"
