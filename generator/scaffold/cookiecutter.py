"""`new`: run the cookiecutter scaffold into an empty folder. The only cookiecutter user."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from generator import resources, yamlio
from generator.errors import ConfigError, HomelabError, UsageError

TEMPLATE = "cluster"


def default_ssh_key(home: Path) -> str:
    key = home / ".ssh" / "id_ed25519.pub"
    try:
        return key.read_text().strip()
    except OSError:
        return ""


def read_answers(path: Path) -> dict[str, Any]:
    """An answers file is a YAML mapping of question names to values."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read answers: {exc.strerror}", "check the path") from None
    data = yamlio.to_plain(yamlio.load_text(text, str(path)))
    if not isinstance(data, dict):
        raise ConfigError(["(top level): expected a mapping of question: answer"], str(path))
    known = questions()
    unknown = [k for k in data if k not in known]
    if unknown:
        import difflib

        problems = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
            problems.append(f"{key}: unknown question ({hint})")
        raise ConfigError(problems, str(path))
    return {k: _as_answer(v) for k, v in data.items()}


def _as_answer(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return value
    return str(value)


def _spec() -> dict[str, Any]:
    import json

    path = resources.data_dir("templates") / TEMPLATE / "cookiecutter.json"
    spec: dict[str, Any] = json.loads(path.read_text())
    return spec


def questions() -> dict[str, Any]:
    """Question name → its default (a Jinja expression, a list of choices, or a bool)."""
    return {k: v for k, v in _spec().items() if not k.startswith("_")}


def asked() -> tuple[str, ...]:
    """The questions `new` asks; the others take their default (and are asked only when
    that default does not fit the answers given)."""
    names: list[str] = _spec().get("_asked", [])
    return tuple(names)


def prompts() -> dict[str, str]:
    """Question name → the text a user is asked."""
    texts: dict[str, str] = _spec().get("__prompts__", {})
    return texts


def ensure_empty(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise UsageError(
            f"{target} exists and is a file, not a folder",
            "choose a new or empty folder for the cluster repo",
        )
    if target.exists() and any(target.iterdir()):
        raise UsageError(
            f"{target} exists and is not empty",
            "choose a new or empty folder; homelab-gen never overwrites files it did not make",
        )


def _work_dir(target: Path) -> Path:
    """A temp folder outside TARGET (so `new .` works): beside it when its parent is
    writable, so the final move is a rename; else in the system temp folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError:
        return Path(tempfile.mkdtemp(prefix="homelab-gen-new-"))


def generate(target: Path, answers: dict[str, Any]) -> Path:
    """Run cookiecutter into a temp folder outside TARGET and return what it made.

    ANSWERS were asked already (scaffold/ask.py) or come from a file; what they leave out
    takes the template's default. The caller validates and finishes the tree there, then
    calls `place`: a failed `new` leaves nothing behind.
    """
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.main import cookiecutter

    work = _work_dir(target)
    try:
        made = cookiecutter(
            str(resources.data_dir("templates") / TEMPLATE),
            no_input=True,
            extra_context=answers,
            output_dir=str(work),
            accept_hooks=False,
            # Keep cookiecutter's replay and cache files out of the user's home.
            default_config={
                "replay_dir": str(work / ".replay"),
                "cookiecutters_dir": str(work / ".cache"),
            },
        )
    except CookiecutterException as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise HomelabError(f"the scaffold failed: {exc}", "check the answers given") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Path(made)


def discard(made: Path) -> None:
    shutil.rmtree(made.parent, ignore_errors=True)


def place(made: Path, target: Path) -> None:
    """Move the finished tree into TARGET (new, or an empty folder, maybe the current one).

    A rename when the temp folder is on TARGET's file system, else a copy; if a move fails
    half-way, what was moved is taken out again, so TARGET is left as it was."""
    if not target.exists():
        target.mkdir()
    moved: list[Path] = []
    try:
        for entry in sorted(made.iterdir()):
            moved.append(Path(shutil.move(str(entry), str(target / entry.name))))
    except BaseException:
        for path in moved:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        raise
    finally:
        discard(made)
