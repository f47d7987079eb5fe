"""Rendered seeds boot a real Debian 12 cloud VM under QEMU, and the VM shows it.

Schema checks miss what cloud-init really does at boot. Here the first server, a joining
server and an agent of a 3+1 cluster boot on Proxmox's default layout (machine `pc`, seed
CD on IDE), another joining server boots on q35 with the seed on virtio-scsi, and the first
server boots a second time. Everything is read back through the guest agent.
Skips, saying why, when qemu or mmdebstrap is missing (`.ci/run` installs both).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.qemu import image
from tests.qemu.cluster import qemu_cluster, target
from tests.qemu.prove import Plan, Timings, prove_all
from tests.qemu.report import show
from tests.qemu.vm import Machine

pytestmark = pytest.mark.qemu

# node: (machine, boot it a second time)
PLANS: dict[str, tuple[Machine, bool]] = {
    "server-1": ("pc", True),
    "server-2": ("pc", False),
    "agent-1": ("pc", False),
    "server-3": ("q35", False),
    # The first server again, with Calico instead of Flannel: the same checks, plus its handover.
    "calico-server-1": ("pc", False),
}


def test_the_image_carries_every_package_the_seeds_list() -> None:
    """The image stands in for the mirror, so it must hold what cloud-init will install."""
    from generator.render.seeds import packages

    listed = set(packages(qemu_cluster()))
    assert listed <= set(image.BASE_PACKAGES + image.SEED_PACKAGES), (
        f"add {sorted(listed - set(image.BASE_PACKAGES + image.SEED_PACKAGES))} to "
        "tests/qemu/image.py SEED_PACKAGES"
    )


@pytest.fixture(scope="module")
def vm_image() -> image.Image:
    missing = [tool for tool in ("qemu-system-x86_64", "qemu-img") if not shutil.which(tool)]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (apt-get install qemu-system-x86 qemu-utils)"
        )
    try:
        return image.cached_or_build()
    except image.ImageUnavailable as exc:
        pytest.skip(f"no cached VM image and cannot build one: {exc}")


@pytest.fixture(scope="module")
def outcomes(
    vm_image: image.Image, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[str, Timings | BaseException]:
    plans = {name: Plan(target(name), machine, reboot) for name, (machine, reboot) in PLANS.items()}
    folder: Path = tmp_path_factory.mktemp("qemu")
    show(request, f"booting {', '.join(plans)} under QEMU (TCG); serial logs in {folder}")
    started = time.monotonic()
    found = prove_all(vm_image, plans, folder)
    lines = [f"all boots took {time.monotonic() - started:.0f} s"]
    if vm_image.build_seconds is not None:
        lines.insert(0, f"built the image in {vm_image.build_seconds:.0f} s")
    lines += [f"{name} on {PLANS[name][0]}: {outcome}" for name, outcome in found.items()
              if isinstance(outcome, Timings)]  # fmt: skip
    show(request, *lines)
    return found


@pytest.mark.parametrize(
    "node",
    PLANS,
    ids=[
        f"{name}-{machine}{'-twice' if twice else ''}" for name, (machine, twice) in PLANS.items()
    ],
)
def test_the_rendered_seed_boots_clean(
    outcomes: dict[str, Timings | BaseException], node: str
) -> None:
    outcome = outcomes[node]
    if isinstance(outcome, BaseException):
        raise outcome
    assert outcome.cloud_init_done > 0
