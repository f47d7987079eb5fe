"""cloud-init's own state in a guest, read through the guest agent's exec: `cloud-init
status --format json` (23.x and later), else `--long` as 22.4 prints it; and the digest of
the user-data the guest booted with."""

from __future__ import annotations

import hashlib
import json
import re

from generator.config.checks.k3s_version import without_versions
from generator.proxmox.agent import AgentError, AgentFailure, read_file, run
from generator.proxmox.client import Client
from generator.status.facts import CloudInit, CloudInitStatus


def parse_cloud_init_json(text: str) -> CloudInit | None:
    """`cloud-init status --format json` (23.x and later); None when the text is not JSON."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "status" not in data:
        return None
    extended = str(data.get("extended_status") or "")
    errors = tuple(str(e) for e in data.get("errors") or ())
    recoverable = data.get("recoverable_errors") or {}
    return CloudInit(
        status=_normal_status(str(data["status"])),
        detail=str(data.get("detail") or ""),
        errors=errors,
        degraded=extended.startswith("degraded") or bool(recoverable),
    )


def parse_cloud_init_long(text: str) -> CloudInit | None:
    """`cloud-init status --long` as 22.4 prints it: `status:`, `time:`, `detail:` lines."""
    found = re.search(r"^status:\s*(.+)$", text, re.M)
    if not found:
        return None
    detail = text.split("detail:", 1)[1].strip() if "detail:" in text else ""
    errors = tuple(line.strip("- ").strip() for line in _section(text, "errors") if line.strip())
    return CloudInit(
        status=_normal_status(found[1].strip()),
        detail=detail,
        errors=errors,
        degraded=found[1].strip().startswith("degraded"),
    )


def _section(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == f"{name}:":
            return [x for x in lines[index + 1 :] if x.startswith((" ", "\t", "-"))]
    return []


def _normal_status(status: str) -> str:
    status = status.removeprefix("degraded ").strip()
    not_started = CloudInitStatus.NOT_STARTED
    return {"not run": not_started, "not_run": not_started}.get(status, status)


def cloud_init_status(
    client: Client, node: str, vmid: int, json_ok: bool = True
) -> tuple[CloudInit, bool]:
    """The guest's cloud-init state, and whether `--format json` worked (22.4 lacks it)."""
    if json_ok:
        result = run(client, node, vmid, ["cloud-init", "status", "--format", "json"])
        parsed = parse_cloud_init_json(result.out)
        if parsed is not None:
            return parsed, True
    result = run(client, node, vmid, ["cloud-init", "status", "--long"])
    parsed = parse_cloud_init_long(result.out)
    if parsed is None:
        output = (result.err or result.out).strip()[:200]
        raise AgentError(
            AgentFailure.FAILED, f"cannot read cloud-init status ({output or 'no output'})"
        )
    return parsed, False


# cloud-init keeps the raw user-data of the current instance here: cloudinit/helpers.py,
# Paths.lookups["userdata_raw"] = "user-data.txt" under the `instance` link, written by
# cloudinit/stages.py Init._store_rawdata (from Init.update, at each boot) as the seed gave
# it. First-boot modules ran from it once per instance-id, so it is what the node was built
# from unless the VM was restarted with another seed attached.
BOOTED_USER_DATA = "/var/lib/cloud/instance/user-data.txt"


def booted_settings_digest(client: Client, node: str, vmid: int) -> str | None:
    """sha256 of the user-data the guest booted with, K3s versions left out (the upgrade Plans
    change those in place); None when the guest cannot tell (cloud-init stored none)."""
    try:
        text = read_file(client, node, vmid, BOOTED_USER_DATA)
    except AgentError as exc:
        if exc.kind == AgentFailure.NO_FILE:
            return None
        raise
    return settings_digest(text)


def settings_digest(user_data: str) -> str:
    return hashlib.sha256(without_versions(user_data).encode()).hexdigest()
