"""The fake PVE's storage routes (pve-storage's API): storages, content, delete, upload.

Each handler follows pve-storage's PVE/API2/Storage/*.pm; the multipart body of an upload
is parsed before this, by the HTTP layer in server.py, as pve-http-server does.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from tests.fakepve.server import ApiError, FakePVE, Request, Route, TaskFailed


def storages(pve: FakePVE, req: Request) -> Any:
    return [
        {
            "storage": name,
            "type": s.type,
            "content": ",".join(sorted(s.content)),
            "total": s.total,
            "avail": s.avail,
            "used": s.total - s.avail,
            "active": 1,
            "enabled": 1,
            "shared": int(s.shared),
        }
        for name, s in pve.node_state(req.params["node"]).storages.items()
    ]


def storage_config(pve: FakePVE, req: Request) -> Any:
    for node in pve.state.nodes.values():
        if req.params["storage"] in node.storages:
            s = node.storages[req.params["storage"]]
            out = {
                "storage": req.params["storage"],
                "type": s.type,
                "content": ",".join(sorted(s.content)),
            }
            if s.path:
                out["path"] = s.path
            return out
    raise ApiError(500, f"storage '{req.params['storage']}' does not exist")


def _storage(pve: FakePVE, req: Request) -> Any:
    found = pve.node_state(req.params["node"]).storages.get(req.params["storage"])
    if found is None:
        raise ApiError(500, f"storage '{req.params['storage']}' does not exist")
    return found


def content(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        store = _storage(pve, req)
        wanted = req.params.get("content")
        volumes = dict(store.volumes)
        # Snippets arrive over SFTP, not the API: list them from disk, as PVE does.
        folder = Path(store.path or "/nonexistent") / "snippets"
        if "snippets" in store.content and folder.is_dir():
            for file in folder.iterdir():
                volid = f"{req.params['storage']}:snippets/{file.name}"
                volumes[volid] = {"content": "snippets", "size": file.stat().st_size}
        return [
            {"volid": volid, "content": v["content"], "size": v["size"], "format": v["content"]}
            for volid, v in sorted(volumes.items())
            if wanted is None or v["content"] == wanted
        ]


def delete_volume(pve: FakePVE, req: Request) -> Any:
    with pve.lock:
        store = _storage(pve, req)
        volid = req.params["volume"]
        if ":" not in volid:
            volid = f"{req.params['storage']}:{volid}"
        on_disk = Path(store.path or "/nonexistent") / "snippets" / volid.split("/", 1)[-1]
        is_snippet = volid.startswith(f"{req.params['storage']}:snippets/") and on_disk.is_file()
        if volid not in store.volumes and not is_snippet:
            raise ApiError(500, f"volume '{volid}' does not exist")

    def body() -> None:
        with pve.lock:
            store.volumes.pop(volid, None)
            if is_snippet:
                on_disk.unlink(missing_ok=True)

    return pve.run_task(req, req.params["node"], "imgdel", "", body)


def upload(pve: FakePVE, req: Request) -> Any:
    store = _storage(pve, req)
    kind = req.params["content"]
    if kind not in store.content:
        raise ApiError(500, f"storage '{req.params['storage']}' does not support '{kind}' content")
    filename, data = req.files.get("filename", (req.params["filename"], b""))
    if kind == "iso" and not filename.endswith((".iso", ".img")):
        raise ApiError(400, "Parameter verification failed.", {"filename": "wrong file extension"})
    algorithm = req.params.get("checksum-algorithm")

    def body() -> None:
        time.sleep(pve.state.latency.upload)
        if algorithm and hashlib.new(algorithm, data).hexdigest() != req.params.get("checksum"):
            raise TaskFailed("TASK ERROR: checksum mismatch")
        with pve.lock:
            volid = f"{req.params['storage']}:{kind}/{filename}"
            store.volumes[volid] = {"content": kind, "size": len(data), "data": data}

    return pve.run_task(req, req.params["node"], "imgcopy", "", body)


STORAGE_ROUTES: list[Route] = [
    ("GET", "/nodes/{node}/storage", storages),
    ("GET", "/storage/{storage}", storage_config),
    ("GET", "/nodes/{node}/storage/{storage}/content", content),
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", delete_volume),
    ("POST", "/nodes/{node}/storage/{storage}/upload", upload),
]
