"""cluster.yaml → validated, frozen Cluster.

load (read, normalise, the entry points) → schema (pykwalify, reworded messages) → defaults →
checks (what the values mean together) → model (the frozen dataclasses). Callers use the
entry points re-exported here.
"""

from __future__ import annotations

from generator.config.load import CONFIG_NAME, Loaded, from_data, load, parse

__all__ = ["CONFIG_NAME", "Loaded", "from_data", "load", "parse"]
