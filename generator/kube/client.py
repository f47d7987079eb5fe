"""Connecting to the K3s API with a kubeconfig, and explaining why it did not answer."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from generator.errors import HomelabError
from generator.waiting import waiting_for

# (connect, read) seconds: a VIP that is not up yet must not freeze a caller for long.
TIMEOUT = (5.0, 20.0)


class Unreachable(HomelabError):
    """The API did not answer at all (refused, reset, timed out, TLS): worth asking again."""


def server(kubeconfig: dict[str, Any]) -> str:
    """The API server URL of the kubeconfig's first cluster."""
    clusters = kubeconfig.get("clusters") or [{}]
    return str((clusters[0].get("cluster") or {}).get("server", ""))


@contextlib.contextmanager
def connect(kubeconfig: dict[str, Any]) -> Iterator[Any]:
    """An ApiClient for the kubeconfig, closed on exit."""
    from kubernetes import client, config

    configuration = client.Configuration()
    load: Any = config.load_kube_config_from_dict  # untyped upstream
    load(kubeconfig, client_configuration=configuration, persist_config=False)
    # One try per request: the callers' own loops retry, urllib3's would stall them.
    configuration.retries = 0
    with client.ApiClient(configuration) as api:
        yield api


def seconds(span: float) -> str:
    """A wait as people say it: 0.2s, 45s, 300s."""
    return f"{span:.1f}s" if span < 10 else f"{span:.0f}s"


def host(api: Any) -> str:
    return str(api.configuration.host)


def explain(exc: Exception, server: str) -> str:
    """Why the API did not answer, in a user's words."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        if exc.status in (401, 403):
            return (
                f"{server} refused the kubeconfig's credentials ({exc.status} {exc.reason});"
                " run homelab-gen kubeconfig again"
            )
        return f"{server} answered {exc.status} {exc.reason}"
    if type(exc).__name__ == "ConfigException":
        return f"the kubeconfig cannot be used: {exc}"
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in type(exc).__name__:
        return (
            f"TLS verification of {server} failed (a kubeconfig from an earlier cluster?"
            " run homelab-gen kubeconfig again)"
        )
    for needle, said in (
        ("Connection refused", "connection refused (K3s not started yet?)"),
        ("timed out", "timed out"),
        ("Connection reset", "connection reset (K3s starting?)"),
        ("RemoteDisconnected", "connection closed (K3s starting?)"),
        ("No route to host", "no route to host"),
    ):
        if needle in text:
            return f"{server} not answering: {said}"
    return f"{server} not answering: {type(exc).__name__}"


def status(exc: BaseException) -> int | None:
    """The HTTP status of an answer the API gave, None when it gave none."""
    from kubernetes.client.exceptions import ApiException

    return int(exc.status) if isinstance(exc, ApiException) and exc.status else None


def message(exc: BaseException) -> str:
    """The API's own words in a Status answer: its message, then each cause's message."""
    body = getattr(exc, "body", None)
    try:
        answer = json.loads(body) if body else {}
    except (TypeError, ValueError):
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    causes = (answer.get("details") or {}).get("causes") or []
    words = [str(answer.get("message") or getattr(exc, "reason", "") or exc)]
    words += [str(c["message"]) for c in causes if c.get("message")]
    return " ".join(words)


@contextlib.contextmanager
def answering(api: Any, doing: str) -> Iterator[None]:
    """Turns an API that cannot be asked into a HomelabError naming what was being done.

    Answers the caller handles itself (a 404, a 429) must be caught inside the block.
    """
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    waiting_for(f"the K3s API at {host(api)} ({doing})")
    try:
        yield
    except ApiException as exc:
        raise HomelabError(
            f"{doing}: {explain(exc, host(api))}: {message(exc)}",
            hint="check the cluster with kubectl, then run the command again",
        ) from exc
    except (HTTPError, OSError) as exc:
        raise Unreachable(
            f"{doing}: {explain(exc, host(api))}",
            hint="is the K3s API up? homelab-gen status shows it",
        ) from exc
