"""Real first boots of rendered seeds: a Debian 12 cloud VM under QEMU (TCG), checked through
its guest agent. See tests/test_qemu_boot.py and `python -m tests.qemu.run --help`."""
