"""A learner on the Slurm site, in a real browser: log in, pick one of their course environments
on the launch form, wait in JupyterLab's progress page, then run a cell in a new notebook that
prints the Slurm job it runs in.

A real Slurm cluster on this machine, the hub configured by the site kind `slurm` (hub_config),
Debian's Chromium (fixture in conftest.py). Screenshots go to test-output/<test name>/.
"""

from __future__ import annotations

import pwd
import re

import pytest

from tests.e2e.a11y import assert_accessible
from tests.e2e.chromium import lab_page, log_in
from tests.services import remove_unix_user, unix_user
from tests.services.hub import RunningHub, course
from tests.services.slurm import cluster_for_tests

pytestmark = [pytest.mark.browser, pytest.mark.slurm, pytest.mark.hub]

LEARNER = "selma"  # a real Unix account: a name no other test uses
COURSES = [
    course(
        "tabular",
        ["prof-selma"],
        [LEARNER],
        title={"fr": "Données tabulaires", "en": "Tabular data"},
        resources={"partition": "cpu", "cpus": 1, "memory": "512M", "walltime": "30m"},
    ),
    course(
        "vision",
        ["prof-selma"],
        [LEARNER],
        title={"fr": "Vision", "en": "Vision"},
        resources={"partition": "gpu", "cpus": 2, "memory": "1G", "gpus": 1, "walltime": "30m"},
    ),
    course("other", ["prof-selma"], ["someone-else"], title={"fr": "Autre cours", "en": "Other course"}),
]


def energy_per_hour(cpus: float, memory_gb: float) -> str:
    """The form's figure for these resources on the cpu partition, as the model computes it."""
    from footprint.model import factors_for, hourly_energy_wh
    from hub_config.schema.energy import Energy

    return f"{hourly_energy_wh(cpus, memory_gb, 0, factors_for(Energy(), 'cpu')).value:.3g}"


SPAWN_TIMEOUT = 120  # seconds; a Slurm spawn is a few seconds here, the margin is for a loaded CI machine
UI_TIMEOUT = 30
KERNEL_TIMEOUT = 60


@pytest.fixture(scope="module")
def cluster(request):
    yield from cluster_for_tests(
        request, extra_config="SchedulerParameters=batch_sched_delay=0,sched_min_interval=0"
    )


@pytest.fixture(scope="module")
def hub(cluster):
    try:
        remove_unix_user(pwd.getpwnam(LEARNER))  # left by a run that died
    except KeyError:
        pass
    account = unix_user(LEARNER, cluster.root / "home")
    cluster.add_user(LEARNER)
    site = {
        "spawner": {
            "kind": "slurm",
            "slurm": {"slurm_conf": str(cluster.slurm_conf), "node_addresses": cluster.node_addresses},
        }
    }
    running = RunningHub(COURSES, site=site)
    try:
        yield running.start()
    finally:
        running.stop()
        remove_unix_user(account)


def test_learner_picks_a_course_environment_and_runs_in_a_slurm_job(browser, hub, cluster, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT) as page:
        log_in(page, hub, LEARNER)

        # The launch form: the learner's two courses, not the third; the first is preselected.
        courses = page.locator("#slurm-courses")
        expect(courses).to_contain_text("Données tabulaires (Tabular data)")
        expect(courses).to_contain_text("up to 2 CPU cores, 1G, 1 GPU")
        expect(courses).not_to_contain_text("Autre cours")
        expect(page.locator("#course-tabular")).to_be_checked()
        page.screenshot(path=output_dir / "launch-form.png")
        assert_accessible(page, "launch-form-slurm-en")

        # The energy per hour follows the resources the learner types, by the records' model.
        tabular = page.locator("#energy-tabular")
        for cpus, memory, shown in (("4", "", (4, 0.5)), ("4", "2G", (4, 2)), ("", "", (1, 0.5))):
            page.locator("#slurm-cpus").fill(cpus)
            page.locator("#slurm-memory").fill(memory)
            expect(tabular).to_contain_text(f"At most {energy_per_hour(*shown)} Wh per hour at full use")

        page.locator("label[for=course-vision]").click()
        page.locator("#slurm-walltime").fill("10m")  # a short session: JupyterLab warns at once
        page.locator(
            "#spawn_form button[type=submit]"
        ).click()  # the launch form's own button, in either language

        # Progress page, then JupyterLab once the job runs and its server answers.
        page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        jobs = cluster.run("squeue", "--noheader", f"--user={LEARNER}", "--format=%i %j %P").stdout.split()
        assert len(jobs) == 3, jobs  # one job: id, name, partition
        job_id, job_name, partition = jobs
        assert (job_name, partition) == ("ailys-vision", "gpu")

        # The status bar's walltime warning, from the footprint service's figure of this real job
        # (its end: start + the 10 minutes asked for), with the reminder to save.
        warning = page.locator(".jp-Notification-Toast-warning, .Toastify__toast").filter(
            has_text=re.compile("save your work|enregistrez votre travail")
        )
        ends = re.compile(r"(Your session ends in|Votre session se termine dans) (9|10) minutes")
        expect(warning).to_contain_text(ends, timeout=60_000)
        page.screenshot(path=output_dir / "walltime-warning.png")

        # A new notebook from the launcher; a cell prints the job it runs in.
        page.locator(".jp-LauncherCard[data-category=Notebook]").first.click()
        notebook = page.locator(".jp-NotebookPanel")
        expect(page.locator("#jp-main-statusbar")).to_contain_text(
            "Python 3 (ipykernel) | Idle", timeout=KERNEL_TIMEOUT * 1000
        )
        cell = notebook.locator(".jp-CodeCell").first
        cell.locator(".cm-content").click()
        page.keyboard.type('import os; print(os.environ["SLURM_JOB_ID"], os.environ["SLURM_JOB_PARTITION"])')
        page.keyboard.press("Shift+Enter")
        expect(cell.locator(".jp-OutputArea-output")).to_have_text(
            f"{job_id} gpu", timeout=KERNEL_TIMEOUT * 1000
        )
        page.screenshot(path=output_dir / "lab.png")
