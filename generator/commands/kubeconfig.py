from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from generator.commands._common import add_command, connect_from_disk
from generator.commands._io import spinner, warn


def configure(sub: Any) -> None:
    parser = add_command(
        sub,
        "kubeconfig",
        run,
        help="fetch K3s's admin kubeconfig through the guest agent (no SSH), mode 0600",
    )
    parser.add_argument(
        "-o",
        dest="output",
        type=Path,
        metavar="FILE",
        help="where to write it (default: <cluster>.kubeconfig in the cluster repo)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="merge into $KUBECONFIG (its first file) or ~/.kube/config instead",
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help="API address to write instead of https://<api_vip or server IP>:6443",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="how long to wait for K3s to write its kubeconfig (default 600)",
    )
    parser.add_argument("--interval", type=float, default=5.0, metavar="S", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from generator.environment import Environment
    from generator.errors import UsageError
    from generator.proxmox import agent
    from generator.proxmox.observe import host_of
    from generator.status import gather, kubeconfig

    if args.merge and args.output:
        raise UsageError("choose -o FILE or --merge, not both")
    env = Environment.read()
    client, cluster = connect_from_disk(args.directory, env, warn)
    first = cluster.first_server
    deadline = time.monotonic() + args.timeout
    with client.until(deadline):
        pve_node = host_of(client, cluster, first)  # wherever Proxmox has it, HA included
    with spinner():
        text = agent.wait_for_file(
            client,
            pve_node,
            first.vmid,
            agent.K3S_KUBECONFIG,
            timeout=max(0.0, deadline - time.monotonic()),
            interval=args.interval,
            on_wait=_waiting(first.name),
        )
    k3s_yaml = kubeconfig.parse(text, f"{first.name}:{agent.K3S_KUBECONFIG}")
    server = args.server or kubeconfig.api_server(cluster)
    ours = kubeconfig.rewrite(k3s_yaml, cluster.name, server)
    if args.merge:
        target = kubeconfig.merge_target(env)
        merged = kubeconfig.merge_into(target, ours)
        print(f"merged context {cluster.name} ({server}) into {target}")
        if merged.get("current-context") != cluster.name:
            print(f"use it: kubectl config use-context {cluster.name}")
        return 0
    target = args.output or gather.kubeconfig_path(cluster, args.directory)
    kubeconfig.write(target, ours)
    print(f"wrote {target} (mode 0600, server {server})")
    print(f"use it: export KUBECONFIG={target.resolve()}")
    return 0


def _waiting(name: str) -> Any:
    said: set[str] = set()

    def on_wait(why: str) -> None:
        if why not in said:
            said.add(why)
            print(f"waiting for {name}: {why}", file=sys.stderr, flush=True)

    return on_wait
