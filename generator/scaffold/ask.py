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
from generator.scaffold.checks import CHECKS, READS
from generator.scaffold.filters import NetworkExtension

YES, NO = ("y", "yes", "true"), ("n", "no", "false")


def ask_all(
    questions: dict[str, Any],
    prompts: dict[str, str],
    preset: dict[str, Any],
    asked: tuple[str, ...] | None = None,
    read: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every answer, in order; a PRESET value is the proposed default. Only the ASKED
    questions (default: all) are asked, and the API VIP only with more than one server;
    the others take their proposal, unless it does not fit the answers given."""
    env = _environment()
    answers: dict[str, Any] = {}
    try:
        for name, spec in questions.items():
            default = preset.get(name, spec)
            if not _asks(name, asked, answers):
                proposal = _proposal(name, spec, default, answers, env)
                check = CHECKS.get(name)
                problem = check(str(proposal), answers) if check else None
                if problem is None:
                    answers[name] = proposal
                    continue
                say(f"  the default {name} does not fit: {problem}")
            text = prompts.get(name, name)
            answers[name] = _ask_one(name, text, default, spec, answers, env, read, say)
    except EOFError:
        say("")
        raise UsageError(
            "stdin closed (Ctrl-D) before the last question: nothing was written;"
            " use --no-input or --answers FILE"
        ) from None
    return answers


def _asks(name: str, asked: tuple[str, ...] | None, answers: dict[str, Any]) -> bool:
    if asked is not None and name not in asked:
        return False
    return name != "api_vip" or int(answers.get("servers", 1)) > 1


def proposals(questions: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
    """Every answer without asking: PRESET's, else the default proposed from the others."""
    env = _environment()
    answers: dict[str, Any] = {}
    for name, spec in questions.items():
        answers[name] = _proposal(name, spec, preset.get(name, spec), answers, env)
    return answers


def preset_problems(questions: dict[str, Any], preset: dict[str, Any]) -> list[str]:
    """What is wrong in an answers file, in the questions' own terms: `name: problem`, every
    one at once. An answer that reads a wrong earlier one is left until that is fixed."""
    env = _environment()
    answers: dict[str, Any] = {}
    wrong: set[str] = set()
    problems: list[str] = []
    for name, spec in questions.items():
        if wrong.intersection(READS.get(name, ())):
            wrong.add(name)
            continue
        value = preset.get(name, spec)
        problem = _choice_problem(spec, value) if name in preset else None
        if problem is None:
            proposal = _proposal(name, spec, value, answers, env)
            check = CHECKS.get(name)
            problem = check(str(proposal), answers) if check else None
            answers[name] = proposal
        if problem is not None:
            wrong.add(name)
            given = "" if name in preset else " (the default, from the answers above)"
            problems.append(f"{name}: {problem}{given}")
    return problems


def _choice_problem(spec: Any, value: Any) -> str | None:
    if isinstance(spec, bool) and not isinstance(value, bool):
        return f"{value!r} is neither yes nor no: write true or false"
    if isinstance(spec, list) and str(value) not in map(str, spec):
        return f"{value!r} is not one of: {', '.join(map(str, spec))}"
    return None


def _proposal(name: str, spec: Any, default: Any, answers: dict[str, Any], env: Environment) -> Any:
    if isinstance(spec, list):
        return str(default) if default in spec else str(spec[0])
    if isinstance(spec, bool):
        return default
    return env.from_string(str(default)).render(cookiecutter=answers)


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
