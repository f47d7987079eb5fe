from __future__ import annotations

import argparse
import sys
from typing import Any

from generator.cli import directory_option


def configure(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "validate", help="check cluster.yaml and the rendered files"
    )
    directory_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from generator import config, validation

    loaded = config.load(args.directory)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    problems = validation.check_rendered(args.directory, loaded.cluster)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2
    print(f"cluster.yaml is valid: {len(loaded.cluster.nodes)} node(s), "
          f"{len(loaded.cluster.servers)} server(s)")
    return 0
