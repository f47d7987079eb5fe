"""The table of every call homelab-gen makes (tests/proxmox/pve_endpoints.py) against the real API
schemas of the supported releases, and the check that holds every test to that table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.pve import schema
from tests.proxmox.pve_endpoints import PATH_PARAMS, TABLE, unlisted

RELEASES = ("8.4", "9.1")


def _schema(upstream: Path, release: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The release's endpoints, as the fake PVE reads them (upstream/ must be present)."""
    table = schema.endpoints(int(release.split(".")[0]))
    assert table is not None, f"no API schema for PVE {release} under {upstream}"
    return table


def _declared(properties: dict[str, Any], name: str) -> bool:
    indexed = re.fullmatch(r"([a-z]+)(\d+)", name)
    return name in properties or bool(indexed and f"{indexed[1]}[n]" in properties)


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize(("method", "template"), sorted(TABLE))
def test_every_listed_call_exists_in_the_release(
    upstream: Path, release: str, method: str, template: str
) -> None:
    if int(release.split(".")[0]) < TABLE[(method, template)].since:
        pytest.skip(f"{method} {template} is new in PVE {TABLE[(method, template)].since}")
    info = _schema(upstream, release).get((method, template))
    assert info is not None, f"PVE {release} has no {method} {template}"
    properties = (info.get("parameters") or {}).get("properties") or {}
    for name in TABLE[(method, template)].params | (PATH_PARAMS & set(properties)):
        assert _declared(properties, name), f"PVE {release}: {method} {template} has no {name!r}"
    assert info.get("allowtoken", 1), f"{method} {template} refuses API tokens"


def test_every_row_names_its_upstream_handler() -> None:
    for key, endpoint in TABLE.items():
        assert re.search(r"\.pm, [\w-]+", endpoint.upstream), key
        assert endpoint.why, key


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (("GET", "/version", set()), None),
        (("POST", "/nodes/{node}/qemu/{vmid}/clone", {"node", "vmid", "newid", "full"}), None),
        (("POST", "/nodes/{node}/qemu/{vmid}/clone", {"newid", "pool"}), "sends ['pool']"),
        (("POST", "/nodes/{node}/qemu/{vmid}/migrate", {"target"}), "is not in"),
    ],
)
def test_a_call_outside_the_table_is_named(
    call: tuple[str, str, set[str]], problem: str | None
) -> None:
    found = unlisted(*call)
    assert found is None if problem is None else found is not None and problem in found
