"""`status`: gather facts from Proxmox's guest agent and the K3s API, judge readiness, show it.

gather (asks, once or until ready) → facts (the frozen records it fills in) → verdict (pure:
facts → rows, verdict, first blocker) → view (tables, plain text, JSON). k8s reads the K3s
API, kubeconfig makes K3s's admin kubeconfig usable, cloudinit reads cloud-init's state
through the guest agent.
"""
