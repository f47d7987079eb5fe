"""HA: /cluster/ha/resources, PVE 9's /cluster/ha/rules and PVE 8's /cluster/ha/groups.

Ported from pve-ha-manager: master (PVE 9, b71218f2) and stable-4 (PVE 8), files
src/PVE/API2/HA/Resources.pm, Rules.pm, Groups.pm and src/PVE/HA/Config.pm, Tools.pm,
Rules.pm, Rules/ResourceAffinity.pm, Resources/PVEVM.pm. The state is the three config
files as plain data (PveState.ha_resources, ha_rules, ha_groups). Permissions (Sys.Audit
on / to read, Sys.Console on / to change) come from the API schema like every route's.

Not modelled: the CRM (no service is started, migrated or fenced here: tests move VMs
with PveState.migrate), the manager status (`hastate` is the configured state), PUT,
migrate/relocate, the node-affinity feasibility checks and the group-to-rule migration
PVE 9 performs when reading rules.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from tests.fakes.pve import schema
from tests.fakes.pve.server import ApiError, FakePVE, Request, Route, check_cfs_quorum, major_of


def _format(pattern: str, text: str) -> schema.CodeFormat:
    def check(value: str, ctx: schema.Ctx) -> None:
        schema._die_unless(schema._re(pattern, value), text)

    return check


# pve-ha-manager src/PVE/HA/Tools.pm: pve_verify_ha_resource_id,
# pve_verify_ha_resource_or_vm_id, pve_verify_ha_node (the same on stable-4).
_NOT_A_SID = "value does not look like a valid ha resource id\n"
schema.FORMATS["pve-ha-resource-id"] = _format(r"^[a-z]+:\S+$", _NOT_A_SID)
schema.FORMATS["pve-ha-resource-or-vm-id"] = _format(r"^([a-z]+:\S+|\d+)$", _NOT_A_SID)
schema.FORMATS["pve-ha-node"] = _format(
    r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)(:\d+)?$",
    "value does not look like a valid ha node\n",
)
# stable-4 (PVE 8) src/PVE/HA/Tools.pm, pve_verify_ha_group_node.
schema.FORMATS["pve-ha-group-node"] = _format(
    r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)(:\d+)?$",
    "value does not look like a valid ha group node\n",
)


def major(pve: FakePVE) -> int:
    return major_of(pve.state.version)


def split_list(text: str) -> list[str]:
    """pve-common ParseUtils.pm, split_list."""
    if "\0" in text:
        return text.split("\0")
    return text.replace(",", " ").replace(";", " ").split()


def _rules_api(pve: FakePVE, req: Request) -> None:
    """/cluster/ha/rules is new in PVE 9 (pve-ha-manager 5.0, "api: introduce ha rules
    api endpoints"); PVE 8 has no handler for it (server.py, match)."""
    if major(pve) < 9:
        raise ApiError(501, f"Method '{req.method} {req.path}' not implemented")


def _groups_migrated(pve: FakePVE) -> bool:
    """PVE 9: HA/Config.pm, have_groups_been_migrated: no group left in groups.cfg. PVE 8
    has no such notion: groups are the only way."""
    return major(pve) >= 9 and not pve.state.ha_groups


def _parse_sid(pve: FakePVE, sid: str) -> tuple[str, str, str]:
    """PVE 9 HA/Config.pm, PVE 8 HA/Tools.pm: parse_sid. A bare VMID becomes
    "vm:<vmid>" (every guest of the fake is a qemu VM)."""
    if re.fullmatch(r"\d+", sid):
        if int(sid) not in pve.state.vms:
            if major(pve) >= 9:
                raise ApiError(500, f"unable to detect SID from VMID - VM/CT {sid} does not exist")
            raise ApiError(500, f"unable do add resource - VM/CT {sid} does not exist")
        return f"vm:{sid}", "vm", sid
    found = re.fullmatch(r"(\S+):(\S+)", sid)
    if not found:
        raise ApiError(500, f"unable to parse service id '{sid}'")
    return sid, found[1], found[2]


def _api_copy(pve: FakePVE, sid: str) -> dict[str, Any]:
    """API2/HA/Resources.pm, $api_copy_config: the section, sid and digest; PVE 9 leaves
    `group` out once groups are migrated."""
    out: dict[str, Any] = {**pve.state.ha_resources[sid], "sid": sid, "digest": _digest(pve)}
    if _groups_migrated(pve):
        out.pop("group", None)
    return out


def _digest(pve: FakePVE) -> str:
    text = repr(sorted((k, sorted(v.items())) for k, v in pve.state.ha_resources.items()))
    return hashlib.sha1(text.encode()).hexdigest()


def ha_resources(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Resources.pm, index (Perl hash order; sorted here)."""
    with pve.lock:
        out = []
        for sid in sorted(pve.state.ha_resources):
            row = _api_copy(pve, sid)
            if req.params.get("type") and req.params["type"] != row["type"]:
                continue
            group = row.get("group")
            if group and group not in pve.state.ha_groups:
                row["errors"] = {"group": f"group '{group}' does not exist"}
            out.append(row)
        return out


def ha_resource(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Resources.pm, read: "no such resource" from $api_copy_config."""
    with pve.lock:
        sid = _parse_sid(pve, req.params["sid"])[0]
        if sid not in pve.state.ha_resources:
            raise ApiError(500, f"no such resource '{sid}'")
        return _api_copy(pve, sid)


def create_ha_resource(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Resources.pm, create, in its order: quorum, parse_sid, `type` must match,
    (PVE 9) no `group` once groups are migrated, the plugin (HA/Resources.pm lookup,
    PVEVM.pm verify_name and exists), then under the HA lock "already defined"."""
    with pve.lock:
        check_cfs_quorum(pve)
        sid, kind, name = _parse_sid(pve, req.params["sid"])
        if req.params.get("type") and req.params["type"] != kind:
            raise ApiError(500, "types does not match")
        if "group" in req.params and _groups_migrated(pve):
            raise ApiError(500, "invalid parameter 'group': ha groups have been migrated to rules")
        if kind not in ("vm", "ct"):
            raise ApiError(500, f"unknown section type '{kind}'")  # SectionConfig.pm, lookup
        if kind == "ct":
            raise AssertionError("the fake has no containers")
        if not re.fullmatch(r"[1-9][0-9]+", name):
            raise ApiError(500, "invalid VMID")
        if int(name) not in pve.state.vms:
            raise ApiError(500, f"resource '{sid}' does not exist in cluster")
        if sid in pve.state.ha_resources:
            # HA/Config.pm, lock_ha_domain: "$errmsg: $err"
            raise ApiError(500, f"create resource failed: resource ID '{sid}' already defined")
        options = {k: v for k, v in req.params.items() if k not in ("sid", "type")}
        pve.state.ha_resources[sid] = {"type": kind, **options}
    return None


def delete_ha_resource(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Resources.pm, delete. PVE 9: "not HA managed!" from the handler, and
    `purge` (default 1) takes the resource out of every rule, dropping rules left empty
    (HA/Config.pm, delete_service_from_config). PVE 8: HA/Config.pm
    service_is_ha_managed's text."""
    with pve.lock:
        sid = _parse_sid(pve, req.params["sid"])[0]
        if sid not in pve.state.ha_resources:
            if major(pve) >= 9:
                raise ApiError(500, f"cannot delete service '{sid}', not HA managed!")
            raise ApiError(500, f"resource '{sid}' is not HA managed")
        purge = req.params.get("purge", "1") not in ("0", "false", "no", "off")
        delete_service(pve, sid, purge)
    return None


def delete_service(pve: FakePVE, sid: str, purge: bool) -> None:
    """HA/Config.pm, delete_service_from_config: the resource, and with `purge` on PVE 9
    its place in every rule, dropping rules left empty. Called under pve.lock."""
    pve.state.ha_resources.pop(sid, None)
    if major(pve) >= 9 and purge:
        for ruleid, rule in list(pve.state.ha_rules.items()):
            rule["resources"] = [r for r in rule["resources"] if r != sid]
            if not rule["resources"]:
                del pve.state.ha_rules[ruleid]


# -- rules (PVE 9) -------------------------------------------------------------------------------
def _api_rule(pve: FakePVE, ruleid: str, errors: dict[str, list[str]]) -> dict[str, Any]:
    """API2/HA/Rules.pm, $get_api_ha_rule: resources encoded sorted and comma-joined
    (HA/Rules.pm, encode_value), rule, order, digest, and the feasibility errors."""
    rule = pve.state.ha_rules[ruleid]
    out: dict[str, Any] = {k: v for k, v in rule.items() if k != "resources"}
    out.update(rule=ruleid, resources=",".join(sorted(rule["resources"])), digest=_digest(pve))
    if rule["type"] == "node-affinity":
        out.setdefault("strict", 0)  # set_rule_defaults
    if errors.get(ruleid):
        out["errors"] = {k: ", ".join(v) for k, v in errors[ruleid].items()}
    return out


def _feasibility(pve: FakePVE) -> dict[str, dict[str, list[str]]]:
    """HA/Rules.pm check_feasibility with HA/Rules/ResourceAffinity.pm's resource count
    checks, over enabled rules only (get_plugin_check_arguments, exclude_disabled_rules).
    The nodes are the manager status's: every cluster node here."""
    errors: dict[str, dict[str, list[str]]] = {}
    for ruleid, rule in sorted(pve.state.ha_rules.items()):
        if rule["type"] != "resource-affinity" or "disable" in rule:
            continue
        texts = errors.setdefault(ruleid, {}).setdefault("resources", [])
        if len(rule["resources"]) < 2:
            texts.append("rule is ineffective as there are less than two resources")
        if rule["affinity"] == "negative" and len(rule["resources"]) > len(pve.state.nodes):
            texts.append("rule defines more resources than available nodes")
    return {k: v for k, v in errors.items() if v["resources"]}


def ha_rules(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Rules.pm, index: rules in their order, filtered by type and resource."""
    _rules_api(pve, req)
    with pve.lock:
        errors = _feasibility(pve)
        out = []
        for ruleid in sorted(pve.state.ha_rules, key=lambda r: pve.state.ha_rules[r]["order"]):
            rule = pve.state.ha_rules[ruleid]
            if req.params.get("type") and rule["type"] != req.params["type"]:
                continue
            if req.params.get("resource") and req.params["resource"] not in rule["resources"]:
                continue
            out.append(_api_rule(pve, ruleid, errors))
        return out


def ha_rule(pve: FakePVE, req: Request) -> Any:
    _rules_api(pve, req)
    with pve.lock:
        ruleid = req.params["rule"]
        if ruleid not in pve.state.ha_rules:
            raise ApiError(500, f"no such ha rule '{ruleid}'")
        return _api_rule(pve, ruleid, _feasibility(pve))


# HA/Rules/NodeAffinity.pm and ResourceAffinity.pm, options: optional => 0 or 1.
RULE_OPTIONS = {
    "node-affinity": {"resources": 0, "nodes": 0, "strict": 1, "disable": 1, "comment": 1},
    "resource-affinity": {"resources": 0, "affinity": 0, "disable": 1, "comment": 1},
}


def _check_rule_config(req: Request) -> None:
    """pve-common SectionConfig.pm, check_config with create: each key must be an option
    of the rule type (check_value, Perl hash order; sorted here), then every required
    option must be there."""
    options = RULE_OPTIONS[req.params["type"]]
    for key in sorted(req.params):
        if key not in ("rule", "type") and key not in options:
            raise ApiError(500, f"unexpected property '{key}'")
    for key in sorted(options):
        if not options[key] and key not in req.params:
            raise ApiError(500, f"missing value for required option '{key}'")


def create_ha_rule(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Rules.pm, create_rule: quorum, groups must be migrated, then under the HA
    lock ("create ha rule failed: ..."): not yet defined, every resource HA-managed,
    every node a cluster node; then $assert_feasibility."""
    _rules_api(pve, req)
    with pve.lock:
        check_cfs_quorum(pve)
        if not _groups_migrated(pve):
            raise ApiError(500, "cannot create ha rule: ha groups have not been migrated yet")
        ruleid = req.params["rule"]
        _check_rule_config(req)
        failed = "create ha rule failed: "
        if ruleid in pve.state.ha_rules:
            raise ApiError(500, f"{failed}HA rule '{ruleid}' already defined")
        resources = sorted(set(split_list(req.params["resources"])))
        if not resources:
            raise ApiError(500, f"{failed}no resources were specified")
        unmanaged = [sid for sid in resources if sid not in pve.state.ha_resources]
        if unmanaged:
            raise ApiError(500, f"{failed}cannot use unmanaged resource(s) {', '.join(unmanaged)}.")
        if "nodes" in req.params:
            names = sorted({n.split(":")[0] for n in split_list(req.params["nodes"])})
            missing = [n for n in names if n not in pve.state.nodes]
            if missing:
                raise ApiError(
                    500, f"{failed}cannot use non-existent node(s) {', '.join(missing)}."
                )
        rule: dict[str, Any] = {k: v for k, v in req.params.items() if k != "rule"}
        if not req.flag("disable"):
            rule.pop("disable", None)
        rule["resources"] = resources
        rule["order"] = 1 + max((r["order"] for r in pve.state.ha_rules.values()), default=0)
        pve.state.ha_rules[ruleid] = rule
        errors = _feasibility(pve).get(ruleid)
        if errors:
            # $assert_feasibility dies with a PVE::Exception (code 400), but lock_ha_domain
            # re-dies "$errmsg: $err": the exception stringified (pve-common Exception.pm,
            # stringify: "<code> <msg>" then "<option>: <text>" lines), so a plain 500.
            del pve.state.ha_rules[ruleid]
            lines = "".join(f"{k}: {', '.join(v)}\n" for k, v in errors.items())
            raise ApiError(500, f"{failed}400 Rule '{ruleid}' is invalid.\n{lines}")
    return None


def delete_ha_rule(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Rules.pm, delete_rule: deleting a rule that does not exist is no error."""
    _rules_api(pve, req)
    with pve.lock:
        pve.state.ha_rules.pop(req.params["rule"], None)
    return None


# -- groups (PVE 8; on PVE 9 only while not migrated) -------------------------------------------
def _groups_api(pve: FakePVE, what: str) -> None:
    """PVE 9 API2/HA/Groups.pm: every method dies once groups are migrated."""
    if _groups_migrated(pve):
        raise ApiError(500, f"cannot {what}: ha groups have been migrated to rules")


def ha_groups(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Groups.pm, index."""
    _groups_api(pve, "index groups")
    with pve.lock:
        return [
            {**group, "group": name, "type": "group", "digest": _digest(pve)}
            for name, group in sorted(pve.state.ha_groups.items())
        ]


def create_ha_group(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Groups.pm, create: (PVE 9: not migrated), quorum, `type` must be "group",
    then under the HA lock "already defined"."""
    _groups_api(pve, "create group")
    with pve.lock:
        check_cfs_quorum(pve)
        group = req.params["group"]
        if req.params.get("type") and req.params["type"] != "group":
            raise ApiError(500, "types does not match")
        if group in pve.state.ha_groups:
            raise ApiError(500, f"create ha group failed: ha group ID '{group}' already defined")
        pve.state.ha_groups[group] = {
            k: v for k, v in req.params.items() if k not in ("group", "type")
        }
    return None


def delete_ha_group(pve: FakePVE, req: Request) -> Any:
    """API2/HA/Groups.pm, delete: refused while a resource uses the group."""
    _groups_api(pve, "delete group")
    with pve.lock:
        group = req.params["group"]
        for sid, resource in sorted(pve.state.ha_resources.items()):
            if resource.get("group") == group:
                raise ApiError(500, f"delete ha group failed: ha group is used by service '{sid}'")
        pve.state.ha_groups.pop(group, None)
    return None


HA_ROUTES: list[Route] = [
    ("GET", "/cluster/ha/resources", ha_resources),
    ("POST", "/cluster/ha/resources", create_ha_resource),
    ("GET", "/cluster/ha/resources/{sid}", ha_resource),
    ("DELETE", "/cluster/ha/resources/{sid}", delete_ha_resource),
    ("GET", "/cluster/ha/rules", ha_rules),
    ("POST", "/cluster/ha/rules", create_ha_rule),
    ("GET", "/cluster/ha/rules/{rule}", ha_rule),
    ("DELETE", "/cluster/ha/rules/{rule}", delete_ha_rule),
    ("GET", "/cluster/ha/groups", ha_groups),
    ("POST", "/cluster/ha/groups", create_ha_group),
    ("DELETE", "/cluster/ha/groups/{group}", delete_ha_group),
]
