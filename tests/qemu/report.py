"""Printing the QEMU tier's timings: they are measured, never asserted."""

from __future__ import annotations

import pytest


def show(request: pytest.FixtureRequest, *lines: str) -> None:
    """Lines on the terminal even under -q, prefixed `qemu:`."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    report = request.config.pluginmanager.getplugin("terminalreporter")
    if capture is None or report is None:
        return
    with capture.global_and_fixture_disabled():
        for line in lines:
            report.write_line(f"qemu: {line}")
