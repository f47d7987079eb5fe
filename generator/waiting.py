"""What a command waits for on the network, said as log records.

The modules that talk to Proxmox and to the K3s API say what they are about to wait for;
the command layer decides whether anyone sees it (a spinner line on a terminal, nothing when
piped). Keeping it a logger means the core never knows how, or whether, it is shown."""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("homelab_gen.waiting")
LOGGER.setLevel(logging.INFO)
LOGGER.propagate = False  # never to the root logger: this is a status line, not a log
LOGGER.addHandler(logging.NullHandler())


def waiting_for(what: str) -> None:
    """WHAT is what the next network wait is for, e.g. 'Proxmox at pve.lan:8006 (GET version)'."""
    LOGGER.info(what)
