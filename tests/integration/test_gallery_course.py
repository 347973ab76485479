"""The demo course (courses/frugal-ml) as shipped: its demos run headless and draw their plot,
its nbgrader assignments generate, hide their solutions and hidden tests, and their solutions
get full marks from nbgrader's own autograder."""

import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from traitlets.config import Config

from hub_config.catalogue import load_course

COURSE = Path(__file__).parents[2] / "courses" / "frugal-ml"
COURSE_MODEL = load_course(COURSE / "course.yaml")


def test_the_demo_course_declares_demos_and_assignments():
    assert len(COURSE_MODEL.demos) >= 3 and any(d.public for d in COURSE_MODEL.demos)
    assert [a.name for a in COURSE_MODEL.assignments] == sorted(p.name for p in (COURSE / "source").iterdir())
    for demo in COURSE_MODEL.demos:
        assert (COURSE / "demos" / demo.notebook).is_file(), demo.notebook
        assert demo.description is not None


@pytest.mark.parametrize("notebook", [d.notebook for d in COURSE_MODEL.demos])
def test_each_demo_runs_headless_and_draws_its_plot(notebook):
    nb = nbformat.read(COURSE / "demos" / notebook, as_version=4)
    NotebookClient(
        nb, timeout=120, store_widget_state=True, resources={"metadata": {"path": str(COURSE / "demos")}}
    ).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = {m["model_name"] for m in state.values()}
    assert {"ToggleButtonsModel", "OutputModel"} <= models  # the language toggle and the plot's Output
    assert models & {"IntSliderModel", "FloatSliderModel", "SelectionSliderModel"}
    # The plot is an image with a text alternative that says what it shows (docs/accessibility.md).
    plots = [
        "".join(o["data"]["text/html"])
        for m in state.values()
        if m["model_name"] == "OutputModel"
        for o in m["state"].get("outputs", [])
        if "data:image/png;base64," in "".join(o.get("data", {}).get("text/html", ""))
    ]
    assert len(plots) == 1, "the Output widget holds exactly one drawn plot"
    assert re.search(r'<img [^>]*alt="[^"]{60,}"', plots[0]), f"{notebook}: the plot has no text alternative"
    texts = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "*" in texts and len(texts) > 300  # explained, in French with the English in italics


@pytest.fixture
def nbgrader_course(tmp_path, monkeypatch):
    # nbgrader runs `alembic` for its gradebook: the environment's bin/ must be on PATH.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    shutil.copytree(COURSE / "source", tmp_path / "source")
    config = Config()
    config.CourseDirectory.root = str(tmp_path)
    config.CourseDirectory.course_id = COURSE_MODEL.slug
    config.ExecutePreprocessor.timeout = 120
    from nbgrader.apps import NbGraderAPI

    return tmp_path, NbGraderAPI(config=config)


@pytest.mark.parametrize("assignment", [a.name for a in COURSE_MODEL.assignments])
def test_assignments_generate_and_solutions_pass_their_tests(nbgrader_course, assignment):
    root, api = nbgrader_course
    result = api.generate_assignment(assignment)
    assert result["success"], result["log"]
    (released,) = (root / "release" / assignment).glob("*.ipynb")
    text = released.read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text and "YOUR CODE HERE" in text
    source = nbformat.read(root / "source" / assignment / released.name, as_version=4)
    kinds = [c.metadata.get("nbgrader", {}) for c in source.cells]
    assert any(k.get("grade") and k.get("solution") and k.get("points") for k in kinds), (
        "one hand-graded answer"
    )
    assert sum(1 for k in kinds if k.get("grade") and not k.get("solution")) >= 2, "autograded tests"

    # Full marks for the solutions; none for the released, unanswered notebook.
    for student, notebook in (
        ("solutions", root / "source" / assignment / released.name),
        ("blank", released),
    ):
        submitted = root / "submitted" / student / assignment
        submitted.mkdir(parents=True)
        shutil.copy(notebook, submitted / released.name)
        result = api.autograde(assignment, student)
        assert result["success"], result["log"]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root}/gradebook.db") as gb:
        for student, expected in (("solutions", "all"), ("blank", "none")):
            nb = gb.find_submission_notebook(released.stem, assignment, student)
            auto = [g for g in nb.grades if g.auto_score is not None]
            assert auto, "autograded cells were graded"
            if expected == "all":
                assert all(g.auto_score == g.max_score for g in auto), [(g.name, g.auto_score) for g in auto]
                assert nb.needs_manual_grade  # the written answer waits for an instructor
            else:
                assert all(g.auto_score == 0 for g in auto), [(g.name, g.auto_score) for g in auto]
