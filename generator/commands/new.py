from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def configure(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "new",
        help="scaffold a cluster repo: asks questions, writes cluster.yaml, renders, git init",
        description=(
            "Scaffold a cluster repo in DIR (new or empty). --answers FILE takes a YAML "
            "mapping of question names to answers (the names are those in "
            "templates/cluster/cookiecutter.json, e.g. cluster_name, network_cidr, servers, "
            "agents, git_url, longhorn) and asks nothing."
        ),
    )
    parser.add_argument("target", type=Path, metavar="DIR", help="folder to create")
    parser.add_argument("--no-input", action="store_true", help="take every default; ask nothing")
    parser.add_argument("--answers", type=Path, metavar="FILE", help="YAML answers; asks nothing")
    parser.add_argument("--no-git", action="store_true", help="skip git init and the first commit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from generator.errors import UsageError
    from generator.scaffold import create
    from generator.secretstore import KEY_FILE

    asks = not (args.no_input or args.answers is not None)
    if asks and not sys.stdin.isatty():
        raise UsageError("stdin is not a terminal: use --no-input or --answers FILE")
    result = create.create(
        args.target,
        answers_file=args.answers,
        no_input=not asks,
        use_git=not args.no_git,
        home=Path.home(),
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"created {args.target} with {result.file_count} files"
        + (" and a first git commit" if result.committed else "")
    )
    if result.deploy_key:
        print("add this read-only deploy key to the git repo, so Flux can pull it:")
        print(f"  {result.deploy_key}")
    print(
        f"back up {args.target / KEY_FILE} now (a password manager will do): it is the one key"
        " to every secret in this repo, and it is not in git"
    )
    print(
        f"next: cd {args.target}, read cluster.yaml, push it to its git remote,"
        " then run 'homelab-gen boot'"
    )
    return 0
