"""An HTTPS fake of the Proxmox VE API on 127.0.0.1, for homelab-gen's tests.

Use it:

    with running_fake(tmp_path) as fake:          # fake.state is a PveState (plain data)
        fake.state.faults.append(Fault("clone", "reset"))
        ... connect to https://127.0.0.1:{fake.port} with token TOKEN_ID=fake.state.token_secret,
            verifying TLS with ca_file=fake.tls.ca_file ...
        assert not fake.state.mutating_calls()

How to extend it (guest agent, download-url, template creation, ...):
- Add a handler `def name(pve: FakePVE, req: Request) -> Any` in routes.py (or in your own
  module) and a row `(METHOD, "/pve/path/{param}", handler)` to ROUTES; or pass your own
  route list: `FakePVE(state, tls, routes=ROUTES + MY_ROUTES)`. Path templates are PVE's own
  (as in the API schema), so parameter checking against the schema works unchanged.
- Keep new state as plain data on PveState / Vm (e.g. a dict of scripted agent answers
  keyed by vmid); change it only under `pve.lock`.
- Slow operations return `pve.run_task(req, node, kind, id, body)`; `body` sleeps for its
  latency (add a field to Latency) and raises TaskFailed(text) to fail the task.
- Errors: raise ApiError(status, message[, errors]); the message becomes the HTTP reason,
  as PVE does. A new mutating step can join fault injection via server.STEPS.
- Parameters are checked against ../shared/upstream/proxmox/pve-api-schema-9.1.json when
  present; for the fallback, add the endpoint to schema.FALLBACK.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

from tests.fakes.pve.server import ApiError, FakePVE, Request, TaskFailed
from tests.fakes.pve.state import (
    FOREIGN_VMID,
    TEMPLATE_VMID,
    TOKEN_ID,
    Fault,
    Latency,
    PveState,
    Vm,
    default_state,
)
from tests.fakes.tls import TLSFiles, make_tls

__all__ = [
    "FOREIGN_VMID",
    "TEMPLATE_VMID",
    "TOKEN_ID",
    "ApiError",
    "FakePVE",
    "Fault",
    "Latency",
    "PveState",
    "Request",
    "TLSFiles",
    "TaskFailed",
    "Vm",
    "default_state",
    "make_tls",
    "running_fake",
]


@contextlib.contextmanager
def running_fake(directory: Path, state: PveState | None = None) -> Iterator[FakePVE]:
    """A started fake with a fresh CA under `directory`, and the default world unless given."""
    tls = make_tls(directory / "fakepve-tls")
    fake = FakePVE(state or default_state(secrets.token_hex(16)), tls)
    with fake:
        yield fake
