"""The cluster's identity, its git repository and its datastore endpoint."""

from __future__ import annotations

import re
from typing import Any

from generator.config.checks.findings import Findings
from generator.config.checks.k3s_version import K3S_VERSION

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SCP_GIT_URL = re.compile(r"^[\w.\-]+@[\w.\-]+:[\w./\-~]+$")


def check_cluster_identity(data: dict[str, Any], found: Findings) -> None:
    cluster = data["cluster"]
    if not DNS_LABEL.match(cluster["name"]):
        found.error(
            "cluster.name",
            f"{cluster['name']!r} is not a DNS label",
            "use lowercase letters, digits and '-', at most 63 characters, e.g. 'home'",
        )
    labels = cluster["domain"].split(".")
    if len(cluster["domain"]) > 253 or not all(DNS_LABEL.match(label) for label in labels):
        found.error(
            "cluster.domain",
            f"{cluster['domain']!r} is not a valid DNS domain",
            "use lowercase DNS labels joined by dots, e.g. 'lab.example.com'",
        )
    if not K3S_VERSION.match(cluster["k3s_version"]):
        found.error(
            "cluster.k3s_version",
            f"{cluster['k3s_version']!r} is not a K3s release",
            "use the form vX.Y.Z+k3sN or vX.Y.Z-rcN+k3sN, e.g. 'v1.33.4+k3s1'",
        )


def check_git(data: dict[str, Any], found: Findings) -> None:
    git = data["cluster"]["git"]
    url = git["url"]
    if not (
        url.startswith(("https://", "ssh://")) and len(url.split("://", 1)[1]) > 0
    ) and not SCP_GIT_URL.match(url):
        found.error(
            "cluster.git.url",
            f"{url!r} is neither an https nor an ssh git URL",
            "use https://host/owner/repo.git or ssh://git@host/owner/repo.git",
        )
    if not git["branch"] or any(c in git["branch"] for c in " ~^:?*[\\"):
        found.error(
            "cluster.git.branch",
            f"{git['branch']!r} is not a valid branch name",
            "use a plain branch name such as 'main'",
        )


def check_cni(data: dict[str, Any], found: Findings) -> None:
    cluster = data["cluster"]
    if cluster["cni"] == "calico" and cluster["flannel_backend"] != "none":
        found.error(
            "cluster.flannel_backend",
            f"{cluster['flannel_backend']!r} is a Flannel backend, and cluster.cni is calico",
            "remove flannel_backend: Calico replaces Flannel; or set cni: flannel",
        )


def check_datastore(data: dict[str, Any], found: Findings) -> None:
    endpoint = data["cluster"].get("datastore_endpoint")
    if endpoint is None:
        return
    scheme, sep, rest = endpoint.partition("://")
    if not sep or scheme not in ("postgres", "mysql", "https", "http"):
        found.error(
            "cluster.datastore_endpoint",
            f"{endpoint!r} is not a K3s datastore endpoint",
            "use postgres://user@host:5432/db, mysql://user@tcp(host:3306)/db or https://etcd:2379",
        )
    elif ":" in rest.split("@", 1)[0] and "@" in rest:
        found.error(
            "cluster.datastore_endpoint",
            "contains a password",
            "remove it; put it in the secrets store as 'datastore_password'; render adds it",
        )
