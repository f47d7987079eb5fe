"""Property: any malformed cluster.yaml gives exit 2, messages, no traceback, no file written."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator import cli, config, yamlio
from generator.errors import ConfigError
from tests.conftest import fixture_text

BASE: dict[str, Any] = yamlio.to_plain(
    yamlio.load_text(fixture_text("valid/three-servers.yaml"), "base")
)
REQUIRED = [
    ("cluster",),
    ("cluster", "name"),
    ("cluster", "domain"),
    ("cluster", "k3s_version"),
    ("cluster", "git"),
    ("cluster", "git", "url"),
    ("network",),
    ("network", "cidr"),
    ("network", "gateway"),
    ("network", "dns"),
    ("network", "metallb_range"),
    ("proxmox",),
    ("proxmox", "host"),
    ("proxmox", "node"),
    ("proxmox", "token_id"),
    ("proxmox", "template_vmid"),
    ("proxmox", "storage"),
    ("proxmox", "seed_storage"),
    ("proxmox", "bridge"),
    ("nodes",),
    ("nodes", 0, "name"),
    ("nodes", 0, "role"),
    ("nodes", 0, "vmid"),
    ("nodes", 0, "ip"),
]
MAPPINGS = [(), ("cluster",), ("cluster", "git"), ("network",), ("proxmox",), ("nodes", 1)]
STRING_FIELDS = [
    p for p in REQUIRED if p[-1] in ("name", "domain", "cidr", "gateway", "host", "ip")
]
INT_FIELDS = [("proxmox", "template_vmid"), ("nodes", 0, "vmid"), ("nodes", 2, "memory")]

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def delete_required(path: tuple[Any, ...]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    del _parent(data, path)[path[-1]]
    return data


def add_unknown(path: tuple[Any, ...], key: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    target = data
    for part in path:
        target = target[part]
    target[f"x_{key}"] = value  # the prefix keeps it from ever naming a known key
    return data


def wrong_type(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    _parent(data, path)[path[-1]] = value
    return data


OPTIONAL = [
    ("vm",),
    ("components",),
    ("ssh_authorized_keys",),
    ("proxmox", "port"),
    ("cluster", "git", "branch"),
]


def emptied(path: tuple[Any, ...], required: tuple[Any, ...]) -> dict[str, Any]:
    """An optional key left empty (null) plus a required one deleted: still exactly invalid."""
    data = wrong_type(path, None)
    del _parent(data, required)[required[-1]]
    return data


malformed = st.one_of(
    st.builds(emptied, st.sampled_from(OPTIONAL), st.sampled_from(REQUIRED[1:2] + REQUIRED[7:9])),
    st.sampled_from(REQUIRED).map(delete_required),
    st.builds(add_unknown, st.sampled_from(MAPPINGS), st.text(min_size=1, max_size=8), junk),
    st.builds(
        wrong_type,
        st.sampled_from(STRING_FIELDS),
        st.lists(junk, max_size=2) | st.dictionaries(st.text(max_size=4), junk, max_size=2),
    ),
    st.builds(
        wrong_type, st.sampled_from(INT_FIELDS), st.text(max_size=8) | st.lists(junk, max_size=2)
    ),
    junk.filter(lambda value: not isinstance(value, dict)),
)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=malformed)
def test_malformed_config_exits_2_with_messages_and_writes_nothing(
    data: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cluster.yaml").write_text(yamlio.dump_text(data))
    before = snapshot(tmp_path)
    code = cli.main(["validate", "-C", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("error: ") and "problem(s)" in err
    problems = err.split("\n")[1:-1]
    assert problems and all(": " in line for line in problems)
    assert "Traceback" not in out + err
    assert snapshot(tmp_path) == before


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_refused_cleanly(text: str, tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(text)
    with pytest.raises(ConfigError):
        config.load(tmp_path)
