"""The test VM image: Debian 12 built with mmdebstrap, close to the official genericcloud image.

Like the official image it boots the cloud kernel, configures the network with netplan,
systemd-networkd and systemd-resolved (no ifupdown, no net-tools) and runs cloud-init 22.4
and qemu-guest-agent. Two differences, both forced by the sandbox:
- the kernel is booted directly (-kernel/-initrd taken from the image) instead of through
  GRUB, which saves seconds under TCG; the root file system is still a real ext4 disk;
- the packages a rendered seed lists are preinstalled, standing in for the mirror that a VM
  on restricted user-mode networking cannot reach. The seed keeps its `packages` list.

The built image is cached under ~/.cache/homelab-gen/qemu/<recipe hash>/ and rebuilt only
when the recipe below changes. Building needs root (mmdebstrap's root mode, and
`mkfs.ext4 -d` to copy the tree with its owners) but no loop mount.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
ROOT_LABEL = "debian-root"
DISK_SIZE = "3G"

# The official bookworm cloud image's essentials, in minbase plus this list.
BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "initramfs-tools",
    "linux-image-cloud-amd64",
    "cloud-init",
    "qemu-guest-agent",
    "netplan.io",
    "systemd-resolved",
    "systemd-timesyncd",
    "openssh-server",
    "sudo",
    "ca-certificates",
    "curl",
    "iproute2",
    "iputils-ping",
    "procps",
    "less",
)
# What rendered seeds list under `packages:` (Longhorn's needs included): the stand-in mirror.
SEED_PACKAGES = ("open-iscsi", "nfs-common")

# Runs in the finished tree ($1) before it becomes a disk image.
CUSTOMIZE = f"""\
set -e
echo localhost > "$1/etc/hostname"
printf '127.0.0.1\\tlocalhost\\n::1\\t\\tlocalhost ip6-localhost ip6-loopback\\n' > "$1/etc/hosts"
printf 'LABEL={ROOT_LABEL} / ext4 rw,discard,errors=remount-ro 0 1\\n' > "$1/etc/fstab"
# Like the official image: no host keys and no machine id until first boot makes them.
rm -f "$1"/etc/ssh/ssh_host_*
: > "$1/etc/machine-id"
rm -f "$1/var/lib/dbus/machine-id"
# The stand-in mirror: a local, empty apt repository. The seed's packages are already
# installed, so cloud-init's `apt-get update` and `install` succeed at once instead of
# waiting on DNS that restrict=on never answers.
rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*
mkdir -p "$1/srv/mirror"
: > "$1/srv/mirror/Packages"
echo 'deb [trusted=yes] file:/srv/mirror ./' > "$1/etc/apt/sources.list"
"""

RECIPE_VERSION = 1
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "homelab-gen" / "qemu"


@dataclass(frozen=True)
class Image:
    disk: Path  # raw ext4 file system holding the root tree
    kernel: Path
    initrd: Path
    build_seconds: float | None  # None when it came from the cache

    @property
    def cmdline(self) -> str:
        return f"root=LABEL={ROOT_LABEL} ro console=ttyS0,115200 consoleblank=0"


class ImageUnavailable(Exception):
    """The image is not cached and cannot be built here (the reason says why)."""


def recipe() -> dict[str, object]:
    return {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "variant": "minbase",
        "packages": sorted(BASE_PACKAGES + SEED_PACKAGES),
        "customize": CUSTOMIZE,
        "disk_size": DISK_SIZE,
        "label": ROOT_LABEL,
    }


def recipe_hash() -> str:
    text = json.dumps(recipe(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_or_build(cache_root: Path = CACHE_ROOT) -> Image:
    """The cached image for the current recipe, building it first if needed."""
    home = cache_root / recipe_hash()
    found = _cached(home)
    if found:
        return found
    cache_root.mkdir(parents=True, exist_ok=True)
    with _lock(cache_root / f"{home.name}.lock"):
        found = _cached(home)  # another process may have built it while we waited
        if found:
            return found
        _check_can_build()
        started = time.monotonic()
        _build_into(home)
        seconds = time.monotonic() - started
        (home / "build-seconds").write_text(f"{seconds:.1f}\n")
        image = _cached(home)
        assert image is not None
        return Image(image.disk, image.kernel, image.initrd, seconds)


def _cached(home: Path) -> Image | None:
    if not (home / "complete").exists():
        return None
    return Image(home / "root.raw", home / "vmlinuz", home / "initrd.img", None)


def _check_can_build() -> None:
    missing = [tool for tool in ("mmdebstrap", "mkfs.ext4") if not shutil.which(tool)]
    if missing:
        raise ImageUnavailable(
            f"{' and '.join(missing)} not installed (apt-get install mmdebstrap)"
        )
    if os.geteuid() != 0:
        raise ImageUnavailable("building the image needs root (mmdebstrap root mode)")
    if not mirror():
        raise ImageUnavailable(
            "no Debian mirror found in /etc/apt (set HOMELAB_GEN_DEBIAN_MIRROR to one)"
        )


def mirror() -> str | None:
    """The Debian mirror this machine's apt uses: the VM image comes from the same place."""
    chosen = os.environ.get("HOMELAB_GEN_DEBIAN_MIRROR")
    if chosen:
        return chosen
    sources = sorted(Path("/etc/apt").glob("sources.list.d/*.sources"))
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt").glob("sources.list.d/*.list"))]
    for path in sources + lists:
        if path.is_file():
            uri = _debian_uri(path.read_text())
            if uri:
                return uri
    return None


def _debian_uri(text: str) -> str | None:
    for line in text.splitlines():
        for word in line.replace("URIs:", " ").split():
            if word.startswith(("http://", "https://")) and word.rstrip("/").endswith("/debian"):
                return word
    return None


def _build_into(home: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"{home.name}.", dir=home.parent))
    try:
        tree = work / "tree"
        hook = work / "customize.sh"
        hook.write_text(CUSTOMIZE)
        _run(
            [
                "mmdebstrap",
                "--mode=root",
                "--variant=minbase",
                "--include=" + ",".join(BASE_PACKAGES + SEED_PACKAGES),
                f'--customize-hook=sh {hook} "$1"',
                SUITE,
                str(tree),
                str(mirror()),
            ],
            work / "mmdebstrap.log",
        )
        shutil.copy2(_only(tree / "boot", "vmlinuz-*"), work / "vmlinuz")
        shutil.copy2(_only(tree / "boot", "initrd.img-*"), work / "initrd.img")
        _run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-L",
                ROOT_LABEL,
                "-d",
                str(tree),
                str(work / "root.raw"),
                DISK_SIZE,
            ],
            work / "mkfs.log",
        )
        shutil.rmtree(tree)
        (work / "recipe.json").write_text(json.dumps(recipe(), indent=2, sort_keys=True) + "\n")
        (work / "complete").write_text("")
        shutil.rmtree(home, ignore_errors=True)
        work.rename(home)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise RuntimeError(f"expected one {pattern} in {folder}, found {[p.name for p in found]}")
    return found[0]


def _run(argv: list[str], log: Path) -> None:
    with log.open("w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f"{argv[0]} failed (exit {done.returncode}):\n{tail}")


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
