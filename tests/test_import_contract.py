"""The import contract: each stage is one package, and imports only point down.

A package may import any package of a lower layer and, unless FORBIDDEN says otherwise, one
of its own layer; never one above. Inside the packages INNER_LAYERS splits, modules point
strictly down the same way. Modules never import each other in a cycle. Every
import counts, also one inside a function or under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "generator"

# Top to bottom. A name is a top-level module or package of generator/; "generator" is the
# package's own __init__ (the version).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__main__", "cli", "commands"}),
    frozenset({"scaffold", "workspace", "proxmox", "status", "lifecycle"}),
    frozenset({"render"}),
    frozenset({"config", "naming", "kube"}),
    frozenset(
        {
            "generator",
            "environment",
            "errors",
            "fileio",
            "gitrepo",
            "resources",
            "secrets",
            "secretstore",
            "sops",
            "waiting",
            "yamlio",
        }
    ),
)
# Imports the layers alone would allow, but which would point the wrong way.
FORBIDDEN: dict[str, frozenset[str]] = {
    "proxmox": frozenset({"render", "workspace", "status", "scaffold", "lifecycle"}),
    "workspace": frozenset({"scaffold", "proxmox", "status", "lifecycle"}),
    # Lifecycle runs the others (boot's engine, status' kubeconfig, render); never the reverse.
    "status": frozenset({"lifecycle"}),
    "scaffold": frozenset({"lifecycle"}),
}
# Inside a split package the same rule one level down, but strictly: a module imports only
# modules of a row below its own, so the pure core (facts, model) never reaches up to the
# code that reads files or asks servers. "__init__" is the package itself.
INNER_LAYERS: dict[str, tuple[frozenset[str], ...]] = {
    "lifecycle": (
        frozenset({"__init__", "flow"}),
        frozenset({"run", "plan", "access", "stale", "moving"}),
        frozenset({"steps", "journal"}),
    ),
    "config": (
        frozenset({"__init__", "edit"}),  # re-exports load's entry points; edits cluster.yaml
        frozenset({"load"}),
        frozenset({"schema", "defaults", "checks", "placeholders"}),
        frozenset({"model"}),
    ),
    "status": (
        frozenset({"__init__", "gather", "view"}),
        frozenset({"verdict", "k8s", "cloudinit", "kubeconfig"}),
        frozenset({"versions"}),
        frozenset({"facts"}),
    ),
    "kube": (
        frozenset({"__init__"}),
        frozenset({"read", "drain"}),
        frozenset({"nodes"}),
        frozenset({"client"}),
    ),
    "sops": (
        frozenset({"__init__"}),  # re-exports the API
        frozenset({"crypt", "config_file"}),
        frozenset({"metadata"}),
        frozenset({"tree", "layout", "age"}),
        frozenset({"values"}),
    ),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str:
    """The generator module an import binds: `generator.status.gather`, or the package."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every generator module the file imports."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == "generator" or name.startswith("generator."):
                yield node.lineno, resolve(name)


GRAPH = {
    module: sorted({target for _, target in imports(path)} - {module})
    for module, path in MODULES.items()
}


def unit(module: str) -> str:
    """The layer table's name for a module: `generator.status.gather` -> `status`."""
    return module.split(".")[1] if "." in module else module


def inner_unit(module: str) -> str:
    """INNER_LAYERS' name for a module: `generator.config.checks.nodes` -> `checks`."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else "__init__"


def inner_row(module: str) -> int:
    rows = INNER_LAYERS[unit(module)]
    found = [i for i, names in enumerate(rows) if inner_unit(module) in names]
    assert len(found) == 1, f"{module}: put {inner_unit(module)!r} in one row of INNER_LAYERS"
    return found[0]


def layer(module: str) -> int:
    found = [i for i, names in enumerate(LAYERS) if unit(module) in names]
    assert len(found) == 1, f"{module}: put {unit(module)!r} in exactly one layer of LAYERS"
    return found[0]


def offence(source: str, target: str) -> str | None:
    here, there = unit(source), unit(target)
    if here == there:
        return None
    if there in FORBIDDEN.get(here, ()):
        return f"{here} must never import {there}"
    if layer(target) < layer(source):
        above = f"{there} (layer {layer(target)}, above it)"
        return f"{here} (layer {layer(source)}) must not import {above}"
    return None


def inner_offence(source: str, target: str) -> str | None:
    package = unit(source)
    if package not in INNER_LAYERS or unit(target) != package:
        return None
    here, there = inner_unit(source), inner_unit(target)
    if here == there or inner_row(target) > inner_row(source):
        return None
    return (
        f"{package}.{here} (row {inner_row(source)}) must not import"
        f" {package}.{there} (row {inner_row(target)}, not below it)"
    )


def test_every_module_is_in_a_layer() -> None:
    missing = sorted({unit(m) for m in MODULES} - set().union(*LAYERS))
    assert not missing, f"add to LAYERS: {missing}"
    unplaced = sorted(
        {
            f"{unit(m)}.{inner_unit(m)}"
            for m in MODULES
            if unit(m) in INNER_LAYERS and inner_unit(m) not in set().union(*INNER_LAYERS[unit(m)])
        }
    )
    assert not unplaced, f"add to INNER_LAYERS: {unplaced}"


def test_imports_point_down() -> None:
    problems = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: imports {target}: {why}"
        for module, path in MODULES.items()
        for line, target in imports(path)
        if (why := offence(module, target) or inner_offence(module, target))
    ]
    assert not problems, "imports against the contract:\n" + "\n".join(problems)


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    found = cycles(GRAPH)
    assert not found, "modules that import each other in a cycle:\n" + "\n".join(
        " <-> ".join(group) for group in found
    )


def test_the_checker_sees_a_wrong_import() -> None:
    assert offence("generator.proxmox.seeds", "generator.render.seeds") == (
        "proxmox must never import render"
    )
    assert offence("generator.config.model", "generator.status.verdict") == (
        "config (layer 3) must not import status (layer 1, above it)"
    )
    assert offence("generator.status.gather", "generator.proxmox.agent") is None
    assert inner_offence("generator.status.facts", "generator.status.verdict") == (
        "status.facts (row 3) must not import status.verdict (row 1, not below it)"
    )
    assert inner_offence("generator.config.schema", "generator.config.defaults") == (
        "config.schema (row 2) must not import config.defaults (row 2, not below it)"
    )
    assert inner_offence("generator.config.checks.nodes", "generator.config") == (
        "config.checks (row 2) must not import config.__init__ (row 0, not below it)"
    )
    assert inner_offence("generator.config.load", "generator.config.model") is None
    assert inner_offence("generator.config.checks.nodes", "generator.config.checks") is None
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def _imports_kubernetes(path: Path) -> list[int]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
            found.append(node.lineno)
    return found


def test_only_the_kube_package_imports_the_kubernetes_client() -> None:
    outside = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for module, path in MODULES.items()
        if unit(module) != "kube"
        for line in _imports_kubernetes(path)
    ]
    assert not outside, "import kubernetes only in generator/kube:\n" + "\n".join(outside)
