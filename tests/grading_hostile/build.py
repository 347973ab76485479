"""Build a real nbgrader course folder with nbgrader's own API, then submissions as learners send them.

The assignment ``ps1`` has one notebook: an answer cell (with a solution that holds SECRET, which
no sandbox may read) and a test cell worth one point. ``submit`` puts a learner's answer in the
released notebook and leaves it where nbgrader's collect would: submitted/<student>/ps1/.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import nbformat
import psutil
from nbgrader.apps import NbGraderAPI
from traitlets.config import Config

from grading.autograde.course import alembic_on_path
from tests.conftest import need

SECRET = "SOLUTION-SECRET-7f3a"
ASSIGNMENT = "ps1"


def _cell(kind: str, source: str, grade_id: str, **flags) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    cell.metadata["nbgrader"] = {
        "grade_id": grade_id,
        "schema_version": 3,
        "grade": False,
        "solution": False,
        "locked": False,
        **flags,
    }
    return cell


def source_notebook(extra_cells: list[tuple[str, str, str, dict]] = ()) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        _cell("markdown", "Write `square(x)`.", "intro", locked=True),
        _cell(
            "code",
            f"### BEGIN SOLUTION\ndef square(x):\n    '{SECRET}'\n    return x * x\n### END SOLUTION",
            "answer",
            solution=True,
        ),
        _cell(
            "code",
            "assert square(3) == 9\nassert square(-2) == 4",
            "test_square",
            grade=True,
            locked=True,
            points=1,
        ),
    ]
    for kind, source, grade_id, flags in extra_cells:
        nb.cells.append(_cell(kind, source, grade_id, **flags))
    return nb


def make_course(root: Path, notebook: nbformat.NotebookNode | None = None, name: str = ASSIGNMENT) -> Path:
    """source/<name>/<name>.ipynb, then nbgrader generate_assignment (release/ and the gradebook)."""
    (root / "source" / name).mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook or source_notebook(), root / "source" / name / f"{name}.ipynb")
    alembic_on_path()
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = "grd-course"
    api = NbGraderAPI(config=config)
    result = api.generate_assignment(name)
    if not result["success"]:
        raise RuntimeError(result["log"] + result.get("error", ""))
    return root


def submit(
    root: Path,
    student: str,
    answer: str | None = None,
    *,
    raw: str | None = None,
    edit=None,
    name: str = ASSIGNMENT,
    when: dt.datetime | None = None,
) -> Path:
    """The released notebook with ``answer`` in its answer cell (or ``raw`` text as the file),
    ``edit(nb)`` applied, in submitted/<student>/<name>/ with its timestamp.txt."""
    folder = root / "submitted" / student / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    if raw is not None:
        path.write_text(raw)
    else:
        nb = nbformat.read(root / "release" / name / f"{name}.ipynb", as_version=4)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("solution") and answer is not None:
                cell.source = answer
                break
        if edit:
            edit(nb)
        nbformat.write(nb, path)
    stamp = (when or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%S.%f %Z")
    (folder / "timestamp.txt").write_text(stamp)
    return path


def marker(root: Path, student: str, name: str = ASSIGNMENT) -> dict:
    return json.loads((root / "autograded" / student / name / ".ailys-autograde.json").read_text())


@contextlib.contextmanager
def grading_account(name: str):
    """A system account that runs graded kernels; removed at the end with anything it still runs."""
    need(os.geteuid() == 0, "kernels run as a grading account, which only root can create")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], capture_output=True
    )
    try:
        yield name
    finally:
        for process in psutil.process_iter(["username"]):
            if process.info["username"] == name:
                with contextlib.suppress(psutil.Error):
                    process.kill()
        subprocess.run(["userdel", name], capture_output=True)
