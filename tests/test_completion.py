"""`homelab-gen completion SHELL` and the completion protocol behind it (argcomplete)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator.cli import main


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nospace -o default -o bashdefault -F"),
        ("zsh", "#compdef homelab-gen"),
        ("fish", "function __fish_homelab-gen_complete"),
    ],
)
def test_each_shell_gets_its_script(
    shell: str, marker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert marker in out and "homelab-gen" in out


def test_an_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["completion", "tcsh"])
    assert exited.value.code == 2
    assert "usage: homelab-gen completion" in capsys.readouterr().err


def _complete(line: str, tmp_path: Path) -> list[str]:
    """What the shell hook gets back for the command line typed so far."""
    out = tmp_path / "completions"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
    }
    run = subprocess.run(
        [sys.executable, "-m", "generator"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return sorted(w.strip() for w in out.read_text().splitlines() if w.strip())


def test_commands_and_flags_complete(tmp_path: Path) -> None:
    assert _complete("homelab-gen bo", tmp_path) == ["boot"]
    assert _complete("homelab-gen boot --rep", tmp_path) == ["--replace", "--replace-stale"]
    assert _complete("homelab-gen completion f", tmp_path) == ["fish"]


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [(["valdate"], "did you mean validate?"), (["completion", "fsh"], "did you mean fish?")],
)
def test_a_mistyped_command_or_choice_gets_a_suggestion(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert suggestion in capsys.readouterr().err
