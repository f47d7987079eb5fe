"""`new`: scaffold, validate, make secrets, render, git init — all or nothing."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import config, fileio, gitrepo, secretstore, workspace, yamlio
from generator.errors import ConfigError
from generator.scaffold import ask, cookiecutter

# Every answer `new` used, so the repo can be made again: `new DIR --answers` this file.
ANSWERS_FILE = f"{fileio.STATE_DIR}/answers.yaml"
ANSWERS_HEADER = (
    "# The answers 'homelab-gen new' used (no secrets). To make the repo again:\n"
    "#   homelab-gen new DIR --answers THIS-FILE\n"
)


@dataclass(frozen=True)
class NewRepo:
    path: Path
    file_count: int
    committed: bool
    warnings: tuple[str, ...]
    deploy_key: str | None
    answers: dict[str, Any]


def gather(
    target: Path, answers_file: Path | None, interactive: bool, home: Path
) -> dict[str, Any]:
    """Every answer: from the file, else asked (checked as typed), else the defaults.

    TARGET is checked first, so nobody answers every question to be refused at the end."""
    cookiecutter.ensure_empty(target.resolve())
    preset = cookiecutter.read_answers(answers_file) if answers_file else {}
    preset.setdefault("ssh_public_key", cookiecutter.default_ssh_key(home))
    if answers_file is not None:
        problems = ask.preset_problems(cookiecutter.questions(), preset)
        if problems:
            raise ConfigError(problems, str(answers_file))
    if interactive:
        return ask.ask_all(
            cookiecutter.questions(), cookiecutter.prompts(), preset, cookiecutter.asked()
        )
    return ask.proposals(cookiecutter.questions(), preset)


def answers_text(answers: dict[str, Any]) -> str:
    return ANSWERS_HEADER + yamlio.dump_text(answers)


def save_for_retry(answers: dict[str, Any]) -> Path:
    """ANSWERS in a file outside the target, after a failed `new`, for `--answers`."""
    with tempfile.NamedTemporaryFile(
        "w", prefix="homelab-gen-answers-", suffix=".yaml", delete=False
    ) as handle:
        handle.write(answers_text(answers))
    return Path(handle.name)


def create(target: Path, answers: dict[str, Any], use_git: bool) -> NewRepo:
    target = target.resolve()
    cookiecutter.ensure_empty(target)
    made = cookiecutter.generate(target, answers)
    try:
        loaded = config.load(made)
        workspace.apply_render(made, workspace.plan_render(made, loaded.cluster))
        (made / fileio.STATE_DIR).mkdir(mode=0o700, exist_ok=True)  # it holds the age key
        (made / ANSWERS_FILE).write_text(answers_text(answers))
        warnings = list(loaded.warnings)
        committed = False
        if use_git and gitrepo.available():
            _git_init(made, str(answers["git_branch"]), str(answers["git_url"]))
            committed = True
        elif use_git:
            warnings.append("git: not installed (install git, then run 'git init' here)")
        cookiecutter.ensure_empty(target)
        cookiecutter.place(made, target)
    except BaseException:
        cookiecutter.discard(made)
        raise
    count = sum(1 for p in target.rglob("*") if p.is_file() and ".git" not in p.parts)
    public = target / secretstore.DEPLOY_KEY_FILE
    deploy_key = public.read_text().strip() if public.exists() else None
    return NewRepo(target, count, committed, tuple(warnings), deploy_key, answers)


def _git_init(directory: Path, branch: str, url: str) -> None:
    """The first commit on BRANCH, with `origin` at URL: what Flux will pull."""
    gitrepo.init_and_commit(directory, "homelab-gen: new cluster repo")
    # gitrepo runs git; it has no branch or remote helper yet, so its runner is used here.
    gitrepo._git(directory, "branch", "--move", "--force", branch)
    gitrepo._git(directory, "remote", "add", "origin", url)
