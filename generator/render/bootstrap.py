"""The Secrets Flux needs before it can read git, handed over once by the first server's seed.

Two at most, both in flux-system: `sops-age` (the age identity that decrypts the repo's SOPS
files) and the Git credentials the FluxInstance's pullSecret names, for a private repo.
Neither may go through K3s's manifests folder (wrangler keeps applied objects in an
annotation, see render/manifests.py) nor through `kubectl apply` (it keeps them in
last-applied-configuration). So the seed writes each value as a 0600 file, and a oneshot
unit runs `kubectl create secret generic --from-file` once the API answers, only for a
Secret that does not exist yet: a rebuilt first server never replaces a day-2 value.
"""

from __future__ import annotations

import shlex
from urllib.parse import urlsplit

from generator import naming
from generator.config.model import Cluster
from generator.errors import HomelabError
from generator.render.manifests import FLUX_NAMESPACE, GIT_SECRET, flux_git_url
from generator.render.templating import render_template
from generator.secrets import Secrets

VALUES_DIR = "/var/lib/homelab-gen/bootstrap"
SCRIPT_PATH = "/usr/local/sbin/homelab-gen-bootstrap-secrets"
UNIT = "homelab-gen-bootstrap-secrets.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
# Written once every Secret exists; the unit is skipped on later boots.
DONE_MARKER = "/var/lib/homelab-gen/bootstrap-secrets-done"

# The names Flux's SOPS guide uses (https://fluxcd.io/flux/guides/mozilla-sops/): the
# Kustomizations' decryption.secretRef points at this Secret.
SOPS_SECRET = naming.SOPS_AGE_SECRET
SOPS_KEY = "age.agekey"

# Flux refuses SSH hosts it cannot verify; these are the hosts' published ed25519 keys.
KNOWN_SSH_HOSTS = {
    "github.com": "ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "gitlab.com": "ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf",
}

BootstrapSecrets = dict[str, dict[str, str]]  # Secret name -> {key: value}, in flux-system


def bootstrap_secrets(cluster: Cluster, secrets: Secrets) -> BootstrapSecrets:
    """What the first server hands Flux; empty when there is nothing to hand over."""
    found: BootstrapSecrets = {}
    if secrets.age_key:
        found[SOPS_SECRET] = {SOPS_KEY: secrets.age_key}
    if cluster.cluster.git.private:
        found[GIT_SECRET] = git_credentials(cluster, secrets)
    return found


def git_credentials(cluster: Cluster, secrets: Secrets) -> dict[str, str]:
    """A private repo's credentials in the keys Flux's GitRepository reads: a deploy key
    (`identity`, `known_hosts`) for ssh, or `username`/`password` for https."""
    url = flux_git_url(cluster.cluster.git.url)
    if url.startswith("ssh://"):
        return ssh_credentials(url, secrets)
    if not secrets.git_token:
        raise HomelabError(
            f"cluster.git is private but the secrets store has no git_token for {url}",
            "set one with 'homelab-gen secret set git_token' (a read-only access token),"
            " or set cluster.git.private: false",
        )
    return {"username": "git", "password": secrets.git_token}


def ssh_credentials(url: str, secrets: Secrets) -> dict[str, str]:
    if not secrets.git_deploy_key:
        raise HomelabError(
            f"cluster.git is private but the secrets store has no git_deploy_key for {url}",
            "set one with 'homelab-gen secret set git_deploy_key' (the private half of a"
            " read-only deploy key), or set cluster.git.private: false",
        )
    host = urlsplit(url).hostname or ""
    if host not in KNOWN_SSH_HOSTS:
        raise HomelabError(
            f"no known SSH host key for {host!r}, so Flux could not verify it",
            f"use an https URL with git_token, or a repo on {' or '.join(KNOWN_SSH_HOSTS)}",
        )
    identity = secrets.git_deploy_key.strip() + "\n"
    return {"identity": identity, "known_hosts": f"{host} {KNOWN_SSH_HOSTS[host]}\n"}


def value_path(name: str, key: str) -> str:
    return f"{VALUES_DIR}/{name}/{key}"


def value_files(found: BootstrapSecrets) -> dict[str, str]:
    """Node path -> the value, byte for byte (kubectl's --from-file keeps a file as it is)."""
    return {
        value_path(name, key): value for name, data in found.items() for key, value in data.items()
    }


def create_commands(found: BootstrapSecrets) -> list[str]:
    """One `create_once NAME --from-file=KEY=PATH...` command per Secret, quoted for sh, with
    one file to a line."""
    return [
        " \\\n  ".join(
            [shlex.join(["create_once", name])]
            + [shlex.quote(f"--from-file={key}={value_path(name, key)}") for key in sorted(data)]
        )
        for name, data in found.items()
    ]


def script(found: BootstrapSecrets) -> str:
    return render_template(
        "cloud-init",
        "bootstrap-secrets.sh.j2",
        namespace=FLUX_NAMESPACE,
        names=", ".join(found),
        commands=create_commands(found),
        marker=DONE_MARKER,
    )


def unit() -> str:
    return render_template(
        "cloud-init", "bootstrap-secrets.service.j2", script=SCRIPT_PATH, marker=DONE_MARKER
    )
