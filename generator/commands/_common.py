"""Steps that several commands share: their parser's common shape, and steps that span
stages (the cluster repo on disk, then Proxmox).

The stages are imported inside the steps, not here: every command imports this module to
build its parser, and `--help` stays fast only while that pulls in nothing heavy.
"""

from __future__ import annotations

import argparse
import re
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


# What `new` writes when it is given no answer: fine for a first render, wrong for a cluster
# that boots (Flux clones cluster.git.url; cluster.domain names the lab's hosts).
PLACEHOLDER_GIT_URL = re.compile(r"github\.com[/:]me/[^/]+\.git$")
PLACEHOLDER_DOMAIN = re.compile(r"(^|\.)example(\.(com|net|org))?$")


def placeholder_warnings(cluster: Cluster) -> list[str]:
    """One line per value still as the scaffold's example left it."""
    info, found = cluster.cluster, []
    if PLACEHOLDER_GIT_URL.search(info.git.url):
        found.append(
            f"cluster.git.url: {info.git.url} is the example from 'new'; put the URL of your"
            " own Git repo there (Flux clones it), e.g. git@github.com:YOU/home-ops.git"
        )
    if PLACEHOLDER_DOMAIN.search(info.domain):
        found.append(
            f"cluster.domain: {info.domain} is the example from 'new'; put a DNS domain you"
            " own or use at home there, e.g. lab.home.arpa"
        )
    return found


def warn_placeholders(cluster: Cluster, warn: Callable[[str], None]) -> None:
    for line in placeholder_warnings(cluster):
        warn(line)


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
