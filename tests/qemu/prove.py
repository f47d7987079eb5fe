"""One node's proof: boot its rendered seed, check everything, optionally boot it again.

`prove_all` boots several nodes at once: most of a first boot under restrict=on is idle
(apt's update waits on DNS that never answers), so parallel boots overlap that wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.qemu import checks
from tests.qemu.checks import Guest, Seed
from tests.qemu.cluster import Target
from tests.qemu.image import Image
from tests.qemu.vm import BOOT_TIMEOUT, Disk, Machine, booted, write_seed_iso

Say = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    target: Target
    machine: Machine
    reboot: bool = False


@dataclass(frozen=True)
class Timings:
    """Seconds from starting qemu until the agent answered and cloud-init finished."""

    agent_up: float
    cloud_init_done: float
    second_boot_done: float | None = None

    def __str__(self) -> str:
        text = f"agent up {self.agent_up:.0f} s, cloud-init done {self.cloud_init_done:.0f} s"
        if self.second_boot_done is not None:
            text += f", second boot done {self.second_boot_done:.0f} s"
        return text


def prove(
    image: Image, plan: Plan, folder: Path, cpus: int = 1, say: Say = lambda _: None
) -> Timings:
    target, machine = plan.target, plan.machine
    seed = Seed.of(target)
    folder.mkdir(parents=True, exist_ok=True)
    disk = Disk.over(image, folder)
    iso = write_seed_iso(target.seed, folder)
    log = folder / "serial-boot1.log"
    say(f"{target.node.name} on {machine}: first boot, serial log {log}")
    with booted(image, disk, iso, target.mac, machine, log, cpus) as running:
        agent_up = time.monotonic() - running.started
        guest = Guest(running.agent)
        status = checks.wait_for_cloud_init(guest, running.started + BOOT_TIMEOUT)
        done = time.monotonic() - running.started
        say(f"{target.node.name}: agent up after {agent_up:.0f} s, cloud-init done {done:.0f} s")
        check_first_boot(guest, target, seed, status)
        if not plan.reboot:
            return Timings(agent_up, done)
        before = checks.first_boot_state(guest)
        finished = guest.read("/var/lib/cloud/instance/boot-finished")
        running.power_off()
    log = folder / "serial-boot2.log"
    say(f"{target.node.name} on {machine}: second boot, serial log {log}")
    with booted(image, disk, iso, target.mac, machine, log, cpus) as running:
        guest = Guest(running.agent)
        status = checks.wait_for_cloud_init(guest, running.started + BOOT_TIMEOUT)
        again = time.monotonic() - running.started
        say(f"{target.node.name}: second boot, cloud-init done after {again:.0f} s")
        checks.assert_cloud_init_clean(guest, status)
        # cloud-init rewrites it at every boot (cmd/main.py main_init -> Init.update) from
        # the seed it reads then: the same seed CD, so the same bytes.
        checks.assert_booted_user_data(guest, target)
        checks.assert_second_boot(guest, seed, before, finished)
    return Timings(agent_up, done, again)


def prove_all(
    image: Image, plans: Mapping[str, Plan], folder: Path, say: Say = lambda _: None
) -> dict[str, Timings | BaseException]:
    """Every plan at once, each in its own VM; a failure is returned, not raised."""

    def one(name: str) -> Timings | BaseException:
        try:
            return prove(image, plans[name], folder / name, say=say)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        return dict(zip(plans, pool.map(one, plans), strict=True))


def check_first_boot(guest: Guest, target: Target, seed: Seed, status: str) -> None:
    checks.assert_cloud_init_clean(guest, status)
    checks.assert_booted_user_data(guest, target)
    checks.assert_identity(guest, seed)
    checks.assert_network(guest, seed, target.mac)
    checks.assert_login_user(guest, seed)
    checks.assert_k3s_config(guest, seed)
    checks.assert_manifests(guest, seed, first_server=target.node == target.cluster.first_server)
    checks.assert_agent_running(guest)
    checks.assert_k3s_install_armed(
        guest,
        seed,
        version=target.cluster.cluster.k3s_version,
        role=target.node.role,
        deadline=time.monotonic() + 120,
    )
    checks.assert_bootstrap_armed(
        guest,
        seed,
        first_server=target.node == target.cluster.first_server,
        deadline=time.monotonic() + 120,
    )
    checks.assert_calico_handover_armed(guest, seed, deadline=time.monotonic() + 120)
