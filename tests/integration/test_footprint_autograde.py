"""A local `ailys grade` run leaves one energy record per graded submission (kind autograde, its
course and assignment named), the run total being their sum; real grading account and kernels.
The other two ways a submission is graded, the exchange's autograde on submit and the formgrader's
button, leave the same records: tests/integration/test_grading_practice.py and
test_grading_formgrader.py check them with ``autograde_records`` on their real hubs."""

from __future__ import annotations

from footprint.pages import assignment_runs
from footprint.records import Footprint, connect, read
from hub_config.appliers.storage import database_url
from tests.grading_hostile.build import ASSIGNMENT, submit
from tests.integration.test_autograde_local import ANSWERS, ailys, grader, site  # noqa: F401 - fixtures


def test_a_local_run_records_each_task_and_its_total(site):  # noqa: F811
    site_file, root = site
    for name, answer in ANSWERS.items():
        submit(root, f"grd-{name}", answer)
    done = ailys("grade", "grd-course", ASSIGNMENT, "--course-dir", str(root), "--site", str(site_file))
    assert done.returncode == 0, done.stderr
    assert "energy records not stored" not in done.stderr
    engine = connect(f"sqlite:///{site_file.parent / 'data' / 'jupyterhub.sqlite'}")
    try:
        records = read(engine, course="grd-course")
    finally:
        engine.dispose()
    assert len(records) == len(ANSWERS)
    assert {r.kind for r in records} == {"autograde"} and {r.assignment for r in records} == {ASSIGNMENT}
    assert all(r.who == "grd-local" and r.energy_wh > 0 and 0 < r.core_usage <= 1 for r in records), records
    # 768M, the course's grading memory, held for each task's duration
    assert all(
        abs(r.memory_gb_hours - 0.75 * (r.end - r.start).total_seconds() / 3600) < 1e-9 for r in records
    )
    run = assignment_runs(records)[ASSIGNMENT]
    assert run.records == 3 and abs(run.energy.value - sum(r.energy_wh for r in records)) < 1e-12


def autograde_records(hub, course: str) -> list[Footprint]:
    """The autograde records of ``course`` in a running hub's database."""
    engine = connect(database_url(hub.catalogue))
    try:
        return [r for r in read(engine, course=course) if r.kind == "autograde"]
    finally:
        engine.dispose()


def assert_one_record_per_graded_submission(records: list[Footprint], assignment: str, count: int) -> None:
    assert len(records) == count, records
    assert {r.assignment for r in records} == {assignment}
    assert all(r.method == "estimate" and r.energy_wh > 0 and 0 < r.core_usage <= 1 for r in records), records
