"""A node's first boot on a template prepared by `template --prepare` makes no network fetch,
proven under QEMU; the same node on the plain image is booted in the same run, and both
timings are shown. How the prepared image is made, and what in it is a stand-in:
tests/qemu/prepared.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.qemu import image, prepared
from tests.qemu.cluster import target
from tests.qemu.report import show

pytestmark = pytest.mark.qemu


def test_a_prepared_template_boots_with_no_fetch(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    missing = [t for t in ("qemu-system-x86_64", "qemu-img", "debugfs") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    if os.geteuid() != 0:
        pytest.skip("the image copy is edited as root (debugfs on its ext4 file system)")
    try:
        image.cached_or_build()
    except image.ImageUnavailable as exc:
        pytest.skip(f"no cached VM image and cannot build one: {exc}")
    plain, ready, layout = prepared.run(tmp_path)
    show(request, f"{prepared.NODE} plain: {plain}", f"{prepared.NODE} prepared: {ready}")
    prepared.prove_prepared(
        layout, target(prepared.NODE), ready, prepared.binary_digest(layout, tmp_path)
    )
    # The same seed on the plain image does reach for the network (and finds none).
    assert plain.k3s_installed is None
    assert "raw.githubusercontent.com" in plain.traffic.dns
    # The preparation seed itself, on an image that holds the layout already (it cannot
    # download here): nothing fetched again, cloud-init cleaned, powered off on its own.
    done = prepared.preparation_boot(layout, tmp_path / "preparation")
    show(request, f"preparation seed: powered itself off after {done.powered_off} s")
    assert done.powered_off is not None, "the preparation did not power the VM off"
    assert done.machine_id == b"" and done.cloud_state == []
