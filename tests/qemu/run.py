"""Boot one node of the QEMU test cluster by hand and watch its serial console.

    python -m tests.qemu.run --node server-1 [--machine q35] [--reboot] [--quiet]

Builds (or reuses) the cached Debian 12 image, renders the node's seed from the test
cluster in tests/qemu/cluster.py, boots it under TCG, streams the serial log, runs the same
checks as the test tier and prints how long each step took. Files stay in --workdir.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.qemu import image
from tests.qemu.cluster import qemu_cluster, target
from tests.qemu.prove import Plan, prove


def main(argv: list[str] | None = None) -> int:
    nodes = [node.name for node in qemu_cluster().nodes]
    parser = argparse.ArgumentParser(
        prog="python -m tests.qemu.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--node", choices=nodes, default=nodes[0])
    parser.add_argument("--machine", choices=("pc", "q35"), default="pc")
    parser.add_argument("--reboot", action="store_true", help="boot a second time and check")
    parser.add_argument("--cpus", type=int, default=2, help="virtual CPUs (TCG threads)")
    parser.add_argument("--quiet", action="store_true", help="do not stream the serial log")
    parser.add_argument("--workdir", type=Path, help="where the disk, seed and logs go")
    args = parser.parse_args(argv)

    folder = args.workdir or Path(tempfile.mkdtemp(prefix=f"qemu-{args.node}-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    built = image.cached_or_build()
    how = f"built in {built.build_seconds:.0f} s" if built.build_seconds else "from the cache"
    print(f"image {built.disk.parent} ({how})", flush=True)
    stop = threading.Event()
    if not args.quiet:
        threading.Thread(target=_follow, args=(folder, stop), daemon=True).start()
    try:
        plan = Plan(target(args.node), args.machine, args.reboot)
        timings = prove(built, plan, folder, cpus=args.cpus, say=_say)
    except AssertionError as exc:
        stop.set()
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    stop.set()
    print(
        f"\nOK: {args.node} on {args.machine}: {timings} (total {time.monotonic() - started:.0f} s)"
    )
    print(f"files kept in {folder}")
    return 0


def _say(text: str) -> None:
    print(f"\n>>> {text}", flush=True)


def _follow(folder: Path, stop: threading.Event) -> None:
    """Stream each serial-boot*.log as it grows, like `tail -f`."""
    shown: dict[Path, int] = {}
    while not stop.is_set():
        for log in sorted(folder.glob("serial-boot*.log")):
            data = log.read_bytes()
            if len(data) > shown.get(log, 0):
                sys.stdout.write(data[shown.get(log, 0) :].decode(errors="replace"))
                sys.stdout.flush()
                shown[log] = len(data)
        stop.wait(0.5)


if __name__ == "__main__":
    sys.exit(main())
