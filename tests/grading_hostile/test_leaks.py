"""Nothing of the grader reaches a learner's kernel, from any of the three ways grading starts.

The grading process holds a real-looking secret: a random JUPYTERHUB_API_TOKEN and another secret
variable in its environment (for the hub's services: their own hub token, and the secret given
to them by a drop-in), a world-readable home and data folder with secret files that the grading
account could read outside the sandbox. Every case of leak_cases.py (one per channel: environ,
command lines, every visible process, unmounting, descriptors, memory, files) is graded in one
batch per entry point: `ailys grade` (local backend, and Slurm backend on the test cluster), the
formgrader's Autograde button and grading on submit in the exchange; the kernel-death cases of
dying_cases.py join the last two. A leak case finds nothing and earns its point; no secret text
is in any executed notebook, feedback, reason or command output; a dying case scores 0.

Real parts: a real grading account (grd-leak-grader), nbgrader's course folder and gradebook,
`ailys grade` as a command, a real Slurm cluster, a real hub with its grading services and
exchange, learners' own tokens.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import psutil
import pytest
import yaml
from nbgrader.api import Gradebook

from tests.conftest import OUTPUT
from tests.grading_hostile.build import ASSIGNMENT, make_course, source_notebook, submit
from tests.grading_hostile.leak_cases import LEAKS, SECRET_VAR, TOKEN_VAR, read_files

try:
    from tests.grading_hostile.dying_cases import DYING
except ImportError:  # written for defect 2 of the same issue
    DYING = {}

GRADER = "grd-leak-grader"
TOKEN = secrets.token_hex(32)
SECRET = f"grd-secret-{secrets.token_hex(16)}"
VAR = Path(__file__).resolve().parents[2] / "var"  # outside /tmp, which the sandbox hides anyway
AILYS = str(Path(sys.executable).parent / "ailys")


@pytest.fixture(scope="module")
def grader_files(grader):
    """The caller's home and the site's data folder, world-readable, with secret files in them."""
    VAR.mkdir(exist_ok=True)
    top = Path(tempfile.mkdtemp(prefix="leak-", dir=VAR))
    home, data = top / "home", top / "data"
    for folder, name in ((home, ".jupyterhub-token"), (data / "secrets", "grader-secret")):
        folder.mkdir(parents=True)
        (folder / name).write_text(f"{TOKEN_VAR}={TOKEN}\n{SECRET_VAR}={SECRET}\n")
    for path in (top, *top.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    files = [str(home / ".jupyterhub-token"), str(data / "secrets" / "grader-secret")]
    for path in files:  # else the test would prove nothing: only the sandbox keeps them away
        seen = subprocess.run(["runuser", "-u", grader, "--", "cat", path], capture_output=True, text=True)
        assert SECRET in seen.stdout, f"the grading account cannot read {path} even outside the sandbox"
    yield {"home": home, "data": data, "files": files, "folders": [str(home), str(data)]}
    shutil.rmtree(top, ignore_errors=True)


def leak_cases(files: list[str], folders: list[str]) -> dict[str, str]:
    """Learner name -> answer: every channel, and the grader's files for this entry point."""
    cases = {**LEAKS, "files": read_files(files, folders)}
    return {f"lk-{name}": code for name, code in cases.items()}


def dying_cases() -> dict[str, str]:
    return {f"lk-{name}": code for name, code in DYING.items()}


def scores(root: Path, course_id: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{root}/gradebook.db", course_id) as gb:
        return {s.student.id: s.score for s in gb.find_assignment(ASSIGNMENT).submissions}


def assert_no_secret(texts: dict[str, str], secrets_: list[str]) -> None:
    for where, text in texts.items():
        for secret in secrets_:
            assert secret not in text, f"the grader's secret {secret[:12]}... is in {where}"


def graded_texts(root: Path, students) -> dict[str, str]:
    """What the grading wrote of each submission: executed notebook, result marker, feedback."""
    texts = {}
    for student in students:
        for path in (root / "autograded" / student / ASSIGNMENT).glob("*"):
            texts[str(path)] = path.read_text(errors="replace")
        for path in (root / "feedback" / student / ASSIGNMENT).glob("*.html"):
            texts[str(path)] = path.read_text(errors="replace")
        assert any(f"/{student}/" in p for p in texts), f"{student} was not graded"
    return texts


# --- ailys grade, both backends ----------------------------------------------------------------


def ailys_grade(tmp_path: Path, grader_files: dict, backend: list[str], grading: dict, spawner=None):
    """`ailys grade` of the leak cases from a shell holding the secrets; the course folder, the
    cases and the command's result."""
    courses = tmp_path / "courses"
    root = make_course(courses / "grd-course")
    course = {
        "slug": "grd-course",
        "title": {"fr": "Cours", "en": "Course"},
        "kind": "academic",
        "instructors": ["grd-teacher"],
        "start": "2026-01-01",
        "end": "2027-06-30",
        "assignments": [{"name": ASSIGNMENT}],
        "autograde": {"timeout": "20s", "total_timeout": "60s", "preload": ["numpy"]},
    }
    (root / "course.yaml").write_text(yaml.safe_dump(course))
    cases = leak_cases(grader_files["files"], grader_files["folders"])
    for student, code in cases.items():
        submit(root, student, code)
    work_dir = Path(tempfile.mkdtemp(prefix="grd-leak-work-"))
    work_dir.chmod(0o755)
    site = tmp_path / "grd-leak.yaml"
    settings = {
        "name": "grd-leak",
        "data_dir": str(grader_files["data"]),
        "courses_dir": str(courses),
        "grading": {"user": GRADER, "work_dir": str(work_dir), **grading},
    }
    site.write_text(yaml.safe_dump({**settings, **({"spawner": spawner} if spawner else {})}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}  # the site names the cluster
    env.update({TOKEN_VAR: TOKEN, SECRET_VAR: SECRET, "HOME": str(grader_files["home"])})
    argv = [AILYS, "grade", "grd-course", ASSIGNMENT, *backend, "--course-dir", str(root)]
    argv += ["--site", str(site)]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=400)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return root, cases, done


def check_ailys_grade(root: Path, cases: dict[str, str], done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"graded {len(cases)}, failed 0" in done.stdout, done.stdout
    texts = graded_texts(root, cases)
    assert_no_secret({**texts, "ailys grade's output": done.stdout + done.stderr}, [TOKEN, SECRET])
    assert scores(root, "grd-course") == {student: 1.0 for student in cases}, done.stdout  # all found nothing


def test_ailys_grade_gives_the_kernels_nothing_of_its_caller(grader, grader_files, tmp_path):
    root, cases, done = ailys_grade(tmp_path, grader_files, ["--workers", "2", "--feedback"], {})
    check_ailys_grade(root, cases, done)
    assert all((root / "feedback" / s / ASSIGNMENT / "ps1.html").is_file() for s in cases)


@pytest.fixture(scope="module")
def cluster(request, grader):
    from tests.services.slurm import cluster_for_tests

    extra = "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1"
    for running in cluster_for_tests(request, nodes=1, cpus=2, memory_mb=4096, extra_config=extra):
        running.add_user(grader)
        yield running


@pytest.mark.slurm
def test_ailys_grade_on_slurm_gives_the_tasks_kernels_nothing_of_its_caller(cluster, grader_files, tmp_path):
    grading = {"partition": "cpu", "account": cluster.accounts[0], "throttle": 2}
    spawner = {"slurm": {"slurm_conf": str(cluster.slurm_conf)}}
    root, cases, done = ailys_grade(tmp_path, grader_files, ["--backend", "slurm"], grading, spawner)
    check_ailys_grade(root, cases, done)


# --- the formgrader's Autograde and grading on submit, behind a real hub ----------------------

FORMGRADER, ON_SUBMIT = "lk-fg", "lk-os"
PROFS = {FORMGRADER: "lk-prof-f", ON_SUBMIT: "lk-prof-o"}


def hub_learners() -> list[str]:
    return [*leak_cases([], []), *dying_cases()]


@pytest.fixture(scope="module")
def leak_hub(grader):
    """A hub whose grading services and exchange hold, besides their own hub tokens, SECRET in
    their environment; a world-readable secret file in its data folder."""
    from tests.integration.test_exchange import wait_for_exchange
    from tests.integration.test_grading_formgrader import _free_base_port, wait_for_grading
    from tests.services.hub import RunningHub, course

    # short limits: a frozen kernel (dying_cases) costs the whole total_timeout, once per batch
    auto = {"timeout": "5s", "total_timeout": "10s", "preload": []}
    assignments = {FORMGRADER: {"name": ASSIGNMENT}}
    assignments[ON_SUBMIT] = {"name": ASSIGNMENT, "autograde_on_submit": True}
    learners = hub_learners()
    courses = [course(s, [PROFS[s]], learners, assignments=[assignments[s]], autograde=auto) for s in PROFS]
    site = {"grading": {"user": grader}, "formgraders": {"port": _free_base_port()}}
    hub = RunningHub(courses, site=site, start_timeout=180)
    for slug in PROFS:
        folder = hub.root / "courses" / slug / "source" / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(source_notebook(), folder / f"{ASSIGNMENT}.ipynb")
    (hub.data / "jupyterhub_config.d" / "60-leak-secret.py").write_text(
        "for service in c.JupyterHub.services:\n"
        "    if service['name'] == 'exchange' or service['name'].startswith('grading-'):\n"
        f"        service.setdefault('environment', {{}})[{SECRET_VAR!r}] = {SECRET!r}\n"
    )
    (hub.data / "leak-secret.txt").write_text(SECRET)  # the data folder is 0711: reachable by name
    (hub.data / "leak-secret.txt").chmod(0o644)
    try:
        hub.start()
        wait_for_exchange(hub)
        for slug in PROFS:
            wait_for_grading(hub, slug)
        yield hub
    finally:
        OUTPUT.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            (OUTPUT / "test_leaks-hub.log").write_text(hub.log())
        hub.stop()


def service_tokens() -> dict[str, str]:
    """The hub tokens of this hub's exchange and grading services, read from their environment."""
    tokens = {}
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            env = process.environ()
            if env.get(SECRET_VAR) == SECRET and TOKEN_VAR in env:  # ours: the drop-in's secret
                tokens[env["JUPYTERHUB_SERVICE_NAME"]] = env[TOKEN_VAR]
    return tokens


def answered(release: Path, code: str) -> bytes:
    nb = nbformat.read(release, as_version=4)
    [cell] = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    cell.source = code
    return nbformat.writes(nb).encode()


@pytest.mark.hub
@pytest.mark.slow
def test_the_formgrader_and_grading_on_submit_give_the_kernels_nothing_of_the_services(leak_hub):
    from grading.courses import course_dir
    from tests.integration.test_exchange import exchange_client, user_token
    from tests.integration.test_grading_formgrader import Instructor
    from tests.services.hub import wait_until

    hub = leak_hub
    tokens = service_tokens()
    assert set(tokens) == {"exchange", f"grading-{FORMGRADER}", f"grading-{ON_SUBMIT}"}, tokens
    secrets_ = [SECRET, *tokens.values()]
    data = str(hub.data)
    files = [f"{data}/leak-secret.txt", f"{data}/secrets/jupyterhub_cookie_secret"]
    cases = {**leak_cases(files, [data, f"{data}/grading", f"{data}/exchange", "/root"]), **dying_cases()}
    profs = {slug: Instructor(hub, name, slug) for slug, name in PROFS.items()}
    for prof in profs.values():
        prof.post(f"assignment/{ASSIGNMENT}/assign")
    profs[ON_SUBMIT].post(f"assignment/{ASSIGNMENT}/release")

    # grading on submit: each learner submits through the exchange with their own token; the
    # exchange grades the queue while the formgrader grades its batch below
    release = course_dir(hub.catalogue, ON_SUBMIT) / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    with ThreadPoolExecutor(4) as pool:  # a login each: the hub answers several at once
        learner_tokens = dict(
            zip(cases, pool.map(lambda student: user_token(hub, student), cases), strict=True)
        )
    for student, code in cases.items():
        files_ = {f"{ASSIGNMENT}.ipynb": base64.b64encode(answered(release, code)).decode()}
        r = exchange_client(hub, learner_tokens[student]).post(
            f"courses/{ON_SUBMIT}/assignments/{ASSIGNMENT}/submissions", json={"files": files_}
        )
        assert r.status_code == 201 and r.json()["autograde_on_submit"], r.text

    # the formgrader's Autograde, one submission per click, as collected
    fg_root = course_dir(hub.catalogue, FORMGRADER)
    logs = {}
    for student, code in cases.items():
        submit(fg_root, student, code)
        logs[student] = profs[FORMGRADER].post(f"submission/{ASSIGNMENT}/{student}/autograde")["log"]
    logs = {f"{student}'s autograde log": text for student, text in logs.items()}
    assert_no_secret({**graded_texts(fg_root, cases), **logs}, secrets_)
    expected = {s: 1.0 if s in leak_cases([], []) else 0.0 for s in cases}
    assert scores(fg_root, FORMGRADER) == expected, logs

    store = hub.data / "exchange" / ON_SUBMIT / "feedback" / ASSIGNMENT

    def all_released() -> bool:
        return len(list(store.glob("*/*/feedback.json"))) == len(cases)

    wait_until(all_released, 600, "the feedback of every submission graded on submit", every=0.5)
    feedback = {}
    for student, token in learner_tokens.items():
        [meta] = exchange_client(hub, token).get(f"courses/{ON_SUBMIT}/feedback").json()["feedback"]
        sub = meta.get("submission_id") or meta.get("id")
        got = exchange_client(hub, token).get(f"courses/{ON_SUBMIT}/feedback/{ASSIGNMENT}/{student}/{sub}")
        got = got.json()["files"]
        feedback.update({f"{student}'s released {n}": base64.b64decode(t).decode() for n, t in got.items()})
    os_root = course_dir(hub.catalogue, ON_SUBMIT)
    assert_no_secret({**feedback, **graded_texts(os_root, cases)}, secrets_)
    assert scores(os_root, ON_SUBMIT) == expected
