"""K3s's admin kubeconfig made usable from the user's machine: the API address the cluster
is reached at, the cluster's own name instead of K3s's "default", merged without disturbing
other contexts. Pure, except `write` and `merge_into`, which write 0600 atomically.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from generator import yamlio
from generator.config.model import Cluster
from generator.environment import Environment
from generator.errors import HomelabError
from generator.fileio import write_atomic

API_PORT = 6443
SECTIONS = ("clusters", "users", "contexts")


def api_server(cluster: Cluster) -> str:
    return f"https://{cluster.api_host}:{API_PORT}"


def parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = yamlio.load_text(text, source) if text.strip() else {}
    except HomelabError as exc:
        raise HomelabError(f"{source} is not a valid kubeconfig: {exc}") from None
    if not isinstance(data, dict):
        raise HomelabError(f"{source} is not a valid kubeconfig (not a mapping)")
    return dict(data)


def _single(config: dict[str, Any], section: str) -> dict[str, Any]:
    entries = config.get(section) or []
    if len(entries) != 1:
        raise HomelabError(
            f"K3s's kubeconfig should hold exactly one entry in {section}, found {len(entries)}"
        )
    return dict(entries[0])


def rewrite(k3s_yaml: dict[str, Any], name: str, server: str) -> dict[str, Any]:
    """K3s's k3s.yaml (server https://127.0.0.1:6443, all named "default") pointed at
    `server` and named `name` throughout."""
    cluster = _single(k3s_yaml, "clusters")
    user = _single(k3s_yaml, "users")
    _single(k3s_yaml, "contexts")
    cluster_body = {**dict(cluster.get("cluster") or {}), "server": server}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster_body}],
        "users": [{"name": name, "user": copy.deepcopy(dict(user.get("user") or {}))}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def merge(existing: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """`existing` with our cluster, user and context added or replaced by name. Other
    entries, their order and the current context stay as they were (an empty file gets
    ours as current)."""
    merged = copy.deepcopy(existing)
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    merged.setdefault("preferences", {})
    for section in SECTIONS:
        mine = {entry["name"]: entry for entry in ours[section]}
        # Replace ours where it stands, so a re-run keeps the file's order.
        entries = [mine.pop(e.get("name"), e) for e in merged.get(section) or []]
        merged[section] = entries + list(mine.values())
    if not merged.get("current-context"):
        merged["current-context"] = ours["current-context"]
    return merged


def dump(config: dict[str, Any]) -> str:
    return yamlio.dump_text(config)


def merge_target(env: Environment) -> Path:
    """Where kubectl would write: the first file in $KUBECONFIG, else ~/.kube/config."""
    listed = [p for p in env.kubeconfig.split(os.pathsep) if p]
    return Path(listed[0]).expanduser() if listed else Path("~/.kube/config").expanduser()


def write(path: Path, config: dict[str, Any]) -> None:
    """0600: the file holds the cluster's admin credentials."""
    write_atomic(path, dump(config), mode=0o600)


def merge_into(path: Path, ours: dict[str, Any]) -> dict[str, Any]:
    existing = parse(path.read_text(), str(path)) if path.exists() else {}
    merged = merge(existing, ours)
    write(path, merged)
    return merged
