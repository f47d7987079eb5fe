"""Command line: parse flags, call one command, turn errors into messages and exit codes.

Command modules are small and import their heavy libraries inside `run`, so `--help` stays
fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from generator import __version__
from generator.errors import HomelabError, write_crash_log

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
)
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homelab-gen",
        description="From one Proxmox box to a K3s cluster run by Flux.",
    )
    parser.add_argument("--version", action="version", version=f"homelab-gen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"generator.commands.{name}").configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
        default=Path("."),
        metavar="DIR",
        help="the cluster repo (default: the current folder)",
    )
