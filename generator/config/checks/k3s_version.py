"""K3s release versions (v1.33.4+k3s1, v1.34.1-rc1+k3s1): parsing, order, and which change of
`cluster.k3s_version` an existing cluster can take.

The rule: never down, and at most one Kubernetes minor version up per step.
- K3s (https://docs.k3s.io/upgrades/manual): "the Kubernetes version skew policy applies.
  Ensure that your plan does not skip intermediate minor versions when upgrading. The
  system-upgrade-controller itself will not protect against unsupported changes to the
  Kubernetes version." So homelab-gen does.
- Kubernetes (https://kubernetes.io/releases/version-skew-policy/): the newest and oldest
  kube-apiserver instances must be within one minor version, and kube-apiserver must not
  skip minor versions when upgrading, even in a single-instance cluster. Downgrades are not
  supported: a newer kube-apiserver may have written objects (storage versions, etcd schema)
  that an older one cannot read.
Patch releases and +k3sN rebuilds of the same Kubernetes version may move forward freely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIELD = "cluster.k3s_version"
K3S_VERSION = re.compile(
    r"^v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)(?:-rc(?P<rc>\d+))?\+k3s(?P<build>\d+)$"
)


# A K3s version anywhere in a text, also URL-quoted (the installer's URL carries v1.33.4%2Bk3s1).
IN_TEXT = re.compile(r"v\d+\.\d+\.\d+(?:-rc\d+)?(?:\+|%2[Bb])k3s\d+")


def without_versions(text: str) -> str:
    """`text` with every K3s version in it replaced by one placeholder: what a seed holds
    besides the version, which the upgrade Plans change on a running node in place."""
    return IN_TEXT.sub("<k3s-version>", text)


@dataclass(frozen=True, order=True)
class K3sVersion:
    major: int
    minor: int
    patch: int
    # A release candidate sorts before its release: (0, N) < (1, 0).
    final: int
    rc: int
    build: int
    text: str  # as written; equal numbers never differ in text, so order ignores nothing

    @property
    def line(self) -> str:
        """The Kubernetes minor this is a release of: 'v1.33'."""
        return f"v{self.major}.{self.minor}"


def parse(text: str) -> K3sVersion | None:
    """The version, or None when text is not a K3s release version."""
    found = K3S_VERSION.match(text)
    if found is None:
        return None
    rc = found["rc"]
    return K3sVersion(
        major=int(found["major"]),
        minor=int(found["minor"]),
        patch=int(found["patch"]),
        final=0 if rc is not None else 1,
        rc=int(rc) if rc is not None else 0,
        build=int(found["build"]),
        text=text,
    )


def upgrade_problem(current: K3sVersion, wanted: K3sVersion) -> str | None:
    """Why a cluster on `current` cannot go to `wanted` in one step (`field: what (hint)`),
    or None when it can."""
    if wanted < current:
        return (
            f"{FIELD}: {wanted.text} is older than {current.text}, the version the cluster was "
            f"last rendered with; K3s and Kubernetes do not support downgrades "
            f"(keep {current.text} or choose a newer release)"
        )
    skipped = (wanted.major, wanted.minor) > (current.major, current.minor + 1)
    if skipped:
        step = f"v{current.major}.{current.minor + 1}.x"
        return (
            f"{FIELD}: {wanted.text} skips a minor version after {current.text}, the version "
            f"the cluster was last rendered with (upgrade one minor at a time: go to {step} "
            f"first, render and push, let the upgrade Plans finish, then go on)"
        )
    return None
