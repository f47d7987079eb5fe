"""Everything that talks to Proxmox VE: connect, observe, plan, apply, seeds.

Only this package imports proxmoxer (and paramiko, through proxmoxer's SSH session).
"""
