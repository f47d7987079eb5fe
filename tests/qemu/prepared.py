"""First boot on a template prepared by `homelab-gen template --prepare`, under QEMU.

The preparation seed itself fetches K3s from GitHub, which these machines cannot reach. So
the prepared image is the cached test image with exactly the layout the preparation leaves
(render/prepared.py, k3s-prepare.sh.j2): the marker, the K3s binary, the air-gap images and
install.sh, written into a copy of its ext4 file system with debugfs; and, unlike the
plain test image, without the local apt stand-in: its sources point at deb.debian.org,
which restrict=on never reaches, so an apt run would show. Two parts are stand-ins:
- the K3s binary (it cannot be downloaded here): a small script with its own sha256, which
  the proof checks is still the one in /usr/local/bin afterwards;
- the images archive, an empty file (K3s never starts for real here).
install.sh is K3s's own when a copy sits at CACHE_ROOT/k3s-install.sh (put one there by
hand: `curl -sfL https://get.k3s.io`); otherwise a stand-in that does only what the
INSTALL_K3S_SKIP_DOWNLOAD path of install.sh does on systemd (check the binary, link
kubectl/crictl/ctr, write and enable the service). Which one ran is reported.

Every packet the VM sends is captured (qemu's filter-dump on the NIC): the proof is that no
TCP connection is opened (DNS retried over TCP aside) and no name is looked up but the
time servers' (systemd-timesyncd).

The preparation seed itself is booted on the prepared image too: it must find K3s in
place, fetch nothing, run `cloud-init clean` and power the VM off on its own.

    python -m tests.qemu.prepared [--workdir DIR]   # boots plain, then prepared; prints timings
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from generator.render import k3s, prepared
from tests.qemu import checks
from tests.qemu.checks import Guest
from tests.qemu.cluster import Target, target
from tests.qemu.image import CACHE_ROOT, Image, cached_or_build
from tests.qemu.vm import BOOT_TIMEOUT, Disk, booted, write_seed_iso

NODE = "agent-1"
REAL_INSTALLER = CACHE_ROOT / "k3s-install.sh"
STAND_IN_BINARY = """#!/bin/sh
# homelab-gen QEMU tier: a stand-in for the K3s binary, which cannot be downloaded here.
case "${1:-}" in --version|-v) echo 'k3s (stand-in)'; exit 0;; esac
exec sleep infinity
"""
STAND_IN_INSTALLER = """#!/bin/sh
# homelab-gen QEMU tier: a stand-in for K3s's install.sh, its INSTALL_K3S_SKIP_DOWNLOAD path
# on systemd only; it refuses to download.
set -eu
if [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" != true ]; then
  echo 'stand-in install.sh: no download here' >&2
  exit 1
fi
if [ ! -x /usr/local/bin/k3s ]; then
  echo 'Executable k3s binary not found at /usr/local/bin/k3s' >&2
  exit 1
fi
case "${INSTALL_K3S_EXEC:-server}" in agent*) name=k3s-agent ;; *) name=k3s ;; esac
for link in kubectl crictl ctr; do
  [ -e "/usr/local/bin/$link" ] || ln -s k3s "/usr/local/bin/$link"
done
cat > "/etc/systemd/system/$name.service" <<UNIT
[Unit]
Description=Lightweight Kubernetes (stand-in)
Wants=network-online.target
After=network-online.target
[Service]
ExecStart=/usr/local/bin/k3s ${INSTALL_K3S_EXEC:-server}
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable "$name.service"
echo "stand-in install.sh: $name installed from /usr/local/bin/k3s, no download"
"""
UNREACHABLE_SOURCES = "deb http://deb.debian.org/debian bookworm main\n"
# What may still ask DNS at boot: systemd-timesyncd looking up its time servers.
TIME_SERVERS = (".pool.ntp.org", "time.debian.org")


@dataclass(frozen=True)
class Layout:
    """The prepared image's K3s part: what the proof checks afterwards."""

    image: Image
    binary_sha256: str
    real_installer: bool


@dataclass
class Traffic:
    """What the guest sent: TCP connection attempts and DNS questions, as text."""

    tcp: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    # systemd-resolved asks again over TCP when UDP gets no answer: the same names, which
    # only the UDP questions show.
    dns_over_tcp: int = 0


@dataclass(frozen=True)
class FirstBoot:
    cloud_init_done: float
    k3s_installed: float | None  # None: the install unit is still retrying (no network)
    traffic: Traffic
    output: str  # /var/log/cloud-init-output.log

    def __str__(self) -> str:
        k3s_text = (
            f"K3s install unit succeeded {self.k3s_installed:.0f} s"
            if self.k3s_installed is not None
            else "K3s install unit still retrying (downloads fail)"
        )
        return (
            f"cloud-init done {self.cloud_init_done:.0f} s, {k3s_text};"
            f" TCP connections {self.traffic.tcp or 'none'} (and {self.traffic.dns_over_tcp}"
            f" DNS retries over TCP), DNS names {sorted(set(self.traffic.dns))}"
        )


# -- the prepared image -----------------------------------------------------------------------
def _marker(version: str, installer_sha256: str) -> str:
    """As k3s-prepare.sh.j2 writes it."""
    packages = " ".join(prepared.packages())
    return f"k3s_version={version}\ninstaller_sha256={installer_sha256}\npackages={packages}\n"


def prepared_image(base: Image, version: str, folder: Path) -> Layout:
    """A copy of the test image holding what `template --prepare` leaves in a template."""
    folder.mkdir(parents=True, exist_ok=True)
    files = folder / "files"
    files.mkdir(exist_ok=True)
    real = REAL_INSTALLER.is_file()
    installer = REAL_INSTALLER.read_bytes() if real else STAND_IN_INSTALLER.encode()
    local = {
        "binary": (STAND_IN_BINARY.encode(), 0o755),
        "installer": (installer, 0o755),
        "images": (b"", 0o644),
        "marker": (_marker(version, hashlib.sha256(installer).hexdigest()).encode(), 0o644),
        "sources": (UNREACHABLE_SOURCES.encode(), 0o644),
    }
    for name, (data, mode) in local.items():
        (files / name).write_bytes(data)
        (files / name).chmod(mode)
    disk = folder / "root.raw"
    shutil.copyfile(base.disk, disk)
    images = f"{k3s.PREPARED_IMAGES_DIR}/{prepared.IMAGES}"
    commands = [
        *(f"mkdir {d}" for d in _parents(k3s.PREPARED_MARKER, k3s.PREPARED_INSTALLER, images)),
        f"write {files / 'marker'} {k3s.PREPARED_MARKER}",
        f"write {files / 'binary'} {k3s.PREPARED_BINARY}",
        f"write {files / 'installer'} {k3s.PREPARED_INSTALLER}",
        f"write {files / 'images'} {images}",
        # The local apt stand-in goes: only the unreachable mirror is left.
        "rm /etc/apt/sources.list",
        f"write {files / 'sources'} /etc/apt/sources.list",
        "rm /srv/mirror/Packages",
        "rmdir /srv/mirror",
    ]
    script = folder / "debugfs.cmds"
    script.write_text("\n".join(commands) + "\n")
    done = subprocess.run(
        ["debugfs", "-w", "-f", str(script), str(disk)], capture_output=True, text=True
    )
    problems = [line for line in done.stderr.splitlines() if line.strip() and "debugfs" not in line]
    assert done.returncode == 0 and not problems, f"debugfs: {done.stderr}"
    digest = hashlib.sha256(STAND_IN_BINARY.encode()).hexdigest()
    return Layout(Image(disk, base.kernel, base.initrd, None), digest, real)


def _parents(*paths: str) -> list[str]:
    """Folders the base image lacks, parents first."""
    known = {"/", "/var", "/var/lib", "/usr", "/usr/local", "/usr/local/bin"}
    out: list[str] = []
    for path in paths:
        parts = Path(path).parent.parts
        for depth in range(2, len(parts) + 1):
            folder = "/" + "/".join(parts[1:depth])
            if folder not in known and folder not in out:
                out.append(folder)
    return out


# -- what the guest sent ----------------------------------------------------------------------
def read_capture(pcap: Path, mac: str) -> Traffic:
    """TCP SYNs and DNS questions in frames from the guest's MAC (libpcap format, Ethernet)."""
    data = pcap.read_bytes()
    guest = bytes.fromhex(mac.replace(":", ""))
    traffic, offset = Traffic(), 24
    while offset + 16 <= len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        if frame[6:12] == guest:
            _classify(frame, traffic)
    return traffic


def _classify(frame: bytes, traffic: Traffic) -> None:
    ethertype = int.from_bytes(frame[12:14], "big")
    packet = frame[14:]
    if ethertype == 0x0800:
        proto, payload = packet[9], packet[(packet[0] & 0x0F) * 4 :]
        dst = ".".join(str(b) for b in packet[16:20])
    elif ethertype == 0x86DD:
        proto, payload, dst = packet[6], packet[40:], packet[24:40].hex()
    else:
        return
    port = int.from_bytes(payload[2:4], "big") if len(payload) >= 4 else 0
    if proto == 6 and len(payload) > 13 and payload[13] & 0x02 and port == 53:
        traffic.dns_over_tcp += 1
    elif proto == 6 and len(payload) > 13 and payload[13] & 0x02:
        traffic.tcp.append(f"{dst}:{port}")
    elif proto == 17 and port == 53:
        traffic.dns.append(_qname(payload[8 + 12 :]))


def _qname(data: bytes) -> str:
    labels, i = [], 0
    while i < len(data) and data[i]:
        labels.append(data[i + 1 : i + 1 + data[i]].decode("ascii", "replace"))
        i += 1 + data[i]
    return ".".join(labels)


# -- one first boot ---------------------------------------------------------------------------
def first_boot(image: Image, node: Target, folder: Path, installs: bool) -> FirstBoot:
    """Boot the node's seed once; `installs`: wait for the K3s install unit to succeed."""
    folder.mkdir(parents=True, exist_ok=True)
    disk = Disk.over(image, folder)
    iso = write_seed_iso(node.seed, folder)
    pcap = folder / "net.pcap"
    capture = ["-object", f"filter-dump,id=dump0,netdev=net0,file={pcap}"]
    log = folder / "serial-boot1.log"
    with booted(image, disk, iso, node.mac, "pc", log, extra=capture) as running:
        guest = Guest(running.agent)
        status = checks.wait_for_cloud_init(guest, running.started + BOOT_TIMEOUT)
        done = time.monotonic() - running.started
        checks.assert_cloud_init_clean(guest, status)
        installed = None
        if installs:
            _wait_installed(guest, node, running.started + 300)
            installed = time.monotonic() - running.started
        output = guest.read("/var/log/cloud-init-output.log")
        running.power_off()
    return FirstBoot(done, installed, read_capture(pcap, node.mac), output)


def _wait_installed(guest: Guest, node: Target, deadline: float) -> None:
    unit = k3s.INSTALL_UNIT
    while True:
        shown = guest.sh(f"systemctl show {unit} -p ActiveState -p Result -p NRestarts")
        props = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
        if props.get("ActiveState") == "inactive" and props.get("Result") == "success":
            break
        assert props.get("Result") in ("success", None) or time.monotonic() < deadline, props
        assert time.monotonic() < deadline, f"{unit} did not succeed: {props}"
        time.sleep(3)
    assert props["NRestarts"] == "0", f"{unit} needed retries: {props}"
    version = node.cluster.cluster.k3s_version
    assert guest.read(k3s.INSTALLED_MARKER).strip() == version


def prove_prepared(layout: Layout, node: Target, boot: FirstBoot, guest_binary: str) -> None:
    """What a prepared first boot must show (the boot already checked cloud-init clean)."""
    assert boot.k3s_installed is not None
    assert "every package is installed already; apt is not run" in boot.output
    assert boot.traffic.tcp == [], f"TCP connections: {boot.traffic.tcp}"
    # The network's search domain is tried too: 0.debian.pool.ntp.org.lab.test.
    asked = [n for n in boot.traffic.dns if not any(t in n for t in TIME_SERVERS)]
    assert asked == [], f"DNS questions besides the time servers': {asked}"
    assert guest_binary == layout.binary_sha256, "the K3s binary was replaced"


def run(folder: Path) -> tuple[FirstBoot, FirstBoot, Layout]:
    """The same node, first on the plain image, then on the prepared one, one after the
    other so the two timings compare."""
    node = target(NODE)
    base = cached_or_build()
    layout = prepared_image(base, node.cluster.cluster.k3s_version, folder / "image")
    plain = first_boot(base, node, folder / "plain", installs=False)
    ready = first_boot(layout.image, node, folder / "prepared", installs=True)
    return plain, ready, layout


def binary_digest(layout: Layout, folder: Path) -> str:
    """sha256 of /usr/local/bin/k3s on the prepared node's disk after its boot."""
    out = folder / "k3s.after"
    disk = folder / "prepared" / "disk.qcow2"
    raw = folder / "prepared" / "after.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True)
    subprocess.run(
        ["debugfs", "-R", f"dump {k3s.PREPARED_BINARY} {out}", str(raw)],
        check=True,
        capture_output=True,
    )
    raw.unlink()
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.qemu.prepared")
    parser.add_argument("--workdir", type=Path, help="where the disks, captures and logs go")
    args = parser.parse_args(argv)
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="qemu-prepared-"))
    plain, ready, layout = run(folder)
    print(f"{NODE} on the plain image:    {plain}")
    print(f"{NODE} on a prepared image:   {ready}")
    installer = "K3s's own install.sh" if layout.real_installer else "the stand-in install.sh"
    print(f"stand-in K3s binary sha256 {layout.binary_sha256}; {installer}")
    prove_prepared(layout, target(NODE), ready, binary_digest(layout, folder))
    done = preparation_boot(layout, folder / "preparation")
    print(f"preparation seed on the prepared layout: {done}")
    assert done.powered_off is not None and done.machine_id == b"" and not done.cloud_state
    print(f"OK: 0 fetches on the prepared image; files kept in {folder}")
    return 0


# -- the preparation seed itself ----------------------------------------------------------------
@dataclass(frozen=True)
class Preparation:
    powered_off: float | None  # seconds; None when it was still running at the deadline
    machine_id: bytes
    cloud_state: list[str]  # what is left in /var/lib/cloud


def preparation_boot(layout: Layout, folder: Path, timeout: float = 400) -> Preparation:
    """The preparation seed on an image that already holds the layout (it cannot download
    here): it must find K3s in place, fetch nothing, clean cloud-init and power off alone."""
    from generator.render.prepared import preparation_seed
    from tests.qemu.cluster import qemu_cluster

    folder.mkdir(parents=True, exist_ok=True)
    disk = Disk.over(layout.image, folder)
    iso = write_seed_iso(preparation_seed(qemu_cluster()), folder)
    mac = "52:54:00:12:34:56"
    powered_off = None
    with booted(layout.image, disk, iso, mac, "pc", folder / "serial-boot1.log") as running:
        try:
            running.process.wait(timeout)
            powered_off = time.monotonic() - running.started
        except subprocess.TimeoutExpired:
            pass
    raw = folder / "after.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk.path), str(raw)], check=True)
    machine_id = _debugfs(raw, "cat /etc/machine-id")
    listing = _debugfs(raw, "ls -p /var/lib/cloud").decode()
    left = [line.split("/")[5] for line in listing.splitlines() if line.count("/") >= 6]
    raw.unlink()
    return Preparation(powered_off, machine_id, [n for n in left if n not in (".", "..")])


def _debugfs(raw: Path, command: str) -> bytes:
    done = subprocess.run(["debugfs", "-R", command, str(raw)], capture_output=True, check=True)
    return done.stdout


if __name__ == "__main__":
    sys.exit(main())
