"""The process environment: read in generator/environment.py only, and the token's sources
in one order."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from generator import environment, secretstore
from generator.environment import Environment
from generator.errors import HomelabError
from generator.proxmox.failures import Timeouts
from generator.status import kubeconfig

PACKAGE = Path(__file__).resolve().parent.parent / "generator"
ONLY_READER = PACKAGE / "environment.py"


def environment_reads(path: Path) -> list[int]:
    """Lines that touch os.environ, os.getenv or os.putenv (or import them from os)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "putenv"}:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for a in node.names if a.name in {"environ", "getenv", "putenv"}]
    return lines


def test_only_environment_py_reads_the_environment() -> None:
    readers = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != ONLY_READER
        for line in environment_reads(path)
    ]
    assert not readers, "read the environment in generator/environment.py:\n" + "\n".join(readers)
    assert environment_reads(ONLY_READER)  # the check itself sees a read


# (variable, file, expected): None for the file means the store has no proxmox_token.
TOKEN_TABLE = [
    ("from-env", "from-file", "from-env"),  # the variable wins
    ("from-env", None, "from-env"),
    (None, "from-file", "from-file"),
    ("", "from-file", "from-file"),  # an empty variable counts as unset
    (None, None, None),  # neither: an error naming both
    ("", "", None),
]


@pytest.mark.parametrize(("variable", "stored", "expected"), TOKEN_TABLE)
def test_proxmox_token_precedence(
    variable: str | None, stored: str | None, expected: str | None
) -> None:
    environ = {} if variable is None else {environment.TOKEN_ENV: variable}
    looked: list[bool] = []

    def store() -> str | None:
        looked.append(True)
        return stored

    env = Environment.read(environ)
    if expected is None:
        with pytest.raises(HomelabError, match="no Proxmox API token secret") as caught:
            environment.proxmox_token(env, store)
        assert caught.value.hint is not None
        assert environment.TOKEN_ENV in caught.value.hint
        assert "secret set proxmox_token" in caught.value.hint
    else:
        assert environment.proxmox_token(env, store) == expected
    # The store is read only when the variable does not decide: a broken store is no matter.
    assert looked == ([] if variable else [True])


def test_the_token_from_the_store(tmp_path: Path) -> None:
    store = secretstore.create(tmp_path)
    secretstore.save(tmp_path, dataclasses.replace(store, proxmox_token="from-file"))
    stored = lambda: secretstore.load(tmp_path).proxmox_token  # noqa: E731
    assert environment.proxmox_token(Environment(), stored) == "from-file"
    assert environment.proxmox_token(Environment(pve_token="from-env"), stored) == "from-env"


def test_read_takes_every_variable() -> None:
    env = Environment.read(
        {
            "HOMELAB_GEN_PVE_TOKEN": "t",
            "HOMELAB_GEN_PVE_CONNECT_TIMEOUT": "3",
            "HOMELAB_GEN_PVE_READ_TIMEOUT": "90",
            "HOMELAB_GEN_SSH_KEY": "~/.ssh/pve",
            "HOMELAB_GEN_KNOWN_HOSTS": "/tmp/known",
            "KUBECONFIG": "/a:/b",
            "HOME": "/ignored",
        }
    )
    assert env == Environment("t", "3", "90", "~/.ssh/pve", "/tmp/known", "/a:/b")
    assert Environment.read({}) == Environment()
    assert Timeouts.from_environment(env) == Timeouts(3.0, 90.0)
    assert Timeouts.from_environment(Environment()) == Timeouts()
    assert kubeconfig.merge_target(env) == Path("/a")


@pytest.mark.parametrize("text", ["soon", "0", "-1"])
def test_a_bad_timeout_names_its_variable(text: str) -> None:
    with pytest.raises(HomelabError, match=f"HOMELAB_GEN_PVE_READ_TIMEOUT={text} is not"):
        Timeouts.from_environment(Environment(pve_read_timeout=text))
