"""Issue 15, item 4: the Traefik dashboard is served only behind basic auth (or not at all),
its htpasswd Secret is SOPS-encrypted in the tree; and cert-manager's chart comes from the
OCI registry upstream recommends."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from generator import secrets, secretstore, sops, yamlio
from generator.render import charts, gitops, gitops_secrets
from generator.render import components as comps
from generator.render.gitops import render_gitops
from generator.render.output import RenderedFile
from tests.render.test_gitops_cases import (
    SECRETS,
    TEST_IDENTITY,
    cluster_with,
    crd_problems,
    documents,
    encrypted,
    values_schema_problems,
)
from tests.test_cli import run_cli
from tests.test_sops import NOW, key, keyfile, node_decrypt, node_reader  # noqa: F401

TRAEFIK = "gitops/infrastructure/controllers/traefik"
AUTH_FILE = f"{TRAEFIK}/{comps.TRAEFIK_DASHBOARD_AUTH}.sops.yaml"
CERT_MANAGER = "gitops/infrastructure/controllers/cert-manager"
ON = {"enabled": True, "dashboard": True}
OFF = {"enabled": True, "dashboard": False}


def release_values(rendered: dict[str, RenderedFile], folder: str) -> dict[str, Any]:
    path = f"gitops/infrastructure/controllers/{folder}/release.yaml"
    found: dict[str, Any] = yamlio.load_all_plain(rendered[path].text)[0]["spec"]["values"]
    return found


def one(rendered: dict[str, RenderedFile], path: str) -> dict[str, Any]:
    found: dict[str, Any] = yamlio.load_all_plain(rendered[path].text)[0]
    return found


@pytest.fixture(scope="module")
def on() -> dict[str, RenderedFile]:
    return render_gitops(cluster_with(traefik=ON, cert_manager=True), SECRETS)


@pytest.fixture(scope="module")
def off() -> dict[str, RenderedFile]:
    return render_gitops(cluster_with(traefik=OFF, cert_manager=True), SECRETS)


# --- what the chart is told -----------------------------------------------------------------


def test_off_exposes_nothing(off: dict[str, RenderedFile]) -> None:
    got = release_values(off, "traefik")
    # The chart's default is off too; said explicitly so a changed default cannot expose it.
    assert got["ingressRoute"] == {"dashboard": {"enabled": False}}
    assert "extraObjects" not in got
    assert not [p for p in off if comps.TRAEFIK_DASHBOARD_AUTH in p]
    assert not [d for _, d in documents(off) if d["kind"] == "Certificate" and "traefik" in str(d)]


def test_on_routes_the_dashboard_through_basic_auth_on_websecure(
    on: dict[str, RenderedFile],
) -> None:
    got = release_values(on, "traefik")
    route = got["ingressRoute"]["dashboard"]
    assert route["enabled"] is True
    assert route["matchRule"] == "Host(`traefik.lab.example.com`)"
    assert route["entryPoints"] == ["websecure"]
    assert route["middlewares"] == [{"name": comps.TRAEFIK_DASHBOARD_AUTH}]
    assert route["tls"] == {"secretName": comps.TRAEFIK_DASHBOARD_TLS}
    [middleware] = got["extraObjects"]
    assert middleware["kind"] == "Middleware" and middleware["apiVersion"] == "traefik.io/v1alpha1"
    assert middleware["metadata"] == {"name": comps.TRAEFIK_DASHBOARD_AUTH, "namespace": "traefik"}
    assert middleware["spec"]["basicAuth"]["secret"] == comps.TRAEFIK_DASHBOARD_AUTH


def test_without_cert_manager_traefiks_default_certificate_serves_it() -> None:
    cluster = cluster_with(traefik=ON, cert_manager=False)
    got = release_values(render_gitops(cluster, SECRETS), "traefik")
    assert got["ingressRoute"]["dashboard"]["tls"] == {}
    assert comps.traefik_dashboard_certificate(cluster) is None


@pytest.mark.parametrize("dashboard", [True, False], ids=["on", "off"])
@pytest.mark.parametrize("cert_manager", [True, False], ids=["cert-manager", "no-cert-manager"])
def test_values_validate_against_the_traefik_chart_schema(
    dashboard: bool, cert_manager: bool, upstream: Path
) -> None:
    cluster = cluster_with(
        traefik={"enabled": True, "dashboard": dashboard}, cert_manager=cert_manager
    )
    rendered = render_gitops(cluster, SECRETS)
    release = one(rendered, f"{TRAEFIK}/release.yaml")
    assert values_schema_problems(release, upstream) == []


def test_the_certificate_uses_the_clusters_issuer_and_fits_cert_managers_crd(
    upstream: Path,
) -> None:
    acme = {"issuer": "acme", "acme_email": "me@example.com", "dns_provider": "cloudflare"}
    for issuer, name in (({"issuer": "selfsigned"}, "homelab-ca"), (acme, "letsencrypt")):
        cluster = cluster_with(traefik=ON, cert_manager={"enabled": True, **issuer})
        cert = comps.traefik_dashboard_certificate(cluster)
        assert cert is not None
        assert cert["spec"]["dnsNames"] == ["traefik.lab.example.com"]
        assert cert["spec"]["secretName"] == comps.TRAEFIK_DASHBOARD_TLS
        assert cert["spec"]["issuerRef"]["name"] == name
        rendered = {"cert.yaml": RenderedFile(gitops.emit([cert]))}
        assert crd_problems(rendered, upstream) == []


# --- the password and its htpasswd line ------------------------------------------------------


def test_the_htpasswd_line_is_bcrypt_and_verifies_only_the_password() -> None:
    password = secrets.traefik_dashboard_password(SECRETS)
    line = secrets.htpasswd_line("admin", password)
    user, hashed = line.split(":", 1)
    assert user == "admin" and hashed.startswith("$2y$12$")  # what `htpasswd -nB` writes
    assert bcrypt.checkpw(password.encode(), hashed.encode())
    assert not bcrypt.checkpw(b"not-the-password", hashed.encode())
    # The same every render, so SOPS keeps the file's bytes; another password, another salt.
    assert secrets.htpasswd_line("admin", password) == line
    other = secrets.htpasswd_line("admin", password + "x").split(":", 1)[1]
    assert other[:29] != hashed[:29]


@pytest.mark.skipif(shutil.which("htpasswd") is None, reason="no htpasswd (apache2-utils)")
def test_apaches_htpasswd_accepts_the_line(tmp_path: Path) -> None:
    password = secrets.traefik_dashboard_password(SECRETS)
    (tmp_path / "users").write_text(secrets.htpasswd_line("admin", password) + "\n")
    checked = subprocess.run(
        ["htpasswd", "-vb", str(tmp_path / "users"), "admin", password],
        capture_output=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_password_is_derived_stable_and_strong_unless_set() -> None:
    derived = secrets.traefik_dashboard_password(SECRETS)
    assert len(derived) == 24 and SECRETS.k3s_token not in derived
    assert secrets.traefik_dashboard_password(SECRETS) == derived
    other = dataclasses.replace(SECRETS, k3s_token="another-token")
    assert secrets.traefik_dashboard_password(other) != derived
    chosen = dataclasses.replace(SECRETS, traefik_dashboard_password="my-own-pw-Zx")
    assert secrets.traefik_dashboard_password(chosen) == "my-own-pw-Zx"
    assert derived in SECRETS.values()  # the workspace's leak check looks for it too


# --- the Secret in the tree ------------------------------------------------------------------


def test_the_secret_sits_beside_the_release_marked_for_sops(on: dict[str, RenderedFile]) -> None:
    item = on[AUTH_FILE]
    assert item.sops and item.secret
    secret = one(on, AUTH_FILE)
    assert secret["metadata"] == {"name": comps.TRAEFIK_DASHBOARD_AUTH, "namespace": "traefik"}
    kustomization = one(on, f"{TRAEFIK}/kustomization.yaml")
    assert f"{comps.TRAEFIK_DASHBOARD_AUTH}.sops.yaml" in kustomization["resources"]


def test_the_secret_encrypts_decrypts_and_its_users_verify(on: dict[str, RenderedFile]) -> None:
    password = secrets.traefik_dashboard_password(SECRETS)
    sealed = encrypted(on[AUTH_FILE].text)
    assert "$2y$" not in sealed and password not in sealed
    users = sops.decrypt(sealed, [TEST_IDENTITY])["stringData"]["users"]
    [line] = users.splitlines()
    assert line.startswith("admin:")
    assert bcrypt.checkpw(password.encode(), line.split(":", 1)[1].encode())


def test_sops_age_under_node_decrypts_the_secret(
    on: dict[str, RenderedFile],
    node_reader: Path,  # noqa: F811
    keyfile: Path,  # noqa: F811
    key: tuple[str, str],  # noqa: F811
) -> None:
    """An independent SOPS reader (sops-age, JavaScript) decrypts it and checks its MAC."""
    document = yamlio.to_plain(yamlio.load_text(on[AUTH_FILE].text, "rendered"))
    regex = sops.KUBERNETES_ENCRYPTED_REGEX
    sealed = sops.encrypt(document, [key[1]], encrypted_regex=regex, now=NOW)
    result = node_decrypt(node_reader, sealed, keyfile)
    assert result["mac"] == "ok"
    line = result["data"]["stringData"]["users"].strip()
    password = secrets.traefik_dashboard_password(SECRETS)
    assert bcrypt.checkpw(password.encode(), line.split(":", 1)[1].encode())


@pytest.mark.parametrize("dashboard", [True, False], ids=["on", "off"])
def test_no_password_or_hash_in_any_tracked_plain_file(dashboard: bool) -> None:
    cluster = cluster_with(traefik={"enabled": True, "dashboard": dashboard}, cert_manager=True)
    rendered = render_gitops(cluster, SECRETS)
    password = secrets.traefik_dashboard_password(SECRETS)
    line = gitops_secrets.traefik_dashboard_auth(SECRETS)["stringData"]["users"].strip()
    everything = "\n".join(item.text for item in rendered.values())
    assert password not in everything  # not even in the Secret before encryption: a hash
    plain = "\n".join(item.text for item in rendered.values() if not item.sops)
    assert line.split(":", 1)[1] not in plain


def test_day_two_switching_on_adds_the_secret_and_off_removes_it() -> None:
    """An old store (no dashboard password in it) renders the Secret at once, the same bytes
    every time; switching off leaves neither Middleware nor Secret."""
    old_store = dataclasses.replace(SECRETS, traefik_dashboard_password=None)
    before = render_gitops(cluster_with(traefik=OFF, cert_manager=True), old_store)
    after = render_gitops(cluster_with(traefik=ON, cert_manager=True), old_store)
    again = render_gitops(cluster_with(traefik=ON, cert_manager=True), old_store)
    assert AUTH_FILE not in before and AUTH_FILE in after
    assert after[AUTH_FILE].text == again[AUTH_FILE].text
    off_again = render_gitops(cluster_with(traefik=OFF, cert_manager=True), old_store)
    assert set(off_again) == set(before)


# --- `homelab-gen secret get` ------------------------------------------------------------------


def test_secret_get_prints_the_dashboard_password_and_set_replaces_it(tmp_path: Path) -> None:
    store = secretstore.create(tmp_path)
    got = run_cli("secret", "get", "traefik_dashboard_password", "-C", str(tmp_path))
    assert got.returncode == 0, got.stderr
    assert got.stdout == secrets.traefik_dashboard_password(store) + "\n"
    setter = subprocess.run(
        [
            sys.executable,
            "-m",
            "generator",
            "secret",
            "set",
            "traefik_dashboard_password",
            "-C",
            str(tmp_path),
        ],
        input="chosen-pw-Qm4\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert setter.returncode == 0, setter.stderr
    got = run_cli("secret", "get", "traefik_dashboard_password", "-C", str(tmp_path))
    assert got.stdout == "chosen-pw-Qm4\n"
    grafana = run_cli("secret", "get", "grafana_admin_password", "-C", str(tmp_path))
    assert grafana.stdout == store.grafana_admin_password + "\n"
    missing = run_cli("secret", "get", "git_token", "-C", str(tmp_path))
    assert missing.returncode == 2 and "is not set" in missing.stderr


# --- cert-manager from its OCI registry ------------------------------------------------------


def test_cert_manager_chart_is_the_pinned_oci_one() -> None:
    chart = charts.SPEC_BY_KEY["cert_manager"].chart
    assert chart.url == "oci://quay.io/jetstack/charts" and chart.oci
    assert chart.version == "v1.21.1"
    assert charts.repository_spec(chart) == {
        "interval": "12h",
        "url": "oci://quay.io/jetstack/charts",
        "type": "oci",
    }
    traefik = charts.SPEC_BY_KEY["traefik"].chart
    assert "type" not in charts.repository_spec(traefik)


def test_cert_manager_source_and_release_fit_the_flux_crds(
    on: dict[str, RenderedFile], upstream: Path
) -> None:
    repository = one(on, f"{CERT_MANAGER}/repository.yaml")
    assert repository["kind"] == "HelmRepository"
    assert repository["spec"]["type"] == "oci"
    assert repository["spec"]["url"] == "oci://quay.io/jetstack/charts"
    release = one(on, f"{CERT_MANAGER}/release.yaml")
    chart = release["spec"]["chart"]["spec"]
    assert chart["chart"] == "cert-manager" and chart["version"] == "v1.21.1"
    assert chart["sourceRef"] == {
        "kind": "HelmRepository",
        "name": repository["metadata"]["name"],
        "namespace": repository["metadata"]["namespace"],
    }
    assert crd_problems(on, upstream) == []
