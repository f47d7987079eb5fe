"""The HTTPS server: token check, scripted moments, and the few paths `status` reads."""

from __future__ import annotations

import base64
import contextlib
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
    moments: list[Moment]
    refuse: int = 0
    polls: int = 0
    requests: list[str] = field(default_factory=list)

    @property
    def now(self) -> Moment:
        return self.moments[min(max(self.polls - 1, 0), len(self.moments) - 1)]


class NotFound(Exception):
    pass


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


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

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            with kube.lock:
                if kube.world.refuse > 0:
                    kube.world.refuse -= 1
                    self._drop()
                    return
            path = urllib.parse.urlsplit(self.path).path
            with kube.lock:
                kube.world.requests.append(path)
            if self.headers.get("Authorization") != f"Bearer {kube.token}":
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return
            try:
                with kube.lock:
                    body = answer(kube.world, path)
                self._send(200, body)
            except NotFound as exc:
                self._send(404, _status(404, "NotFound", str(exc)))

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
