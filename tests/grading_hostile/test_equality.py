"""Equality cheats never earn a point: every case in one batch, graded by ``grade_local`` as learners'
submissions are, next to legit answers that keep theirs.

The notebook has two tests worth a point each: build.py's plain ``assert square(3) == 9`` (which a
value that equals everything passes inside the kernel) and the same through grading.checks.check.
A cheat is caught by check, by the grader's static check of the learner's code (cheats.py), or by
the kernel's audit hook (guard.py), and ends with 0 points, the submission flagged in the gradebook
for the instructor, and the reason in its notes. Real parts: nbgrader's course folder and
gradebook, a grading account of its own (grd-eq-grader), real kernels in real namespaces.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from traitlets.config import Config

from grading.autograde.course import Course, alembic_on_path
from grading.autograde.engine import Settings, grade_local
from tests.grading_hostile.build import (
    ASSIGNMENT,
    make_course,
    marker,
    source_notebook,
    submit,
)

GRADER = "grd-eq-grader"
REPO = Path(__file__).resolve().parents[2]
CHECKED = (
    "import numpy as np\nfrom grading.checks import check\n"
    "check(square(3), 9)\ncheck(square(-2), 4)\ncheck(square(np.arange(3)), np.array([0, 1, 4]))"
)
GOOD = "def square(x):\n    return x * x\n"
ALWAYS = "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n"

DATACLASS = "from dataclasses import dataclass\n@dataclass\nclass Box:\n    v: int\nassert Box(1) == Box(1)\n"
SKLEARN = (
    "import numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
    "model = LinearRegression().fit(np.arange(4).reshape(-1, 1), np.arange(4) ** 2)\n"
)
LEGIT = {"grd-eq-good": GOOD, "grd-eq-dataclass": DATACLASS + GOOD, "grd-eq-sklearn": SKLEARN + GOOD}
# learner -> (answer, a word of the reason it must get)
CHEATS = {
    "grd-eq-always": (ALWAYS + "def square(x):\n    return AlwaysEqual()\n", "__eq__"),
    "grd-eq-int": (
        "class I(int):\n    def __eq__(self, o):\n        return True\ndef square(x):\n    return I(0)\n",
        "__eq__",
    ),
    "grd-eq-type": (
        "k = '__e' + 'q__'\nA = type('A', (), {k: lambda s, o: True})\ndef square(x):\n    return A()\n",
        "class at run time",
    ),
    "grd-eq-setattr": (
        "class A:\n    pass\nsetattr(A, '__e' + 'q__', lambda s, o: True)\ndef square(x):\n    return A()\n",
        "setattr",
    ),
    "grd-eq-mock": ("from unittest.mock import ANY\ndef square(x):\n    return ANY\n", "unittest.mock"),
    "grd-eq-fake-checks": (
        (
            "import sys, types\nfake = types.ModuleType('grading.checks')\n"
            "fake.check = lambda *a, **k: None\nsys.modules['grading.checks'] = fake\n"
            "def square(x):\n    return 0\n"
        ),
        "sys.modules",
    ),
    "grd-eq-patch-checks": (
        "import grading.checks as g\ng._compare = lambda *a: None\ndef square(x):\n    return 0\n",
        "grading.checks",
    ),
    "grd-eq-hidden-exec": (
        "try:\n    exec(" + repr(ALWAYS) + ")\nexcept Exception:\n    pass\n" + GOOD,
        "exec",
    ),
    # nothing to see for the static check: only the audit hook catches it
    "grd-eq-memory": (
        "try:\n    open('/proc/se' + 'lf/mem', 'r+b')\nexcept OSError:\n    pass\n" + GOOD,
        "memory",
    ),
    "grd-eq-helper": (
        "from helpers import AlwaysEqual\ndef square(x):\n    return AlwaysEqual()\n",
        "helpers.py",
    ),
    "grd-eq-startup": ("def square(x):\n    return AlwaysEqual()\n", "IPython"),
}
SHIPPED = {  # files the cheat puts beside its notebook
    "grd-eq-helper": {"helpers.py": ALWAYS},
    "grd-eq-startup": {
        ".ipython/profile_default/startup/00-eq.py": "import builtins\n"
        + ALWAYS
        + "builtins.AlwaysEqual = AlwaysEqual\n"
    },
}


def _cell(root: Path, student: str, grade_id: str):
    nb = nbformat.read(root / "autograded" / student / ASSIGNMENT / "ps1.ipynb", as_version=4)
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_equality_cheats_score_nothing_and_are_flagged(grader, work_dir, tmp_path):
    extra = [("code", CHECKED, "test_check", {"grade": True, "locked": True, "points": 1})]
    root = make_course(tmp_path / "course", source_notebook(extra))
    for student, answer in LEGIT.items():
        submit(root, student, answer)
    for student, (answer, _) in CHEATS.items():
        folder = submit(root, student, answer).parent
        for name, text in SHIPPED.get(student, {}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    settings = Settings(
        timeout=10, total_timeout=60, user=grader, work_dir=work_dir, preload=("numpy", "sklearn")
    )
    summary = grade_local(Course(root, "grd-course"), ASSIGNMENT, settings, workers=2)

    outcomes = {o.student: o for o in summary.outcomes}
    assert sorted(outcomes) == sorted([*LEGIT, *CHEATS])
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "grd-course") as gb:
        flagged = {s: gb.find_submission_notebook("ps1", ASSIGNMENT, s).flagged for s in outcomes}
    for student in LEGIT:
        assert (outcomes[student].score, outcomes[student].reasons, flagged[student]) == (2.0, [], False), (
            student
        )
    for student, (_, word) in CHEATS.items():
        outcome, why = outcomes[student], " ".join(outcomes[student].reasons)
        assert (outcome.status, outcome.score, flagged[student]) == ("graded", 0, True), (
            f"{student}: {outcome}"
        )
        assert "withheld for the instructor to review" in why and word in why, f"{student}: {why}"
        assert marker(root, student)["reasons"] == outcome.reasons
        test = _cell(root, student, "test_square")
        assert test.outputs[0].ename == "AutogradeHeld"  # the first error decides nbgrader's grade
    # the kernel believed the plain assert, check did not (it never asked the value)
    plain, checked = _cell(root, "grd-eq-always", "test_square"), _cell(root, "grd-eq-always", "test_check")
    assert [o.ename for o in plain.outputs if o.output_type == "error"] == ["AutogradeHeld"]
    assert any("expected int 9, got AlwaysEqual" in o.get("evalue", "") for o in checked.outputs)
    # a fake or patched grading.checks, an exec caught and hidden: the audit hook failed the tests
    for student in ("grd-eq-fake-checks", "grd-eq-patch-checks", "grd-eq-hidden-exec", "grd-eq-memory"):
        texts = " ".join(o.get("evalue", "") for o in _cell(root, student, "test_check").outputs)
        assert "[ailys-guard] no points for this test" in texts, f"{student}: {texts}"


EVENTS = r"""
import gc, sys, numpy  # imported before the hook: only the statements below count
seen = []
sys.addaudithook(lambda event, args: seen.append(event))
class A:
    pass
def events(code):
    seen.clear()
    exec(code, {"gc": gc, "sys": sys, "A": A})
    return sorted(set(seen) - {"compile", "exec"})
print(events("class B:\n    def __eq__(s, o): return True"))
print(events("type('C', (), {'__eq__': lambda s, o: True})"))
print(events("setattr(A, '__eq__', lambda s, o: True)"))
print(events("import numpy; numpy.allclose = numpy.allclose"))
print(events("a = A()\nclass D: pass\na.__class__ = D"))
print(events("sys._getframe()"))
print(events("gc.get_referrers(A)"))
"""


def test_the_audit_events_the_guard_relies_on(tmp_path):
    """What CPython 3.11 raises events for, and what it does not (the static check's part)."""
    out = subprocess.run([sys.executable, "-c", EVENTS], capture_output=True, text=True, check=True).stdout
    class_statement, type_call, setattr_on_class, module_store, dunder_class, frame, gc_search = (
        out.splitlines()
    )
    assert class_statement == type_call == setattr_on_class == module_store == "[]"
    assert dunder_class == "['object.__setattr__']"
    assert frame == "['sys._getframe']" and gc_search == "['gc.get_referrers']"


def _solutions(source: Path, cheat: bool):
    """A learner's edit of the released notebook: the solution cells of the source, or functions
    of the same names that return a value equal to everything."""
    solutions = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in nbformat.read(source, as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }

    def edit(nb):
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in solutions and cell.cell_type == "code":
                names = [
                    line[4:].split("(")[0]
                    for line in solutions[grade_id].splitlines()
                    if line.startswith("def ")
                ]
                fakes = "".join(f"def {n}(*args, **kwargs):\n    return AlwaysEqual()\n" for n in names)
                cell.source = ALWAYS + fakes if cheat else solutions[grade_id]

    return edit


def test_the_demo_course_assignments_grade_their_solutions_and_not_a_cheat(grader, work_dir, tmp_path):
    """nbgrader generates each (its check-based tests, the hidden ones taken out); graded in the
    sandbox, the solutions earn every autograded point, a value equal to everything none."""
    config = Config()
    config.CourseDirectory.root = str(tmp_path)
    config.CourseDirectory.course_id = "frugal-ml"
    shutil.copytree(REPO / "courses" / "frugal-ml" / "source", tmp_path / "source")
    alembic_on_path()
    api = NbGraderAPI(config=config)
    settings = Settings(
        timeout=30, total_timeout=120, user=grader, work_dir=work_dir, preload=("numpy", "sklearn")
    )
    for folder in sorted((tmp_path / "source").iterdir()):
        name = folder.name
        result = api.generate_assignment(name)
        assert result["success"], result["log"] + result.get("error", "")
        released = (tmp_path / "release" / name / f"{name}.ipynb").read_text()
        assert "from grading.checks import check" in released and "BEGIN HIDDEN TESTS" not in released
        for student, cheat in (("grd-eq-demo-good", False), ("grd-eq-demo-cheat", True)):
            submit(tmp_path, student, name=name, edit=_solutions(folder / f"{name}.ipynb", cheat))
        summary = grade_local(Course(tmp_path, "frugal-ml"), name, settings, workers=2)
        outcomes = {o.student: o for o in summary.outcomes}
        with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "frugal-ml") as gb:
            tests = sum(
                c.max_score for c in gb.find_notebook(name, name).grade_cells if c.cell_type == "code"
            )
        assert (outcomes["grd-eq-demo-good"].score, outcomes["grd-eq-demo-good"].reasons) == (tests, []), name
        cheat = outcomes["grd-eq-demo-cheat"]
        assert cheat.score == 0 and "__eq__" in " ".join(cheat.reasons), f"{name}: {cheat}"
