"""Equality cheats found without running anything: the weak asserts `ailys validate` warns about
(hub_config/sources.py), and the grader's static check of learners' code (grading/autograde/cheats.py).
The run-time half (the kernel's audit hook) and the whole path: tests/grading_hostile/test_equality.py."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grading.autograde.cheats import findings
from hub_config.cli import main
from hub_config.sources import course_warnings, weak_tests
from tests.grading_hostile import dying_cases, leak_cases

REPO = Path(__file__).resolve().parents[2]


def weak(test: str, learner=("square", "distances")) -> list[int]:
    return [line for line, _ in weak_tests(ast.parse(test), set(learner))]


def test_weak_asserts_are_those_a_learners_value_answers():
    assert weak("assert square(3) == 9") == [1]
    assert weak("assert 9 == square(3)") == [1]  # Python asks the right side too, reflected
    assert weak("assert square(3) != 8") == [1]
    assert weak("r = square(3)\nassert abs(r - 9) < 1e-6") == [2]  # through r, and __sub__
    assert weak("assert isinstance(square(3), int)") == [1]
    assert weak("assert np.allclose(distances(X, x), [0, 5])") == [1]
    assert weak("assert square(3)") == [1]  # its __bool__
    assert weak("for v in [square(1)]:\n    assert v == 1") == [2]
    assert weak("def t():\n    assert square(2) == 4\nt()") == [2]


def test_strict_checks_and_plain_values_are_not_weak():
    assert weak("check(square(3), 9)") == []
    assert weak("ours = [check_type(square(p), int) for p in range(3)]\nassert sum(ours) == 5") == []
    assert weak("X = np.ones(3)\nassert X.shape == (3,)") == []
    assert weak("r = square(3)\nr = 9\nassert r == 9") == []  # rebound to a plain value
    assert weak("assert len([1]) == 1", learner=()) == []


def _notebook(path: Path, test: str) -> Path:
    nb = nbformat.v4.new_notebook()

    def cell(source, grade_id, **flags):
        c = nbformat.v4.new_code_cell(source)
        c.metadata["nbgrader"] = {
            "grade_id": grade_id,
            "grade": False,
            "solution": False,
            "locked": False,
            **flags,
        }
        return c

    nb.cells = [
        cell("def square(x):\n    return x * x", "answer", solution=True),
        cell(test, "test_square", grade=True, locked=True, points=1),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_validate_warns_with_file_cell_and_line_and_still_succeeds(write_catalogue, tmp_path):
    site = write_catalogue()
    notebook = _notebook(
        tmp_path / "courses" / "algo" / "source" / "ps1" / "ps1.ipynb",
        "# visible\nassert square(3) == 9\ncheck(square(2), 4)",
    )
    [warning] = course_warnings(tmp_path / "courses" / "algo")
    assert (warning.file, warning.grade_id, warning.line) == (notebook, "test_square", 2)
    assert "`square(3) == 9`" in warning.reason and "grading.checks" in warning.reason
    result = CliRunner().invoke(main, ["validate", "--site", str(site)])
    assert result.exit_code == 0, result.output
    assert f"warning: {notebook}: test cell test_square, line 2:" in result.stderr
    assert result.stdout.startswith("ok: site unit")


def test_the_demo_course_has_no_weak_asserts():
    assert course_warnings(REPO / "courses" / "frugal-ml") == []


# --- the grader's static check of the learner's code -----------------------------------------------

TEST = "assert square(3) == 9\ncheck(square(-2), 4)\nassert np.allclose(square(1.0), 1.0)"


def notebook(answer: str, test: str = TEST) -> nbformat.NotebookNode:
    """A sanitized notebook as Course.record sees it: read-only cells restored, the learner's answer."""
    nb = nbformat.v4.new_notebook()

    def cell(source, grade_id, **flags):
        c = nbformat.v4.new_code_cell(source)
        c.metadata["nbgrader"] = {"grade_id": grade_id, **flags}
        return c

    nb.cells = [
        cell("import numpy as np\nfrom grading.checks import check", "imports", locked=True),
        cell(answer, "answer", solution=True),
        cell(test, "test_square", grade=True, locked=True, points=1),
    ]
    return nb


A = "\ndef square(x): return A()"  # an answer that returns the cheat
NINE = "\ndef square(x): return 9"
CHEATS = {
    "always-equal": "class A:\n    def __eq__(self, o): return True" + A,
    "eq-as-lambda": "class A:\n    __eq__ = lambda s, o: True" + A,
    "int-subclass": "class A(int):\n    def __eq__(s, o): return True" + A,
    "ndarray-subclass": "class M(np.ndarray):\n    def __array_ufunc__(self, *a, **k): return True\n"
    "def square(x): return np.zeros(1).view(M)",
    "array-function": "class A:\n    def __array_function__(self, *a, **k): return True" + A,
    "bool": "class A:\n    def __bool__(self): return True" + A,
    "len": "class A:\n    def __len__(self): return 1" + A,
    "sub-and-abs": "class A:\n    def __sub__(s, o): return 0\n    def __abs__(s): return 0" + A,
    "class-property": "class A:\n    @property\n    def __class__(self): return int" + A,
    "metaclass": "class M(type):\n    def __instancecheck__(c, o): return True\nclass A(metaclass=M): pass"
    + A,
    "type-with-dict": "A = type('A', (), {'__eq__': lambda s, o: True})" + A,
    "type-obfuscated": "k = '__e' + 'q__'\nA = type('A', (), {k: lambda s, o: True})" + A,
    "setattr-at-run-time": "class A: pass\nsetattr(A, '__e' + 'q__', lambda s, o: True)" + A,
    "make-dataclass": "from dataclasses import make_dataclass\nA = make_dataclass('A', [], namespace={})" + A,
    "mock-any": "from unittest.mock import ANY\ndef square(x): return ANY",
    "pytest-approx": "import pytest\ndef square(x): return pytest.approx(0, abs=1e9)",
    "builtins": "import builtins\nbuiltins.abs = lambda x: 0" + NINE,
    "__builtins__": "__builtins__.abs = lambda x: 0" + NINE,
    "rebind-np": "import types\nnp = types.SimpleNamespace(allclose=lambda *a, **k: True)" + NINE,
    "rebind-check": "def check(*a, **k): pass" + NINE,
    "rebind-in-a-function": "def square(x):\n    global check\n    check = print\n    return 9",
    "rebind-a-builtin": "isinstance = lambda *a: True" + NINE,
    "patch-numpy": "np.allclose = lambda *a, **k: True" + NINE,
    "patch-through-an-alias": "import numpy\nm = numpy\nm.allclose = lambda *a, **k: True" + NINE,
    "patch-through-a-parameter": "def patch(m): m.allclose = lambda *a, **k: True\npatch(np)" + NINE,
    "patch-a-library-class": "from sklearn.neighbors import KNeighborsClassifier\n"
    "KNeighborsClassifier.predict = lambda s, X: 0" + NINE,
    "patch-check-tolerances": "check.__kwdefaults__['rtol'] = 1e9" + NINE,
    "patch-grading-checks": "import grading.checks as g\ng._compare = lambda *a: None" + NINE,
    "module-dict": "np.__dict__['allclose'] = lambda *a: True" + NINE,
    "vars": "vars(np)['allclose'] = lambda *a: True" + NINE,
    "sys-modules": "import sys, types\nsys.modules['grading.checks'] = types.ModuleType('g')" + NINE,
    "exec": "exec('def square(x): return 9')",
    "eval-in-the-answer": "def square(x):\n    return eval('9')",
    "getattr-computed": "f = getattr(__import__('builtins'), 'ex' + 'ec')\nf('def square(x): return 9')",
    "frames": "import sys\nsys._getframe().f_globals['check'] = print" + NINE,
    "traceback-frames": "import traceback\nfor f, _ in traceback.walk_stack(None): pass" + NINE,
    "gc": "import gc\ngc.get_objects()" + NINE,
    "ipython-shell": "get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)" + NINE,
    "magic": "%run helper.py" + NINE,
    "shell-escape": "!cp /x ." + NINE,
    "timeit-of-exec": "%timeit exec('1')" + NINE,
    "as-strided": "from numpy.lib.stride_tricks import as_strided" + NINE,
    "ctypes-memmove": "import ctypes\nctypes.memmove(id(9), id(10), 24)" + NINE,
    "pickle": "import pickle\ndef square(x): return pickle.loads(b'')",
    "np-load-pickle": "v = np.load('v.npy', allow_pickle=True)\ndef square(x): return v",
    "module-written-at-run-time": "open('m.py', 'w').write(s)\nimport m\ndef square(x): return m.f(x)",
    "expected-data-changed": "expected[0] = 0" + NINE,
    "writefile-then-import": "%%writefile m.py\nclass A: pass",
}


@pytest.mark.parametrize("answer", CHEATS.values(), ids=CHEATS.keys())
def test_each_cheat_is_found(answer):
    test = TEST + "\nassert isinstance(square(2), int)\nassert expected[0] == 1"
    nb = notebook(answer, test)
    nb.cells.insert(
        1,
        nbformat.v4.new_code_cell(
            "expected = [1]", metadata={"nbgrader": {"grade_id": "data", "locked": True}}
        ),
    )
    found = findings(nb)
    assert found, "not found"
    assert all(f.where.startswith("cell answer") for f in found), found


SQUARE = "\ndef square(x): return x * x"
LEGIT = {
    "plain": "def square(x):\n    return x * x",
    "the-same-import-again": "import numpy as np\ndef square(x):\n    return int(np.square(x))",
    "dataclass": "from dataclasses import dataclass, field\n@dataclass(order=True, frozen=True)\nclass P:\n"
    "    x: int\n    ys: list = field(default_factory=list)\n    def __post_init__(self):\n        pass"
    + SQUARE,
    "a-class-of-its-own": "class KNN:\n    '''Defines no __eq__.'''\n    def __init__(self, k=3):\n"
    "        self.k = k\n"
    "    def fit(self, X, y):\n        self.X_, self.y_ = X, y\n        return self\n"
    "    def __repr__(self): return f'KNN({self.k})'\n    def __getitem__(self, i): return self.X_[i]"
    + SQUARE,
    "scikit-learn": "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler\n"
    "from sklearn.linear_model import LogisticRegression\nX = np.arange(10).reshape(-1, 1)\n"
    "model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, X[:, 0] > 4)" + SQUARE,
    "matplotlib": "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
    "plt.rcParams['figure.figsize'] = (4, 3)\n"
    "fig, ax = plt.subplots()\nax.plot([1, 2])" + SQUARE,
    "timeit": "%timeit sum(range(10))" + SQUARE,
    "locals-named-like-globals": "vals = [np for np in range(3)]\ndef square(x):\n    check = 3\n"
    "    return x * x",
    "super": "class B(dict):\n    def __init__(self, *a):\n        super().__init__(*a)" + SQUARE,
    "main-guard": "if __name__ == '__main__':\n    print('hi')" + SQUARE,
    "getattr-and-type-plainly": "class A:\n    k = 2\ndef square(x):\n    assert type(x) in (int, float)\n"
    "    return x ** getattr(A, 'k')",
    "traceback": "import traceback\ntry:\n    1 / 0\nexcept Exception:\n    traceback.print_exc()" + SQUARE,
    "stdlib": "import os, json, math, collections, itertools, functools, re, random, statistics, sys\n"
    "from pathlib import Path\nsys.stdout.write('x')" + SQUARE,
    "checking-itself": "def square(x): return x * x\ncheck(square(2), 4)",
    "autoreload": "%load_ext autoreload\n%autoreload 2" + SQUARE,
    "class-name-in-repr": "class A:\n    def __repr__(self): return f'{self.__class__.__name__}()'" + SQUARE,
}


@pytest.mark.parametrize("answer", LEGIT.values(), ids=LEGIT.keys())
def test_legit_code_is_not_flagged(answer):
    assert findings(notebook(answer)) == []


# the sandbox's own hostile suites: probes that must score their point when they find nothing
PROBES = {**leak_cases.LEAKS, "read-files": leak_cases.read_files(["/x"], ["/y"]), **dying_cases.SURVIVING}


@pytest.mark.parametrize("answer", PROBES.values(), ids=PROBES.keys())
def test_the_sandbox_probes_are_not_cheats(answer):
    assert findings(notebook(answer, "assert square(3) == 9\nassert square(-2) == 4")) == []


def test_the_submissions_code_files_are_checked(tmp_path):
    source, folder = tmp_path / "source", tmp_path / "submission"
    for where in (source, folder):
        (where / "data").mkdir(parents=True)
        (where / "data" / "given.py").write_text("class Given:\n    def __eq__(s, o): return True\n")
    (folder / "helpers.py").write_text("class A:\n    def __eq__(s, o): return True\n")
    (folder / "json.py").write_text("x = 1\n")
    (folder / "cache.cpython-311.pyc").write_bytes(b"\0" * 16)
    startup = folder / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00.py").write_text("import builtins\n")
    (folder / "notes.txt").write_text("__eq__")
    found = {
        (f.where, f.what.split(",")[0]) for f in findings(notebook("from helpers import A"), folder, source)
    }
    assert found == {
        ("helpers.py, line 2", "a class defines __eq__: its values answer tests themselves"),
        ("json.py", "shadows the installed module json"),
        ("cache.cpython-311.pyc", "compiled code in the submission"),
        (".ipython/profile_default/startup/00.py", "IPython or Jupyter settings in the submission"),
    }  # the instructor's data/given.py, the learner's text file: not code


def test_what_the_sandbox_refused_is_found_in_the_outputs():
    nb = notebook("def square(x): return x * x")
    nb.cells[2].outputs = [
        nbformat.v4.new_output(
            "error",
            ename="PermissionError",
            traceback=[],
            evalue="[ailys-guard] no points for this test: builtins.abs was replaced",
        )
    ]
    [found] = findings(nb)
    assert (found.where, found.what) == ("the sandbox", "no points for this test: builtins.abs was replaced")


def test_the_demo_solutions_are_not_flagged():
    for path in sorted((REPO / "courses").glob("*/source/*/*.ipynb")):
        nb = nbformat.reads(json.dumps(json.loads(path.read_text())), as_version=4)
        assert findings(nb) == [], path
