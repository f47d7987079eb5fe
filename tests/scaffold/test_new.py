"""`homelab-gen new` through the real CLI, in temp dirs, with real git."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator import config, secretstore
from tests.scaffold.terminal import CTRL_D, Terminal
from tests.test_cli import run_cli

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

ANSWERS = """\
cluster_name: lab
domain: home.example.net
network_cidr: 192.168.50.0/24
servers: 3
agents: 4
longhorn: true
whoami: false
git_url: git@github.com:me/lab-ops.git
"""


def new(
    tmp_path: Path, *args: str, home: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    home = home or tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        ["python", "-m", "generator", "new", *args],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig")},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def default_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("new")
    result = new(tmp, "--no-input", "lab")
    assert result.returncode == 0, result.stderr
    return tmp / "lab"


def test_no_input_writes_a_committed_valid_repo(default_repo: Path) -> None:
    assert git(default_repo, "status", "--porcelain") == ""
    assert "homelab-gen: new cluster repo" in git(default_repo, "log", "--oneline")
    tracked = git(default_repo, "ls-files").split()
    for expected in ("cluster.yaml", ".gitignore", "README.md"):
        assert expected in tracked
    assert any(path.startswith("gitops/clusters/home/") for path in tracked)
    assert any(path.endswith("/network-config") for path in tracked)
    result = run_cli("validate", "-C", str(default_repo))
    assert result.returncode == 0, result.stderr


def test_no_generated_secret_is_in_any_tracked_file(default_repo: Path) -> None:
    store = secretstore.load(default_repo)
    assert store.values()
    tracked = git(default_repo, "ls-files", "-z").split("\0")
    for path in filter(None, tracked):
        text = (default_repo / path).read_bytes()
        for value in store.values():
            assert value.encode() not in text, f"a secret leaked into tracked file {path}"
    # and the files that do hold them are private and untracked
    holders = [p for p in default_repo.rglob("*") if p.is_file() and ".git" not in p.parts]
    holding = [p for p in holders if store.k3s_token.encode() in p.read_bytes()]
    assert holding, "the token should reach the seeds"
    for path in holding:
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert str(path.relative_to(default_repo)) not in tracked


def test_answers_are_kept_and_make_the_repo_again(tmp_path: Path) -> None:
    (tmp_path / "answers.yaml").write_text(ANSWERS + "git_branch: trunk\n")
    assert new(tmp_path, "--answers", "answers.yaml", "lab").returncode == 0
    repo = tmp_path / "lab"
    kept = repo / ".homelab-gen" / "answers.yaml"
    text = kept.read_text()
    assert "network_cidr: 192.168.50.0/24" in text and "gateway: 192.168.50.1" in text
    for value in secretstore.load(repo).values():
        assert value not in text
    assert ".homelab-gen/answers.yaml" not in git(repo, "ls-files")
    # git: origin is the git_url answer, the branch the git_branch answer
    assert git(repo, "remote", "get-url", "origin").strip() == "git@github.com:me/lab-ops.git"
    assert git(repo, "branch", "--show-current").strip() == "trunk"
    again = new(tmp_path, "--answers", str(kept), "again")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "cluster.yaml").read_text() == (repo / "cluster.yaml").read_text()


@pytest.mark.parametrize("no_git", [False, True])
def test_the_last_lines_are_the_real_next_steps(tmp_path: Path, no_git: bool) -> None:
    (tmp_path / "answers.yaml").write_text(ANSWERS)
    flags = ["--no-git"] if no_git else []
    result = new(tmp_path, "--answers", "answers.yaml", *flags, "lab")
    assert result.returncode == 0, result.stderr
    steps = result.stdout.split("deploy key")[-1].splitlines()[2:]
    wanted = [
        "cd lab",
        "git push -u origin main",
        "pveum user token add homelab@pve homelab-gen",
        "HOMELAB_GEN_PVE_TOKEN",
        "homelab-gen template",
        "homelab-gen boot",
        "homelab-gen status --wait",
        "back up .homelab-gen/age.key",
    ]
    assert len(steps) == len(wanted), result.stdout
    for number, (step, text) in enumerate(zip(steps, wanted, strict=True), 1):
        assert step.startswith(f"{number}. ") and text in step, step
    assert ("git init -b main" in steps[1]) is no_git
    assert (tmp_path / "lab" / ".git").exists() is not no_git


def test_help_names_no_file_a_pip_install_lacks() -> None:
    result = run_cli("new", "--help")
    assert result.returncode == 0
    assert "templates/" not in result.stdout and "cookiecutter.json" not in result.stdout
    assert ".homelab-gen/answers.yaml" in result.stdout


def test_no_secret_value_is_anywhere_in_the_git_history(tmp_path: Path) -> None:
    """Every commit, every blob: the store is encrypted, the key and seeds are ignored, even
    after a day-2 secret and a second commit."""
    (tmp_path / "answers.yaml").write_text(ANSWERS)
    assert new(tmp_path, "--answers", "answers.yaml", "lab").returncode == 0
    repo = tmp_path / "lab"
    subprocess.run(
        [sys.executable, "-m", "generator", "secret", "set", "apps/db/password", "-C", str(repo)],
        input="day-two-password-Zq81",
        text=True,
        check=True,
        capture_output=True,
    )
    assert run_cli("render", "-C", str(repo)).returncode == 0
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "day 2")
    store = secretstore.load(repo)
    assert "day-two-password-Zq81" in store.values() and store.age_key in store.values()
    history = git(repo, "log", "--all", "-p", "--binary", "--full-history")
    assert "secrets.sops.yaml" in history and "grafana-admin.sops.yaml" in history
    for value in store.values():
        assert value not in history
    tracked = git(repo, "ls-files").split()
    assert ".homelab-gen/age.key" not in tracked


def test_the_cluster_yaml_explains_itself(default_repo: Path) -> None:
    text = (default_repo / "cluster.yaml").read_text()
    assert "HOMELAB_GEN_PVE_TOKEN" in text and "seed_method: iso" in text
    commented = [
        line for line in text.splitlines() if ":" in line and not line.lstrip().startswith("-")
    ]
    assert sum("#" in line for line in commented) >= len(commented) // 2


def test_answers_file_drives_every_proposal(tmp_path: Path) -> None:
    (tmp_path / "answers.yaml").write_text(ANSWERS)
    result = new(tmp_path, "--answers", "answers.yaml", "lab")
    assert result.returncode == 0, result.stderr
    cluster = config.load(tmp_path / "lab").cluster
    assert cluster.name == "lab"
    assert [str(n.ip) for n in cluster.servers] == [
        "192.168.50.11",
        "192.168.50.12",
        "192.168.50.13",
    ]
    assert [str(n.ip) for n in cluster.agents] == [f"192.168.50.{21 + i}" for i in range(4)]
    assert str(cluster.network.gateway) == "192.168.50.1"
    assert str(cluster.network.api_vip) == "192.168.50.10"
    assert cluster.network.metallb_range == "192.168.50.200-192.168.50.250"
    assert [n.vmid for n in cluster.nodes] == [201, 202, 203, 211, 212, 213, 214]
    assert cluster.components.longhorn.enabled and not cluster.components.whoami.enabled
    assert cluster.cluster.git.private


def test_ssh_git_url_gets_a_deploy_key_that_stays_out_of_git(tmp_path: Path) -> None:
    (tmp_path / "answers.yaml").write_text(ANSWERS)
    result = new(tmp_path, "--answers", "answers.yaml", "lab")
    repo = tmp_path / "lab"
    private = secretstore.load(repo).git_deploy_key
    assert private and private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    public = (repo / ".homelab-gen" / "deploy-key.pub").read_text().strip()
    assert public.startswith("ssh-ed25519 ") and public in result.stdout
    for path in filter(None, git(repo, "ls-files", "-z").split("\0")):
        assert b"PRIVATE KEY" not in (repo / path).read_bytes(), path


def test_default_ssh_key_comes_from_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = (Path(__file__).parents[1] / "fixtures" / "valid" / "three-servers.yaml").read_text()
    public = key.split('ssh_authorized_keys: ["')[1].split('"')[0]
    (home / ".ssh" / "id_ed25519.pub").write_text(public + "\n")
    assert new(tmp_path, "--no-input", "lab", home=home).returncode == 0
    assert config.load(tmp_path / "lab").cluster.ssh_authorized_keys == (public,)


def terminal(tmp_path: Path, *args: str) -> Terminal:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig")}
    env.pop("NO_COLOR", None)
    return Terminal([sys.executable, "-m", "generator", "new", *args], tmp_path, env)


def test_interactive_prompts_take_typed_answers(tmp_path: Path) -> None:
    # cluster name typed, every other question takes its default (Enter).
    term = terminal(tmp_path, "lab")
    try:
        term.expect("Cluster name")
        term.line("typed")
        for _ in range(40):
            term.line("")
        assert term.wait() == 0, term.output
    finally:
        term.kill()
    cluster = config.load(tmp_path / "lab").cluster
    assert cluster.name == "typed"
    assert [n.name for n in cluster.nodes] == ["typed-server-1", "typed-agent-1", "typed-agent-2"]


def answer(term: Terminal, prompt: str, typed: str, *problems: str) -> None:
    """At PROMPT type TYPED; for each problem expected, see it and the prompt again."""
    term.expect(prompt)
    term.line(typed)
    for problem in problems:
        term.expect(problem)
        term.expect(prompt)


def test_each_answer_is_checked_as_typed_and_asked_again(tmp_path: Path) -> None:
    term = terminal(tmp_path, "lab")
    try:
        answer(term, "Cluster name (a DNS label) [home]: ", "Lab_1", "'Lab_1' is not a DNS label")
        term.line("lab")
        answer(term, "DNS domain for the lab's services [lab.example.com]: ", "")
        answer(term, "Node network CIDR [10.0.0.0/24]: ", "192.168.50.0/33", "is not a network")
        term.line("192.168.50.5/24")
        term.expect("192.168.50.5/24 has host bits set: did you mean 192.168.50.0/24?")
        answer(term, "Node network CIDR [10.0.0.0/24]: ", "192.168.50.0/24")
        # every later proposal follows the corrected network
        answer(
            term,
            "Default gateway [192.168.50.1]: ",
            "10.0.0.1",
            "10.0.0.1 is outside the network 192.168.50.0/24",
        )
        term.line("")
        answer(term, "(1, or an odd number >= 3 for HA) [1]: ", "2", "add no fault tolerance")
        term.line("3")
        answer(term, "How many K3s agents [2]: ", "-1", "'-1' is not a count")
        term.line("two")
        term.expect("'two' is not a count")
        answer(term, "How many K3s agents [2]: ", "4")
        answer(term, "[192.168.50.11]: ", "")
        answer(term, "[192.168.50.10]: ", "192.168.50.12", "already a node's")
        term.line("")
        answer(term, "Proxmox API host [pve.lan]: ", "pve.lan:8006", "is not a host name")
        term.line("")
        answer(term, "Proxmox node to create the VMs on [pve]: ", "")
        answer(term, "Git URL that Flux pulls this repo from (https or ssh) [", "")
        prompt = "SSH public key for the VMs' login user (empty for none): "
        answer(term, prompt, "ssh-ed25519 AAAAnotakey", "paste one line of a .pub file")
        term.line("")
        assert term.wait() == 0, term.output
    finally:
        term.kill()
    cluster = config.load(tmp_path / "lab").cluster
    assert cluster.name == "lab"
    assert str(cluster.network.gateway) == "192.168.50.1"
    assert [str(n.ip) for n in cluster.servers] == [f"192.168.50.{11 + i}" for i in range(3)]
    assert [str(n.ip) for n in cluster.agents] == [f"192.168.50.{21 + i}" for i in range(4)]
    assert str(cluster.network.api_vip) == "192.168.50.10"
    assert cluster.network.metallb_range == "192.168.50.200-192.168.50.250"
    assert cluster.ssh_authorized_keys == ()


def test_asks_at_most_12_questions_and_a_default_that_does_not_fit(tmp_path: Path) -> None:
    """One server: no VIP question. Nodes from .200 would sit in the proposed MetalLB range,
    so that one default is asked too, with the reason."""
    term = terminal(tmp_path, "lab")
    try:
        answers = ["", "", "", "", "1", "0", "10.0.0.200"]
        for typed in answers:
            answer(term, "]: ", typed)
        term.expect("the default metallb_range does not fit: 10.0.0.200 would be in the range")
        answer(term, "MetalLB address range for LoadBalancer Services (FIRST-LAST) [", "")
        term.expect("would be in the range")
        answer(term, "(FIRST-LAST) [10.0.0.200-10.0.0.250]: ", "10.0.0.100-10.0.0.150")
        for _ in range(3):  # Proxmox host and node, git URL
            answer(term, "]: ", "")
        answer(term, "SSH public key for the VMs' login user (empty for none): ", "")
        assert term.wait() == 0, term.output
    finally:
        term.kill()
    cluster = config.load(tmp_path / "lab").cluster
    assert [str(n.ip) for n in cluster.nodes] == ["10.0.0.200"]
    assert cluster.network.metallb_range == "10.0.0.100-10.0.0.150"
    assert cluster.network.api_vip is None


def test_stdin_not_a_terminal_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    result = new(tmp_path, "lab", stdin="typed\n")
    assert result.returncode == 2
    assert result.stderr == "error: stdin is not a terminal: use --no-input or --answers FILE\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_ctrl_d_at_a_prompt_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    term = terminal(tmp_path, "lab")
    try:
        term.expect("Cluster name")
        term.line("typed")
        term.expect("domain")
        term.send(CTRL_D)
        assert term.wait() == 2, term.output
    finally:
        term.kill()
    assert "error: stdin closed (Ctrl-D)" in term.output
    assert "use --no-input or --answers FILE" in term.output
    assert "crash" not in term.output and "Traceback" not in term.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_ctrl_c_at_a_prompt_exits_130_and_writes_nothing(tmp_path: Path) -> None:
    term = terminal(tmp_path, "lab")
    try:
        term.expect("Cluster name")
        term.line("typed")
        term.expect("domain")
        term.interrupt()
        assert term.wait() == 130, term.output
    finally:
        term.kill()
    assert "Traceback" not in term.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_refuses_a_non_empty_folder_and_touches_nothing(tmp_path: Path) -> None:
    target = tmp_path / "lab"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    result = new(tmp_path, "--no-input", "lab")
    assert result.returncode == 2
    assert "exists and is not empty" in result.stderr
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert (target / "notes.txt").read_text() == "mine\n"


def test_fills_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    assert new(tmp_path, "--no-input", "lab").returncode == 0
    assert (tmp_path / "lab" / "cluster.yaml").exists()


@pytest.mark.parametrize("spelling", [".", "./"])
def test_fills_the_current_folder_when_it_is_empty(tmp_path: Path, spelling: str) -> None:
    home = tmp_path / "home"
    here = tmp_path / "here"
    here.mkdir()
    result = new(here, "--no-input", spelling, home=home)
    assert result.returncode == 0, result.stderr
    assert (here / "cluster.yaml").exists() and (here / ".git").is_dir()
    assert git(here, "status", "--porcelain") == ""
    # the temp folder was outside and is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here", "home"]


def test_refuses_the_current_folder_when_it_is_not_empty(tmp_path: Path) -> None:
    here = tmp_path / "here"
    here.mkdir()
    (here / "notes.txt").write_text("mine\n")
    result = new(here, "--no-input", ".", home=tmp_path / "home")
    assert result.returncode == 2
    assert f"error: {here} exists and is not empty" in result.stderr
    assert sorted(p.name for p in here.iterdir()) == ["notes.txt"]


def test_invalid_answers_exit_2_and_leave_nothing(tmp_path: Path) -> None:
    (tmp_path / "answers.yaml").write_text("servers: 2\nnetwork_cidr: 10.1.0.0/24\n")
    result = new(tmp_path, "--answers", "answers.yaml", "lab")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: answers.yaml: 1 problem(s)",
        "servers: 2 servers add no fault tolerance (etcd needs a majority):"
        " type 1, or an odd number such as 3",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.yaml", "home"]


def test_unknown_answer_names_suggest_the_question(tmp_path: Path) -> None:
    (tmp_path / "answers.yaml").write_text("cluster_nmae: lab\n")
    result = new(tmp_path, "--answers", "answers.yaml", "lab")
    assert result.returncode == 2
    assert "cluster_nmae: unknown question (did you mean 'cluster_name'?)" in result.stderr
    assert not (tmp_path / "lab").exists()


def test_a_missing_answers_file_is_a_usage_error(tmp_path: Path) -> None:
    result = new(tmp_path, "--answers", "nowhere.yaml", "lab")
    assert result.returncode == 2
    assert "nowhere.yaml: cannot read answers: No such file or directory" in result.stderr
    assert not (tmp_path / "lab").exists()


def test_an_answers_file_is_checked_in_the_questions_terms_all_at_once(tmp_path: Path) -> None:
    """Every wrong answer is named by its question, not by the cluster.yaml it would make;
    an answer that reads a wrong one (first_node_ip reads network_cidr) waits for it."""
    (tmp_path / "answers.yaml").write_text(
        "cluster_name: Home_Lab\n"
        "network_cidr: 10.0.0.0/33\n"
        "first_node_ip: 10.0.0.300\n"
        "agents: two\n"
        "longhorn: maybe\n"
        "seed_method: ftp\n"
        "first_vmid: 8995\n"
    )
    result = new(tmp_path, "--answers", "answers.yaml", "lab")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: answers.yaml: 5 problem(s)",
        "cluster_name: 'Home_Lab' is not a DNS label: use lowercase letters, digits and '-',"
        " at most 63 characters, e.g. 'home'",
        "network_cidr: '10.0.0.0/33' is not a network: write ADDRESS/PREFIX, e.g. 10.0.0.0/24",
        "agents: 'two' is not a count: type a whole number, 0 or more",
        "seed_method: 'ftp' is not one of: iso, snippets",
        "longhorn: 'maybe' is neither yes nor no: write true or false",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.yaml", "home"]


def test_a_default_that_a_given_answer_breaks_is_named_as_such(tmp_path: Path) -> None:
    """first_vmid's default (201) is fine; a template at 202 with 3 servers collides."""
    (tmp_path / "answers.yaml").write_text("servers: 3\ntemplate_vmid: 202\n")
    result = new(tmp_path, "--answers", "answers.yaml", "lab")
    assert result.returncode == 2
    assert result.stderr.splitlines()[1:] == [
        "first_vmid: the VMs from 201 would take the template's VMID 202: pick another"
        " (the default, from the answers above)"
    ]


def test_answers_typed_before_a_failure_are_kept_for_answers(tmp_path: Path) -> None:
    """The folder fills while the questions are answered: `new` refuses it at the end, and
    keeps what was typed in a file that `--answers` takes."""
    term = terminal(tmp_path, "lab")
    try:
        answer(term, "Cluster name (a DNS label) [home]: ", "kept")
        for _ in range(9):  # domain to git URL: the defaults
            answer(term, "]: ", "")
        term.expect("SSH public key")
        (tmp_path / "lab").mkdir()
        (tmp_path / "lab" / "notes.txt").write_text("mine\n")
        term.line("")
        assert term.wait() == 2, term.output
    finally:
        term.kill()
    assert "exists and is not empty" in term.output
    saved = term.output.split("your answers are kept in ")[1].split(":")[0]
    try:
        assert "cluster_name: kept" in Path(saved).read_text()
        (tmp_path / "lab" / "notes.txt").unlink()
        again = new(tmp_path, "--answers", saved, "lab")
        assert again.returncode == 0, again.stderr
        assert config.load(tmp_path / "lab").cluster.name == "kept"
    finally:
        Path(saved).unlink()
