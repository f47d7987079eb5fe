"""The fake K3s API with a cluster in it, and an ApiClient from generator.kube for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.kube.client import connect
from tests.fakes.kube import Cluster, FakeKube, World, running_kube


@dataclass
class Lab:
    kube: FakeKube
    world: World
    cluster: Cluster
    api: Any

    def kubeconfig(self) -> dict[str, Any]:
        return kubeconfig_for(self.kube, self.kube.url)

    def calls(self, method: str = "") -> list[str]:
        return [r for r in self.world.requests if r.startswith(method)]


def kubeconfig_for(kube: FakeKube, server: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(kube.k3s_yaml())
    config["clusters"][0]["cluster"]["server"] = server
    return config


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    cluster = Cluster()
    cluster.add_node("k3s-server-1", control_plane=True)
    cluster.add_node("k3s-agent-1")
    cluster.add_node("k3s-agent-2")
    world = World(cluster=cluster)
    with running_kube(tmp_path, world) as kube, connect(kubeconfig_for(kube, kube.url)) as api:
        yield Lab(kube, world, cluster, api)


class Clock:
    """A clock that sleep() moves, so timeouts take no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()
