"""`new`: ask the questions of templates/cluster/cookiecutter.json one at a time, check each
answer as it is typed (scaffold/checks.py) and ask again until it is right.

Defaults are the template's own Jinja expressions, rendered with the answers so far, so a
corrected network proposes its own gateway, node IPs and MetalLB range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import Environment, StrictUndefined

from generator.errors import UsageError
from generator.scaffold.checks import CHECKS
from generator.scaffold.filters import NetworkExtension

YES, NO = ("y", "yes", "true"), ("n", "no", "false")


def ask_all(
    questions: dict[str, Any],
    prompts: dict[str, str],
    preset: dict[str, Any],
    read: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every answer, asked in order; a PRESET value is the proposed default."""
    env = _environment()
    answers: dict[str, Any] = {}
    try:
        for name, spec in questions.items():
            default = preset.get(name, spec)
            text = prompts.get(name, name)
            answers[name] = _ask_one(name, text, default, spec, answers, env, read, say)
    except EOFError:
        say("")
        raise UsageError(
            "stdin closed (Ctrl-D) before the last question: nothing was written;"
            " use --no-input or --answers FILE"
        ) from None
    return answers


def proposals(questions: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
    """Every answer without asking: PRESET's, else the default proposed from the others."""
    env = _environment()
    answers: dict[str, Any] = {}
    for name, spec in questions.items():
        if name in preset:
            answers[name] = preset[name]
        elif isinstance(spec, list):
            answers[name] = str(spec[0])
        elif isinstance(spec, bool):
            answers[name] = spec
        else:
            answers[name] = env.from_string(str(spec)).render(cookiecutter=answers)
    return answers


def _environment() -> Environment:
    return Environment(undefined=StrictUndefined, extensions=[NetworkExtension])


def _ask_one(
    name: str,
    text: str,
    default: Any,
    spec: Any,
    answers: dict[str, Any],
    env: Environment,
    read: Callable[[str], str],
    say: Callable[[str], None],
) -> Any:
    if isinstance(spec, bool):
        return _ask_yes_no(text, bool(default), read, say)
    if isinstance(spec, list):
        return _ask_choice(text, [str(c) for c in spec], default, read, say)
    proposal = env.from_string(str(default)).render(cookiecutter=answers)
    check = CHECKS.get(name)
    while True:
        shown = f" [{proposal}]" if proposal else ""
        typed = read(f"{text}{shown}: ").strip() or proposal
        problem = check(typed, answers) if check else None
        if problem is None:
            return typed
        say(f"  {problem}")


def _ask_yes_no(
    text: str, default: bool, read: Callable[[str], str], say: Callable[[str], None]
) -> bool:
    while True:
        typed = read(f"{text} [{'Y/n' if default else 'y/N'}]: ").strip().lower()
        if not typed:
            return default
        if typed in YES or typed in NO:
            return typed in YES
        say(f"  {typed!r} is neither yes nor no: type y or n")


def _ask_choice(
    text: str,
    choices: list[str],
    default: Any,
    read: Callable[[str], str],
    say: Callable[[str], None],
) -> str:
    proposal = str(default) if default in choices else choices[0]
    while True:
        typed = read(f"{text} ({'/'.join(choices)}) [{proposal}]: ").strip() or proposal
        if typed in choices:
            return typed
        say(f"  {typed!r} is not one of: {', '.join(choices)}")
