"""The footprint service's pure parts: the applier on an empty Config, the pages' sums, rules and
comparisons, the reading of a server's process tree from /proc-shaped text."""

from __future__ import annotations

import datetime as dt
import os
import sys

import pytest
from traitlets.config import Config

from footprint import live, pages
from footprint.model import Range, factors_for
from footprint.records import Footprint
from hub_config import i18n
from hub_config.appliers.footprint import ACCESS_SCOPE, FOOTPRINT_SCOPES, apply_footprint
from hub_config.catalogue import CatalogueError, load_catalogue
from hub_config.schema.energy import Energy
from spawners.launch_form import TEMPLATES, LaunchForm

from .conftest import SITE, course


def test_the_applier_adds_the_service_its_role_and_every_users_access(catalogue):
    c = Config()
    apply_footprint(c, catalogue)
    (service,) = c.JupyterHub.services
    assert service["name"] == "footprint" and service["url"] == "http://127.0.0.1:8093"
    assert service["command"] == [sys.executable, "-m", "footprint", str(catalogue.site_file)]
    assert service["oauth_no_confirm"] is True
    (role,) = c.JupyterHub.load_roles
    assert role["services"] == ["footprint"] and role["scopes"] == FOOTPRINT_SCOPES
    assert not any(s.startswith(("admin", "delete", "servers")) for s in FOOTPRINT_SCOPES)  # reads only
    assert c.JupyterHub.extra_user_scopes == {ACCESS_SCOPE} == {"access:services!service=footprint"}
    assert set(c) == {"JupyterHub"}


def test_the_service_can_be_turned_off(write_catalogue):
    catalogue = load_catalogue(write_catalogue(site={**SITE, "energy": {"service": {"enabled": False}}}))
    c = Config()
    apply_footprint(c, catalogue)
    assert "services" not in c.JupyterHub


def test_settings_take_durations(write_catalogue):
    site = {**SITE, "energy": {"service": {"sample_every": "2m", "collect_every": "10m", "port": 9100}}}
    service = load_catalogue(write_catalogue(site=site)).site.energy.service
    assert (service.sample_every, service.collect_every, service.port) == (120, 600, 9100)


@pytest.mark.parametrize(
    "site, other",
    [
        ({"listen": {"port": 8093}}, "listen.port"),
        ({"listen": {"hub_port": 8093}}, "listen.hub_port"),
        ({"listen": {"proxy_api_port": 8093}}, "listen.proxy_api_port"),
        ({"gallery": {"port": 8093}}, "gallery.port"),
        ({"exchange": {"port": 8093}}, "exchange.port"),
        ({"formgraders": {"port": 8093}}, "formgraders.port"),
    ],
)
def test_a_footprint_port_another_part_uses_is_refused_naming_both(write_catalogue, site, other):
    with pytest.raises(CatalogueError, match=rf"energy.service.port 8093 is already used by {other}"):
        load_catalogue(write_catalogue(site={**SITE, **site}))


def test_a_footprint_port_in_the_formgraders_range_is_refused(write_catalogue):
    assignments = [{"name": "ps1", "due": "2026-10-01T12:00:00+02:00"}]
    courses = {slug: course(slug, assignments=assignments) for slug in ("algo", "stats")}
    site = {**SITE, "formgraders": {"port": 8092}}
    with pytest.raises(
        CatalogueError,
        match=r"energy.service.port: port 8093 is already used by the grading service of stats",
    ):
        load_catalogue(write_catalogue(site=site, courses=courses))
    # Turned off, the service takes no port (the same two courses).
    off = {**site, "energy": {"service": {"enabled": False}}}
    assert load_catalogue(write_catalogue(site=off, courses={})).site.energy.service.enabled is False


def record(who="ana", course="ml", kind="local", wh=10.0, co2=0.5, method="estimate", assignment=None, day=2):
    end = dt.datetime(2026, 10, day, 12, tzinfo=dt.UTC)
    return Footprint(
        kind=kind, ref=f"{who}-{wh}-{day}-{assignment}", who=who, course=course, partition=None,
        start=end - dt.timedelta(hours=1), end=end, core_hours=1.0, core_usage=0.5, memory_gb_hours=1.0,
        gpu_hours=0.0, energy_wh=wh, energy_wh_low=wh / 2, energy_wh_high=wh * 1.5, co2_g=co2,
        co2_g_low=co2 / 2, co2_g_high=co2 * 2, method=method, assignment=assignment,
    )  # fmt: skip


def test_comparisons_use_the_cited_factors():
    # 175 gCO2e/km (calculator v3.0 referenceValues.csv); 30 W laptop, 15 to 45 W.
    assert pages.car_km(Range.exact(350)).value == 2.0
    hours = pages.laptop_hours(Range(60, 45, 90))
    assert (hours.value, hours.low, hours.high) == (2.0, 1.0, 6.0)


def test_sums_keep_ranges_and_say_how_they_were_obtained():
    s = pages.total([record(wh=10, method="measured"), record(wh=20)])
    assert (s.records, s.energy.value, s.energy.low, s.energy.high) == (2, 30, 15, 45)
    assert s.method == "mixed" and pages.total([record(method="measured")]).method == "measured"


def test_a_person_sees_only_their_records_and_a_course_only_its_staff():
    rows = [record("ana"), record("bob"), record("ana", wh=3)]
    assert {r.who for r in pages.of_person(rows, "ana")} == {"ana"}
    assert pages.may_see_course(["staff-ml", "course-x"], "ml", "staff-ml")
    assert not pages.may_see_course(["course-ml"], "ml", "staff-ml")  # a learner of the course


def test_course_tables_per_learner_and_per_assignment_run():
    rows = [
        record("ana", wh=5),
        record("bob", wh=7),
        record("grader", kind="autograde", wh=1, assignment="tp1"),
        record("grader", kind="autograde", wh=2, assignment="tp1", day=3),
        record("grader", kind="autograde", wh=4, assignment="tp2"),
    ]
    assert list(pages.learner_sessions(rows)) == ["bob", "ana"]  # largest first
    runs = pages.assignment_runs(rows)
    assert runs["tp1"].records == 2 and runs["tp1"].energy.value == 3 and runs["tp2"].energy.value == 4


def test_a_course_window_keeps_what_ended_within_its_dates():
    rows = [record(day=1), record(day=15)]
    assert len(pages.in_window(rows, dt.date(2026, 10, 10), dt.date(2026, 10, 20))) == 1


def test_server_of_reads_the_hubs_markers():
    env = b"HOME=/h\0JUPYTERHUB_USER=fpt-ana\0JUPYTERHUB_SERVER_NAME=\0PATH=/bin\0"
    assert live.server_of(env) == ("fpt-ana", "")
    assert live.server_of(b"JUPYTERHUB_USER=x\0JUPYTERHUB_SERVER_NAME=gpu\0") == ("x", "gpu")
    assert live.server_of(b"HOME=/h\0") is None
    assert live.is_server(b"/v/bin/python3\0/v/bin/jupyterhub-singleuser\0--port=1\0")
    assert not live.is_server(b"/usr/bin/python3\0-m\0ipykernel_launcher\0")


def fake_proc(tmp_path, procs):
    """/proc-shaped folders: {pid: (ppid, ticks, cmdline, environ, rss pages)}."""
    for pid, (ppid, ticks, cmdline, environ, rss) in procs.items():
        d = tmp_path / str(pid)
        d.mkdir()
        fields = ["S", str(ppid)] + ["0"] * 9 + [str(ticks), "0", "0", "0"] + ["0"] * 10
        (d / "stat").write_text(f"{pid} (py (x)) {' '.join(fields)}\n")
        (d / "cmdline").write_bytes(cmdline)
        (d / "environ").write_bytes(environ)
        (d / "statm").write_text(f"100 {rss} 0 0 0 0 0\n")
    return tmp_path


def test_the_root_of_a_server_and_its_trees_cpu_and_memory(tmp_path):
    env = b"JUPYTERHUB_USER=fpt-ana\0JUPYTERHUB_SERVER_NAME=\0"
    server = b"python\0/v/bin/jupyterhub-singleuser\0"
    proc = fake_proc(
        tmp_path,
        {
            1: (0, 5, b"init\0", b"", 1),
            10: (1, 100, b"python\0-c\0launch\0/v/bin/jupyterhub-singleuser\0", env, 10),  # a launcher
            11: (10, 200, server, env, 20),
            12: (11, 300, b"python\0-m\0ipykernel_launcher\0", env, 30),
            20: (1, 999, server, b"JUPYTERHUB_USER=fpt-bob\0", 5),
        },
    )
    roots = live.find_roots(proc)
    assert roots == {("fpt-ana", ""): 10, ("fpt-bob", ""): 20}
    figures = live.sample(roots, proc)
    cpu, rss = figures[("fpt-ana", "")]
    assert cpu == 600 / live.CLOCK_TICKS and rss == 60 * live.PAGE
    assert live.sample({("gone", ""): 99}, proc) == {}


def test_a_local_session_counts_the_cores_it_kept_busy():
    idle = live.usage_of(cpu_s=36, runtime_s=3600, memory_bytes=2 * 1024**3)
    assert idle.cores == 1 and abs(idle.core_usage - 0.01) < 1e-12 and idle.memory_gb == 2
    busy = live.usage_of(cpu_s=2.5 * 3600, runtime_s=3600, memory_bytes=0)
    assert busy.cores == 3 and abs(busy.core_usage - 2.5 / 3) < 1e-12


def test_a_busy_session_costs_more_than_an_idle_one():
    factors = factors_for(Energy(), None)
    base = {"who": "fpt-a", "server": "", "kind": "local", "course": "ml", "started": 0.0}
    idle = live.Meter(**base, cpu_s=1.0, peak_rss=100 * 1024**2, last_sample=600)
    busy = live.Meter(**base, cpu_s=590.0, peak_rss=100 * 1024**2, last_sample=600)
    a, b = live.footprint_of_meter(idle, 600, factors), live.footprint_of_meter(busy, 600, factors)
    assert b.energy_wh > 10 * a.energy_wh and a.method == b.method == "estimate"
    # 590 s of a 7.5 W core over 10 min, 0.1 GB at 0.3725 W, PUE 1.56:
    expected = (600 / 3600) * (1 * 7.5 * 590 / 600 + (100 / 1024) * 0.3725) * 1.56
    assert abs(b.energy_wh - expected) < 1e-9
    assert a.ref == "fpt-a/@1970-01-01T00:00:00Z"


def test_reclaimed_core_hours_count_only_against_a_limit():
    assert live.reclaimed_core_hours(2, 3600, 4 * 3600) == 6.0
    assert live.reclaimed_core_hours(2, 5 * 3600, 4 * 3600) == 0.0
    assert live.reclaimed_core_hours(2, 3600, None) == 0.0


def test_sampling_this_process_tree_reads_real_proc():
    (cpu, rss) = live.sample({("me", ""): os.getpid()})[("me", "")]
    assert cpu > 0 and rss > 1024**2


def test_the_launch_form_shows_the_energy_of_an_hour_of_the_courses_resources(write_catalogue):

    from hub_config.profiles import energy_per_hour, profiles_for

    from .conftest import course

    algo = course(resources={"cpus": 2, "memory": "4G", "walltime": "2h"})
    catalogue = load_catalogue(write_catalogue(courses={"algo": algo}))
    estimate = energy_per_hour(catalogue.course("algo"), catalogue.site.energy, None)
    # 2 cores × 7.5 W + 4 GB × 0.3725 W, PUE 1.56, for an hour; low: 0.08 W/GB and PUE 1.09.
    assert estimate["wh"] == pytest.approx((2 * 7.5 + 4 * 0.3725) * 1.56)
    assert estimate["wh_low"] == pytest.approx((2 * 7.5 + 4 * 0.08) * 1.09)
    assert estimate["co2_g"] == pytest.approx(estimate["wh"] * 51.28 / 1000)
    # the per-unit figures the form recomputes from (the model is linear in each resource)
    unit = estimate["per_unit"]
    for i, key in enumerate(("wh", "wh_low", "wh_high")):
        assert 2 * unit["cpus"][i] + 4 * unit["memory_gb"][i] == pytest.approx(estimate[key])
    assert estimate["wh"] * unit["co2_g_per_wh"] == pytest.approx(estimate["co2_g"])
    (profile,) = profiles_for(catalogue, ["course-algo"], None, dt.date(2026, 10, 1)).values()
    assert profile["energy_wh_per_hour"] == estimate
    template = str(TEMPLATES / "slurm-form.html.j2")
    entry = {"slug": "algo", "title": "Algo", "cpus": 2, "memory": 4 * 1024**3, "gpus": 0, "partition": None}
    html = LaunchForm().render_launch_form(template, [{**entry, "energy": estimate}], last_end="")
    assert 'data-wh-per-hour="25.7"' in html and "At most 25.7 Wh per hour at full use" in html
    french = LaunchForm(translations=lambda spawner: i18n.translations("fr"))
    html = french.render_launch_form(template, [{**entry, "energy": estimate}], last_end="")
    assert "Au plus 25.7 Wh par heure à pleine charge" in html
    # The form's script fills the same sentence when a resource is typed: it gets its placeholders.
    assert 'data-sentence="Au plus %(wh)s Wh par heure' in html
    # A spawner that gives no estimate (another kind's course list) still renders its form.
    assert "Wh per hour" not in LaunchForm().render_launch_form(template, [entry], last_end="")


def test_local_autograde_tasks_hold_one_core_and_the_grading_memory():
    from footprint.autograde import local_task_records

    usage = [{"student": "ana", "cpu_s": 1.5, "start": 1000.0, "end": 1003.0}]
    (r,) = local_task_records(usage, "ml", "tp1", "ailys-grader", 1024**3, factors_for(Energy(), None))
    assert (r.kind, r.course, r.assignment, r.who, r.method) == (
        "autograde",
        "ml",
        "tp1",
        "ailys-grader",
        "estimate",
    )
    assert r.core_usage == 0.5 and r.core_hours == pytest.approx(3 / 3600)
    assert r.energy_wh == pytest.approx((3 / 3600) * (7.5 * 0.5 + 0.3725) * 1.56)
    assert r.ref == "local:ml/tp1/ana@1970-01-01T00:16:40.000000Z"


def test_a_grading_arrays_job_name_carries_its_course_and_assignment():
    from footprint.sacct import parse

    line = "9_1|12|grader|ailys|cpu|COMPLETED|2026-12-02T16:47:35|2026-12-02T16:47:36|2026-12-02T16:47:40|4|00:01.109|1|billing=1,cpu=1,mem=300M,node=1||node2|"
    (job,) = parse(line + "ailys-grade-ml-intro/tp 1")
    assert (job.kind, job.course, job.assignment) == ("autograde", "ml-intro", "tp 1")
    (old,) = parse(line + "ailys-grade")
    assert (old.kind, old.course, old.assignment) == ("autograde", None, None)
    (session,) = parse(line + "ailys-ml-intro")
    assert (session.kind, session.course, session.assignment) == ("slurm", "ml-intro", None)
