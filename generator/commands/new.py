from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generator.scaffold.create import NewRepo


def configure(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "new",
        help="scaffold a cluster repo: asks questions, writes cluster.yaml, renders, git init",
        description=(
            "Scaffold a cluster repo in DIR (new, or empty; '.' is the current folder). Each"
            " answer is checked as it is typed. --answers FILE takes a YAML mapping of"
            " question names to answers (cluster_name, domain, network_cidr, servers,"
            " agents, first_node_ip, api_vip, proxmox_host, git_url, git_branch,"
            " ssh_public_key, longhorn, ...) and asks nothing; every repo keeps its own in"
            " .homelab-gen/answers.yaml, so `new DIR --answers that-file` makes it again."
        ),
    )
    parser.add_argument("target", type=Path, metavar="DIR", help="folder to create")
    parser.add_argument("--no-input", action="store_true", help="take every default; ask nothing")
    parser.add_argument("--answers", type=Path, metavar="FILE", help="YAML answers; asks nothing")
    parser.add_argument(
        "--no-git", action="store_true", help="skip git init, the first commit and the remote"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from generator.errors import HomelabError, UsageError
    from generator.scaffold import create

    asks = not (args.no_input or args.answers is not None)
    if asks and not sys.stdin.isatty():
        raise UsageError("stdin is not a terminal: use --no-input or --answers FILE")
    answers = create.gather(args.target, args.answers, interactive=asks, home=Path.home())
    try:
        result = create.create(args.target, answers, use_git=not args.no_git)
    except HomelabError:
        if asks:
            saved = create.save_for_retry(answers)
            print(
                f"your answers are kept in {saved}: fix them there, then run"
                f" 'homelab-gen new {args.target} --answers {saved}'",
                file=sys.stderr,
            )
        raise
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"created {args.target} with {result.file_count} files"
        + (" and a first git commit" if result.committed else "")
        + f"; the answers are in {create.ANSWERS_FILE}"
    )
    if result.deploy_key:
        print("add this read-only deploy key to the git repo, so Flux can pull it:")
        print(f"  {result.deploy_key}")
    for number, step in enumerate(next_steps(args.target, result), 1):
        print(f"{number}. {step}")
    return 0


def next_steps(target: Path, result: NewRepo) -> list[str]:
    """What to do after `new`, in order, with this repo's own values."""
    from generator.secretstore import KEY_FILE

    answers = result.answers
    url, branch = answers["git_url"], answers["git_branch"]
    user, _, token = str(answers["proxmox_token_id"]).partition("!")
    steps = []
    if target.resolve() != Path.cwd().resolve():
        steps.append(f"cd {target}")
    if result.committed:
        steps.append(f"create the empty repo {url}, then: git push -u origin {branch}")
    else:
        steps.append(
            f"create the empty repo {url}, then: git init -b {branch} && git add -A"
            f" && git commit -m 'new cluster repo' && git remote add origin {url}"
            f" && git push -u origin {branch}"
        )
    steps += [
        f"on the Proxmox host, make the API token: pveum user add {user};"
        f" pveum user token add {user} {token} --privsep 1 (it prints the secret once),"
        " then grant it the privileges (homelab-gen template lists any that are missing)",
        "export HOMELAB_GEN_PVE_TOKEN=<that secret> (or: homelab-gen secret set proxmox_token)",
        f"homelab-gen template  (the cloud-image template VM {answers['template_vmid']})",
        "homelab-gen boot  (uploads the seeds, clones and starts the VMs)",
        "homelab-gen status --wait  (follows every node to Ready and Flux to done)",
        f"back up {KEY_FILE} now (a password manager will do): it is the one key to every"
        " secret in this repo, and it is not in git",
    ]
    return steps
