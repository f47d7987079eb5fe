"""`secret set|unset|get|list`: change the encrypted store; values come from a prompt or stdin,
never from the command line (where shell history and `ps` would keep them). `get` prints one
value, e.g. the Grafana or Traefik dashboard password to log in with."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

from generator.cli import directory_option
from generator.errors import UsageError

if TYPE_CHECKING:
    from generator.secrets import Secrets

NAME_HELP = (
    "grafana_admin_password, traefik_dashboard_password, git_deploy_key, git_token,"
    " datastore_password, dns_api_token, proxmox_token, or NAMESPACE/SECRET/KEY for a"
    " Kubernetes Secret of your own"
)


def configure(sub: Any) -> None:
    parser = sub.add_parser("secret", help="set, unset, get or list the lab's encrypted secrets")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    setter = verbs.add_parser(
        "set", help="set a secret; the value is read from a prompt, or from stdin when piped"
    )
    setter.add_argument("name", metavar="NAME", help=NAME_HELP)
    unsetter = verbs.add_parser("unset", help="remove a secret you set")
    unsetter.add_argument("name", metavar="NAME", help=NAME_HELP)
    getter = verbs.add_parser(
        "get", help="print one secret's value (e.g. a dashboard password) on stdout"
    )
    getter.add_argument("name", metavar="NAME", help=f"{NAME_HELP}; or k3s_token, agent_token")
    lister = verbs.add_parser("list", help="show the names of the secrets (never the values)")
    verbs_and_runs = (
        (setter, run_set),
        (unsetter, run_unset),
        (getter, run_get),
        (lister, run_list),
    )
    for verb, run in verbs_and_runs:
        directory_option(verb)
        verb.set_defaults(run=run)


def run_set(args: argparse.Namespace) -> int:
    from generator import secrets, secretstore

    name = secrets.parse_name(args.name)
    secretstore.load(args.directory)  # the store and key are usable: ask only then
    value = read_value(str(name))  # and move an old plain store only once there is a value
    _save(args, secrets.with_value(_open(args), name, value))
    print(f"set {name} in secrets.sops.yaml (encrypted)")
    print("next: homelab-gen render, then commit and push; Flux applies it")
    return 0


def run_unset(args: argparse.Namespace) -> int:
    from generator import secrets

    name = secrets.parse_name(args.name)
    store = _open(args)
    if str(name) not in secrets.names(store):
        raise UsageError(f"secret {name} is not set", "see 'homelab-gen secret list'")
    _save(args, secrets.with_value(store, name, None))
    print(f"removed {name} from secrets.sops.yaml")
    print("next: homelab-gen render, then commit and push")
    return 0


def run_get(args: argparse.Namespace) -> int:
    from generator import secrets, secretstore

    name = secrets.parse_name(args.name, reading=True)
    value = secrets.value_of(secretstore.load(args.directory), name)
    if value is None:
        raise UsageError(f"secret {name} is not set", "see 'homelab-gen secret list'")
    print(value)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from generator import secrets, secretstore

    for name in secrets.names(secretstore.load(args.directory)):
        print(name)
    return 0


def read_value(name: str) -> str:
    """From a prompt (asked twice) on a terminal, else all of stdin less one final newline."""
    if sys.stdin.isatty():
        value = getpass.getpass(f"value for {name}: ")
        if getpass.getpass("again: ") != value:
            raise UsageError("the two values differ", "nothing was changed; try again")
    else:
        value = sys.stdin.read()
        if value.count("\n") == 1 and value.endswith("\n"):
            value = value[:-1].removesuffix("\r")
    if not value.strip():
        raise UsageError(
            f"no value for {name}",
            f'type it at the prompt, or pipe it: printf %s "$VALUE" | homelab-gen secret set'
            f" {name}",
        )
    return value


def _open(args: argparse.Namespace) -> Secrets:
    """The store, moved from the plain one of earlier versions first (said on stdout)."""
    from generator import secretstore

    migration = secretstore.migrate(args.directory)
    for note in migration.notes if migration else ():
        print(f"secrets: {note}")
    return secretstore.load(args.directory)


def _save(args: argparse.Namespace, store: Secrets) -> None:
    from generator import secretstore

    secretstore.save(args.directory, store)
