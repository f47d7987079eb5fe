"""Values still as `new` proposes them when nobody answers: fine for a first render, wrong
for a cluster that boots. `plan` and `boot` warn about them as soon as cluster.yaml loads,
before Proxmox is asked anything, so a user with no Proxmox yet sees them too."""

from __future__ import annotations

import re

from generator.config.model import Cluster

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
