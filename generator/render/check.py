"""`validate`'s checks of the gitops/ tree on disk: its own consistency, users' files included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.error import YAMLError

from generator import yamlio
from generator.config.model import COMPONENT_BY_NAME, COMPONENTS, Cluster
from generator.render import charts
from generator.render.gitops import FLUX_SOURCE
from generator.render.gitops_secrets import SUFFIX as SOPS_SUFFIX
from generator.render.kustomize import FLUX_NAMESPACE
from generator.render.layout import APPS_DIR, CONFIGS_DIR, CONTROLLERS_DIR, GITOPS

KUSTOMIZE_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
FLUX_KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io", "Kustomization")
RERENDER = "run homelab-gen render"


@dataclass(frozen=True)
class Doc:
    path: str  # relative to the cluster repo
    body: dict[str, Any]

    @property
    def group(self) -> str:
        return str(self.body.get("apiVersion", "")).rpartition("/")[0]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        found = self.body.get("metadata")
        return found if isinstance(found, dict) else {}

    @property
    def is_kustomize_config(self) -> bool:
        # kustomize accepts a kustomization.yaml without apiVersion and kind.
        return self.group == "kustomize.config.k8s.io" or Path(self.path).name in KUSTOMIZE_FILES


def is_rendered(directory: Path) -> bool:
    return (directory / GITOPS).is_dir()


def check_tree(directory: Path, cluster: Cluster) -> list[str]:
    """Problems as `path: what is wrong (hint)`; [] when the tree is consistent."""
    root = directory / GITOPS
    if not root.is_dir():
        return [f"{GITOPS}/: not rendered yet ({RERENDER})"]
    problems: list[str] = []
    docs = list(_read_all(directory, root, problems))
    problems += check_kustomize_lists(directory, docs)
    problems += check_duplicates(docs, _patch_files(directory, docs))
    problems += check_flux_kustomizations(directory, docs)
    problems += check_sops_files(docs)
    problems += check_components(directory, cluster)
    return problems


def _yaml_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def _read_all(directory: Path, root: Path, problems: list[str]) -> Iterator[Doc]:
    for path in _yaml_files(root):
        rel = path.relative_to(directory).as_posix()
        try:
            loaded = yamlio.load_all_plain(path.read_text(encoding="utf-8"))
        except (YAMLError, UnicodeDecodeError) as exc:
            problems.append(f"{rel}: not valid YAML: {_first_line(exc)} (fix it, or {RERENDER})")
            continue
        for body in loaded:
            if isinstance(body, dict):
                yield Doc(rel, body)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- kustomization.yaml entries ------------------------------------------------------------


def _entries(doc: Doc, key: str) -> list[str]:
    found = doc.body.get(key)
    return [e for e in found if isinstance(e, str)] if isinstance(found, list) else []


def check_kustomize_lists(directory: Path, docs: list[Doc]) -> list[str]:
    problems = []
    for doc in docs:
        if not (doc.is_kustomize_config and doc.kind in ("Kustomization", "")):
            continue
        base = (directory / doc.path).parent
        for entry in _entries(doc, "resources") + _entries(doc, "components"):
            if "://" in entry:
                continue  # a remote base is not ours to check
            target = base / entry
            if target.is_file():
                continue
            if target.is_dir() and not any((target / n).is_file() for n in KUSTOMIZE_FILES):
                problems.append(
                    f"{doc.path}: lists {entry}/, which has no kustomization.yaml "
                    f"(add one there, or {RERENDER})"
                )
            elif not target.exists():
                problems.append(
                    f"{doc.path}: lists {entry}, which does not exist "
                    f"(remove the entry, or {RERENDER})"
                )
    return problems


# --- duplicate objects ---------------------------------------------------------------------


def _patch_files(directory: Path, docs: list[Doc]) -> set[str]:
    """Files used as kustomize patches: partial objects that repeat an id on purpose."""
    out: set[str] = set()
    for doc in docs:
        if not doc.is_kustomize_config:
            continue
        base = (directory / doc.path).parent
        entries = _entries(doc, "patchesStrategicMerge")
        patches = doc.body.get("patches")
        for patch in patches if isinstance(patches, list) else []:
            if isinstance(patch, dict) and isinstance(patch.get("path"), str):
                entries.append(patch["path"])
        out.update(
            (base / e).resolve().relative_to(directory.resolve()).as_posix() for e in entries
        )
    return out


def object_id(doc: Doc) -> tuple[str, str, str, str]:
    return (
        str(doc.body.get("apiVersion", "")),
        doc.kind,
        str(doc.metadata.get("namespace", "")),
        str(doc.metadata.get("name", "")),
    )


def _describe(key: tuple[str, str, str, str]) -> str:
    api, kind, namespace, name = key
    return f"{kind} {namespace + '/' if namespace else ''}{name} ({api})"


def check_duplicates(docs: list[Doc], patch_files: set[str] | None = None) -> list[str]:
    patches = patch_files or set()
    seen: dict[tuple[str, str, str, str], str] = {}
    problems = []
    for doc in docs:
        if doc.is_kustomize_config or not doc.kind or doc.path in patches:
            continue
        key = object_id(doc)
        if key in seen:
            problems.append(
                f"{doc.path}: defines {_describe(key)} again, already in {seen[key]} "
                "(keep one of them)"
            )
        else:
            seen[key] = doc.path
    return problems


# --- Flux Kustomizations -------------------------------------------------------------------


def _flux_kustomizations(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if (d.group, d.kind) == FLUX_KUSTOMIZATION]


def check_flux_kustomizations(directory: Path, docs: list[Doc]) -> list[str]:
    flux = _flux_kustomizations(docs)
    names = {
        (str(d.metadata.get("namespace", FLUX_NAMESPACE)), str(d.metadata.get("name")))
        for d in flux
    }
    problems = []
    for doc in flux:
        own_ns = str(doc.metadata.get("namespace", FLUX_NAMESPACE))
        found = doc.body.get("spec")
        spec: dict[str, Any] = found if isinstance(found, dict) else {}
        for dep in spec.get("dependsOn") or []:
            if not isinstance(dep, dict):
                continue
            target = (str(dep.get("namespace", own_ns)), str(dep.get("name")))
            if target not in names:
                problems.append(
                    f"{doc.path}: Kustomization {doc.metadata.get('name')} dependsOn "
                    f"{target[1]}, which no file defines (fix dependsOn, or {RERENDER})"
                )
        if not _syncs_this_repo(spec):
            continue  # its path is in another repository (the upgrade controller's)
        path = spec.get("path")
        if isinstance(path, str) and not (directory / path).is_dir():
            problems.append(
                f"{doc.path}: Kustomization {doc.metadata.get('name')} syncs {path}, "
                f"which does not exist (create it, or {RERENDER})"
            )
        elif isinstance(path, str) and _holds_sops(directory / path) and not _decrypts(spec):
            # Flux would apply the ciphertext as it is: the Secret's values would be ENC[...].
            problems.append(
                f"{doc.path}: Kustomization {doc.metadata.get('name')} syncs SOPS files under "
                f"{path} but has no spec.decryption ({RERENDER}, or add decryption: "
                "{provider: sops, secretRef: {name: sops-age}})"
            )
    return problems


def _syncs_this_repo(spec: dict[str, Any]) -> bool:
    source = spec.get("sourceRef")
    if not isinstance(source, dict):
        return True
    return (source.get("kind"), source.get("name")) == (FLUX_SOURCE["kind"], FLUX_SOURCE["name"])


def _holds_sops(folder: Path) -> bool:
    return any(p.is_file() for p in folder.rglob(f"*{SOPS_SUFFIX}"))


def _decrypts(spec: dict[str, Any]) -> bool:
    decryption = spec.get("decryption")
    return isinstance(decryption, dict) and decryption.get("provider") == "sops"


# --- SOPS files ------------------------------------------------------------------------------


def check_sops_files(docs: list[Doc]) -> list[str]:
    """A *.sops.yaml on disk is encrypted: it carries SOPS's `sops:` metadata. One without it
    is a secret in plain text, about to be pushed."""
    return [
        f"{doc.path}: named *{SOPS_SUFFIX} but not SOPS-encrypted (encrypt it with "
        f"'sops -e -i {doc.path}' before you commit, or {RERENDER})"
        for doc in docs
        if doc.path.endswith(SOPS_SUFFIX) and not isinstance(doc.body.get("sops"), dict)
    ]


# --- components ----------------------------------------------------------------------------


def component_paths(cluster: Cluster) -> dict[str, tuple[str, ...]]:
    """Where each component lives in the tree, enabled or not."""
    out = {}
    for spec in charts.SPECS:
        paths = [f"{CONTROLLERS_DIR}/{spec.folder}"]
        if COMPONENT_BY_NAME[spec.key].configs:
            paths.append(f"{CONFIGS_DIR}/{spec.folder}")
        out[spec.key] = tuple(paths)
    for info in COMPONENTS:
        if info.app:
            out[info.name] = (f"{APPS_DIR}/{info.name}",)
    return out


def _has_files(folder: Path) -> bool:
    """A folder emptied by render (orphans removed) counts as absent."""
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def check_components(directory: Path, cluster: Cluster) -> list[str]:
    problems = []
    for key, paths in component_paths(cluster).items():
        needed = (key, *COMPONENT_BY_NAME[key].needs)
        enabled = all(getattr(cluster.components, name).enabled for name in needed)
        for path in paths:
            there = _has_files(directory / path)
            if enabled and not there:
                problems.append(f"{path}/: missing, but components.{key} is enabled ({RERENDER})")
            elif not enabled and there:
                problems.append(
                    f"{path}/: present, but components.{key} is disabled "
                    f"({RERENDER} to remove it, or delete the folder)"
                )
    return problems
