"""`new`: scaffold, validate, make secrets, render, git init — all or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator import config, gitrepo, secretstore, workspace
from generator.scaffold import ask, cookiecutter


@dataclass(frozen=True)
class NewRepo:
    file_count: int
    committed: bool
    warnings: tuple[str, ...]
    deploy_key: str | None


def create(
    target: Path, answers_file: Path | None, no_input: bool, use_git: bool, home: Path
) -> NewRepo:
    target = target.resolve()
    cookiecutter.ensure_empty(target)
    answers = cookiecutter.read_answers(answers_file) if answers_file else {}
    answers.setdefault("ssh_public_key", cookiecutter.default_ssh_key(home))
    if not no_input:
        answers = ask.ask_all(cookiecutter.questions(), cookiecutter.prompts(), answers)
    made = cookiecutter.generate(target, answers)
    try:
        loaded = config.load(made)
        workspace.apply_render(made, workspace.plan_render(made, loaded.cluster))
        warnings = list(loaded.warnings)
        committed = False
        if use_git and gitrepo.available():
            gitrepo.init_and_commit(made, "homelab-gen: new cluster repo")
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
    return NewRepo(count, committed, tuple(warnings), deploy_key)
