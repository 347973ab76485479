"""The Slurm spawner (spawners/slurm/) for real: a Slurm cluster on this machine, our hub and
proxy, learners with Unix accounts of their own, and their JupyterLab as Slurm jobs.

One cluster and one hub for the module. Tests run in file order and some keep a learner's server
for the next (the outage, the hub restart and scancel act on sam's running GPU session); each
starts what it needs when it is run alone.
"""

from __future__ import annotations

import json
import pwd
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import OUTPUT
from tests.services import remove_unix_user, system_account, unix_user
from tests.services.hub import RunningHub, course, hub_xsrf, wait_until
from tests.services.slurm import SlurmCluster, cluster_for_tests

pytestmark = [pytest.mark.slurm, pytest.mark.hub]

GiB = 1024**3


def with_resources(slug: str, title: str, learners: list[str], **resources) -> dict:
    return course(
        slug,
        ["prof-s"],
        learners,
        title={"fr": title, "en": title},
        resources={"walltime": "1h", **resources},
    )


# The hub's launch profiles come from these resources (hub_config/profiles.py), as on a real site.
COURSES = [
    with_resources("algo", "Algorithmique", ["sam"], partition="cpu", cpus=2, memory="1G"),
    with_resources("deep", "Deep learning", ["sam"], partition="gpu", cpus=2, memory="1G", gpus=1),
    with_resources("stats", "Statistiques", ["tess"], partition="cpu", cpus=1, memory="512M"),
    # a partition the cluster does not have: sbatch refuses it
    with_resources("lab", "Lab", ["tess"], partition="nope", cpus=1, memory="512M"),
]
LEARNERS = ("sam", "tess")
POLL_INTERVAL = 2  # the hub's poll of running servers, in this hub
TIMINGS: list[tuple[str, float]] = []  # (what, seconds from the start request to ready)
NOTES: list[str] = []  # progress messages seen, for test-output/
TESS_WALLTIME_JOB: dict = {}  # tess's 1-minute session, started early and checked by the last test


def slurm_site(cluster: SlurmCluster) -> dict:
    """The site file's spawner section: the slurm kind, on this cluster."""
    # squeue retries for ~16 s before it fails when slurmctld is down: give up at 5 s, so that a
    # 30 s outage sees several failed polls.
    return {"spawner": {**cluster.spawner_site(command_timeout="5s"), "poll_interval": f"{POLL_INTERVAL}s"}}


# tess's jobs go through exec_prefix, as with the production sudoers rule (runuser: no sudo here;
# tests/integration/test_slurm_sudo.py runs the real sudo layout).
DROP_IN = """
c.SlurmSpawner.group_overrides = {
    "prefix": {"groups": ["course-stats"], "spawner_override": {"exec_prefix": "runuser -u {username} --"}},
}
"""


@pytest.fixture(scope="module")
def cluster(request):
    # A backfill pass every second (default 30 s): a pending job gets its estimated start at once.
    extra = "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1"
    yield from cluster_for_tests(request, extra_config=extra)


@pytest.fixture(scope="module")
def learners(cluster):
    accounts = {}
    for name in LEARNERS:
        try:  # left by a run that died: its home was in a removed temporary folder
            remove_unix_user(pwd.getpwnam(name))
        except KeyError:
            pass
        accounts[name] = unix_user(name, cluster.root / "home")
        cluster.add_user(name)
    yield accounts
    for account in accounts.values():
        remove_unix_user(account)


@pytest.fixture(scope="module")
def hub(cluster, learners):
    running = RunningHub(COURSES, site=slurm_site(cluster))
    (running.data / "jupyterhub_config.d" / "60-slurm.py").write_text(DROP_IN)
    running.start()
    yield running
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "test_slurm_spawner-hub.log").write_text(running.log())
    if TIMINGS:
        OUTPUT.mkdir(exist_ok=True)
        (OUTPUT / "test_slurm_spawner-timings.txt").write_text(
            "".join(f"{what}: {seconds:.2f} s\n" for what, seconds in TIMINGS)
            + "".join(f"progress: {note}\n" for note in NOTES)
        )
    for name in LEARNERS:  # stop what is left through the hub, then the hub
        try:
            running.admin_api()  # the hub may be down after a failed restart test
            stop_server(running, name)
        except Exception:
            pass
    running.stop()


# --- helpers -------------------------------------------------------------------------------------


def server(hub: RunningHub, name: str) -> dict | None:
    return (hub.admin_api().get(f"/users/{name}").json().get("servers") or {}).get("")


def jobs_of(cluster: SlurmCluster, name: str) -> list[str]:
    """The learner's jobs that squeue lists (pending, running, completing)."""
    return cluster.run("squeue", "--noheader", f"--user={name}", "--format=%i").stdout.split()


def job_log(cluster: SlurmCluster, name: str) -> str:
    logs = sorted((cluster.root / "home" / name).glob(".ailys-hub-slurm-*.log"))
    return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-2000:]}" for p in logs)


def spawn_with_form(hub: RunningHub, client: httpx.Client, name: str, **fields) -> httpx.Response:
    """POST the launch form as the browser does; returns the hub's answer (a redirect on success)."""
    data = {k: str(v) for k, v in fields.items()}
    data["_xsrf"] = hub_xsrf(client)["X-XSRFToken"]
    return client.post(f"/hub/spawn/{name}", data=data, follow_redirects=False, timeout=60)


def wait_ready(hub: RunningHub, cluster: SlurmCluster, name: str, timeout: float = 60) -> None:
    def ready():
        s = server(hub, name)
        return bool(s and s.get("ready"))

    try:
        wait_until(ready, timeout, f"{name}'s server", every=0.05)
    except TimeoutError as error:
        raise AssertionError(f"{error}\n{hub.log()[-4000:]}\n{job_log(cluster, name)}") from None


def start_server(
    hub: RunningHub, cluster: SlurmCluster, name: str, what: str, **fields
) -> tuple[httpx.Client, str]:
    """Start ``name``'s server through the launch form; return their client and the job id."""
    client = hub.login(name)
    began = time.monotonic()
    r = spawn_with_form(hub, client, name, **fields)
    assert r.status_code in (302, 303), f"the form answered {r.status_code}: {r.text[-2000:]}"
    wait_ready(hub, cluster, name)
    TIMINGS.append((what, time.monotonic() - began))
    jobs = jobs_of(cluster, name)
    assert len(jobs) == 1, jobs
    r = client.get(f"/user/{name}/lab", follow_redirects=True)  # JupyterLab, and the server's OAuth login
    assert r.status_code == 200, f"{name}'s JupyterLab answered {r.status_code} at {r.url}"
    assert client.get(f"/user/{name}/api/status").status_code == 200
    return client, jobs[0]


def stop_server(hub: RunningHub, name: str) -> None:
    client = hub.login(name)
    if server(hub, name) is None:
        return
    r = client.delete(f"/hub/api/users/{name}/server", headers=hub_xsrf(client))
    assert r.status_code in (202, 204), r.text
    wait_until(lambda: server(hub, name) is None, 60, f"{name}'s server to stop")


def ensure_deep_session(hub: RunningHub, cluster: SlurmCluster) -> tuple[httpx.Client, str]:
    """sam's GPU session, started unless it runs."""
    s = server(hub, "sam")
    if s and s.get("ready") and len(jobs_of(cluster, "sam")) == 1:
        client = hub.login("sam")
        assert client.get("/user/sam/lab", follow_redirects=True).status_code == 200
        return client, jobs_of(cluster, "sam")[0]
    stop_server(hub, "sam")
    return start_server(hub, cluster, "sam", "gpu partition", course="deep", gpus=1)


def job_process(job_id: str, cluster: SlurmCluster) -> psutil.Process:
    """The job's main process: the server (exec'd by the batch script, then by the launcher). Job
    ids repeat across clusters (other test sessions may run theirs): match the cluster too."""
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            env = p.environ()
        except psutil.Error:
            continue
        cmdline = " ".join(p.info["cmdline"] or [])
        if (
            env.get("SLURM_JOB_ID") == job_id
            and env.get("SLURM_CONF") == str(cluster.slurm_conf)
            and "jupyterhub.singleuser" in cmdline
        ):
            return p
    raise AssertionError(f"no server process of job {job_id}")


def progress_events(client: httpx.Client, name: str, timeout: float):
    """The spawn page's progress events (server-sent events), as dicts."""
    with client.stream(
        "GET",
        f"/hub/api/users/{name}/server/progress",
        headers=hub_xsrf(client),
        timeout=httpx.Timeout(timeout),
    ) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data:"):
                yield json.loads(line[5:])


# --- tests ---------------------------------------------------------------------------------------


def test_the_form_lists_only_the_learners_courses(hub, cluster):
    sam = hub.login("sam").get("/hub/spawn").text
    assert re.findall(r'name="course"[^>]*value="([^"]+)"', sam) == ["algo", "deep"]
    assert re.search(r'value="algo"\s+checked', sam)  # the default: the first
    assert "Deep learning" in sam and "jusqu'à 2 cœurs CPU, 1G, 1 GPU, 1h" in sam  # French first
    # The language switch of the launch form: the same form in English, and no server started
    # (the spawn page takes its query arguments for launch options).
    english = hub.login("sam").get("/hub/spawn?lang=en", follow_redirects=True).text
    assert server(hub, "sam") is None and jobs_of(cluster, "sam") == []
    assert "up to 2 CPU cores, 1G, 1 GPU, 1h" in english and "Session length" in english
    tess = hub.login("tess").get("/hub/spawn").text
    assert re.findall(r'name="course"[^>]*value="([^"]+)"', tess) == [
        "lab",
        "stats",
    ]  # courses in session, by slug
    assert "deep" not in tess and "algo" not in tess


@pytest.mark.parametrize(
    "fields, status, message",
    [
        (
            {"course": "stats"},
            403,
            "you are not enrolled in course &#39;stats&#39;. You can start: algo, deep.",
        ),
        ({"course": "deep", "gpus": 2}, 400, "GPUs 2 GPUs is over what course deep allows (1 GPU)."),
        ({"course": "algo", "memory": "8G"}, 400, "memory 8G is over what course algo allows (1G)."),
        (
            {"course": "algo", "walltime": "3h"},
            400,
            "session length 3h is over what course algo allows (1h).",
        ),
        ({"course": "algo", "cpus": "two"}, 400, "CPU cores: &#39;two&#39; is not a whole number."),
    ],
)
def test_a_foreign_course_or_an_over_limit_request_is_refused_with_the_reason(
    hub, cluster, fields, status, message
):
    sam = hub.login("sam")
    r = spawn_with_form(hub, sam, "sam", **fields)
    assert r.status_code == status
    assert message in r.text
    assert 'name="course"' in r.text  # the form again, to correct the request
    assert server(hub, "sam") is None and jobs_of(cluster, "sam") == []


def test_user_options_posted_to_the_api_are_checked_too(hub, cluster):
    """The REST API takes user_options without the form: start() checks them again."""
    sam = hub.login("sam")
    r = sam.post("/hub/api/users/sam/server", json={"course": "stats"}, headers=hub_xsrf(sam))
    assert r.status_code in (400, 403), r.text
    assert "you are not enrolled in course 'stats'" in r.json()["message"]
    assert jobs_of(cluster, "sam") == []


def test_slurms_own_refusal_reaches_the_learner(hub, cluster):
    tess = hub.login("tess")
    r = spawn_with_form(hub, tess, "tess", course="lab")
    assert "Not started: Slurm refused the job: invalid partition specified: nope" in r.text, r.text[-3000:]
    assert server(hub, "tess") is None and jobs_of(cluster, "tess") == []


def test_a_cpu_session_runs_as_the_learner_with_the_requested_resources(hub, cluster, learners):
    sam, job = start_server(
        hub, cluster, "sam", "cpu partition", course="algo", cpus=2, memory="768M", walltime="30m"
    )
    info = cluster.job(job)
    assert info["UserId"] == f"sam({learners['sam'].pw_uid})"
    assert info["JobName"] == "ailys-algo" and info["Comment"] == "ailys-hub:course=algo"
    assert info["Partition"] == "cpu" and info["NumCPUs"] == "2"
    assert info["MinMemoryNode"] == "768M" and info["TimeLimit"] == "00:30:00"
    assert info["BatchHost"] in cluster.partitions["cpu"].nodes
    assert info["Requeue"] == "0"  # a server never comes back elsewhere behind the hub's back
    process = job_process(job, cluster)
    assert process.uids().real == learners["sam"].pw_uid
    env = process.environ()
    assert env["HOME"] == learners["sam"].pw_dir and env["USER"] == "sam"
    assert env["PATH"].split(":")[0] == str(Path(process.cmdline()[0]).parent)  # the project's environment
    assert env["JUPYTERHUB_USER"] == "sam" and env["JUPYTERHUB_API_TOKEN"]
    assert env["SLURM_CONF"] == str(cluster.slurm_conf)
    leaked = {"AILYS_SITE", "CONFIGPROXY_AUTH_TOKEN", "JPY_API_TOKEN"} & set(env)
    assert not leaked, f"the hub's environment reached the job: {leaked}"
    # the server is the job's main process: its parent is slurmstepd
    assert process.parent().name() == "slurmstepd"


def test_stop_takes_the_job_out_of_the_queue(hub, cluster):
    if server(hub, "sam") is None:
        start_server(hub, cluster, "sam", "cpu partition", course="algo")
    job = jobs_of(cluster, "sam")[0]
    stop_server(hub, "sam")
    assert jobs_of(cluster, "sam") == []
    assert cluster.job(job)["JobState"] == "CANCELLED"


def test_a_gpu_session_gets_its_gpu_on_the_gpu_node(hub, cluster):
    stop_server(hub, "sam")
    _, job = start_server(hub, cluster, "sam", "gpu partition", course="deep", gpus=1)
    info = cluster.job(job)
    assert info["Partition"] == "gpu" and info["BatchHost"] == "node2"
    assert "gres/gpu=1" in info["TRES"] and info["JobName"] == "ailys-deep"
    assert job_process(job, cluster).environ().get("CUDA_VISIBLE_DEVICES") == "0"


def test_the_production_path_submits_through_exec_prefix_as_the_learner(hub, cluster, learners):
    """tess's spawns run sbatch, squeue and scancel through `runuser -u tess --`, the place of
    `sudo -n -u tess --` in production."""
    _, job = start_server(hub, cluster, "tess", "cpu partition, exec_prefix", course="stats")
    assert cluster.job(job)["UserId"] == f"tess({learners['tess'].pw_uid})"
    assert job_process(job, cluster).uids().real == learners["tess"].pw_uid
    stop_server(hub, "tess")
    assert jobs_of(cluster, "tess") == []
    assert cluster.job(job)["JobState"] == "CANCELLED"
    # Again, for one minute: the last test of the module checks that the hub noticed its end.
    _, job = start_server(hub, cluster, "tess", "cpu partition, exec_prefix", course="stats", walltime="1m")
    TESS_WALLTIME_JOB.update(job=job, started=time.monotonic())


def test_a_controller_outage_never_removes_a_running_server(hub, cluster):
    sam, job = ensure_deep_session(hub, cluster)
    mark = len(hub.log())
    failed = f"squeue gave no answer about job {job} of sam"

    def server_kept_through_failed_polls() -> bool:
        s = server(hub, "sam")
        assert s and s["ready"], f"the hub dropped sam's server during the outage: {s}"
        assert sam.get("/user/sam/api/status").status_code == 200
        return hub.log()[mark:].count(failed) >= 3

    cluster.stop_controller()
    try:  # the hub polls every 2 s and each squeue gives up after 5 s: three failed polls, ~20 s
        wait_until(server_kept_through_failed_polls, 120, "three failed polls of sam's job", every=1)
    except TimeoutError as error:  # say what the hub did meanwhile (CI saw this once, under load)
        said = [line for line in hub.log()[mark:].splitlines() if "sam" in line or "squeue" in line]
        raise AssertionError(
            f"{error}; the hub's log about sam since the outage:\n" + "\n".join(said[-30:])
        ) from error
    finally:
        cluster.start_controller()
    assert "keeping the server (it answers)" in hub.log()[mark:]
    assert server(hub, "sam")["ready"] and jobs_of(cluster, "sam") == [job]
    assert cluster.job(job)["JobState"] == "RUNNING"


def test_a_hub_killed_and_restarted_reattaches_the_running_job(hub, cluster):
    sam, job = ensure_deep_session(hub, cluster)
    hub.stop_hub(signal.SIGKILL)
    hub.start_hub()
    wait_ready(hub, cluster, "sam", timeout=30)
    assert sam.get("/user/sam/api/status").status_code == 200
    assert jobs_of(cluster, "sam") == [job]  # the same job, not a second one
    every = cluster.run("squeue", "--noheader", "--user=sam", "--states=all", "--format=%i").stdout.split()
    assert [j for j in every if int(j) > int(job)] == []  # nothing submitted since, even briefly
    assert "sam still running" in hub.log()


def test_a_job_cancelled_outside_the_hub_is_noticed_and_explained(hub, cluster):
    sam, job = ensure_deep_session(hub, cluster)
    cluster.run("scancel", job)
    began = time.monotonic()
    wait_until(
        lambda: server(hub, "sam") is None, POLL_INTERVAL * 2 + 15, "the hub to notice the cancelled job"
    )
    noticed = time.monotonic() - began
    TIMINGS.append(("scancel noticed after", noticed))
    log = hub.log()
    # sacct says who cancelled it; when slurmdbd lags, scontrol says the rest
    said = re.search(
        rf"Slurm job {job} of sam ended outside the hub: .*it was cancelled( by root)?\. "
        r"\((sacct|scontrol): State=CANCELLED",
        log,
    )
    assert said, log[-3000:]
    NOTES.append(f"scancel explained from {said[2]}")
    form = sam.get("/hub/spawn").text
    assert f"Slurm job {job}) ended" in form and "it was cancelled" in form
    assert "You can start a new one" in form
    # and the learner can start again: the explanation comes first on the spawn page
    r = spawn_with_form(hub, sam, "sam", course="algo")
    assert r.status_code in (302, 303)
    wait_ready(hub, cluster, "sam")
    assert "ended" not in sam.get("/hub/spawn").text.split('name="course"')[0]  # shown once
    stop_server(hub, "sam")


def test_a_queued_spawn_shows_its_place_and_starts_when_the_blocker_ends(hub, cluster):
    stop_server(hub, "sam")
    blocker = cluster.sbatch(
        "-p", "gpu", "--gres=gpu:2", "-t", "10", "-o", "/dev/null", "--wrap", "sleep 600"
    )
    ahead = None
    try:
        cluster.wait_job(blocker, "RUNNING", timeout=30)
        ahead = cluster.sbatch(
            "-p", "gpu", "--gres=gpu:1", "-t", "10", "-o", "/dev/null", "--wrap", "sleep 600"
        )
        requester = hub.login("sam")
        posted = {}
        thread = threading.Thread(
            target=lambda: posted.setdefault(
                "r",
                requester.post(
                    "/hub/api/users/sam/server",
                    json={"course": "deep"},
                    headers=hub_xsrf(requester),
                    timeout=60,
                ),
            )
        )
        began = time.monotonic()
        thread.start()
        sam = hub.login("sam")
        wait_until(
            lambda: (server(hub, "sam") or {}).get("pending") == "spawn", 10, "sam's spawn to be pending"
        )
        seen = []
        for event in progress_events(sam, "sam", timeout=60):
            seen.append(event.get("message", ""))
            if re.search(
                r"is 2nd of 2 pending in partition gpu; Slurm's estimated start: \d\d:\d\d", seen[-1]
            ):
                break
        assert "reason: Priority" in seen[-1] or "reason: Resources" in seen[-1], seen
        assert any(m.startswith("Submitted Slurm job") for m in seen), seen
        cluster.run("scancel", blocker)
        wait_ready(hub, cluster, "sam", timeout=60)
        TIMINGS.append(
            ("queued spawn, start request to ready (blocker cancelled meanwhile)", time.monotonic() - began)
        )
        thread.join(30)
        assert sam.get("/user/sam/lab", follow_redirects=True).status_code == 200
        NOTES.extend(seen)
    finally:
        cluster.run("scancel", blocker, *([ahead] if ahead else []), check=False)
    stop_server(hub, "sam")
    assert jobs_of(cluster, "sam") == []


def test_a_session_that_reaches_its_time_limit_is_noticed_and_explained(hub, cluster):
    """tess's session of one minute (started by the exec_prefix test) ends by Slurm's time limit:
    Slurm checks limits every 30 s, then gives KillWait (5 s)."""
    if not TESS_WALLTIME_JOB:
        stop_server(hub, "tess")
        _, job = start_server(
            hub, cluster, "tess", "cpu partition, exec_prefix", course="stats", walltime="1m"
        )
        TESS_WALLTIME_JOB.update(job=job, started=time.monotonic())
    job = TESS_WALLTIME_JOB["job"]
    left = TESS_WALLTIME_JOB["started"] + 60 + 30 + 5 + POLL_INTERVAL + 15 - time.monotonic()
    wait_until(
        lambda: server(hub, "tess") is None, max(left, 5), "the hub to notice the end of tess's session"
    )
    cluster.wait_job(job, {"TIMEOUT"}, timeout=30)  # the hub may notice while it is still COMPLETING
    said = re.search(
        rf"Slurm job {job} of tess ended outside the hub: .*time limit.*\((sacct|scontrol): State=TIMEOUT",
        hub.log(),
    )
    assert said, hub.log()[-3000:]
    NOTES.append(f"time limit explained from {said[1]}")
    form = hub.login("tess").get("/hub/spawn").text
    notice = re.search(r'id="slurm-last-end">([^<]*)<', form)
    assert (
        notice
        and f"Slurm job {job}) ended" in notice[1]
        and "it reached its time limit (00:01:00)" in notice[1]
    ), notice[1] if notice else form


def test_a_learner_whose_account_is_a_system_one_gets_no_job(hub, cluster):
    """A course lists a person whose Unix account was made with useradd --system under a name the
    schema does not reserve, and Slurm knows them: a root hub would submit with sbatch --uid of that
    account. The spawner refuses it by uid (spawner.min_uid) before any Slurm command."""
    import subprocess
    import sys

    from hub_config.secrets import read_demo_logins

    name = "sysacct-slurm"  # a name no other test uses
    with system_account(name) as account:
        folder = hub.root / "courses" / "sysacct"
        try:
            assert account.pw_uid < 1000
            cluster.add_user(name)  # only the hub's check stands between this account and a job
            folder.mkdir()
            sysacct = with_resources("sysacct", "Sys", [name], cpus=1)
            folder.joinpath("course.yaml").write_text(json.dumps(sysacct))
            sync = [sys.executable, "-m", "hub_config.cli", "courses", "--site", str(hub.site_file), "sync"]
            synced = subprocess.run(sync, capture_output=True, text=True, timeout=60)
            assert synced.returncode == 0, synced.stderr
            hub.passwords = read_demo_logins(hub.secrets.demo_logins_file)
            client = hub.login(name)
            r = client.post(
                f"/hub/api/users/{name}/server", json={"course": "sysacct"}, headers=hub_xsrf(client)
            )
            said = f"Not started: the Unix account {name} cannot run a learner's server: its uid {account.pw_uid}"
            assert r.status_code == 403 and r.json()["message"].startswith(said), r.text
            last = list(progress_events(client, name, timeout=30))[-1]
            assert last["failed"] and last["message"].startswith(f"Spawn failed: {said}"), last
            assert f"Refused to start a server for {name} as Unix account {name}: its uid" in hub.log()
            assert server(hub, name) is None and jobs_of(cluster, name) == []
            sacct = [
                "sacct",
                "--noheader",
                "--allocations",
                f"--user={name}",
                "--starttime=2000-01-01",
                "--format=JobID",
            ]
            assert cluster.run(*sacct).stdout.strip() == ""
        finally:
            folder.joinpath("course.yaml").unlink(missing_ok=True)
            if folder.exists():
                folder.rmdir()
