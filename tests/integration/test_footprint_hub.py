"""The footprint service on a real local hub: a busy notebook and an idle one are both recorded
when they stop, the busy one costing more; the running figure moves while a cell computes; a
learner sees only their own figures, a course's page is for its instructors only (403)."""

from __future__ import annotations

import signal

import httpx
import psutil
import pytest

from footprint.live import LAST_SAMPLE
from footprint.records import connect, read
from hub_config.appliers.storage import database_url
from tests.integration.test_local_hub import run_code
from tests.services.hub import RunningHub, course, hub_xsrf, wait_until

pytestmark = pytest.mark.hub

COURSE = "fpt-ml"
BUSY, IDLE, PROF = "fpt-busy", "fpt-idle", "fpt-prof"
E14_LEARNER = "e14-down"  # its session ends while the service is down
BRIEF = "fpt-brief"  # a session shorter than one sample period, on a hub with the default period


@pytest.fixture(scope="module")
def hub():
    running = RunningHub(
        [course(COURSE, [PROF], [BUSY, IDLE, E14_LEARNER])],
        site={"energy": {"service": {"sample_every": "1s"}}},
    ).start()
    yield running
    running.stop()


def me(client: httpx.Client) -> dict:
    """The status bar's request: the service's OAuth is done by following the hub's redirects."""
    r = client.get("/services/footprint/api/me", follow_redirects=True)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def records(hub, course: str = COURSE) -> dict:
    """Each person's latest footprint record of ``course``, from the hub's database."""
    engine = connect(database_url(hub.catalogue))
    try:
        return {r.who: r for r in read(engine, course=course)}
    finally:
        engine.dispose()


def test_busy_and_idle_sessions_are_measured_while_they_run_and_recorded_when_they_end(hub):
    busy, idle = hub.login(BUSY), hub.login(IDLE)
    hub.spawn(busy, BUSY)
    hub.spawn(idle, IDLE)
    wait_until(lambda: me(busy)["sessions"], 30, "the busy session's running figure")
    before = me(busy)["sessions"][0]
    assert before["course"] == COURSE and before["method"] == "estimate"
    run_code(
        hub, busy, BUSY, "import time\nt = time.process_time()\nwhile time.process_time() - t < 4: pass\n"
    )
    run_code(hub, idle, IDLE, "print(1 + 1)")
    moved = wait_until(
        lambda: (s := me(busy)["sessions"][0])["cpu_seconds"] >= before["cpu_seconds"] + 3.5 and s,
        30,
        "the busy session's CPU time to count the cell's 4 s",
    )
    assert moved["energy_wh"]["value"] > before["energy_wh"]["value"]
    assert all(s["course"] == COURSE for s in me(idle)["sessions"])  # the idle one sees its own only
    for name in (BUSY, IDLE):
        client = hub.login(name)
        r = client.delete(f"/hub/api/users/{name}/server", headers=hub_xsrf(client))
        assert r.status_code in (202, 204)
    found = wait_until(lambda: len(records(hub)) == 2 and records(hub), 60, "both sessions' records")
    assert found[BUSY].energy_wh > found[IDLE].energy_wh > 0
    assert found[BUSY].kind == found[IDLE].kind == "local" and found[BUSY].method == "estimate"
    assert found[BUSY].core_usage > found[IDLE].core_usage
    assert found[BUSY].energy_wh_low <= found[BUSY].energy_wh <= found[BUSY].energy_wh_high
    print(f"busy {found[BUSY].energy_wh:.5f} Wh, idle {found[IDLE].energy_wh:.5f} Wh")

    page = idle.get("/services/footprint/", follow_redirects=True)
    assert page.status_code == 200 and "Mon empreinte" in page.text and BUSY not in page.text
    english = busy.get("/services/footprint/?lang=en", follow_redirects=True)
    assert "My footprint" in english.text and "175 gCO2e" in english.text and "km by car" in english.text


def test_a_courses_figures_are_for_its_instructors_only(hub):
    learner = hub.login(IDLE)
    for path in (f"/services/footprint/course/{COURSE}", f"/services/footprint/course/{COURSE}/plot.png"):
        assert learner.get(path, follow_redirects=True).status_code == 403
    prof = hub.login(PROF)
    page = prof.get(f"/services/footprint/course/{COURSE}?lang=en", follow_redirects=True)
    assert page.status_code == 200 and "Per learner" in page.text and "Per assignment" in page.text
    plot = prof.get(f"/services/footprint/course/{COURSE}/plot.png", follow_redirects=True)
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    assert prof.get("/services/footprint/course/no-such", follow_redirects=True).status_code == 404


def footprint_service(hub) -> psutil.Process:
    """This hub's footprint service process (python -m footprint <its site file>)."""
    for p in psutil.process_iter(["cmdline", "ppid"]):
        cmdline = p.info["cmdline"] or []
        if p.info["ppid"] == hub.hub.pid and cmdline[-2:] == ["footprint", str(hub.site_file)]:
            return p
    raise AssertionError("no footprint service among the hub's children")


def test_a_session_that_ends_while_the_service_is_down_is_recorded_from_its_last_sample(hub):
    """The service is frozen (SIGSTOP), the session stops, the service is killed; the hub starts it
    again, and the record appears, from the last sample the database kept, labelled so (its ref)."""
    name = E14_LEARNER
    client = hub.login(name)
    hub.spawn(client, name)
    wait_until(lambda: [s for s in me(client)["sessions"] if s["cpu_seconds"] > 0], 30, "a first sample")
    service = footprint_service(hub)
    service.send_signal(signal.SIGSTOP)
    try:
        r = client.delete(f"/hub/api/users/{name}/server", headers=hub_xsrf(client))
        assert r.status_code in (202, 204)
        wait_until(lambda: not hub.server_ready(name), 60, f"{name}'s server to stop")
    finally:
        service.kill()  # a stopped process takes SIGKILL; the hub starts its service again

    def recorded():
        return [r for r in read_all(hub) if r.who == name]

    [record] = wait_until(recorded, 120, "the record of the session that ended while the service was down")
    assert record.ref.startswith(f"{name}/@") and record.ref.endswith(LAST_SAMPLE)
    assert (record.kind, record.course, record.method) == ("local", COURSE, "estimate")
    assert record.energy_wh > 0 and record.end > record.start
    assert footprint_service(hub).pid != service.pid


def read_all(hub) -> list:
    engine = connect(database_url(hub.catalogue))
    try:
        return read(engine, course=COURSE)
    finally:
        engine.dispose()


def test_a_session_shorter_than_the_sample_period_is_measured_at_once_and_recorded():
    """With the default sample_every (60 s) a session is still sampled when first seen (within the
    service's 10 s look at the hub), so a short one has a running figure and a record."""
    hub = RunningHub([course(COURSE, [PROF], [BRIEF])]).start()
    try:
        assert hub.catalogue.site.energy.service.sample_every == 60
        client = hub.login(BRIEF)
        hub.spawn(client, BRIEF)
        began = me(client)  # the OAuth round trip once, then the figure is awaited
        assert began["sessions"] == [] or began["sessions"][0]["course"] == COURSE
        wait_until(lambda: [s for s in me(client)["sessions"] if s["cpu_seconds"] > 0], 30, "a first sample")
        r = client.delete(f"/hub/api/users/{BRIEF}/server", headers=hub_xsrf(client))
        assert r.status_code in (202, 204)
        [record] = wait_until(
            lambda: [r for r in read_all(hub) if r.who == BRIEF], 30, "the short session's record"
        )
        assert (record.kind, record.method) == ("local", "estimate") and record.energy_wh > 0
        assert (record.end - record.start).total_seconds() < 60
    finally:
        hub.stop()
