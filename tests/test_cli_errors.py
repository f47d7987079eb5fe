"""Input and usage errors through the real CLI: each exits 2 with a message that names the
thing, what was expected and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.cli import main
from tests.conftest import FIXTURES

TOKEN = "HOMELAB_GEN_PVE_TOKEN"


def lab(tmp_path: Path, text: str | None = None) -> Path:
    directory = tmp_path / "lab"
    directory.mkdir(exist_ok=True)
    if text is None:
        text = (FIXTURES / "valid/three-servers.yaml").read_text()
    (directory / "cluster.yaml").write_text(text)
    return directory


def test_missing_cluster_yaml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-C", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'cluster.yaml'}: no cluster.yaml here" in err
    assert "homelab-gen new DIR" in err


def test_non_utf8_bytes_are_reported_by_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "lab"
    directory.mkdir()
    (directory / "cluster.yaml").write_bytes("cluster:\n  name: hömé".encode() + b"\xff\n")
    assert main(["validate", "-C", str(directory)]) == 2
    err = capsys.readouterr().err
    # "  name: hömé" is 12 characters (14 bytes): the bad byte is character 13 of line 2.
    assert "line 2, column 13: byte(s) ff are not UTF-8 text (save the file as UTF-8" in err
    assert "offset" not in err and "position" not in err


def test_missing_token_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TOKEN, raising=False)
    directory = lab(tmp_path)
    assert main(["render", "-C", str(directory)]) == 0
    capsys.readouterr()
    assert main(["plan", "-C", str(directory)]) == 2
    err = capsys.readouterr().err
    assert f"no Proxmox API token secret: {TOKEN} is unset" in err
    assert "homelab-gen secret set proxmox_token" in err


def test_missing_ca_file_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(TOKEN, "secret")
    text = (FIXTURES / "valid/three-servers.yaml").read_text()
    missing = tmp_path / "pve-root-ca.pem"
    text = text.replace("  verify_tls: true\n", f"  verify_tls: true\n  ca_file: {missing}\n")
    directory = lab(tmp_path, text)
    assert main(["render", "-C", str(directory)]) == 0
    capsys.readouterr()
    assert main(["plan", "-C", str(directory)]) == 2
    err = capsys.readouterr().err
    assert f"proxmox.ca_file: {missing} does not exist; expected the PEM file" in err
    assert "/etc/pve/pve-root-ca.pem" in err


def _syntax_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    directory = lab(tmp_path, text)
    assert main(["validate", "-C", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "while scanning" not in err and "while parsing" not in err
    return err.splitlines()[1:]


def test_an_unterminated_quote_is_reported_where_it_opens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    valid = (FIXTURES / "valid/three-servers.yaml").read_text()
    text = "# my lab\n" * 5 + valid.replace("  name: home\n", '  name: "home\n')
    assert text.splitlines()[6] == '  name: "home' and len(text.splitlines()) > 20
    assert _syntax_error(tmp_path, text, capsys) == [
        'line 7, column 9: this quoted value is never closed (add the closing " at the end'
        " of the line)"
    ]


def test_an_unclosed_quote_before_other_quotes_points_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "cluster:\n  name: 'home\n  domain: 'lab.example.com'\n  k3s_version: v1\n"
    assert _syntax_error(tmp_path, text, capsys) == [
        "line 2, column 9: this quoted value is never closed (add the closing ' at the end"
        " of the line)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a:\n\tb: 1\n", "line 2, column 1: a tab character: YAML indents with spaces only"),
        ("a:\n  b: 1\n c: 2\n", "line 3, column 2: this line does not line up"),
        ("a: b: c\n", "line 1, column 5: a second ': ' in one value (quote the whole value"),
        ("a: 1\na: 2\n", "line 2, column 1: the key a appears twice in one mapping (keep one)"),
        ("a: [1, 2\nb: 3\n", "line 1, column 4: this list is never closed (add the closing ]"),
        ("a: 1\n- b\n", "line 2, column 1: a list item where a key was expected"),
    ],
)
def test_syntax_errors_in_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    (problem,) = _syntax_error(tmp_path, text, capsys)
    assert problem.startswith(expected), problem


def test_commands_find_cluster_yaml_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = lab(tmp_path)
    deep = directory / "docs" / "notes"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert main(["validate"]) == 0
    assert "cluster.yaml is valid" in capsys.readouterr().out
    # An explicit -C is taken as given, with no walking up.
    assert main(["validate", "-C", "."]) == 2
    assert f"{Path('cluster.yaml')}: no cluster.yaml here" in capsys.readouterr().err


def test_no_cluster_yaml_anywhere_up_says_so_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 2
    assert "cluster.yaml: no cluster.yaml here" in capsys.readouterr().err


def test_directory_before_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = lab(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["-C", "lab", "validate"]) == 0
    assert "cluster.yaml is valid" in capsys.readouterr().out
    # The command's own -C wins over the one before it.
    assert main(["-C", "lab", "validate", "-C", str(tmp_path)]) == 2
    assert f"{tmp_path / 'cluster.yaml'}: no cluster.yaml here" in capsys.readouterr().err
    assert main(["-C", str(directory), "render", "--check"]) in (0, 1)
    assert "no cluster.yaml" not in capsys.readouterr().err


def test_new_takes_no_directory_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lab(tmp_path)
    monkeypatch.chdir(tmp_path / "lab")
    assert main(["-C", "lab", "new", str(tmp_path / "other"), "--no-input"]) == 2
    assert "-C lab: 'new' does not work in a cluster repo" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["boot", "--bogus"], "usage: homelab-gen boot [-h] [-C DIR]"),
        (["secret", "set", "--bogus", "x"], "usage: homelab-gen secret set [-h] [-C DIR] NAME"),
        (["--bogus", "status"], "usage: homelab-gen [-h]"),
    ],
)
def test_a_bad_flag_prints_the_subcommands_usage(
    capsys: pytest.CaptureFixture[str], argv: list[str], usage: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage), err
    assert err.rstrip().endswith("error: unrecognized arguments: --bogus")
