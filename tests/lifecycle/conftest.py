"""The lab every lifecycle scenario starts from: three servers and two agents booted on the
fakes, a two-replica app under a PodDisruptionBudget, a DaemonSet pod, fast polling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.lifecycle import run
from tests.lifecycle.labs import Lab, booted_lab


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setattr(run, "POLL_INTERVAL", 0.01)
    with booted_lab(tmp_path, 3, 2, monkeypatch.setenv) as made:
        made.k8s.add_replicaset("web", 2, nodes=["k3s-agent-1", "k3s-agent-2"])
        made.k8s.add_pdb("web", selector={"app": "web"}, min_available=1)
        made.k8s.add_pod("svclb-1", "k3s-agent-1", owner=("DaemonSet", "svclb"))
        yield made
