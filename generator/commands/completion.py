"""`homelab-gen completion SHELL`: the script that makes the shell complete homelab-gen's
commands, flags and arguments (argcomplete: bash, zsh and fish)."""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh", "fish")
HOW = {
    "bash": 'eval "$(homelab-gen completion bash)"   # in ~/.bashrc',
    "zsh": 'eval "$(homelab-gen completion zsh)"    # in ~/.zshrc, after compinit',
    "fish": "homelab-gen completion fish | source  # in ~/.config/fish/config.fish",
}


def configure(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        description="Print a completion script. Enable it with:\n  " + "\n  ".join(HOW.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(run=run, directory=None)


def run(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    print(shellcode(["homelab-gen"], shell=args.shell), end="")
    return 0
