"""The exchange from a learner's server that runs as a Slurm job: nbgrader in the job reaches the
exchange with the job's own token and URL (from the hub, through the job's environment), with no
folder shared with the hub."""

from __future__ import annotations

import base64
import contextlib
import pwd

import httpx
import nbformat
import pytest

from tests.integration.test_exchange import exchange_client, user_token, wait_for_exchange
from tests.integration.test_slurm_spawner import job_process, slurm_site, start_server, stop_server
from tests.services import remove_unix_user, unix_user
from tests.services.hub import RunningHub, course, server_xsrf
from tests.services.slurm import cluster_for_tests

pytestmark = [pytest.mark.slurm, pytest.mark.hub]

SLUG, LEARNER, PROF = "exa-hpc", "exa-sue", "exa-prof-s"
COURSE = course(
    SLUG,
    [PROF],
    [LEARNER],
    assignments=[{"name": "ps1"}],
    resources={"walltime": "1h", "partition": "cpu", "cpus": 1, "memory": "512M"},
)


@pytest.fixture(scope="module")
def cluster(request):
    yield from cluster_for_tests(request)


@pytest.fixture(scope="module")
def hub(cluster):
    try:  # left by a run that died
        remove_unix_user(pwd.getpwnam(LEARNER))
    except KeyError:
        pass
    account = unix_user(LEARNER, cluster.root / "home")
    cluster.add_user(LEARNER)
    running = RunningHub([COURSE], site=slurm_site(cluster))
    running.start()
    try:
        wait_for_exchange(running)
        yield running
    finally:
        with contextlib.suppress(AssertionError, TimeoutError, httpx.HTTPError):  # the hub may be down
            stop_server(running, LEARNER)
        running.stop()
        remove_unix_user(account)


def test_a_learner_in_a_slurm_job_fetches_and_submits_through_the_exchange(hub, cluster):
    prof = exchange_client(hub, user_token(hub, PROF))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = None", id="c1")])
    files = {"ps1.ipynb": base64.b64encode(nbformat.writes(nb).encode()).decode()}
    assert prof.put(f"courses/{SLUG}/assignments/ps1", json={"files": files}).status_code == 201

    client, job = start_server(hub, cluster, LEARNER, "exchange", course=SLUG)
    env = job_process(job, cluster).environ()  # the server is the job's process, not the hub's child
    assert env["SLURM_JOB_ID"] == job and env["AILYS_EXCHANGE_URL"].endswith("/services/exchange/")

    headers = server_xsrf(client, LEARNER)
    body = {"course_id": SLUG, "assignment_id": "ps1"}
    listed = client.get(f"/user/{LEARNER}/assignments", params={"course_id": SLUG}).json()
    assert [(a["assignment_id"], a["status"]) for a in listed["value"]] == [("ps1", "released")]
    fetched = client.post(f"/user/{LEARNER}/assignments/fetch", json=body, headers=headers).json()
    assert [a["status"] for a in fetched["value"]] == ["fetched"]
    home = cluster.root / "home" / LEARNER
    assert (home / SLUG / "ps1" / "ps1.ipynb").stat().st_uid == pwd.getpwnam(
        LEARNER
    ).pw_uid  # written by the job
    out = client.post(f"/user/{LEARNER}/assignments/submit", json=body, headers=headers).json()
    assert out["success"] is not False, out.get("value")

    [sub] = prof.get(f"courses/{SLUG}/submissions").json()["submissions"]
    assert sub["student_id"] == LEARNER and sub["notebooks"] == ["ps1.ipynb"]
