"""Boot the test image under qemu-system-x86_64 (TCG) with a NoCloud seed CD, as `boot` would.

Layout follows Proxmox: machine `pc` puts the seed CD on IDE (ide2); for q35 the seed goes
on virtio-scsi, since Debian 12's cloud kernel has no AHCI driver. The NIC gets the node's
MAC, which network-config matches on. User-mode networking with `restrict=on` keeps every
packet inside the VM's own 10.0.2.0/24.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.qemu.agent import GuestAgent
from tests.qemu.image import Image

Machine = Literal["pc", "q35"]
# From starting qemu to cloud-init done. Generous: TCG on two shared cores, several VMs at
# once, and apt's update waits ~90 s on DNS that restrict=on never answers.
BOOT_TIMEOUT = 600.0


class BootFailure(AssertionError):
    """A boot or a check on it failed; the message carries the serial log's tail."""


@dataclass(frozen=True)
class Disk:
    """A node's own copy-on-write disk over the cached image: survives a reboot."""

    path: Path

    @classmethod
    def over(cls, image: Image, folder: Path) -> Disk:
        path = folder / "disk.qcow2"
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(image.disk),
                str(path),
            ],
            check=True,
        )
        return cls(path)


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    agent: GuestAgent
    serial_log: Path
    started: float

    def power_off(self, grace: float = 120.0) -> None:
        """A clean shutdown, so the disk is consistent for the next boot of the same node."""
        self.agent.shutdown()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            raise BootFailure(f"the VM did not power off within {grace:.0f} s") from None

    def serial_tail(self, lines: int = 60) -> str:
        if not self.serial_log.exists():
            return "(no serial log)"
        text = self.serial_log.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def qemu_argv(
    image: Image,
    disk: Disk,
    seed_iso: Path,
    mac: str,
    machine: Machine,
    agent_socket: Path,
    serial_log: Path,
    cpus: int = 1,
    extra: Sequence[str] = (),
) -> list[str]:
    argv = [
        "qemu-system-x86_64",
        "-machine", f"{machine},accel=tcg",
        "-cpu", "max",
        "-smp", str(cpus),
        "-m", "1536",
        "-display", "none",
        "-monitor", "none",
        "-serial", f"file:{serial_log}",
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", image.cmdline,
        "-drive", f"file={disk.path},if=none,id=root,format=qcow2,discard=unmap",
        "-device", "virtio-blk-pci,drive=root",
        "-drive", f"file={seed_iso},if=none,id=seed,media=cdrom,format=raw,readonly=on",
        *_seed_cd(machine),
        "-netdev", "user,id=net0,restrict=on,net=10.0.2.0/24",
        "-device", f"virtio-net-pci,netdev=net0,mac={mac}",
        "-chardev", f"socket,id=qga0,path={agent_socket},server=on,wait=off",
        "-device", "virtio-serial-pci",
        "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        *extra,
    ]  # fmt: skip
    return argv


def _seed_cd(machine: Machine) -> list[str]:
    if machine == "pc":
        return ["-device", "ide-cd,drive=seed,bus=ide.1,unit=0"]  # ide2, as Proxmox does
    return ["-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-cd,drive=seed,bus=scsi0.0"]


def write_seed_iso(seed: Mapping[str, str], folder: Path) -> Path:
    from generator.proxmox.seediso import build_seed_iso

    path = folder / "seed.iso"
    path.write_bytes(build_seed_iso(seed))
    return path


@contextmanager
def booted(
    image: Image,
    disk: Disk,
    seed_iso: Path,
    mac: str,
    machine: Machine,
    serial_log: Path,
    cpus: int = 1,
    timeout: float = BOOT_TIMEOUT,
    extra: Sequence[str] = (),
) -> Iterator[Running]:
    """Start the VM and yield once its guest agent answers; power it off on the way out.
    `extra`: more qemu arguments (a network capture, say)."""
    # A unix socket path must stay short (108 bytes), so it lives in its own short folder.
    sockets = Path(tempfile.mkdtemp(prefix="qga-"))
    agent_socket = sockets / "qga.sock"
    argv = qemu_argv(image, disk, seed_iso, mac, machine, agent_socket, serial_log, cpus, extra)
    serial_log.write_text("")
    started = time.monotonic()
    qemu_log = serial_log.with_name(serial_log.stem + ".qemu.log")
    with qemu_log.open("w") as err:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    agent = GuestAgent(agent_socket)
    running = Running(process, agent, serial_log, started)
    try:
        _wait_for_socket(process, agent_socket, qemu_log, started + 30)
        agent.wait_ready(started + timeout)
        yield running
    except Exception as exc:
        raise BootFailure(
            f"{exc}\n\nserial log {serial_log} (last lines):\n{running.serial_tail()}"
        ) from exc
    finally:
        _stop(running)
        shutil.rmtree(sockets, ignore_errors=True)


def _wait_for_socket(
    process: subprocess.Popen[bytes], path: Path, qemu_log: Path, deadline: float
) -> None:
    while not path.exists():
        if process.poll() is not None:
            err = qemu_log.read_text(errors="replace").strip()
            raise RuntimeError(f"qemu exited with {process.returncode}: {err}")
        if time.monotonic() > deadline:
            raise RuntimeError("qemu did not open the guest agent socket")
        time.sleep(0.2)


def _stop(running: Running) -> None:
    """Pull the plug on a VM still running: its disk is not booted again."""
    process = running.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    running.agent.close()
