"""Which metric names kube-prometheus-stack's default rules and dashboards read from each
K3s control-plane job, and whether the monitoring component's keep-relabelings still keep them.

Run from the repo root, against a clone of prometheus-community/helm-charts:

    python3 benchmarks/monitoring_metrics.py --charts-repo PATH [--rev kube-prometheus-stack-88.5.3]

It reads templates/prometheus/rules-1.14/*.yaml and templates/grafana/dashboards-1.14/*.yaml at
that revision (with `git show`, nothing is checked out), finds every PromQL vector selector whose
`job` matcher names one of the jobs below, and prints, per job, how many metric names are read,
from which files, and whether each is kept by the regex that generator/render/monitoring.py
renders for that job. Recorded series (names with a colon) and the series Prometheus makes up
itself (`up`, `scrape_*`, which metric relabeling never sees) are left out. Exit status 1 if a
name would be dropped. `--names` prints the names as a Python dict, as the test encodes them.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHART = "charts/kube-prometheus-stack/templates"
FOLDERS = (f"{CHART}/prometheus/rules-1.14", f"{CHART}/grafana/dashboards-1.14")

# The chart's template variable for each job, and the job label its ServiceMonitor sets.
JOB_VARIABLES = {
    "$kubeApiserverJob": "apiserver",
    "$kubeletJob": "kubelet",
    "$kubeSchedulerJob": "kube-scheduler",
    "$kubeControllerManagerJob": "kube-controller-manager",
    "$kubeProxyJob": "kube-proxy",
}
JOBS = (*JOB_VARIABLES.values(), "kube-etcd")
SYNTHETIC = re.compile(r"up|scrape_.*")
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^{}]*)\}")
JOB_MATCHER = re.compile(r'job\s*(=~|=)\s*"([^"]*)"')
GRPC_LABEL = re.compile(r"grpc_(code|method|service|type)")  # label names, not metrics
METRICS_PATH = re.compile(r'metrics_path\s*=\s*"([^"]*)"')
# Families the K3s process serves on every endpoint, to find the ones read with no job matcher
# (or a negative one), which the selectors above cannot attribute.
K3S_FAMILY = re.compile(
    r"\b((?:apiserver|aggregator|kubelet|kubeproxy|scheduler|workqueue|rest_client|etcd|grpc"
    r"|process|go|kubernetes|storage_operation|volume_manager|csi)_[a-z0-9_]+)\b(?!:)"
)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _plain(text: str) -> str:
    """The template with the job variables filled in and the dashboards' JSON unescaped."""
    for variable, job in JOB_VARIABLES.items():
        # rules: job="{{ $kubeletJob }}"; dashboards: job=\"`}}{{ $kubeletJob }}{{`\"
        text = re.sub(r"`?\}\}\{\{\s*" + re.escape(variable) + r"\s*\}\}\{\{`?", job, text)
        text = re.sub(r"\{\{\s*" + re.escape(variable) + r"\s*\}\}", job, text)
    # other variables inside a selector: namespace{{ $namespaceOperator }}"{{ $targetNamespace }}"
    text = re.sub(r"\{\{\s*\$[a-zA-Z]+\s*\}\}", "", text)
    return text.replace('\\"', '"')


def _jobs_of(labels: str) -> list[str]:
    match = JOB_MATCHER.search(labels)
    if match is None:
        return []
    op, value = match.groups()
    path = METRICS_PATH.search(labels)
    if value == "kubelet" and path is not None and path.group(1) != "/metrics":
        # /metrics/cadvisor and /metrics/probes: other endpoints, with their own registries
        # and their own relabelings in the chart; ours apply to /metrics only.
        return [f"kubelet {path.group(1)}"]
    if op == "=":
        return [value] if value in JOBS else []
    if "$" in value:
        return []  # a dashboard variable ($job): the CoreDNS, Grafana and Prometheus dashboards
    return [job for job in JOBS if re.fullmatch(value, job)]


def used_names(repo: Path, rev: str) -> dict[str, dict[str, set[str]]]:
    """job -> metric name -> the template files that read it for that job."""
    used: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    seen: dict[str, set[str]] = {}
    for folder in FOLDERS:
        for path in _git(repo, "ls-tree", "--name-only", f"{rev}:{folder}").split():
            text = _plain(_git(repo, "show", f"{rev}:{folder}/{path}"))
            for name, labels in SELECTOR.findall(text):
                if ":" in name or SYNTHETIC.fullmatch(name):
                    continue
                for job in _jobs_of(labels):
                    used[job][name].add(f"{folder.rsplit('/', 1)[1]}/{path}")
            for name in K3S_FAMILY.findall(text):
                seen.setdefault(name, set()).add(f"{folder.rsplit('/', 1)[1]}/{path}")
    attributed = {name for names in used.values() for name in names}
    for name, files in seen.items():
        if name not in attributed and not GRPC_LABEL.fullmatch(name):
            used["no job matcher"][name] = files
    return used


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts-repo", type=Path, required=True)
    parser.add_argument("--rev", default="kube-prometheus-stack-88.5.3")
    parser.add_argument("--names", action="store_true", help="print the names as a Python dict")
    args = parser.parse_args()
    used = used_names(args.charts_repo, args.rev)
    if args.names:
        for job in sorted(used):
            print(f'    "{job}": {sorted(used[job])!r},')
        return 0
    from generator.render.monitoring import JOB_KEEP_REGEX  # the repo root is on the path

    dropped = 0
    for job in JOBS:
        names = used.get(job, {})
        keep = JOB_KEEP_REGEX.get(job)
        files = sorted({f for fs in names.values() for f in fs})
        print(f"{job}: {len(names)} metric names, from {', '.join(files) or 'no file'}")
        print(f"  keep regex: {keep or '(none: everything kept)'}")
        for name in sorted(names):
            kept = keep is None or re.fullmatch(keep, name) is not None
            dropped += not kept
            mark = "kept" if kept else "DROPPED"
            print(f"  {mark:7} {name}  ({', '.join(sorted(names[name]))})")
    # Read with no job matcher: the families K3s serves everywhere, so one job must keep them.
    for name, files in sorted(used.get("no job matcher", {}).items()):
        owners = [job for job, keep in JOB_KEEP_REGEX.items() if re.fullmatch(keep, name)]
        dropped += not owners
        print(f"no job matcher: {name} ({', '.join(sorted(files))}) kept by {owners or 'NONE'}")
    for job in sorted(j for j in used if j.startswith("kubelet /")):
        print(f"{job}: {len(used[job])} metric names, another endpoint, not relabeled here")
    return 1 if dropped else 0


if __name__ == "__main__":
    sys.exit(main())
