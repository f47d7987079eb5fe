"""Command line: parse flags, call one command, turn errors into messages and exit codes.

Command modules are small and import their heavy libraries inside `run`, so `--help` stays
fast.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from generator import __version__
from generator.errors import HomelabError, UsageError, write_crash_log

# Each names generator/commands/<name>.py, which defines configure(subparsers) and run(args).
COMMANDS = (
    "new",
    "validate",
    "render",
    "template",
    "plan",
    "boot",
    "destroy",
    "status",
    "kubeconfig",
    "secret",
    "versions",
    "completion",
)
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """A parser whose subcommands refuse unknown arguments themselves, so the error shows
    the subcommand's usage (`usage: homelab-gen boot ...`), not the top level's. argparse
    makes every subparser of the same class as its parent."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        """argparse's message, plus the closest choice for a mistyped command or value."""
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if found:
            choices = re.findall(r"'([^']*)'", found[2])
            close = difflib.get_close_matches(found[1], choices, n=1)
            if close:
                message += f"; did you mean {close[0]}?"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="homelab-gen",
        description="From one Proxmox box to a K3s cluster run by Flux.",
    )
    parser.add_argument("--version", action="version", version=f"homelab-gen {__version__}")
    parser.add_argument(
        "-C",
        dest="top_directory",
        type=Path,
        default=None,
        metavar="DIR",
        help="the cluster repo, for every command but new; the command's own -C wins",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"generator.commands.{name}").configure(sub)
    return parser


def _complete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request and exit (argcomplete's protocol); a normal run
    has no _ARGCOMPLETE in its environment and never imports argcomplete."""
    from generator.environment import completion_requested

    if completion_requested():
        import argcomplete

        argcomplete.autocomplete(parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _complete(parser)
    args = parser.parse_args(argv)
    if getattr(args, "command", "") is None:
        # a first `homelab-gen` deserves the list of commands, not "arguments are required"
        parser.print_help(sys.stderr)
        return 2
    try:
        resolve_directory(args, Path.cwd())
        code: int = args.run(args)
        return code
    except HomelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # the boundary: anything unexpected becomes a short message plus a log
        log = write_crash_log()
        print(
            f"error: homelab-gen failed unexpectedly; details are in {log}"
            " (please report it with that file)",
            file=sys.stderr,
        )
        return 1


def directory_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-C",
        dest="directory",
        type=Path,
        default=None,
        metavar="DIR",
        help="the cluster repo (default: the first folder with cluster.yaml, from here up)",
    )


def resolve_directory(args: argparse.Namespace, here: Path) -> None:
    """args.directory as the command uses it: its own -C, else the -C before the command,
    else, like git, the first folder from `here` up that holds cluster.yaml (or `here` when
    none does, so the command says what is missing). A command without -C (new takes DIR)
    takes no -C before it either."""
    top = getattr(args, "top_directory", None)
    if not hasattr(args, "directory"):
        if top is not None:
            raise UsageError(
                f"-C {top}: '{args.command}' does not work in a cluster repo",
                f"drop -C; 'homelab-gen {args.command} --help' shows its arguments",
            )
        return
    if args.directory is None:
        args.directory = top if top is not None else find_repo(here)


def find_repo(here: Path) -> Path:
    """The first folder from `here` up that holds cluster.yaml; "." when it is `here` (so
    messages keep their short paths) or when no folder does."""
    from generator.config.load import CONFIG_NAME

    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return Path(".") if folder == here else folder
    return Path(".")
