"""The HTTPS server: token check, scripted moments, the paths `status` reads, and with a
Cluster the node-lifecycle paths (nodes, pods, evictions, budgets)."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import secrets
import socket
import ssl
import struct
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakes.kube.cluster import ApiError, Cluster
from tests.fakes.tls import TLSFiles, make_tls


@dataclass
class Moment:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    instance: dict[str, Any] | None = None
    kustomizations: list[dict[str, Any]] = field(default_factory=list)
    helmreleases: list[dict[str, Any]] = field(default_factory=list)
    flux_crds: bool = True  # False: Flux is not installed, its API groups 404


@dataclass
class World:
    moments: list[Moment] = field(default_factory=lambda: [Moment()])
    refuse: int = 0
    polls: int = 0
    requests: list[str] = field(default_factory=list)  # "GET /api/v1/nodes", in order
    # Set: nodes, pods and budgets come from this mutable cluster (see cluster.py), each
    # request is one of its ticks, and the node-lifecycle paths below are served.
    cluster: Cluster | None = None

    @property
    def now(self) -> Moment:
        return self.moments[min(max(self.polls - 1, 0), len(self.moments) - 1)]


class NotFound(Exception):
    pass


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return ApiError(code, reason, message).body


def _list(kind: str, api_version: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": f"{kind}List",
        "apiVersion": api_version,
        "metadata": {"resourceVersion": "1"},
        "items": items,
    }


FLUX = {
    "fluxinstances": ("fluxcd.controlplane.io/v1", "FluxInstance"),
    "kustomizations": ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
    "helmreleases": ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
}
_FLUX_PATH = re.compile(
    r"^/apis/(?P<gv>[a-z.]+/v\d+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>\w+)(?:/(?P<name>[^/]+))?$"
)


def _items(moment: Moment, plural: str) -> list[dict[str, Any]]:
    if plural == "fluxinstances":
        return [moment.instance] if moment.instance else []
    found: list[dict[str, Any]] = getattr(moment, plural)
    return found


def answer(world: World, path: str) -> dict[str, Any]:
    """The JSON body for GET `path`; raises NotFound like the API server's 404."""
    if path == "/version":
        return {
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.4+k3s1",
            "platform": "linux/amd64",
        }
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/api/v1/nodes":
        world.polls += 1
        if world.cluster is not None:
            return _list("Node", "v1", list(world.cluster.nodes.values()))
        return _list("Node", "v1", world.now.nodes)
    found = _FLUX_PATH.match(path)
    if not found or found["plural"] not in FLUX or not world.now.flux_crds:
        raise NotFound("the server could not find the requested resource")
    api_version, kind = FLUX[found["plural"]]
    if found["gv"] != api_version:
        raise NotFound("the server could not find the requested resource")
    items = [
        o
        for o in _items(world.now, found["plural"])
        if found["ns"] is None or o["metadata"]["namespace"] == found["ns"]
    ]
    if found["name"] is None:
        return _list(kind, api_version, items)
    for item in items:
        if item["metadata"]["name"] == found["name"]:
            return item
    raise NotFound(f'{found["plural"]}.{api_version.split("/")[0]} "{found["name"]}" not found')


_NODE = re.compile(r"^/api/v1/nodes/(?P<name>[^/]+)$")
_PODS = re.compile(r"^/api/v1(?:/namespaces/(?P<ns>[^/]+))?/pods$")
_POD = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)$")
_EVICTION = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/eviction$")
_PDBS = re.compile(r"^/apis/policy/v1(?:/namespaces/(?P<ns>[^/]+))?/poddisruptionbudgets$")


def _node_selector(query: dict[str, list[str]]) -> str | None:
    """The node a pod list is limited to; only spec.nodeName is a supported field."""
    selector = (query.get("fieldSelector") or [""])[0]
    if not selector:
        return None
    field_name, _, value = selector.replace("==", "=").partition("=")
    if field_name != "spec.nodeName":
        # pkg/registry/core/pod ToSelectableFields: other labels are refused like this.
        raise ApiError(400, "BadRequest", f'field label not supported: "{field_name}"')
    return value


def lifecycle(
    cluster: Cluster, method: str, path: str, query: dict[str, list[str]], body: Any
) -> tuple[int, dict[str, Any]] | None:
    """(code, body) for the node-lifecycle paths, None for any other path."""
    if found := _NODE.match(path):
        name = found["name"]
        if method == "GET":
            return 200, cluster.get_node(name)
        if method == "PATCH":
            return 200, cluster.patch_node(name, body or {})
        if method == "DELETE":
            return 200, cluster.delete_node(name)
    if (found := _PODS.match(path)) and method == "GET":
        pods = cluster.pods_on(_node_selector(query), found["ns"])
        return 200, _list("Pod", "v1", pods)
    if (found := _POD.match(path)) and method == "GET":
        return 200, cluster.get_pod(found["ns"], found["name"])
    if (found := _EVICTION.match(path)) and method == "POST":
        return 201, cluster.evict(found["ns"], found["name"], body or {})
    if (found := _PDBS.match(path)) and method == "GET":
        pdbs = [
            cluster.pdb_status(p)
            for (ns, _), p in sorted(cluster.pdbs.items())
            if found["ns"] in (None, ns)
        ]
        return 200, _list("PodDisruptionBudget", "policy/v1", pdbs)
    return None


def respond(
    world: World, method: str, path: str, query: dict[str, list[str]], body: Any
) -> tuple[int, dict[str, Any]]:
    """(code, JSON body) for one request, errors as the API server's Status. The body is a
    copy taken before the cluster's clock moves on."""
    code, body = _respond(world, method, path, query, body)
    answered = copy.deepcopy(body)
    if world.cluster is not None:
        world.cluster.tick()  # the answer is out: the cluster moves on
    return code, answered


def _respond(
    world: World, method: str, path: str, query: dict[str, list[str]], body: Any
) -> tuple[int, dict[str, Any]]:
    try:
        if world.cluster is not None:
            answered = lifecycle(world.cluster, method, path, query, body)
            if answered is not None:
                return answered
        if method != "GET":
            message = "the server does not allow this method on the requested resource"
            return 405, _status(405, "MethodNotAllowed", message)
        return 200, answer(world, path)
    except NotFound as exc:
        return 404, _status(404, "NotFound", str(exc))
    except ApiError as exc:
        return exc.code, exc.body


class FakeKube:
    def __init__(self, world: World, tls: TLSFiles, token: str | None = None) -> None:
        self.world = world
        self.tls = tls
        self.token = token or secrets.token_hex(16)
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def k3s_yaml(self) -> str:
        """The kubeconfig as K3s writes it on a server (token auth instead of a client cert)."""
        ca = base64.b64encode(self.tls.ca_file.read_bytes()).decode()
        return (
            "apiVersion: v1\n"
            "clusters:\n"
            "- cluster:\n"
            f"    certificate-authority-data: {ca}\n"
            "    server: https://127.0.0.1:6443\n"
            "  name: default\n"
            "contexts:\n"
            "- context:\n"
            "    cluster: default\n"
            "    user: default\n"
            "  name: default\n"
            "current-context: default\n"
            "kind: Config\n"
            "preferences: {}\n"
            "users:\n"
            "- name: default\n"
            "  user:\n"
            f"    token: {self.token}\n"
        )

    def start(self) -> FakeKube:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, each answer would wait
        # for the client's delayed ACK (~40 ms).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            with kube.lock:
                if kube.world.refuse > 0:
                    kube.world.refuse -= 1
                    self._drop()
                    return
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with kube.lock:
                kube.world.requests.append(f"{method} {url.path}")
            if self.headers.get("Authorization") != f"Bearer {kube.token}":
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return
            body = json.loads(raw) if raw else None
            with kube.lock:
                code, answered = respond(
                    kube.world, method, url.path, urllib.parse.parse_qs(url.query), body
                )
            self._send(code, answered)

        def _send(self, code: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _drop(self) -> None:
            # Reset the connection: to the client, nothing is serving yet.
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    return Handler


@contextlib.contextmanager
def running_kube(directory: Path, world: World) -> Iterator[FakeKube]:
    tls = make_tls(directory / "fakekube-tls", ca_name="fake K3s CA")
    with FakeKube(world, tls) as kube:
        yield kube
