"""The production layout of the Slurm spawner, for real: a hub and a proxy that do not run as root
(the account ``ailys-hub-sudotest``), and a sudoers rule that lets that account run Slurm's
commands as learners (members of ``ailys-sudotest-learners``) and nothing else. The spawner's
exec_prefix is ``sudo -n -u {username} --``, as on Mesolys (docs/design-notes.md, "Production
layout on Mesolys").

The rule also lets the hub run ``ailys-provision-trainee`` as root, for its own site file: the
Unix account and Slurm association of a short course's trainee (``pv-*`` accounts here), made at
their first start and removed once they are forgotten, and nothing else (docs/design-notes.md,
"Accounts on the cluster for trainees").

One cluster, one hub, real Unix accounts and a real /etc/sudoers.d file for the module; the
fixtures remove the accounts, the group and the file.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import psutil
import pytest

from footprint.sstat import SUDOERS_ARGS as SSTAT_SUDOERS_ARGS
from footprint.sstat import as_learner, parse_sstat_cpu, sstat_argv
from hub_config.provision import hub_command, sudoers_arguments
from tests.conftest import OUTPUT, need
from tests.services import remove_unix_user, unix_user
from tests.services.hub import RunningHub, course, hub_xsrf, wait_until
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
# And the footprint service's sstat of a running session (footprint/sstat.py), with these arguments
# only: slurmd answers sstat for the job's owner alone.
SSTAT_RULE = f"sstat {SSTAT_SUDOERS_ARGS}"

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

# Trainees (docs/design-notes.md, "Accounts on the cluster for trainees"). pv-tina, listed in the
# short course, gets her account at her first start; pv-ulla, of its cohort file, by the hub account's
# sudo, and loses it once forgotten. The others must never get one: pv-lena and pv-sys are listed as
# trainees but already have accounts made by others (a person's, a system one); pv-acad learns algo.
TRAINEE_COURSE = "pv-short"
TRAINEE, COHORT_TRAINEE = "pv-tina", "pv-ulla"
OTHER_PERSON, SYSTEM_ONE, ACADEMIC = "pv-lena", "pv-sys", "pv-acad"
TRAINEE_UIDS = (62000, 62049)  # above Debian's UID_MAX (60000): useradd never hands these out itself
# The command, by its real path (sudo compares the path it runs with the rule's).
PROVISION = os.path.realpath(Path(sys.executable).parent / "ailys-provision-trainee")
TRAINEES_RULE_TEMPLATE = """\
# It may also make and remove the accounts of short courses' trainees: this one command as root,
# for this site file and names it checks again (ailys-provision-trainee add NAME COURSE | remove NAME).
Cmnd_Alias {alias} = {program} {arguments}
{hub} ALL = (root) NOPASSWD: {alias}
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
PROFILES[TRAINEE_COURSE] = {**PROFILES["algo"], "title": "IA pour l'industrie"}
COURSES = [
    course("algo", ["sudot-prof"], [*LEARNERS, OUTSIDER, ACADEMIC]),
    course(
        TRAINEE_COURSE,
        ["sudot-prof"],
        [TRAINEE, OTHER_PERSON, SYSTEM_ONE, "sudot-ada"],
        kind="short-course",
        start=str(date.today()),
        end=str(date.today() + timedelta(days=1)),
    ),
]
TIMINGS: list[tuple[str, float]] = []


def sudoers_rule(path: str, hub: str, learners: str, alias: str, commands: list[str]) -> str:
    return SUDOERS_TEMPLATE.format(
        path=path, hub=hub, learners=learners, alias=alias, commands=", ".join(commands)
    )


def trainees_rule(hub: str, alias: str, program: str, site_file: str) -> str:
    return TRAINEES_RULE_TEMPLATE.format(
        hub=hub, alias=alias, program=program, arguments=sudoers_arguments(Path(site_file))
    )


def install_sudoers(text: str) -> None:
    """Checked before sudo reads it: a file sudo cannot parse would break every sudo on the machine."""
    SUDOERS_NEW.write_text(text)
    SUDOERS_NEW.chmod(0o440)
    checked = subprocess.run(["visudo", "-cf", str(SUDOERS_NEW)], capture_output=True, text=True)
    assert checked.returncode == 0, f"visudo refused the rule: {checked.stdout}{checked.stderr}\n{text}"
    os.replace(SUDOERS_NEW, SUDOERS)
    whole = subprocess.run(["visudo", "-c"], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stdout + whole.stderr


def slurm_rule() -> str:
    return sudoers_rule(str(SUDOERS), HUB_ACCOUNT, LEARNERS_GROUP, "AILYS_SUDOTEST_SLURM", slurm_paths())


def trainee_settings(cluster: SlurmCluster) -> dict:
    """The site's spawner.slurm: this cluster's slurm.conf, and the trainees' accounts."""
    homes = cluster.root / "pv-homes"
    homes.mkdir(mode=0o755, exist_ok=True)
    return {
        "slurm_conf": str(cluster.slurm_conf),
        "trainees": {
            "command": f"sudo -n {PROVISION} --site {{site}}",
            "uid_min": TRAINEE_UIDS[0],
            "uid_max": TRAINEE_UIDS[1],
            "group": LEARNERS_GROUP,
            "slurm_accounts": [cluster.accounts[0]],
            "home_root": str(homes),
        },
    }


def slurm_paths() -> list[str]:
    found = {name: shutil.which(name, path=SECURE_PATH) for name in (*SLURM_COMMANDS, "sstat")}
    missing = [name for name, path in found.items() if not path]
    assert not missing, f"not on sudo's secure_path: {missing}"
    return [*(found[name] for name in SLURM_COMMANDS), f"{found['sstat']} {SSTAT_SUDOERS_ARGS}"]


def drop_in(cluster: SlurmCluster, provision_command: list[str]) -> str:
    """The hub configuration: the Slurm spawner, every Slurm command through sudo, a trainee's
    account made at her first start (what the Slurm applier sets from spawner.slurm.trainees)."""
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
c.SlurmSpawner.provision_command = {provision_command!r}
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
    for name in (
        *LEARNERS,
        OUTSIDER,
        HUB_ACCOUNT,
        TRAINEE,
        COHORT_TRAINEE,
        OTHER_PERSON,
        SYSTEM_ONE,
        ACADEMIC,
    ):
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
        # Accounts that others made, which a trainee's provisioning must never take over.
        unix_user(OTHER_PERSON, cluster.root / "home")
        subprocess.run(["usermod", "--append", "--groups", LEARNERS_GROUP, OTHER_PERSON], check=True)
        system = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_ONE]
        subprocess.run(system, check=True, capture_output=True)
        install_sudoers(slurm_rule())
        yield Accounts(pwd.getpwnam(HUB_ACCOUNT), {n: learners[n] for n in LEARNERS}, learners[OUTSIDER])
    finally:
        _remove_accounts()


@pytest.fixture(scope="module")
def hub(cluster, accounts):
    running = RunningHub(COURSES, run_as=HUB_ACCOUNT, site={"spawner": {"slurm": trainee_settings(cluster)}})
    trainees = running.catalogue.site.spawner.slurm.trainees
    (running.data / "jupyterhub_config.d" / "60-slurm.py").write_text(
        drop_in(cluster, hub_command(trainees, running.site_file))
    )
    # The rule grows by the provisioning command, for this hub's site file (known only now).
    install_sudoers(
        slurm_rule()
        + trainees_rule(HUB_ACCOUNT, "AILYS_SUDOTEST_TRAINEES", PROVISION, str(running.site_file))
    )
    running.start()
    yield running
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "test_slurm_sudo-hub.log").write_text(running.log())
    if TIMINGS:
        (OUTPUT / "test_slurm_sudo-timings.txt").write_text("".join(f"{w}: {s:.3f} s\n" for w, s in TIMINGS))
    for name in (*LEARNERS, TRAINEE):
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


def job_process(job_id: str, cluster: SlurmCluster) -> psutil.Process:
    """The job's server process (exec'd by the batch script, then by the launcher). Job ids repeat
    across clusters (another worker's test module may run its own): match the cluster too."""
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(p.info["cmdline"] or [])
            env = p.environ()
            if (
                env.get("SLURM_JOB_ID") == job_id
                and env.get("SLURM_CONF") == str(cluster.slurm_conf)
                and "jupyterhub.singleuser" in cmdline
            ):
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
    process = job_process(job, cluster)
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


def test_the_footprint_service_reads_a_learners_running_job_with_sstat_and_only_so(cluster, accounts):
    """sstat as the learner, with footprint/sstat.py's arguments: the job's CPU time so far. Any
    other form, or as root, sudo refuses."""
    ada = accounts.learners["sudot-ada"]
    job = cluster.sbatch(
        f"--chdir={ada.pw_dir}",
        "--output=/dev/null",
        "--time=2",
        "--wrap",
        "while :; do :; done",
        user="sudot-ada",
    )
    try:
        cluster.wait_job(job, {"RUNNING"})
        bare = sstat_argv(job)
        sstat = as_learner(bare, "sudo -n -u {username} --", "sudot-ada")  # as footprint/sstat.py runs it

        def cpu_seconds():
            result = as_account(accounts.hub, sstat, cluster)
            assert result.returncode == 0, result.stderr
            return parse_sstat_cpu(result.stdout)

        first = wait_until(cpu_seconds, 30, f"sstat to see job {job}'s batch step")
        wait_until(lambda: cpu_seconds() > first, 60, f"job {job}'s CPU time to grow")
        other_forms = {
            "sstat of the whole job": ["sstat", "--noheader", "--parsable2", f"--jobs={job}"],
            "another format": [*bare[:3], "--format", "JobID,MaxRSS", "--jobs", f"{job}.batch"],
            "an extra argument": [*bare, "--allsteps"],
            "another step": [*bare[:-1], f"{job}.0"],
            "a list of jobs": [*bare[:-1], f"{job}.batch,1.batch"],
        }
        allowed = {}
        for what, argv in other_forms.items():
            result = as_account(accounts.hub, ["sudo", "-n", "-u", "sudot-ada", "--", *argv], cluster)
            if not refused_by_sudo(result):
                allowed[what] = (result.returncode, result.stdout[-300:], result.stderr[-300:])
        as_root = as_account(accounts.hub, ["sudo", "-n", "-u", "root", "--", *bare], cluster)
        if not refused_by_sudo(as_root):
            allowed["as root"] = (as_root.returncode, as_root.stderr[-300:])
        assert not allowed, f"the hub account could: {allowed}"
    finally:
        cluster.run("scancel", job)


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
        [*(f"/usr/bin/{name}" for name in SLURM_COMMANDS), f"/usr/bin/{SSTAT_RULE}"],
    )
    assert rule in notes, f"docs/design-notes.md should show:\n{rule}"
    grown = trainees_rule(
        "jupyterhub",
        "AILYS_HUB_TRAINEES",
        "/usr/local/sbin/ailys-provision-trainee",
        "/etc/ailys-hub/mesolys.yaml",
    )
    assert grown in notes, f"docs/design-notes.md should show:\n{grown}"


# --- trainees' accounts (ailys-provision-trainee) -------------------------------------------------------


def provision(
    hub: RunningHub, accounts: Accounts, cluster: SlurmCluster, *args: str, site: str | None = None
):
    """The provisioning command as the hub account runs it: through sudo, for its site file."""
    argv = ["sudo", "-n", PROVISION, "--site", site or str(hub.site_file), *args]
    return as_account(accounts.hub, argv, cluster)


def associations(cluster: SlurmCluster, name: str) -> list[str]:
    argv = ("sacctmgr", "--noheader", "--parsable2", "show", "association", f"user={name}", "format=account")
    return cluster.run(*argv).stdout.split()


def account_of(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def test_a_trainee_gets_her_account_at_her_first_start(hub, cluster, accounts):
    assert account_of(TRAINEE) is None and associations(cluster, TRAINEE) == []
    client, job = start_server(hub, cluster, TRAINEE)  # JupyterLab's page through the proxy: 200
    tina = pwd.getpwnam(TRAINEE)
    assert TRAINEE_UIDS[0] <= tina.pw_uid <= TRAINEE_UIDS[1], tina
    assert tina.pw_gid == grp.getgrnam(LEARNERS_GROUP).gr_gid  # the Slurm rule's group
    assert tina.pw_shell == "/usr/sbin/nologin" and tina.pw_gecos == "AILyS trainee"
    home = Path(tina.pw_dir)
    assert home == cluster.root / "pv-homes" / TRAINEE
    assert (home.stat().st_uid, stat.S_IMODE(home.stat().st_mode)) == (tina.pw_uid, 0o700)
    assert associations(cluster, TRAINEE) == [cluster.accounts[0]]
    info = cluster.job(job)
    assert info["UserId"] == f"{TRAINEE}({tina.pw_uid})" and info["JobName"] == f"ailys-{TRAINEE_COURSE}"
    process = job_process(job, cluster)
    assert process.uids().real == tina.pw_uid and process.environ()["HOME"] == str(home)
    assert process.environ()["SHELL"] == "/bin/bash"  # her terminals open a shell, her login does not
    assert client.get(f"/user/{TRAINEE}/api/status").status_code == 200
    assert re.search(rf"Provisioned {TRAINEE} for course {TRAINEE_COURSE} in [\d.]+ s", hub.log())
    # Asked again (a later start, or twice at once): nothing new, nothing broken.
    again = provision(hub, accounts, cluster, "add", TRAINEE, TRAINEE_COURSE)
    assert again.returncode == 0 and "already has a Unix account" in again.stdout, again
    assert pwd.getpwnam(TRAINEE) == tina
    stop_server(hub, TRAINEE)
    kept = provision(hub, accounts, cluster, "remove", TRAINEE)  # she is still in the course, window open
    assert kept.returncode == 3 and f"refused: {TRAINEE} may still log in" in kept.stderr, kept
    assert pwd.getpwnam(TRAINEE) == tina


def test_a_learner_the_command_refuses_reads_why_and_nothing_is_made(hub, cluster, accounts):
    """pv-acad learns algo (academic) and has no account: the directory should have given her one.
    The spawner asks for one all the same; the command refuses, and she reads its reason."""
    acad = hub.login(ACADEMIC)
    r = acad.post(
        f"/hub/spawn/{ACADEMIC}",
        data={"course": "algo", "_xsrf": hub_xsrf(acad)["X-XSRFToken"]},
        follow_redirects=False,
        timeout=60,
    )
    assert r.status_code not in (302, 303), r.text[-2000:]
    refusal = (
        r"Not started: your account on the cluster could not be created \(ailys-provision-trainee: refused: "
        r"course algo is academic, not a short course: its people have their own accounts\)\. Ask the site"
    )
    assert re.search(refusal, r.text), r.text[-2000:]
    assert account_of(ACADEMIC) is None and associations(cluster, ACADEMIC) == []
    assert server(hub, ACADEMIC) is None and jobs_of(cluster, ACADEMIC) == []


def test_the_hub_account_may_provision_trainees_and_no_one_else(hub, cluster, accounts, hub_bin):
    before = {
        name: account_of(name) for name in (OTHER_PERSON, SYSTEM_ONE, "sudot-ada", ACADEMIC, "pv-ghost")
    }
    marker = Path("/tmp") / f"pv-owned-{os.getpid()}"
    # A site file of the hub account's, whose create command would run anything as root.
    evil = hub_bin / "evil.yaml"
    text = hub.site_file.read_text().replace("useradd", f"touch {marker}")
    evil.write_text(text)
    os.chown(evil, accounts.hub.pw_uid, accounts.hub.pw_gid)
    refused_by_command = {  # sudo lets these through; the command refuses them, with the reason
        "root": (["add", "root", TRAINEE_COURSE], "'root' is the name of a system or service account"),
        "a system account listed as a trainee": (
            ["add", SYSTEM_ONE, TRAINEE_COURSE],
            f"{SYSTEM_ONE} is already an account (uid {before[SYSTEM_ONE].pw_uid}) outside the trainees' range",
        ),
        "another person's account": (
            ["add", OTHER_PERSON, TRAINEE_COURSE],
            f"{OTHER_PERSON} is already an account (uid {before[OTHER_PERSON].pw_uid}) outside",
        ),
        "a learner of an academic course": (
            ["add", "sudot-ada", TRAINEE_COURSE],
            "sudot-ada is also a learner of algo (academic)",
        ),
        "an academic course": (["add", ACADEMIC, "algo"], "course algo is academic, not a short course"),
        "a name of no course": (
            ["add", "pv-ghost", TRAINEE_COURSE],
            f"pv-ghost is not a trainee of {TRAINEE_COURSE}",
        ),
        "removing a learner": (["remove", "sudot-ada"], "sudot-ada is already an account (uid"),
        "removing root": (["remove", "root"], "'root' is the name of a system or service account"),
    }
    wrong = {}
    for what, (args, reason) in refused_by_command.items():
        result = provision(hub, accounts, cluster, *args)
        said = f"ailys-provision-trainee: refused: {reason}"
        if result.returncode != 3 or not result.stderr.startswith(said):
            wrong[what] = (result.returncode, result.stdout[-300:], result.stderr[-300:])
    assert not wrong, f"not refused as expected: {wrong}"
    refused_by_sudo_itself = {
        "a name with shell metacharacters": ["add", f"pv-x;touch {marker}", TRAINEE_COURSE],
        "a command substitution": ["add", f"$(touch {marker})", TRAINEE_COURSE],
        "a name with a space": ["add", "pv-x pv-y", TRAINEE_COURSE],
        "an extra argument": ["add", "pv-ghost", TRAINEE_COURSE, "--uid=0"],
        "an option of its own": ["--help"],
    }
    allowed = {}
    for what, args in refused_by_sudo_itself.items():
        result = provision(hub, accounts, cluster, *args)
        if not refused_by_sudo(result):
            allowed[what] = (result.returncode, result.stdout[-300:], result.stderr[-300:])
    other_site = provision(hub, accounts, cluster, "add", "pv-ghost", TRAINEE_COURSE, site=str(evil))
    if not refused_by_sudo(other_site):
        allowed["another site file"] = (other_site.returncode, other_site.stderr[-300:])
    assert not allowed, f"the hub account could: {allowed}"
    # Without sudo the command does nothing; run as root, it still checks names and the site file.
    as_hub = as_account(
        accounts.hub, [PROVISION, "--site", str(hub.site_file), "add", "pv-ghost", TRAINEE_COURSE], cluster
    )
    assert as_hub.returncode == 3 and "refused: must run as root" in as_hub.stderr, as_hub
    env = {"PATH": SECURE_PATH, "LANG": "C.UTF-8"}
    for args, reason in (
        (
            ["--site", str(hub.site_file), "add", f"pv-x;touch {marker}", TRAINEE_COURSE],
            "is not a Unix account name",
        ),
        (
            ["--site", str(evil), "add", TRAINEE, TRAINEE_COURSE],
            f"{evil} belongs to uid {accounts.hub.pw_uid}, not root",
        ),
    ):
        result = subprocess.run([PROVISION, *args], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 3 and reason in result.stderr, (args, result)
    assert not marker.exists()
    assert {name: account_of(name) for name in before} == before  # nothing made, nothing changed
    for name in (ACADEMIC, "pv-ghost", SYSTEM_ONE, OTHER_PERSON):
        assert associations(cluster, name) == [], name


def test_a_trainee_cannot_become_root_or_log_in(hub, cluster, accounts):
    tina = account_of(TRAINEE) or pytest.skip("needs the account of the first-start test")
    groups = os.getgrouplist(tina.pw_name, tina.pw_gid)
    assert 0 not in groups and grp.getgrnam("sudo").gr_gid not in groups, groups
    for argv in (
        ["sudo", "-n", "true"],
        ["sudo", "-n", PROVISION, "--site", str(hub.site_file), "add", TRAINEE, TRAINEE_COURSE],
        ["sudo", "-n", "-u", "sudot-ada", "--", "squeue"],
    ):
        result = as_account(tina, argv, cluster)
        assert refused_by_sudo(result), (argv, result)
    # Her login shell refuses a login: su, as an administrator would try it, gets no shell.
    login = subprocess.run(["su", "-", TRAINEE, "-c", "id"], capture_output=True, text=True, timeout=30)
    assert login.returncode != 0 and "uid=" not in login.stdout, login


def test_a_forgotten_trainee_loses_her_account_and_home(hub, cluster, accounts):
    """pv-ulla, of the course's cohort file (ailys cohort import writes it), is provisioned by the hub
    account; once forgotten (out of the cohort), her jobs, association, account and home go."""
    cohort = hub.data / "cohorts" / f"{TRAINEE_COURSE}.json"
    cohort.parent.mkdir(mode=0o700, exist_ok=True)
    cohort.write_text(json.dumps({"trainees": [{"username": COHORT_TRAINEE}]}))
    for owned in (cohort.parent, cohort):  # the hub's, as the site's data
        os.chown(owned, accounts.hub.pw_uid, accounts.hub.pw_gid)
    made = provision(hub, accounts, cluster, "add", COHORT_TRAINEE, TRAINEE_COURSE)
    assert made.returncode == 0, made
    ulla = pwd.getpwnam(COHORT_TRAINEE)
    assert f"created the Unix account {COHORT_TRAINEE} (uid {ulla.pw_uid}" in made.stdout
    assert TRAINEE_UIDS[0] <= ulla.pw_uid <= TRAINEE_UIDS[1] and Path(ulla.pw_dir).is_dir()
    # The association lets her submit (her output where she may write it, so the job keeps running).
    job = cluster.sbatch(
        f"--chdir={ulla.pw_dir}", "--output=/dev/null", "--wrap", "sleep 300", user=COHORT_TRAINEE
    )
    cluster.wait_job(job, {"RUNNING"})
    cohort.write_text(json.dumps({"trainees": []}))  # forgotten (ailys person forget)
    removed = provision(hub, accounts, cluster, "remove", COHORT_TRAINEE)
    assert removed.returncode == 0, removed
    assert f"cancelled the Slurm jobs of {COHORT_TRAINEE}: {job}" in removed.stdout
    assert f"removed the Unix account {COHORT_TRAINEE} (uid {ulla.pw_uid}) and its home" in removed.stdout
    assert account_of(COHORT_TRAINEE) is None and not Path(ulla.pw_dir).exists()
    assert associations(cluster, COHORT_TRAINEE) == []
    assert cluster.job(job)["JobState"] == "CANCELLED"
