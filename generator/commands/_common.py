"""Steps that several commands share: their parser's common shape, and steps that span
stages (the cluster repo on disk, then Proxmox).

The stages are imported inside the steps, not here: every command imports this module to
build its parser, and `--help` stays fast only while that pulls in nothing heavy.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.cli import directory_option

if TYPE_CHECKING:
    from generator.config.model import Cluster
    from generator.environment import Environment
    from generator.proxmox import core
    from generator.proxmox.client import Client


def add_command(
    sub: Any, name: str, run: Callable[[argparse.Namespace], int], **kwargs: Any
) -> argparse.ArgumentParser:
    """The verb's parser with the cluster repo option (-C) every such command takes;
    `kwargs` go to add_parser (help, description)."""
    parser: argparse.ArgumentParser = sub.add_parser(name, **kwargs)
    directory_option(parser)
    parser.set_defaults(run=run)
    return parser


def yes_option(parser: argparse.ArgumentParser) -> None:
    """--yes, for the commands that change Proxmox and ask first (see _io.confirm)."""
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def connect_from_disk(
    directory: Path, env: Environment, warn: Callable[[str], None]
) -> tuple[Client, Cluster]:
    """cluster.yaml (its warnings shown), then a client for its Proxmox."""
    from generator.proxmox import core

    cluster = core.load_cluster(directory, warn)
    return core.connect(cluster, directory, env=env, warn=warn), cluster


def prepare_from_disk(
    directory: Path, env: Environment, prune: bool, warn: Callable[[str], None]
) -> core.Prepared:
    """cluster.yaml and the rendered seeds on disk, then a look at Proxmox and a plan."""
    from generator.lifecycle import flow

    return flow.prepare_boot(directory, env, prune, warn)
