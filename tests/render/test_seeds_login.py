"""The login user in user-data: an empty key list must still be valid cloud-config."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from generator import yamlio
from generator.render.seeds import node_seed
from tests.render.seed_clusters import SECRETS, cluster_from, fixture_data


def test_no_ssh_keys_leaves_the_key_out_and_stays_valid(upstream: Path) -> None:
    data = fixture_data("seeds-ha")
    data["ssh_authorized_keys"] = []
    cluster = cluster_from(data)
    schema = json.loads((upstream / "cloud-init" / "schema-cloud-config-v1.json").read_text())
    validator = jsonschema.Draft4Validator(schema)
    for node in (cluster.first_server, cluster.nodes[-1]):
        user_data = yamlio.load_all_plain(node_seed(cluster, SECRETS, node)["user-data"])[0]
        (user,) = user_data["users"]
        assert "ssh_authorized_keys" not in user
        errors = [e.message for e in validator.iter_errors(user_data)]
        assert not errors, f"{node.name}: {errors}"


def test_the_old_empty_list_is_what_the_schema_rejects(upstream: Path) -> None:
    """So the test above checks the schema rule it means to (minItems 1)."""
    schema = json.loads((upstream / "cloud-init" / "schema-cloud-config-v1.json").read_text())
    user = {"name": "debian", "lock_passwd": True, "ssh_authorized_keys": []}
    errors = list(jsonschema.Draft4Validator(schema).iter_errors({"users": [user]}))
    assert errors


def test_keys_are_kept_when_there_are_some() -> None:
    data = fixture_data("seeds-ha")
    assert data["ssh_authorized_keys"]
    cluster = cluster_from(data)
    user_data = yamlio.load_all_plain(
        node_seed(cluster, SECRETS, cluster.first_server)["user-data"]
    )[0]
    assert user_data["users"][0]["ssh_authorized_keys"] == data["ssh_authorized_keys"]
