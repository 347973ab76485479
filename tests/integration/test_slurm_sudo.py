"""The production layout of the Slurm spawner, for real: a hub and a proxy that do not run as root
(the account ``ailys-hub-sudotest``), and a sudoers rule that lets that account run Slurm's
commands as learners (members of ``ailys-sudotest-learners``) and nothing else. The spawner's
exec_prefix is ``sudo -n -u {username} --``, as on Mesolys (docs/design-notes.md, "Production
layout on Mesolys").

One cluster, one hub, real Unix accounts and a real /etc/sudoers.d file for the module; the
fixtures remove the accounts, the group and the file.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import OUTPUT, need
from tests.services import remove_unix_user, unix_user
from tests.services.hub import RunningHub, course, wait_until
from tests.services.slurm import SlurmCluster, cluster_for_tests

pytestmark = [pytest.mark.slurm, pytest.mark.hub]

HUB_ACCOUNT = "ailys-hub-sudotest"
LEARNERS_GROUP = "ailys-sudotest-learners"
LEARNERS = ("sudot-ada", "sudot-bob")
OUTSIDER = "sudot-eve"  # enrolled and known to Slurm, but not in the learners' group
SUDOERS = Path("/etc/sudoers.d/ailys-hub-sudotest")
SUDOERS_NEW = SUDOERS.with_name(f".{SUDOERS.name}.new")  # sudo skips names with a dot: unseen until renamed
# Debian's secure_path (/etc/sudoers): where sudo finds the commands the spawner names.
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The Slurm commands of spawners/slurm/client.py: sbatch submits, squeue polls and places in the queue,
# scancel stops, sacct and scontrol explain a job that ended outside the hub.
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "sacct", "scontrol")

# The file this test installs; docs/design-notes.md shows it with Mesolys' names.
SUDOERS_TEMPLATE = """\
# {path}: the AILyS hub runs as {hub}, not root. It may run Slurm's
# commands as a learner (a member of {learners}), without a password, and nothing else.
Cmnd_Alias {alias} = {commands}
# sudo resets the environment: keep slurm.conf's place (not needed for /etc/slurm/slurm.conf).
Defaults!{alias} env_keep += "SLURM_CONF"
Defaults:{hub} !requiretty
{hub} ALL = (%{learners}) NOPASSWD: {alias}
"""

GiB = 1024**3
PROFILES = {
    "algo": {
        "title": "Algorithmique",
        "partition": "cpu",
        "cpus": 1,
        "memory": GiB // 2,
        "gpus": 0,
        "walltime": 3600,
    }
}
COURSES = [course("algo", ["sudot-prof"], [*LEARNERS, OUTSIDER])]
TIMINGS: list[tuple[str, float]] = []


def sudoers_rule(path: str, hub: str, learners: str, alias: str, commands: list[str]) -> str:
    return SUDOERS_TEMPLATE.format(
        path=path, hub=hub, learners=learners, alias=alias, commands=", ".join(commands)
    )


def slurm_paths() -> list[str]:
    found = {name: shutil.which(name, path=SECURE_PATH) for name in SLURM_COMMANDS}
    missing = [name for name, path in found.items() if not path]
    assert not missing, f"not on sudo's secure_path: {missing}"
    return list(found.values())


def drop_in(cluster: SlurmCluster) -> str:
    """The hub configuration: the Slurm spawner, every Slurm command through sudo."""
    return f"""
from spawners.slurm import install_port_handler

install_port_handler()  # the site is not of kind slurm: jupyterhub_config.py has not installed it
c.JupyterHub.spawner_class = "spawners.slurm.SlurmSpawner"
PROFILES = {PROFILES!r}

def profiles(groups):
    return {{slug: p for slug, p in PROFILES.items() if {{"course-" + slug, "staff-" + slug}} & set(groups)}}

c.SlurmSpawner.profiles = profiles
c.SlurmSpawner.node_addresses = {cluster.node_addresses!r}
c.SlurmSpawner.slurm_env = {{"SLURM_CONF": {str(cluster.slurm_conf)!r}}}
c.SlurmSpawner.exec_prefix = "sudo -n -u {{username}} --"
c.SlurmSpawner.start_timeout = 120
c.Spawner.poll_interval = 2
"""


# --- fixtures --------------------------------------------------------------------------------------


@dataclass
class Accounts:
    hub: pwd.struct_passwd
    learners: dict[str, pwd.struct_passwd]
    outsider: pwd.struct_passwd


def _remove_accounts() -> None:
    """Ours only, by name: the sudoers file, the accounts, the group (also what a crashed run left)."""
    SUDOERS.unlink(missing_ok=True)
    SUDOERS_NEW.unlink(missing_ok=True)
    for name in (*LEARNERS, OUTSIDER, HUB_ACCOUNT):
        try:
            remove_unix_user(pwd.getpwnam(name))
        except KeyError:
            pass
    subprocess.run(["groupdel", LEARNERS_GROUP], capture_output=True)  # 6: there was none


@pytest.fixture(scope="module")
def cluster(request):
    yield from cluster_for_tests(request)


@pytest.fixture(scope="module")
def accounts(cluster):
    need(
        bool(shutil.which("sudo") and shutil.which("visudo", path=SECURE_PATH)),
        "the production layout needs sudo (apt-get install sudo; make test-deps)",
    )
    _remove_accounts()
    try:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                HUB_ACCOUNT,
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(["groupadd", LEARNERS_GROUP], check=True, capture_output=True)
        learners = {}
        for name in (*LEARNERS, OUTSIDER):
            account = unix_user(name, cluster.root / "home")
            if name != OUTSIDER:
                subprocess.run(["usermod", "--append", "--groups", LEARNERS_GROUP, name], check=True)
            cluster.add_user(name)
            learners[name] = account
        # Checked before sudo reads it: a file sudo cannot parse would break every sudo on the machine.
        text = sudoers_rule(str(SUDOERS), HUB_ACCOUNT, LEARNERS_GROUP, "AILYS_SUDOTEST_SLURM", slurm_paths())
        SUDOERS_NEW.write_text(text)
        SUDOERS_NEW.chmod(0o440)
        checked = subprocess.run(["visudo", "-cf", str(SUDOERS_NEW)], capture_output=True, text=True)
        assert checked.returncode == 0, f"visudo refused the rule: {checked.stdout}{checked.stderr}\n{text}"
        os.replace(SUDOERS_NEW, SUDOERS)
        whole = subprocess.run(["visudo", "-c"], capture_output=True, text=True)
        assert whole.returncode == 0, whole.stdout + whole.stderr
        yield Accounts(pwd.getpwnam(HUB_ACCOUNT), {n: learners[n] for n in LEARNERS}, learners[OUTSIDER])
    finally:
        _remove_accounts()


@pytest.fixture(scope="module")
def hub(cluster, accounts):
    running = RunningHub(COURSES, run_as=HUB_ACCOUNT)
    (running.data / "jupyterhub_config.d" / "60-slurm.py").write_text(drop_in(cluster))
    running.start()
    yield running
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "test_slurm_sudo-hub.log").write_text(running.log())
    if TIMINGS:
        (OUTPUT / "test_slurm_sudo-timings.txt").write_text("".join(f"{w}: {s:.3f} s\n" for w, s in TIMINGS))
    for name in LEARNERS:
        try:
            stop_server(running, name)
        except Exception:
            pass
    running.stop()


# --- helpers -----------------------------------------------------------------------------------------


def as_account(
    account: pwd.struct_passwd, argv: list[str], cluster: SlurmCluster, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``argv`` as ``account`` (its uid and groups, not root's), with the hub's Slurm environment."""
    env = {
        "PATH": SECURE_PATH,
        "LANG": "C.UTF-8",
        "SLURM_CONF": str(cluster.slurm_conf),
        "HOME": account.pw_dir,
    }
    groups = os.getgrouplist(account.pw_name, account.pw_gid)
    return subprocess.run(
        argv,
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=groups,
        **kwargs,
    )


def hub_xsrf(client: httpx.Client) -> dict:
    """The hub's _xsrf cookie as a header (a learner's server sets one of its own, under /user/)."""
    found = [c for c in client.cookies.jar if c.name == "_xsrf" and not c.path.startswith("/user/")]
    return {"X-XSRFToken": found[0].value}


def server(hub: RunningHub, name: str) -> dict | None:
    return (hub.admin_api().get(f"/users/{name}").json().get("servers") or {}).get("")


def jobs_of(cluster: SlurmCluster, name: str) -> list[str]:
    return cluster.run("squeue", "--noheader", f"--user={name}", "--format=%i").stdout.split()


def stop_server(hub: RunningHub, name: str) -> None:
    if server(hub, name) is None:
        return
    client = hub.login(name)
    r = client.delete(f"/hub/api/users/{name}/server", headers=hub_xsrf(client))
    assert r.status_code in (202, 204), r.text
    wait_until(lambda: server(hub, name) is None, 60, f"{name}'s server to stop")


def start_server(hub: RunningHub, cluster: SlurmCluster, name: str) -> tuple[httpx.Client, str]:
    """Start ``name``'s server (the default course), open JupyterLab through the proxy; the job id."""
    if server(hub, name) is not None:
        stop_server(hub, name)
    client = hub.login(name)
    began = time.monotonic()
    try:
        hub.spawn(client, name, timeout=60)
    except (TimeoutError, AssertionError) as error:
        raise AssertionError(f"{error}\n{hub.log()[-4000:]}") from None
    TIMINGS.append((f"spawn of {name}, start request to JupyterLab page", time.monotonic() - began))
    jobs = jobs_of(cluster, name)
    assert len(jobs) == 1, jobs
    return client, jobs[0]


def job_process(job_id: str) -> psutil.Process:
    """The job's server process (exec'd by the batch script, then by the launcher)."""
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(p.info["cmdline"] or [])
            if p.environ().get("SLURM_JOB_ID") == job_id and "jupyterhub.singleuser" in cmdline:
                return p
        except psutil.Error:
            continue
    raise AssertionError(f"no server process of job {job_id}")


def proc_ids(pid: int) -> dict[str, list[int]]:
    """Uid, Gid (real, effective, saved, filesystem), Groups and CapEff of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {
        "Uid": [int(v) for v in fields["Uid"].split()],
        "Gid": [int(v) for v in fields["Gid"].split()],
        "Groups": [int(v) for v in fields["Groups"].split()],
        "CapEff": [int(fields["CapEff"].strip(), 16)],
    }


def refused_by_sudo(result: subprocess.CompletedProcess) -> bool:
    """sudo itself said no: the command never ran (its own errors do not start with "sudo:")."""
    return result.returncode == 1 and result.stdout == "" and result.stderr.startswith("sudo: ")


# --- tests -------------------------------------------------------------------------------------------


def test_the_hub_and_its_proxy_run_as_the_hub_account(hub, accounts):
    account = accounts.hub
    assert account.pw_uid != 0 and account.pw_gid != 0
    processes = {"hub": hub.hub.pid, "proxy": hub.proxy.pid}
    for child in psutil.Process(hub.hub.pid).children():  # its services
        processes[f"hub's child {child.pid} ({child.name()})"] = child.pid
    assert len(processes) >= 3, "the hub runs its course-sync service: it should be here"
    for what, pid in processes.items():
        ids = proc_ids(pid)
        assert ids["Uid"] == [account.pw_uid] * 4, f"{what}: {ids}"
        assert ids["Gid"] == [account.pw_gid] * 4, f"{what}: {ids}"
        assert ids["Groups"] == [account.pw_gid], f"{what} kept other groups: {ids}"
        assert ids["CapEff"] == [0], f"{what} holds capabilities: {ids}"
    # Its state is its own: database, cookie secret (made by the hub), secrets folder.
    for path, mode in (
        (hub.data / "jupyterhub.sqlite", None),
        (hub.data / "secrets", 0o700),
        (hub.data / "secrets" / "jupyterhub_cookie_secret", 0o600),
    ):
        st = path.stat()
        assert st.st_uid == account.pw_uid, f"{path} belongs to uid {st.st_uid}"
        if mode is not None:
            assert st.st_mode & 0o777 == mode, f"{path}: {oct(st.st_mode & 0o777)}"


def test_a_spawn_runs_as_the_learner_and_answers_through_the_proxy(hub, cluster, accounts):
    ada = accounts.learners["sudot-ada"]
    client, job = start_server(hub, cluster, "sudot-ada")  # JupyterLab's page through the proxy: 200
    info = cluster.job(job)
    assert info["UserId"] == f"sudot-ada({ada.pw_uid})", info["UserId"]
    assert info["GroupId"] == f"sudot-ada({ada.pw_gid})", info["GroupId"]
    assert info["JobName"] == "ailys-algo" and info["JobState"] == "RUNNING"
    process = job_process(job)
    assert process.uids().real == ada.pw_uid and process.gids().real == ada.pw_gid
    assert process.environ()["HOME"] == ada.pw_dir
    assert client.get("/user/sudot-ada/api/status").status_code == 200
    # sudo kept SLURM_CONF (env_keep): the job's Slurm commands reach this cluster
    assert process.environ()["SLURM_CONF"] == str(cluster.slurm_conf)


def test_stop_cancels_the_job_as_the_learner(hub, cluster, accounts):
    bob = accounts.learners["sudot-bob"]
    _, job = start_server(hub, cluster, "sudot-bob")
    stop_server(hub, "sudot-bob")
    assert jobs_of(cluster, "sudot-bob") == []
    assert cluster.job(job)["JobState"] == "CANCELLED"

    def cancelled_by():  # slurmdbd records the end asynchronously
        out = cluster.run(
            "sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={job}", "--format=State"
        ).stdout.strip()
        return out if out.startswith("CANCELLED by") else None

    # scancel ran through sudo as bob: Slurm names bob's uid, not root's (0) nor the hub's
    said = wait_until(cancelled_by, 30, f"sacct to record the end of job {job}")
    assert said == f"CANCELLED by {bob.pw_uid}", said


def test_a_learner_outside_the_learners_group_is_refused_with_the_reason(hub, cluster, accounts):
    """An enrolled learner whom the administrators forgot to put in the group: sudo refuses, the
    learner reads why, and no job is submitted."""
    eve = hub.login(OUTSIDER)
    r = eve.post(
        f"/hub/spawn/{OUTSIDER}",
        data={"course": "algo", "_xsrf": hub_xsrf(eve)["X-XSRFToken"]},
        follow_redirects=False,
        timeout=60,
    )
    assert r.status_code not in (302, 303), r.text[-2000:]  # no redirect to a starting server
    refusal = (
        r"Not started: the hub may not run Slurm commands as sudot-eve \(sudo said: [^)]+\)\. Ask the site"
    )
    assert re.search(refusal, r.text), r.text[-2000:]
    assert server(hub, OUTSIDER) is None and jobs_of(cluster, OUTSIDER) == []


def test_the_rule_is_usable_by_the_hub_account_for_slurm_as_a_learner(cluster, accounts):
    """The control for the refusals below: the same account, the rule's own use."""
    result = as_account(
        accounts.hub,
        ["sudo", "-n", "-u", "sudot-ada", "--", "squeue", "--noheader", "--user=sudot-ada", "--format=%i"],
        cluster,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def hub_bin(accounts):
    """A folder of the hub account's, on no one's PATH."""
    folder = Path(tempfile.mkdtemp(prefix="sudot-bin-"))
    folder.chmod(0o755)
    os.chown(folder, accounts.hub.pw_uid, accounts.hub.pw_gid)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_rule_allows_nothing_else(cluster, accounts, hub_bin):
    ada = accounts.learners["sudot-ada"]
    marker = Path(ada.pw_dir) / "ran-as-ada"
    # A program of the hub account's named like a Slurm command
    fake = hub_bin / "sbatch"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake.chmod(0o755)
    os.chown(fake, accounts.hub.pw_uid, accounts.hub.pw_gid)
    attempts = {
        "sbatch as root": ["sudo", "-n", "-u", "root", "--", "sbatch", "--wrap", f"touch {marker}"],
        "squeue as root": ["sudo", "-n", "-u", "root", "--", "squeue"],
        "a shell as a learner": ["sudo", "-n", "-u", "sudot-ada", "--", "/bin/sh", "-c", f"touch {marker}"],
        "another program as a learner": ["sudo", "-n", "-u", "sudot-ada", "--", "touch", str(marker)],
        "a program named sbatch elsewhere": ["sudo", "-n", "-u", "sudot-ada", "--", str(fake)],
        "sbatch as one outside the group": ["sudo", "-n", "-u", OUTSIDER, "--", "sbatch", "--wrap", "true"],
        "squeue as a learner, group root": ["sudo", "-n", "-u", "sudot-ada", "-g", "root", "--", "squeue"],
        "the hub's environment (-E)": ["sudo", "-n", "-E", "-u", "sudot-ada", "--", "squeue"],
        "a variable that changes sbatch": [
            "sudo",
            "-n",
            "-u",
            "sudot-ada",
            "SBATCH_EXPORT=ALL",
            "sbatch",
            "--wrap",
            "true",
        ],
        "editing a learner's file (sudoedit)": ["sudo", "-n", "-e", "-u", "sudot-ada", str(marker)],
        "a login shell as a learner": ["sudo", "-n", "-i", "-u", "sudot-ada"],
    }
    before = cluster.run("squeue", "--noheader", "--states=all", "--format=%i").stdout.split()
    allowed = {}
    for what, argv in attempts.items():
        result = as_account(accounts.hub, argv, cluster)
        if not refused_by_sudo(result):
            allowed[what] = (result.returncode, result.stdout[-300:], result.stderr[-300:])
    assert not allowed, f"the hub account could: {allowed}"
    assert not marker.exists()
    after = cluster.run("squeue", "--noheader", "--states=all", "--format=%i").stdout.split()
    assert set(after) <= set(before), f"jobs were submitted: {set(after) - set(before)}"


def test_the_hub_account_cannot_read_a_learners_home(cluster, accounts):
    ada = accounts.learners["sudot-ada"]
    secret = Path(ada.pw_dir) / "notes.txt"
    secret.write_text("ada's own notes\n")
    os.chown(secret, ada.pw_uid, ada.pw_gid)
    secret.chmod(0o644)  # even a file others may read: the home (0700) keeps it
    for argv in (["cat", str(secret)], ["ls", ada.pw_dir]):
        result = as_account(accounts.hub, argv, cluster)
        assert result.returncode != 0 and "Permission denied" in result.stderr, (argv, result)
        assert "ada's own notes" not in result.stdout and "notes.txt" not in result.stdout


def test_the_design_notes_show_the_rule_this_test_installs():
    """docs/design-notes.md gives the file above with Mesolys' names; they must not drift apart."""
    notes = (Path(__file__).parents[2] / "docs" / "design-notes.md").read_text()
    rule = sudoers_rule(
        "/etc/sudoers.d/ailys-hub",
        "jupyterhub",
        "mesolys-learners",
        "AILYS_HUB_SLURM",
        [f"/usr/bin/{name}" for name in SLURM_COMMANDS],
    )
    assert rule in notes, f"docs/design-notes.md should show:\n{rule}"
