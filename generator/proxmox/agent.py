"""The QEMU guest agent through PVE's API: addresses, file-read and exec, so `status` and
`kubeconfig` never need SSH.

Agent calls go out once (Client.call, not Client.get): "agent not running" is a 500 that
the caller polls on its own schedule, not a transient error worth a backoff.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from generator.proxmox.client import Client
from generator.proxmox.failures import PveError, Unreachable

K3S_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
EXEC_PRIVILEGE = "VM.GuestAgent.Unrestricted"


class AgentFailure(StrEnum):
    """Why an agent call could not answer."""

    VM_DOWN = "vm-down"
    AGENT_DOWN = "agent-down"
    NO_FILE = "no-file"
    FORBIDDEN = "forbidden"
    PVE_DOWN = "pve-down"  # Proxmox itself stopped answering, after it had answered
    FAILED = "failed"  # anything else


class AgentError(PveError):
    """An agent call that could not answer, and why (its AgentFailure kind). A Proxmox that
    never answered is not an agent problem: its Unreachable error passes through unchanged."""

    def __init__(self, kind: AgentFailure, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.kind = kind


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc.__cause__, "status_code", None)
    return int(code) if code is not None else None


def _reason(exc: PveError) -> str:
    """PVE's own words, without the method/path prefix Client adds."""
    cause = exc.__cause__
    content = getattr(cause, "content", None)
    return str(content).strip() if content else str(exc)


def classify(exc: PveError) -> AgentError:
    if isinstance(exc, AgentError):
        return exc
    text = _reason(exc)
    lowered = text.lower()
    if _status_code(exc) == 403:
        return AgentError(AgentFailure.FORBIDDEN, text)
    if "guest agent is not running" in lowered or "no qemu guest agent configured" in lowered:
        return AgentError(AgentFailure.AGENT_DOWN, text)
    if re.search(r"vm \d+ (is )?not running", lowered):
        return AgentError(AgentFailure.VM_DOWN, text)
    if "no such file" in lowered:
        return AgentError(AgentFailure.NO_FILE, text)
    if isinstance(exc, Unreachable):
        return AgentError(
            AgentFailure.PVE_DOWN, f"Proxmox is not answering: {exc.message}", exc.hint
        )
    return AgentError(AgentFailure.FAILED, text)


def _agent(client: Client, method: str, node: str, vmid: int, endpoint: str, **params: Any) -> Any:
    try:
        return client.call(method, f"nodes/{node}/qemu/{vmid}/agent/{endpoint}", **params)
    except Unreachable as exc:
        if not exc.transient:
            raise  # never answered: waiting for the guest cannot help
        raise classify(exc) from exc
    except PveError as exc:
        raise classify(exc) from exc


# -- addresses -------------------------------------------------------------------------------
def parse_interfaces(answer: Any) -> tuple[str, ...]:
    """IPv4 addresses the guest reports, loopback left out, in the guest's order."""
    interfaces = answer.get("result", answer) if isinstance(answer, dict) else answer
    found: list[str] = []
    for interface in interfaces or []:
        for address in interface.get("ip-addresses") or []:
            ip = str(address.get("ip-address", ""))
            if address.get("ip-address-type") == "ipv4" and ip and not ip.startswith("127."):
                found.append(ip)
    return tuple(dict.fromkeys(found))


def addresses(client: Client, node: str, vmid: int) -> tuple[str, ...]:
    return parse_interfaces(_agent(client, "GET", node, vmid, "network-get-interfaces"))


# -- files -----------------------------------------------------------------------------------
def read_file(client: Client, node: str, vmid: int, path: str) -> str:
    answer = _agent(client, "GET", node, vmid, "file-read", file=path)
    if answer.get("truncated") in (1, True, "1"):
        raise AgentError(AgentFailure.FAILED, f"{path} is larger than the agent can read in one go")
    return str(answer.get("content", ""))


def wait_for_file(
    client: Client,
    node: str,
    vmid: int,
    path: str,
    *,
    timeout: float,
    interval: float = 5.0,
    on_wait: Callable[[str], None] = lambda _: None,
) -> str:
    """Read `path`, retrying while the VM, its agent or the file itself is not there yet, or
    while Proxmox restarts. Every call, too, gives up by the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with client.until(deadline):
                return read_file(client, node, vmid, path)
        except AgentError as exc:
            if (
                exc.kind in (AgentFailure.FORBIDDEN, AgentFailure.FAILED)
                or time.monotonic() >= deadline
            ):
                raise
            on_wait(exc.message)
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


# -- exec ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exec:
    exitcode: int | None
    out: str
    err: str


def run(
    client: Client,
    node: str,
    vmid: int,
    command: Sequence[str],
    *,
    timeout: float = 30.0,
    poll: float = 0.2,
) -> Exec:
    """Run a command in the guest and wait for it to exit."""
    started = _agent(client, "POST", node, vmid, "exec", command=list(command))
    pid = int(started["pid"])
    deadline = time.monotonic() + timeout
    while True:
        state = _agent(client, "GET", node, vmid, "exec-status", pid=pid)
        if state.get("exited") in (1, True, "1"):
            code = state.get("exitcode")
            return Exec(
                None if code is None else int(code),
                str(state.get("out-data", "")),
                str(state.get("err-data", "")),
            )
        if time.monotonic() >= deadline:
            raise AgentError(
                AgentFailure.FAILED, f"{' '.join(command)} still running after {timeout:.0f} s"
            )
        time.sleep(poll)


def forbidden_note() -> str:
    """Said for every node once exec is refused: the token is the same for all of them."""
    return (
        f"token lacks {EXEC_PRIVILEGE} (PVE 9 needs it for agent exec; grant it to read"
        " cloud-init's state, K3s readiness does not need it)"
    )
