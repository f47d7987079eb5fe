"""Diff-then-apply writing: create/update/identical/orphan, modes, atomicity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generator import fileio, workspace
from generator.render.output import RenderedFile
from generator.workspace import Change


def changes(root: Path, rendered: dict[str, RenderedFile]) -> dict[str, Change]:
    return {d.path: d.change for d in workspace.diff(root, rendered)}


def test_first_render_creates_then_second_is_identical(tmp_path: Path) -> None:
    rendered = {
        "a/x.yaml": RenderedFile("x: 1\n"),
        "b/secret": RenderedFile("token\n", secret=True),
    }
    assert changes(tmp_path, rendered) == {"a/x.yaml": Change.CREATE, "b/secret": Change.CREATE}
    workspace.apply(tmp_path, rendered, workspace.diff(tmp_path, rendered))
    assert (tmp_path / "a/x.yaml").read_text() == "x: 1\n"
    assert (tmp_path / "b/secret").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "a/x.yaml").stat().st_mode & 0o777 == 0o644
    assert set(changes(tmp_path, rendered).values()) == {Change.IDENTICAL}


def test_changed_content_or_mode_is_an_update(tmp_path: Path) -> None:
    rendered = {"x": RenderedFile("1\n"), "s": RenderedFile("t\n", secret=True)}
    workspace.apply(tmp_path, rendered, workspace.diff(tmp_path, rendered))
    (tmp_path / "x").write_text("edited\n")
    (tmp_path / "s").chmod(0o644)
    assert changes(tmp_path, rendered) == {"s": Change.UPDATE, "x": Change.EDITED}
    workspace.apply(tmp_path, rendered, workspace.diff(tmp_path, rendered), force=True)
    (tmp_path / "s").chmod(0o644)
    newer = {**rendered, "x": RenderedFile("2\n")}
    assert changes(tmp_path, newer) == {"s": Change.UPDATE, "x": Change.UPDATE}
    rendered = newer
    workspace.apply(tmp_path, rendered, workspace.diff(tmp_path, rendered))
    assert (tmp_path / "x").read_text() == "2\n"
    assert (tmp_path / "s").stat().st_mode & 0o777 == 0o600


def test_orphans_we_made_are_removed_but_user_files_never(tmp_path: Path) -> None:
    first = {
        "keep": RenderedFile("k\n"),
        "gone": RenderedFile("g\n"),
        "edited": RenderedFile("e\n"),
    }
    workspace.apply(tmp_path, first, workspace.diff(tmp_path, first))
    (tmp_path / "users-own.txt").write_text("mine\n")
    (tmp_path / "edited").write_text("the user changed this\n")
    second = {"keep": RenderedFile("k\n")}
    assert changes(tmp_path, second) == {
        "keep": Change.IDENTICAL,
        "edited": Change.EDITED_ORPHAN,
        "gone": Change.ORPHAN,
    }
    workspace.apply(tmp_path, second, workspace.diff(tmp_path, second))
    assert not (tmp_path / "gone").exists()
    assert (tmp_path / "edited").read_text() == "the user changed this\n"
    assert (tmp_path / "users-own.txt").read_text() == "mine\n"
    assert changes(tmp_path, second)["edited"] is Change.EDITED_ORPHAN  # reported again
    workspace.apply(tmp_path, second, workspace.diff(tmp_path, second), force=True)
    assert not (tmp_path / "edited").exists()
    assert changes(tmp_path, second) == {"keep": Change.IDENTICAL}


def test_a_hand_edited_file_is_kept_unless_forced(tmp_path: Path) -> None:
    first = {"a/x": RenderedFile("1\n")}
    workspace.apply(tmp_path, first, workspace.diff(tmp_path, first))
    (tmp_path / "a/x").write_text("mine\n")
    second = {"a/x": RenderedFile("2\n")}
    assert changes(tmp_path, second) == {"a/x": Change.EDITED}
    workspace.apply(tmp_path, second, workspace.diff(tmp_path, second))
    assert (tmp_path / "a/x").read_text() == "mine\n"
    assert changes(tmp_path, second) == {"a/x": Change.EDITED}
    workspace.apply(tmp_path, second, workspace.diff(tmp_path, second), force=True)
    assert (tmp_path / "a/x").read_text() == "2\n"
    assert changes(tmp_path, second) == {"a/x": Change.IDENTICAL}


def test_write_atomic_leaves_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    target.write_text("old\n")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        fileio.write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
