"""Cloud images `homelab-gen template` knows, and how each one's checksum is obtained.

No digest is pinned here. Debian's and Ubuntu's official URLs point at rolling `latest` /
`current` builds, so a digest written into this file would be wrong within weeks. Instead
the digest is read from the publisher's own checksum file (SHA512SUMS, SHA256SUMS), fetched
over verified HTTPS on the user's machine right before Proxmox downloads the image, and
handed to Proxmox's `download-url`, which checks the image against it and fails the task on
a mismatch. `--checksum ALGO:HEX` replaces the fetch (an offline laptop, or a digest the
user checked against the publisher's signed checksum file).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from generator.errors import UsageError

# PVE's `checksum-algorithm` enum, with each digest's length in hex digits.
DIGEST_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}
# What PVE's `import` content accepts as a disk image; the extension also tells it the format.
IMPORT_EXTENSIONS = (".qcow2", ".raw", ".vmdk")
DEFAULT_IMAGE = "debian-12"

Fetch = Callable[[str], str]


@dataclass(frozen=True)
class Image:
    key: str
    url: str
    filename: str  # the name on the Proxmox storage (import content wants a disk extension)
    algorithm: str
    sums_url: str
    # Machine type whose disk buses the image's kernel sees: `pc` keeps the cloud-init drive
    # on real IDE, which every image here reads (Debian 12's cloud kernel has no AHCI).
    machine: str = "pc"

    @property
    def upstream_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


IMAGES: dict[str, Image] = {
    image.key: image
    for image in (
        Image(
            "debian-12",
            "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2",
            "debian-12-genericcloud-amd64.qcow2",
            "sha512",
            "https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS",
        ),
        Image(
            "debian-13",
            "https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2",
            "debian-13-genericcloud-amd64.qcow2",
            "sha512",
            "https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS",
        ),
        Image(
            "ubuntu-24.04",
            "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
            # Ubuntu's .img is a qcow2 file; PVE's import content needs the real extension.
            "ubuntu-24.04-noble-server-cloudimg-amd64.qcow2",
            "sha256",
            "https://cloud-images.ubuntu.com/noble/current/SHA256SUMS",
        ),
    )
}


@dataclass(frozen=True)
class Checksum:
    """A digest given up front, or the publisher's checksum file to read it from."""

    algorithm: str
    digest: str | None = None
    sums_url: str | None = None
    sums_name: str = ""

    def describe(self) -> str:
        if self.digest:
            return f"{self.algorithm} {self.digest[:16]}..."
        return f"{self.algorithm} from {self.sums_url}"


@dataclass(frozen=True)
class Source:
    key: str  # an IMAGES key, or "custom"
    url: str
    filename: str
    checksum: Checksum | None
    machine: str = "pc"


def parse_checksum(text: str) -> Checksum:
    algorithm, sep, digest = text.partition(":")
    algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
    if not sep or algorithm not in DIGEST_LENGTHS:
        raise UsageError(
            f"--checksum must be ALGO:HEX with ALGO one of {', '.join(DIGEST_LENGTHS)};"
            f" got '{text}'"
        )
    if not re.fullmatch(rf"[0-9a-f]{{{DIGEST_LENGTHS[algorithm]}}}", digest):
        raise UsageError(
            f"--checksum: a {algorithm} digest is {DIGEST_LENGTHS[algorithm]} hex digits"
        )
    return Checksum(algorithm, digest)


def _custom_filename(url: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
    if name.endswith(".img"):
        # Cloud ".img" files are qcow2 almost always; PVE picks the format from the extension.
        return name[: -len(".img")] + ".qcow2"
    if not name.endswith(IMPORT_EXTENSIONS):
        raise UsageError(
            f"--image {url}: the file must be a disk image ending in"
            f" {', '.join(IMPORT_EXTENSIONS)} or .img (Proxmox imports only those)"
        )
    return name


def choose_source(
    image: str | None, checksum: str | None, no_checksum: bool
) -> tuple[Source, list[str]]:
    """The image to download and its checksum rule, plus warnings for the user."""
    if checksum and no_checksum:
        raise UsageError("--checksum and --no-checksum contradict each other")
    given = parse_checksum(checksum) if checksum else None
    key = image or DEFAULT_IMAGE
    known = IMAGES.get(key)
    if known is not None:
        if no_checksum:
            raise UsageError(
                f"{key} has a published checksum; --no-checksum is only for custom URLs"
            )
        rule = given or Checksum(known.algorithm, None, known.sums_url, known.upstream_name)
        return Source(known.key, known.url, known.filename, rule, known.machine), []
    if not re.match(r"https?://", key):
        raise UsageError(
            f"--image must be one of {', '.join(IMAGES)} or an http(s) URL; got '{key}'"
        )
    if given is None and not no_checksum:
        raise UsageError(
            "a custom image URL needs --checksum ALGO:HEX (e.g. sha512:...),"
            " or --no-checksum to download it unchecked"
        )
    warnings = []
    if no_checksum:
        warnings.append(
            f"--no-checksum: Proxmox will import {key} without checking it; a corrupted or"
            " tampered download becomes the base of every VM"
        )
    if key.startswith("http://") and given is None:
        warnings.append(f"{key} is plain http and unchecked: anyone on the path can replace it")
    return Source("custom", key, _custom_filename(key), given), warnings


def digest_from_sums(text: str, name: str, algorithm: str) -> str | None:
    """The digest of `name` in a SHA*SUMS file (GNU `hex  name` / `hex *name`, or BSD style)."""
    length = DIGEST_LENGTHS[algorithm]
    for line in text.splitlines():
        gnu = re.fullmatch(rf"([0-9a-fA-F]{{{length}}})\s+\*?(\S+)\s*", line)
        if gnu and gnu[2].lstrip("./") == name:
            return gnu[1].lower()
        bsd = re.fullmatch(rf"\w+ \((\S+)\) = ([0-9a-fA-F]{{{length}}})\s*", line)
        if bsd and bsd[1].lstrip("./") == name:
            return bsd[2].lower()
    return None


def fetch_https(url: str) -> str:
    """GET a small text file with TLS verified; the user's machine, not Proxmox, fetches it."""
    import requests

    from generator.errors import HomelabError

    try:
        response = requests.get(url, timeout=30)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise HomelabError(
            f"could not fetch the published checksums {url}: {exc}",
            "check this machine's internet access, or pass --checksum ALGO:HEX taken from"
            " the image's website",
        ) from exc
    return response.text


def resolve(checksum: Checksum, fetch: Fetch) -> tuple[str, str]:
    """(algorithm, digest) for download-url, reading the publisher's file if needed."""
    if checksum.digest:
        return checksum.algorithm, checksum.digest
    from generator.errors import HomelabError

    assert checksum.sums_url
    digest = digest_from_sums(fetch(checksum.sums_url), checksum.sums_name, checksum.algorithm)
    if digest is None:
        raise HomelabError(
            f"{checksum.sums_url} lists no {checksum.algorithm} digest for {checksum.sums_name}",
            "the image may have been renamed upstream; pass --image URL --checksum ALGO:HEX",
        )
    return checksum.algorithm, digest
