"""The `.sops.yaml` that tells the `sops` tool to encrypt the way homelab-gen does."""

from __future__ import annotations

from collections.abc import Sequence

from generator.errors import HomelabError
from generator.sops.age import parse_recipient
from generator.sops.layout import dump

KUBERNETES_ENCRYPTED_REGEX = "^(data|stringData)$"
"""Only a Secret's values are encrypted; its apiVersion, kind and metadata stay readable."""
GITOPS_PATH_REGEX = r"gitops/.*\.sops\.yaml$"
SEED_SECRETS_PATH_REGEX = r"^secrets\.sops\.yaml$"  # the store, beside cluster.yaml


def sops_config(recipients: Sequence[str]) -> str:
    """The `.sops.yaml` text that makes `sops` encrypt like homelab-gen: Kubernetes Secrets
    under gitops/ keep all but data/stringData readable; the seed secrets file is encrypted
    whole. sops takes the first rule whose path_regex matches the path relative to this file."""
    for recipient in recipients:
        parse_recipient(recipient)
    if not recipients:
        raise HomelabError("no age recipient for .sops.yaml")
    age = ",".join(r.strip() for r in recipients)
    config = {
        "creation_rules": [
            {
                "path_regex": GITOPS_PATH_REGEX,
                "encrypted_regex": KUBERNETES_ENCRYPTED_REGEX,
                "age": age,
            },
            {"path_regex": SEED_SECRETS_PATH_REGEX, "age": age},
        ]
    }
    header = "# homelab-gen: which files sops encrypts, and to whom. Made by `homelab-gen new`.\n"
    return header + dump(config)
