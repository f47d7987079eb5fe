"""`homelab-gen template`'s apply: the template as one of the engine's jobs (apply.py), so
it shares boot's retry and re-plan rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from generator.config.model import Cluster
from generator.proxmox import apply, template_prepare
from generator.proxmox.actions import Action, Kind, Plan, VMPlan
from generator.proxmox.client import Client
from generator.proxmox.failures import PveError
from generator.proxmox.images import Fetch, Source, fetch_https, resolve
from generator.proxmox.observe import VMFacts
from generator.proxmox.template import observe_template, plan_template
from generator.proxmox.template_hosts import Target
from generator.proxmox.template_prepare import Preparation
from generator.proxmox.template_vm import Marks, create_params, is_ours

TemplateFailed = apply.StepFailed  # one engine, one failure


@dataclass(frozen=True)
class TemplateJob:
    client: Client
    cluster: Cluster
    source: Source
    progress: apply.Progress
    fetch: Fetch = fetch_https
    explicit: bool = False
    marks: Marks = None  # a host's copy of the template (template_hosts)
    preparation: Preparation | None = None  # --prepare (template_prepare)
    # A delete that failed on a half-made VM already gone is moot: the fresh plan says so.
    # So is a start whose VM already runs: an answer lost, the preparation boot under way.
    rechecked: ClassVar[frozenset[str]] = frozenset({Kind.DELETE, Kind.START})

    @property
    def executors(self) -> Mapping[str, apply.Executor]:
        return EXECUTORS

    def label(self, vm_plan: VMPlan) -> str:
        return f"template {vm_plan.vmid}"

    def refusal(self, vm: VMFacts) -> str | None:
        """Only a half-made template of ours is ever deleted."""
        if is_ours(vm, self.marks) and not vm.is_template:
            return None
        return f"VM {vm.vmid} changed under us; not deleting it"

    def replan(self, vm_plan: VMPlan) -> list[Action]:
        """A fresh plan; a VM still locked by the create task whose answer we lost is
        waited for (the engine retries a transient error)."""
        facts = observe_template(self.client, self.cluster, self.marks)
        again = plan_template(self.cluster, self.source, facts, self.explicit, self.preparation)
        if facts.vm is not None and facts.vm.lock:
            raise PveError("; ".join(again.problems), transient=True)
        if again.problems:
            raise TemplateFailed("; ".join(again.problems))
        return list(again.actions)


def _create(job: TemplateJob, action: Action) -> None:
    params = create_params(job.cluster, job.source, action.param("import"), job.marks)
    job.client.task("POST", f"nodes/{action.pve_node}/qemu", **params)


def _download(job: TemplateJob, action: Action) -> None:
    """The image onto the seed storage; a slow line may take many minutes (_wait_long)."""
    client, source, pve = job.client, job.source, job.cluster.proxmox
    params = {"url": source.url, "content": "import", "filename": source.filename}
    if source.checksum:
        algorithm, digest = resolve(source.checksum, job.fetch)
        params.update({"checksum": digest, "checksum-algorithm": algorithm})
    upid = client.call(
        "POST", f"nodes/{action.pve_node}/storage/{pve.seed_storage}/download-url", **params
    )
    try:
        _wait_long(client, str(upid))
    except PveError as exc:
        text = str(exc).removeprefix("task failed: ")
        hint = "check that the Proxmox host can reach the URL"
        if "checksum" in text.lower():
            hint = (
                "the downloaded image does not match its checksum, so Proxmox discarded it;"
                " if the image was republished meanwhile, run homelab-gen template again,"
                " otherwise check --checksum"
            )
        raise TemplateFailed(f"Proxmox could not download {source.url}: {text}", hint) from exc


def _wait_long(client: Client, upid: str, rounds: int = 4) -> None:
    """A cloud image on a slow home line can outlast one task timeout; keep waiting."""
    for attempt in range(rounds):
        try:
            client.wait(upid)
            return
        except PveError as exc:
            if "still running" not in str(exc) or attempt == rounds - 1:
                raise


EXECUTORS: Mapping[str, apply.Executor] = {
    Kind.DOWNLOAD: _download,
    Kind.DELETE: apply.delete_vm,  # with TemplateJob.refusal as its ownership check
    Kind.CREATE: _create,
    Kind.CONVERT: apply.vm_task("POST", "/template"),
    **template_prepare.EXECUTORS,
}


def apply_template(
    client: Client,
    cluster: Cluster,
    source: Source,
    plan: Plan,
    *,
    progress: apply.Progress = lambda event: None,
    fetch: Fetch = fetch_https,
    explicit: bool = False,
    marks: Marks = None,
    preparation: Preparation | None = None,
) -> tuple[str, ...]:
    """Run the plan through the engine: after a transient error it looks again and
    re-plans, so a step that did take effect (its answer lost to a reset) is not made twice."""
    if plan.problems:
        raise TemplateFailed("pre-flight found problems; nothing was changed")
    job = TemplateJob(client, cluster, source, progress, fetch, explicit, marks, preparation)
    return tuple(kind for row in plan.vms for kind in apply.run_vm(job, row).steps)


def apply_targets(
    client: Client,
    source: Source,
    plan: Plan,
    targets: Sequence[Target],
    *,
    progress: apply.Progress = lambda event: None,
    fetch: Fetch = fetch_https,
    explicit: bool = False,
    preparation: Preparation | None = None,
) -> tuple[str, ...]:
    """`template --all-hosts`: each row with the job of its own template, one after the
    other, so an image downloaded onto a shared seed storage is there for the next."""
    if plan.problems:
        raise TemplateFailed("pre-flight found problems; nothing was changed")
    steps: list[str] = []
    for row, target in zip(plan.vms, targets, strict=True):
        job = TemplateJob(
            client, target.cluster, source, progress, fetch, explicit, target.marks, preparation
        )
        steps += apply.run_vm(job, row).steps if row.actions else ()
    return tuple(steps)
