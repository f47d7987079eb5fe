"""Render speed beside makejinja: homelab-gen render vs onedr0p's cluster-template, 53 nodes.

Usage, from the repo root:
    python3 benchmarks/render_vs_makejinja.py [--runs N] [--makejinja PATH] [--template-repo DIR]

Both tools render a 53-node cluster (3 control-plane nodes + 50 workers) from scratch, as
whole processes, interleaved in one run (so machine noise hits both alike): `makejinja` in a
fresh copy of cluster-template, `python -m generator render -C DIR` in a fresh copy of a
homelab-gen repo (the cluster of benchmarks/render.py with 50 agents). It prints both medians,
their ratio (goal: homelab-gen <= 0.75x makejinja) and each tool's floor: interpreter start-up,
imports (every module the real run loads, imported and nothing else), and the rest (work).

Setting up makejinja (once; it lives in a venv of its own, never in homelab-gen's):
    python3 -m venv ~/mjvenv && ~/mjvenv/bin/pip install makejinja pydantic
    git clone https://github.com/onedr0p/cluster-template
    python3 benchmarks/render_vs_makejinja.py --makejinja ~/mjvenv/bin/makejinja \\
        --template-repo cluster-template
Without --makejinja, `makejinja` on PATH is used; the benchmark says so and stops when makejinja
or the template repo is missing.

cluster-template pins makejinja 2.8.2 and Python >= 3.14, but its scripts need 3.12 at most:
on an older interpreter, the three `type X = ...` aliases in template/scripts/validate.py are
rewritten as plain assignments (`X = ...`), which pydantic reads the same way; the benchmark
prints when it does so.

The template is rendered with cloudflare DNS, a cloudflare tunnel and a private ssh:// repo
(its fullest output, as homelab-gen renders every component here). Its plugin modules are
byte-compiled by an untimed warm-up run (homelab-gen's modules are too), although its justfile
runs makejinja with PYTHONDONTWRITEBYTECODE=1. makejinja's output is plaintext: `just configure`
runs sops on each Secret afterwards, which is not timed; homelab-gen's render seals its Secrets
itself, inside the timed run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import render as homelab_bench  # noqa: E402  (benchmarks/render.py: prepare and one_run)

from generator.secrets import generate_deploy_key  # noqa: E402
from generator.sops.age import new_age_identity  # noqa: E402

MIRROR = Path("/work/.mirror/onedr0p+cluster-template/repo")
CONTROLLERS, WORKERS = 3, 50
TARGET = 0.75
# Every run renders in the same place: bytecode is cached by source path.
MJ_RUN, HG_RUN = "mj-run", "hg-run"

# Run inside each tool's own interpreter after a real render: which modules it loaded, keeping
# only those any fresh interpreter could import (stdlib, site-packages, homelab-gen itself).
MODULES_AFTER = """
import json, sys
def _loaded(out, roots):
    names = []
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if name != "__main__" and (where is None or where.startswith(roots)):
            names.append(name)
    with open(out, "w") as f:
        json.dump(sorted(names), f)
"""
IMPORT_ALL = """
import importlib, json, sys
for name in json.load(open(sys.argv[1])):
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_kib: int


def timed(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """Wall time, CPU time and peak RSS of one process, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}:\n{err}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def homelab_run(directory: Path) -> Run:
    wall, rss, cpu = homelab_bench.one_run(directory)
    return Run(wall, cpu, rss)


# -- makejinja and cluster-template ------------------------------------------------------------
def interpreter_of(script: Path) -> Path:
    """The Python a console script runs with, from its #! line."""
    first = script.read_text(errors="replace").splitlines()[0]
    python = Path(first.removeprefix("#!").split()[0]) if first.startswith("#!") else None
    if python is None or not python.exists():
        raise SystemExit(f"cannot tell which Python runs {script} (its first line: {first!r})")
    return python


def python_facts(python: Path) -> tuple[tuple[int, int], str]:
    code = (
        "import sys, importlib.metadata as m;"
        "print(sys.version_info[0], sys.version_info[1], m.version('makejinja'))"
    )
    major, minor, version = subprocess.check_output([str(python), "-c", code], text=True).split()
    return (int(major), int(minor)), version


def extract(template_repo: Path, target: Path) -> str:
    """cluster-template's files at HEAD, written to target; returns the commit."""
    commit = subprocess.check_output(
        ["git", "-C", str(template_repo), "rev-parse", "HEAD"], text=True
    ).strip()
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(template_repo), "archive", "HEAD"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return commit


def adapt_to(version: tuple[int, int], template: Path) -> int:
    """Rewrite PEP 695 `type X = ...` aliases for interpreters before 3.12; how many."""
    if version >= (3, 12):
        return 0
    script = template / "template" / "scripts" / "validate.py"
    text, count = re.subn(r"^type (\w+) = ", r"\1 = ", script.read_text(), flags=re.MULTILINE)
    script.write_text(text)
    return count


def cluster_toml() -> str:
    lines = [
        "[network]",
        'node_cidr = "10.20.0.0/16"',
        "[kubernetes.api]",
        'addr = "10.20.0.250"',
        "[gateways]",
        'internal = "10.20.0.251"',
        'dns = "10.20.0.252"',
        'external = "10.20.0.253"',
        "[repository]",
        'url = "ssh://git@github.com/example/home-ops.git"',
        "[domain]",
        'name = "example.com"',
        "[dns]",
        'token = "made-up-cloudflare-token"',
        "[talos]",
        f'schematic_id = "{secrets.token_hex(32)}"',
    ]
    for index in range(CONTROLLERS + WORKERS):
        lines += [
            "[[nodes]]",
            f'name = "k8s-{index}"',
            f'address = "10.20.1.{index + 10}"',
            f"controller = {'true' if index < CONTROLLERS else 'false'}",
            'disk = "/dev/sda"',
            f'mac_addr = "02:00:00:00:00:{index:02x}"',
        ]
    return "\n".join(lines) + "\n"


def write_inputs(template: Path) -> None:
    """cluster.toml and the files its plugin reads, all made up."""
    (template / "cluster.toml").write_text(cluster_toml())
    identity, recipient = new_age_identity()
    (template / "age.key").write_text(f"# public key: {recipient}\n{identity}\n")
    private, public = generate_deploy_key()
    (template / "deploy.key").write_text(private)
    (template / "deploy.key.pub").write_text(public + "\n")
    (template / "flux-webhook-token.txt").write_text(secrets.token_hex(16) + "\n")
    tunnel = {
        "AccountTag": secrets.token_hex(16),
        "TunnelID": "11111111-2222-3333-4444-555555555555",
        "TunnelSecret": secrets.token_urlsafe(32),
    }
    (template / "cloudflare-tunnel.json").write_text(json.dumps(tunnel))


def prepare_template(template_repo: Path, makejinja: Path, root: Path) -> Path:
    """A ready cluster-template copy; one untimed render byte-compiles makejinja, pydantic
    and the template's plugin."""
    python = interpreter_of(makejinja)
    version, mj_version = python_facts(python)
    template = root / "cluster-template"
    commit = extract(template_repo, template)
    py = f"{version[0]}.{version[1]}"
    print(f"cluster-template commit {commit}; makejinja {mj_version} on Python {py}")
    rewritten = adapt_to(version, template)
    if rewritten:
        print(
            f"adapted for Python {py}: {rewritten} `type X = ...` aliases in "
            "template/scripts/validate.py rewritten as `X = ...`"
        )
    write_inputs(template)
    warm = root / MJ_RUN  # the timed runs' path, so they find the plugin's bytecode
    shutil.copytree(template, warm)
    timed([str(makejinja)], cwd=warm)
    shutil.rmtree(warm)
    return template


# -- what each run wrote ------------------------------------------------------------------------
def files_of(directory: Path) -> dict[str, int]:
    return {
        str(p.relative_to(directory)): p.stat().st_size
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def written(before: dict[str, int], directory: Path) -> tuple[int, int]:
    """Files and bytes in directory that are new or changed since `before`."""
    after = files_of(directory)
    new = [path for path, size in after.items() if before.get(path) != size]
    return len(new), sum(after[path] for path in new)


# -- the floors ----------------------------------------------------------------------------------
def loaded_modules(
    python: Path, render_code: str, cwd: Path, out: Path, roots: tuple[str, ...]
) -> None:
    code = MODULES_AFTER + render_code + f"\n_loaded({str(out)!r}, {roots!r})\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [str(python), "-c", code], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL
    )


def floor_commands(
    makejinja: Path, mj_template: Path, hg_template: Path, root: Path
) -> dict[str, list[str]]:
    """`python -c pass` and import-everything-the-render-loads, for each tool's interpreter."""
    mj_python = interpreter_of(makejinja)
    mj_mods, hg_mods = root / "makejinja-modules.json", root / "homelab-gen-modules.json"
    work = root / "modules-run"
    shutil.copytree(mj_template, work)
    mj_code = (
        "from makejinja.cli import makejinja_cli\n"
        "try:\n    makejinja_cli(args=[])\nexcept SystemExit:\n    pass"
    )
    mj_roots = subprocess.check_output(
        [str(mj_python), "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"], text=True
    ).split()
    loaded_modules(mj_python, mj_code, work, mj_mods, tuple(mj_roots))
    shutil.rmtree(work)
    shutil.copytree(hg_template, work)
    hg_code = f"from generator.cli import main\nmain(['render', '-C', {str(work)!r}])"
    hg_roots = (sys.prefix, sys.base_prefix, str(REPO))
    loaded_modules(Path(sys.executable), hg_code, work, hg_mods, hg_roots)
    shutil.rmtree(work)
    counts = {
        tool: len(json.loads(path.read_text()))
        for tool, path in (("homelab-gen", hg_mods), ("makejinja", mj_mods))
    }
    print(", ".join(f"{tool} {n}" for tool, n in counts.items()), "modules loaded by a render")
    return {
        "homelab-gen python": [sys.executable, "-c", "pass"],
        "homelab-gen imports": [sys.executable, "-c", IMPORT_ALL, str(hg_mods)],
        "makejinja python": [str(mj_python), "-c", "pass"],
        "makejinja imports": [str(mj_python), "-c", IMPORT_ALL, str(mj_mods)],
    }


# -- the run ------------------------------------------------------------------------------------
def cache_bytecode(folder: Path) -> None:
    """Both tools run from bytecode, as installed tools do (pip compiles on install), even
    where the shell sets PYTHONDONTWRITEBYTECODE; the cache lives in the temp dir, not the
    tree. Child processes inherit it; each tool's untimed warm-up run fills it."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(folder)


def find_makejinja(given: str | None) -> Path | None:
    found = given or shutil.which("makejinja")
    return Path(found) if found and Path(found).exists() else None


def interleaved(
    mj_template: Path, hg_template: Path, makejinja: Path, root: Path, runs: int
) -> tuple[list[Run], list[Run], dict[str, tuple[int, int]]]:
    """Both tools, alternating which goes first, each in a fresh copy; and what each wrote."""
    mj_runs: list[Run] = []
    hg_runs: list[Run] = []
    output: dict[str, tuple[int, int]] = {}
    mj_before, hg_before = files_of(mj_template), files_of(hg_template)
    for index in range(runs):
        mj_dir, hg_dir = root / MJ_RUN, root / HG_RUN
        shutil.copytree(mj_template, mj_dir)
        shutil.copytree(hg_template, hg_dir)
        if index % 2:
            hg_runs.append(homelab_run(hg_dir))
            mj_runs.append(timed([str(makejinja)], cwd=mj_dir))
        else:
            mj_runs.append(timed([str(makejinja)], cwd=mj_dir))
            hg_runs.append(homelab_run(hg_dir))
        output = {
            "makejinja": written(mj_before, mj_dir),
            "homelab-gen": written(hg_before, hg_dir),
        }
        shutil.rmtree(mj_dir)
        shutil.rmtree(hg_dir)
    return mj_runs, hg_runs, output


def floors(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(timed(argv).wall)
    return {name: statistics.median(values) for name, values in samples.items()}


def median_run(runs: list[Run]) -> tuple[float, float, float]:
    """Median wall, median CPU, peak RSS in MiB."""
    return (
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        max(r.rss_kib for r in runs) / 1024,
    )


def report(
    mj_runs: list[Run],
    hg_runs: list[Run],
    output: dict[str, tuple[int, int]],
    floor: dict[str, float],
) -> None:
    mj_wall, mj_cpu, mj_rss = median_run(mj_runs)
    hg_wall, hg_cpu, hg_rss = median_run(hg_runs)
    for name, (wall, cpu, rss) in (
        ("homelab-gen render", (hg_wall, hg_cpu, hg_rss)),
        ("makejinja", (mj_wall, mj_cpu, mj_rss)),
    ):
        files, size = output["homelab-gen" if name.startswith("homelab") else "makejinja"]
        print(
            f"{name:19} {wall:.3f} s median wall, {cpu:.3f} s median CPU, {rss:.1f} MiB peak RSS;"
            f" wrote {files} files, {size / 1024:.0f} KiB"
        )
    ratio = hg_wall / mj_wall
    verdict = "meets" if ratio <= TARGET else "misses"
    print(
        f"ratio homelab-gen / makejinja: {ratio:.2f}x wall, {hg_cpu / mj_cpu:.2f}x CPU"
        f" ({verdict} the <= {TARGET:.2f}x goal)"
    )
    print("floor (median wall):   interpreter   imports   work (the rest)")
    for tool, total in (("homelab-gen", hg_wall), ("makejinja", mj_wall)):
        bare, imports = floor[f"{tool} python"], floor[f"{tool} imports"]
        print(
            f"  {tool:19} {bare:9.3f} s {imports - bare:9.3f} s {total - imports:9.3f} s"
            f"   (of {total:.3f} s)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--makejinja", help="the makejinja script (default: makejinja on PATH)")
    parser.add_argument(
        "--template-repo", type=Path, default=MIRROR, help="a clone of onedr0p/cluster-template"
    )
    args = parser.parse_args()
    makejinja = find_makejinja(args.makejinja)
    if makejinja is None:
        print(
            "skipped: makejinja not found (pass --makejinja PATH; setup in this file's docstring)"
        )
        return 0
    if not (args.template_repo / "HEAD").exists() and not (args.template_repo / ".git").exists():
        print(
            f"skipped: no cluster-template repo at {args.template_repo} (pass --template-repo DIR)"
        )
        return 0
    print(
        f"render, {CONTROLLERS} control-plane + {WORKERS} worker nodes, {args.runs} interleaved"
        " whole-process runs each, medians"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache_bytecode(root / "pycache")
        mj_template = prepare_template(args.template_repo, makejinja, root)
        hg_template = homelab_bench.prepare(WORKERS, root)
        mj_runs, hg_runs, output = interleaved(mj_template, hg_template, makejinja, root, args.runs)
        floor = floors(floor_commands(makejinja, mj_template, hg_template, root), args.runs)
    report(mj_runs, hg_runs, output, floor)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
