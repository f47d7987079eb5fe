"""The CLI layer: help, version, exit codes, and the one error boundary."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator import __version__, cli
from generator.errors import HomelabError
from tests.conftest import FIXTURES, REPO


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cluster_dir(tmp_path: Path, fixture: str) -> Path:
    (tmp_path / "cluster.yaml").write_text((FIXTURES / fixture).read_text())
    return tmp_path


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("new", "validate", "render"):
        assert f"    {command}" in result.stdout


def test_no_command_shows_every_command_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: homelab-gen")
    lines = result.stderr.splitlines()
    listed = [line.split()[0] for line in lines if line.startswith("    ") and line[4] != " "]
    assert listed == list(cli.COMMANDS)


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"homelab-gen {__version__}"


def test_help_does_not_import_heavy_libraries() -> None:
    probe = (
        "import sys\n"
        "from generator import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('kubernetes', 'proxmoxer', 'cookiecutter', 'jinja2', 'rich',"
        " 'pykwalify', 'ruamel.yaml') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert "HEAVY []" in result.stdout


def test_validate_accepts_a_valid_config(tmp_path: Path) -> None:
    result = run_cli("validate", "-C", str(cluster_dir(tmp_path, "valid/three-servers.yaml")))
    assert result.returncode == 0, result.stderr
    assert "cluster.yaml is valid: 3 server(s), 2 agent(s)" in result.stdout


def test_validate_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    directory = cluster_dir(tmp_path, "invalid/acme-without-email.yaml")
    result = run_cli("validate", "-C", str(directory))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {directory / 'cluster.yaml'}: 2 problem(s)"
    assert lines[1].startswith("components.cert_manager.acme_email: is required")
    assert lines[2].startswith("components.cert_manager.dns_provider: is required")
    assert "Traceback" not in result.stderr


def test_validate_without_cluster_yaml_explains(tmp_path: Path) -> None:
    result = run_cli("validate", "-C", str(tmp_path))
    assert result.returncode == 2
    assert "no cluster.yaml here" in result.stderr
    assert "homelab-gen new" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def _parser_with(run: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.set_defaults(run=run)
    return parser


def test_homelab_error_becomes_message_and_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise HomelabError("the thing is broken", "fix the thing")

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with(fail))
    assert cli.main([]) == 1
    assert capsys.readouterr().err == "error: the thing is broken (fix the thing)\n"


def test_unexpected_error_prints_a_log_path_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(args: argparse.Namespace) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with(crash))
    assert cli.main([]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    log = Path(err.split("details are in ")[1].split(" ")[0])
    assert "RuntimeError: boom" in log.read_text()
    log.unlink()


def test_ctrl_c_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with(interrupted))
    assert cli.main([]) == 130
    assert capsys.readouterr().err == "interrupted\n"
