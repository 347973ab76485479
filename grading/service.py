"""A course's grading service: nbgrader's formgrader behind the hub, for that course's instructors.

    python -m grading.service <site file> <course slug>

The hub starts one per course with assignments (hub_config/appliers/grading.py) as the service
`grading-<slug>`. This module makes the course folder (courses.py), then becomes
`jupyterhub-singleuser` serving it: the hub's OAuth lets in only holders of
access:services!service=grading-<slug> (the course's staff group), the formgrader is its
default page, and its exchange classes are ours, so release, collect and feedback go through
the exchange service with this service's own token.

What it does not offer, because it runs as the hub's account: no JupyterLab, no terminal, no
kernel (nothing an instructor types runs here), and its files are read-only through the web (nbgrader_config.json
is written at each start; the assignments' sources come from the course repository). Autograde, from the
formgrader's button too, runs each submission sandboxed as the grading account (`ailys grade`'s
engine), never in this process; this service's own token ($JUPYTERHUB_API_TOKEN, for the exchange)
stays here: the engine's workers, templates and kernels start from the grading path's allow-list
environment (autograde/sandbox.py, ``grading_env``), with this process's home hidden.

Why formgrader opens in its own browser tab and not in a JupyterLab frame: JupyterHub (4.1 and
later) sends every single-user server `Content-Security-Policy: frame-ancestors 'none'`, since
on one origin a page framed by another user's server could act as the instructor (JupyterHub's
"mitigating same-origin deployments"; nbgrader #1870, #1947 reverted #1915 for that reason). A
frame of formgrader inside JupyterLab is therefore blank; we keep that policy and open the page
whole, at <base_url>services/grading-<slug>/formgrader, from the hub's Services menu or the
link the instructor's JupyterLab shows.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from jupyter_server.services.contents.filemanager import FileContentsManager
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web

# Server extensions of this environment that the grading service must not run (a Lab, terminals,
# Voilà...), and ours, which loads formgrader itself. On the command line: jupyter_server lets
# an environment's config.d enable an extension whatever a user-level file says.
EXTENSIONS = {
    "grading.service": True,
    "jupyterlab": False,
    "notebook": False,
    "jupyter_lsp": False,
    "jupyter_server_terminals": False,
    "voila.server_extension": False,
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.assignment_list": False,
    "nbgrader.server_extensions.course_list": False,
    "nbgrader.server_extensions.validate_assignment": False,
}


class ReadOnlyContents(FileContentsManager):
    """The course folder, readable by its instructors, writable by nbgrader only (not the web)."""

    def _refuse(self, *args, **kwargs):
        raise web.HTTPError(403, "the grading service's files are read-only: edit the course repository")

    save = delete_file = rename_file = _refuse

    def new(self, model=None, path=""):
        self._refuse()

    def new_untitled(self, path="", type="", ext=""):
        self._refuse()

    def copy(self, from_path, to_path=None):
        self._refuse()


class NoKernels(AsyncMappingKernelManager):
    """No kernel starts here: it would run an instructor's code as the hub's account."""

    async def start_kernel(self, *args, **kwargs):
        raise web.HTTPError(403, "the grading service runs no kernel: use your own JupyterLab")


def sandboxed_autograde(assignment: str, student: str) -> dict:
    """One submission through `ailys grade`'s engine, answered as formgrader's API answers."""
    from hub_config.catalogue import load_catalogue

    from .autograde.course import Course
    from .autograde.engine import grade_local
    from .autograde.on_submit import settings_from_catalogue
    from .courses import course_dir

    try:
        catalogue = load_catalogue(os.environ["AILYS_SITE_FILE"])
        slug = os.environ["AILYS_COURSE"]
        course = Course(course_dir(catalogue, slug), slug)
        settings = settings_from_catalogue(catalogue, slug)
        summary = grade_local(course, assignment, settings, workers=1, students=[student])
    except Exception as err:  # noqa: BLE001 - formgrader shows 'error' to the instructor
        return {"success": False, "error": f"{type(err).__name__}: {err}", "log": traceback.format_exc()}
    from footprint.autograde import record_local_run  # its energy record, as `ailys grade`'s

    not_recorded = record_local_run(catalogue, summary, slug, assignment, settings)
    [outcome] = summary.outcomes or [None]
    if outcome is None:
        return {"success": False, "error": f"no collected submission of {assignment} by {student}", "log": ""}
    log = f"{student} {assignment}: {outcome.status}, {outcome.score:g}/{outcome.max_score:g}"
    log += "".join(f"\n  - {r}" for r in outcome.reasons)
    log += f"\n(energy record not stored: {not_recorded})" if not_recorded else ""
    return {"success": True, "log": log}


def use_sandboxed_autograde() -> type:
    """Point formgrader's autograde route at the sandboxed engine, in formgrader's own handler
    list (``apihandlers.default_handlers``, read when formgrader loads). Called when this
    service's server loads its extension, never on import; calling it again changes nothing.
    Returns the handler class now in the list."""
    from nbgrader.server_extensions.formgrader import apihandlers
    from nbgrader.server_extensions.formgrader.base import check_notebook_dir, check_xsrf

    handlers = apihandlers.default_handlers
    ours = next((h for _, h, *_ in handlers if getattr(h, "ailys_sandboxed", False)), None)
    if ours is not None:
        return ours

    class SandboxedAutogradeHandler(apihandlers.BaseApiHandler):
        ailys_sandboxed = True

        @web.authenticated
        @check_xsrf
        @check_notebook_dir
        def post(self, assignment_id, student_id):
            self.write(json.dumps(sandboxed_autograde(assignment_id, student_id)))

    handlers[:] = [
        (pattern, SandboxedAutogradeHandler if handler is apihandlers.AutogradeHandler else handler, *rest)
        for pattern, handler, *rest in handlers
    ]
    return SandboxedAutogradeHandler


def _load_jupyter_server_extension(serverapp) -> None:
    """formgrader, with its autograde answered by the sandboxed engine, and the course's
    accommodations page (accommodations_page.py)."""
    from jupyter_server.utils import url_path_join
    from nbgrader.server_extensions.formgrader import formgrader

    from .accommodations_page import AccommodationsPage

    use_sandboxed_autograde()
    formgrader.load_jupyter_server_extension(serverapp)
    page = url_path_join(serverapp.web_app.settings["base_url"], "accommodations")
    serverapp.web_app.add_handlers(".*$", [(page, AccommodationsPage)])


def _jupyter_server_extension_points():
    return [{"module": "grading.service"}]


def singleuser_argv(root: Path) -> list[str]:
    bindir = Path(sys.executable).parent
    return [
        str(bindir / "jupyterhub-singleuser"),
        f"--ServerApp.root_dir={root}",
        "--ServerApp.default_url=/formgrader",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.contents_manager_class=grading.service.ReadOnlyContents",
        "--ServerApp.kernel_manager_class=grading.service.NoKernels",
        "--KernelSpecManager.allowed_kernelspecs=ailys-no-kernel",  # none listed in the launcher either
        "--ServerApp.open_browser=False",
        *(f"--ServerApp.jpserver_extensions={name}={enabled}" for name, enabled in EXTENSIONS.items()),
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]


def main(argv: list[str] | None = None) -> None:
    from hub_config.catalogue import UnknownCourse, load_catalogue

    from .courses import prepare_course

    site_file, slug = (argv if argv is not None else sys.argv[1:])[:2]
    catalogue = load_catalogue(site_file)
    try:
        course = catalogue.course(slug)
    except UnknownCourse as err:
        sys.exit(f"grading service: {err}")
    root = prepare_course(catalogue, course)
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "AILYS_SITE_FILE": str(Path(site_file).resolve()),
        "AILYS_COURSE": slug,
        "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),  # nbgrader runs alembic
    }
    env.pop("JUPYTER_CONFIG_PATH", None)  # never the learners' settings
    env.pop("JUPYTER_CONFIG_DIR", None)
    # formgrader and nbgrader read nbgrader_config.json from here. Their warning "No nbgrader_config.py
    # file found" is about the name only: traitlets loads the .json beside where the .py would be.
    os.chdir(root)
    argv = singleuser_argv(root)
    print(f"grading service {slug}: {root}", flush=True)
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    main()
