"""A template prepared by `template --prepare`: the node seed installs K3s and the packages
with no download when the image holds the marker for its version, downloads otherwise; and
the preparation seed itself. The scripts run for real under sh, with `curl`, `apt-get`,
`dpkg-query`, `systemctl` and install.sh as recording stand-ins and the absolute paths moved
under a temporary folder."""

from __future__ import annotations

import hashlib
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from generator import yamlio
from generator.render import k3s, prepared
from generator.render.seeds import node_seed
from tests.render.seed_clusters import SECRETS, cluster_from, fixture_cluster, fixture_data

VERSION = fixture_cluster("seeds-ha").cluster.k3s_version
PATHS = (
    k3s.PREPARED_MARKER,
    k3s.PREPARED_BINARY,
    k3s.PREPARED_INSTALLER,
    k3s.PREPARED_IMAGES_DIR,
    k3s.INSTALLED_MARKER,
)


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho \"{name} $*\" >> '{folder}/calls'\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _sandbox(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "curl", "exit 7")  # no network: any fetch fails, and is recorded
    _stub(bin_dir, "systemctl", "exit 0")
    _stub(bin_dir, "sleep", "exit 0")
    _stub(bin_dir, "apt-get", "exit 0")
    return bin_dir


def _moved(script: str, root: Path) -> str:
    for path in sorted(PATHS, key=len, reverse=True):
        script = script.replace(path, f"{root}{path}")
    return script


def _run(script: str, tmp_path: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "script.sh"
    path.write_text(script)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        ["sh", str(path)], capture_output=True, text=True, env=env, timeout=30, check=False
    )


def _prepare_image(root: Path, version: str) -> None:
    """The layout the preparation leaves (k3s-prepare.sh.j2), with a stand-in install.sh
    that records how it was called."""
    for path in (k3s.PREPARED_MARKER, k3s.PREPARED_BINARY, k3s.PREPARED_INSTALLER):
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (root / k3s.PREPARED_MARKER.lstrip("/")).write_text(
        f"k3s_version={version}\ninstaller_sha256=x\npackages=qemu-guest-agent\n"
    )
    binary = root / k3s.PREPARED_BINARY.lstrip("/")
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    installer = root / k3s.PREPARED_INSTALLER.lstrip("/")
    installer.write_text(
        f'echo "skip=$INSTALL_K3S_SKIP_DOWNLOAD version=$INSTALL_K3S_VERSION"'
        f" >> '{root}/installed'\n"
    )


def _install_script(monkeypatch: pytest.MonkeyPatch, root: Path, pin: str | None) -> str:
    monkeypatch.setattr(k3s, "K3S_INSTALLER_SHA256", pin)
    cluster = fixture_cluster("seeds-ha")
    (root / k3s.INSTALLED_MARKER.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    return _moved(k3s.install_script(cluster, cluster.nodes[-1]), root)


def test_a_prepared_image_installs_k3s_with_no_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, bin_dir = tmp_path / "root", _sandbox(tmp_path)
    _prepare_image(root, VERSION)
    result = _run(_install_script(monkeypatch, root, None), tmp_path, bin_dir)
    assert result.returncode == 0, result.stderr
    assert (root / "installed").read_text() == f"skip=true version={VERSION}\n"
    calls = (bin_dir / "calls").read_text()
    assert "curl" not in calls and "sleep" not in calls
    assert "systemctl start --no-block k3s-agent" in calls
    assert (root / k3s.INSTALLED_MARKER.lstrip("/")).read_text() == f"{VERSION}\n"
    assert "prepared with K3s" in result.stdout


def test_the_local_install_sh_must_match_the_pin_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, bin_dir = tmp_path / "root", _sandbox(tmp_path)
    _prepare_image(root, VERSION)
    pin = hashlib.sha256(b"the real install.sh").hexdigest()
    result = _run(_install_script(monkeypatch, root, pin), tmp_path, bin_dir)
    assert result.returncode == k3s.INSTALLER_MISMATCH_EXIT
    assert not (root / "installed").exists()


def test_another_version_in_the_image_falls_back_to_the_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, bin_dir = tmp_path / "root", _sandbox(tmp_path)
    _prepare_image(root, "v1.30.0+k3s1")
    result = _run(_install_script(monkeypatch, root, None), tmp_path, bin_dir)
    assert result.returncode == 7  # the stand-in curl: the download was tried
    assert "curl" in (bin_dir / "calls").read_text()
    assert not (root / "installed").exists()
    assert f"prepared with v1.30.0+k3s1, not K3s {VERSION}: downloading" in result.stdout


def test_an_unprepared_image_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root, bin_dir = tmp_path / "root", _sandbox(tmp_path)
    result = _run(_install_script(monkeypatch, root, None), tmp_path, bin_dir)
    assert result.returncode == 7
    assert "prepared" not in result.stdout


def _dpkg(bin_dir: Path, installed: set[str]) -> None:
    cases = " ".join(sorted(installed)) or "none"
    body = (
        'for p in "$@"; do last=$p; done\n'
        f'case " {cases} " in *" $last "*) echo "install ok installed";; *) exit 1;; esac'
    )
    _stub(bin_dir, "dpkg-query", body)


def test_the_packages_script_runs_no_apt_when_everything_is_there(tmp_path: Path) -> None:
    bin_dir = _sandbox(tmp_path)
    _dpkg(bin_dir, set(prepared.packages()))
    result = _run(prepared.packages_script(), tmp_path, bin_dir)
    assert result.returncode == 0, result.stderr
    assert "apt-get" not in (bin_dir / "calls").read_text()


def test_the_packages_script_installs_only_what_is_missing(tmp_path: Path) -> None:
    bin_dir = _sandbox(tmp_path)
    _dpkg(bin_dir, set(prepared.packages()) - {"open-iscsi", "nfs-common"})
    result = _run(prepared.packages_script(), tmp_path, bin_dir)
    assert result.returncode == 0, result.stderr
    apt = [c for c in (bin_dir / "calls").read_text().splitlines() if c.startswith("apt-get")]
    # apt waits for a lock apt-daily may hold at first boot, as cloud-init's install does
    assert apt[0] == "apt-get -o DPkg::Lock::Timeout=300 update"
    assert apt[1].startswith("apt-get -o DPkg::Lock::Timeout=300 ")
    assert apt[1].endswith("install open-iscsi nfs-common")


def _seed_scripts() -> dict[str, str]:
    cluster = fixture_cluster("seeds-ha")
    node = node_seed(cluster, SECRETS, cluster.nodes[-1])
    user = yamlio.load_text(prepared.preparation_seed(cluster)["user-data"], "prep")
    node_user = yamlio.load_text(node["user-data"], "node")
    files = [*user["write_files"], *node_user["write_files"]]
    return {f["path"]: f["content"] for f in files if f["content"].startswith("#!/bin/sh")}


@pytest.mark.parametrize("path", sorted(_seed_scripts()))
def test_every_script_is_valid_shell(path: str, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text(_seed_scripts()[path])
    checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    if shutil.which("shellcheck"):
        linted = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True)
        assert linted.returncode == 0, linted.stdout.decode()


def test_the_preparation_seed_powers_off_only_after_it_succeeded() -> None:
    cluster = fixture_cluster("seeds-ha")
    seed = prepared.preparation_seed(cluster)
    user = yamlio.load_text(seed["user-data"], "prep")
    assert "users" not in user and "packages" not in user  # no login, no apt refresh
    last = user["runcmd"][-1]
    assert last.index(prepared.PACKAGES_SCRIPT) < last.index(prepared.PREPARE_SCRIPT)
    assert last.index(prepared.PREPARE_SCRIPT) < last.index(prepared.FINISH_SCRIPT)
    assert " && " in last
    finish = prepared.finish_script()
    assert "cloud-init clean --machine-id --logs --seed" in finish
    assert finish.index("cloud-init status --wait") < finish.index("poweroff")
    meta = yamlio.load_text(seed["meta-data"], "meta")
    assert meta["instance-id"] == f"homelab-gen-prepare-{VERSION}"
    for secret in (SECRETS.k3s_token, SECRETS.agent_token, SECRETS.age_key):
        assert secret not in "".join(seed.values())


def test_the_preparation_fetches_the_pinned_release_and_checks_it() -> None:
    data = fixture_data("seeds-ha")
    data["cluster"]["k3s_version"] = "v1.34.1+k3s1"
    script = prepared.prepare_script(cluster_from(data))
    base = "https://github.com/k3s-io/k3s/releases/download/v1.34.1%2Bk3s1"
    assert f"'{base}/k3s' k3s" in script
    assert f"'{base}/{prepared.IMAGES}'" in script
    assert "sha256sum -c -" in script
    assert "echo 'k3s_version=v1.34.1+k3s1'" in script
