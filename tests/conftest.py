"""Shared test plumbing: fixtures, the golden-file option, and access to ../shared/upstream."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = REPO.parent / "shared"
UPSTREAM = SHARED / "upstream"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden trees under tests/golden/ from the current render",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def upstream() -> Path:
    """../shared/upstream, or a skip that says why."""
    if not UPSTREAM.is_dir():
        pytest.skip(f"upstream schemas not found at {UPSTREAM} (../shared is absent)")
    return UPSTREAM


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connection to a non-loopback address fails loudly instead of leaving the machine."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        inet = self.family in (socket.AF_INET, socket.AF_INET6)
        if (
            inet
            and isinstance(host, str)
            and not host.startswith("127.")
            and host not in ("::1", "localhost")
        ):
            raise AssertionError(f"test tried to reach {address}; only loopback is allowed")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


@pytest.fixture(autouse=True)
def _pve_calls_are_listed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every call homelab-gen sends to a fake PVE must be in tests/proxmox/pve_endpoints.py, and
    no fake PVE may crash while serving a test."""
    from tests.fakes.pve.server import FakePVE
    from tests.proxmox.pve_endpoints import unlisted

    FakePVE.started.clear()
    yield
    probe = request.node.get_closest_marker("pve_probe")
    problems = (
        set()
        if probe
        else {
            problem
            for fake in FakePVE.started
            for call in list(fake.state.calls)
            if call.user_agent.startswith("homelab-gen/") and call.template
            for problem in [unlisted(call.method, call.template, set(call.params))]
            if problem
        }
    )
    crashes = [crash for fake in FakePVE.started for crash in fake.crashes]
    FakePVE.started.clear()
    assert not crashes, "the fake PVE crashed:\n" + "\n".join(crashes)
    assert not problems, "\n".join(sorted(problems))
