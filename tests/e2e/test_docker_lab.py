"""A learner on the docker site, in a real browser: log in, pick one of their courses on the launch
form, and run a cell in JupyterLab in a container of that course's environment image, within
the course's limits.

The python-ml image (tests.services.images.course_image), podman's service (tests.services.podman),
the hub configured by the site kind `docker`, Debian's Chromium (fixture in conftest.py).
Screenshots go to test-output/<test name>/.
"""

from __future__ import annotations

import pytest

from tests.e2e.chromium import lab_page, log_in
from tests.services.hub import RunningHub, course
from tests.services.podman import podman_service_for_tests

pytestmark = [pytest.mark.browser, pytest.mark.podman, pytest.mark.hub]

LEARNER = "dck-lea"
COURSES = [
    course(
        "dck-tabular",
        ["dck-prof-lea"],
        [LEARNER],
        title={"fr": "Données tabulaires", "en": "Tabular data"},
        resources={"cpus": 1, "memory": "512M"},
    ),
    course(
        "dck-vision",
        ["dck-prof-lea"],
        [LEARNER],
        title={"fr": "Vision", "en": "Vision"},
        resources={"cpus": 2, "memory": "1G"},
    ),
    course("dck-other", ["dck-prof-lea"], ["dck-someone"], title={"fr": "Autre cours", "en": "Other course"}),
]
SPAWN_TIMEOUT = 120  # seconds; a container spawn is a few seconds here, the margin is for a loaded CI machine
UI_TIMEOUT = 30
KERNEL_TIMEOUT = 60


@pytest.fixture(scope="module")
def image():
    from tests.services.images import course_image

    return course_image("python-ml")


@pytest.fixture(scope="module")
def podman(image):
    yield from podman_service_for_tests()


@pytest.fixture(scope="module")
def hub(podman):
    podman.remove_containers([LEARNER])
    site = {"spawner": {"kind": "docker", "docker": {"socket": str(podman.socket)}}}
    running = RunningHub(COURSES, site=site)
    try:
        yield running.start()
    finally:
        running.stop()
        podman.remove_containers([LEARNER])


def test_learner_picks_a_course_and_runs_a_cell_in_its_container(browser, hub, podman, image, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT) as page:
        log_in(page, hub, LEARNER)

        # The launch form: the learner's two courses with their limits and environment, not the third.
        courses = page.locator("#slurm-courses")
        expect(courses).to_contain_text("Données tabulaires (Tabular data)")
        expect(courses).to_contain_text("up to 2 CPU cores, 1G (environment python-ml)")
        expect(courses).not_to_contain_text("Autre cours")
        expect(page.locator("#course-dck-tabular")).to_be_checked()
        expect(page.locator("#slurm-gpus")).to_have_count(0)  # a container has no GPU field
        page.screenshot(path=output_dir / "launch-form.png")

        page.locator("label[for=course-dck-vision]").click()
        page.locator("#spawn_form button[type=submit]").click()
        page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        [container] = podman.containers(LEARNER)
        assert container["Image"] == image.tag
        assert container["Labels"]["ailys-hub.course"] == "dck-vision"

        # A new notebook from the launcher; a cell prints the image's prefix and the CPU quota.
        page.locator(".jp-LauncherCard[data-category=Notebook]").first.click()
        notebook = page.locator(".jp-NotebookPanel")
        expect(page.locator("#jp-main-statusbar")).to_contain_text(
            "Python 3 (ipykernel) | Idle", timeout=KERNEL_TIMEOUT * 1000
        )
        cell = notebook.locator(".jp-CodeCell").first
        cell.locator(".cm-content").click()
        page.keyboard.type(
            "import sys, os; q = int(open('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').read()) "
            "if os.path.exists('/sys/fs/cgroup/cpu/cpu.cfs_quota_us') "
            "else int(open('/sys/fs/cgroup/cpu.max').read().split()[0]); print(sys.prefix, q // 100000)"
        )
        page.keyboard.press("Shift+Enter")
        expect(cell.locator(".jp-OutputArea-output")).to_have_text(
            "/opt/ailys-env 2", timeout=KERNEL_TIMEOUT * 1000
        )
        page.screenshot(path=output_dir / "lab.png")
