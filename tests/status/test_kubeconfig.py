"""`kubeconfig`: K3s's admin kubeconfig through the guest agent, rewritten, 0600, merged."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import cli, yamlio
from generator.environment import Environment
from generator.errors import HomelabError
from generator.status import k8s, kubeconfig
from tests.labfakes import Lab, healthy, lab

K3S_PATH = "/etc/rancher/k3s/k3s.yaml"
OTHER = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "work", "cluster": {"server": "https://k8s.work.example:443"}}],
    "users": [{"name": "work-admin", "user": {"token": "work-token"}}],
    "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work-admin"}}],
    "current-context": "work",
}


@pytest.fixture
def made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    with lab(tmp_path, servers=3, agents=1) as ha:
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", ha.pve.state.token_secret)
        healthy(ha.guests, ha.cluster, ha.kube)
        yield ha


def _read(path: Path) -> dict[str, object]:
    loaded: dict[str, object] = yamlio.load_text(path.read_text(), str(path))
    return loaded


def test_written_with_the_vip_the_cluster_name_and_mode_0600(
    made: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    server = made.cluster.first_server
    # The VM is still starting, then K3s has not written its file yet.
    made.guests.vm(server.vmid).files[K3S_PATH] = [None, None, made.kube.k3s_yaml()]
    made.pve.state.vms[server.vmid].status = "stopped"

    def start_later(*_: object) -> None:
        made.pve.state.vms[server.vmid].status = "running"

    target = made.directory / "home.kubeconfig"
    argv = ["kubeconfig", "-C", str(made.directory), "--interval", "0.01"]
    with pytest.MonkeyPatch.context() as patch:
        from generator.proxmox import agent

        real = agent.read_file
        calls: list[int] = []

        def counted(*args: object, **kw: object) -> str:
            calls.append(1)
            if len(calls) == 2:
                start_later()
            return real(*args, **kw)  # type: ignore[arg-type]

        patch.setattr(agent, "read_file", counted)
        assert cli.main(argv) == 0
    assert len(calls) == 4  # VM down, then the file missing twice, then read
    err = capsys.readouterr().err
    assert "waiting for k3s-server-1: VM 201 is not running" in err
    assert "No such file or directory" in err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    config = _read(target)
    assert config["clusters"] == [
        {
            "name": "home",
            "cluster": {
                "certificate-authority-data": config["clusters"][0]["cluster"][  # type: ignore[index]
                    "certificate-authority-data"
                ],
                "server": "https://10.0.0.5:6443",
            },
        }
    ]
    assert config["contexts"] == [{"name": "home", "context": {"cluster": "home", "user": "home"}}]
    assert config["users"] == [{"name": "home", "user": {"token": made.kube.token}}]
    assert config["current-context"] == "home"


def test_single_server_points_at_its_ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with lab(tmp_path, servers=1, agents=0) as single:
        monkeypatch.setenv("HOMELAB_GEN_PVE_TOKEN", single.pve.state.token_secret)
        healthy(single.guests, single.cluster, single.kube)
        out = tmp_path / "x.kubeconfig"
        assert cli.main(["kubeconfig", "-C", str(single.directory), "-o", str(out)]) == 0
        server = _read(out)["clusters"][0]["cluster"]["server"]  # type: ignore[index]
    assert server == "https://10.0.0.11:6443"


def test_the_written_file_works_with_the_real_client(made: Lab) -> None:
    assert cli.main(made.cli("kubeconfig")) == 0
    config = _read(made.directory / "home.kubeconfig")
    facts = k8s.read(config)
    assert not facts.error
    assert {n.name for n in facts.nodes} == {n.name for n in made.cluster.nodes}


def test_merge_keeps_other_contexts_and_the_current_one(
    made: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    target.write_text(yamlio.dump_text(OTHER))
    monkeypatch.setenv("KUBECONFIG", f"{target}:{tmp_path / 'second'}")
    assert cli.main(made.cli("kubeconfig", "--merge")) == 0
    assert cli.main(made.cli("kubeconfig", "--merge")) == 0  # again: replaced, not doubled
    merged = _read(target)
    assert merged["current-context"] == "work"
    assert [c["name"] for c in merged["contexts"]] == ["work", "home"]  # type: ignore[index]
    assert merged["contexts"][0] == OTHER["contexts"][0]  # type: ignore[index]
    assert merged["users"][0] == OTHER["users"][0]  # type: ignore[index]
    assert merged["clusters"][0] == OTHER["clusters"][0]  # type: ignore[index]
    assert len(merged["users"]) == 2  # type: ignore[arg-type]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not (tmp_path / "second").exists()
    assert not (made.directory / "home.kubeconfig").exists()


def test_merge_into_nothing_creates_a_file_with_our_context(tmp_path: Path) -> None:
    ours = kubeconfig.rewrite(
        yamlio.load_text(_k3s_text(), "k3s.yaml"), "lab", "https://10.0.0.5:6443"
    )
    target = tmp_path / "home" / ".kube" / "config"
    kubeconfig.merge_into(target, ours)
    assert _read(target) == ours
    assert kubeconfig.merge_target(Environment()) == Path("~/.kube/config").expanduser()


def test_forbidden_file_read_is_an_error_not_a_wait(
    made: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    perms = made.pve.state.permissions["/vms"]
    del perms["VM.GuestAgent.Unrestricted"]
    assert cli.main(made.cli("kubeconfig")) == 1
    err = capsys.readouterr().err
    assert "Permission check failed" in err and "VM.GuestAgent.FileRead" in err
    assert "Traceback" not in err


def test_timeout_while_k3s_has_not_written_it(
    made: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    made.guests.vm(made.cluster.first_server.vmid).files[K3S_PATH] = [None]
    argv = made.cli("kubeconfig", "--timeout", "0.05", "--interval", "0.01")
    assert cli.main(argv) == 1
    assert "No such file or directory" in capsys.readouterr().err


def _k3s_text() -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: default\n  cluster:\n    server: https://127.0.0.1:6443\n"
        "    certificate-authority-data: Q0E=\n"
        "contexts:\n- name: default\n  context: {cluster: default, user: default}\n"
        "current-context: default\n"
        "users:\n- name: default\n  user:\n    client-certificate-data: Q0VSVA==\n"
        "    client-key-data: S0VZ\n"
    )


def test_rewrite_renames_everything_and_keeps_credentials() -> None:
    ours = kubeconfig.rewrite(yamlio.load_text(_k3s_text(), "k3s"), "lab", "https://h:6443")
    assert ours["clusters"][0]["cluster"] == {
        "server": "https://h:6443",
        "certificate-authority-data": "Q0E=",
    }
    assert ours["users"][0] == {
        "name": "lab",
        "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"},
    }
    assert "default" not in yamlio.dump_text(ours)


def test_rewrite_refuses_an_unexpected_file() -> None:
    with pytest.raises(HomelabError, match="exactly one entry in clusters, found 0"):
        kubeconfig.rewrite({"clusters": []}, "lab", "https://h:6443")
    with pytest.raises(HomelabError, match="not a valid kubeconfig"):
        kubeconfig.parse("- just\n- a list\n", "x")
