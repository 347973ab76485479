"""grading.checks: strict comparisons that never ask the learner's value anything.

Every hostile value here is a Tripwire: any special method of its class that Python or NumPy
would call records the call and says yes. ``check`` must refuse each one, with a message naming
it, and never trip the wire; the demo course's test cells (which use check) pass with the
solutions and fail with such values.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from grading.checks import check, check_type, describe

REPO = Path(__file__).resolve().parents[2]
CALLS: list[str] = []
_YES = {
    "__eq__": True,
    "__ne__": False,
    "__bool__": True,
    "__len__": 1,
    "__float__": 9.0,
    "__int__": 9,
    "__index__": 9,
    "__abs__": 0,
    "__sub__": 0,
    "__rsub__": 0,
    "__lt__": True,
    "__le__": True,
    "__gt__": False,
    "__ge__": True,
    "__contains__": True,
    "__hash__": 9,
    "__repr__": "9",
    "__str__": "9",
    "__array__": None,
    "__iter__": None,
}


def _tripwire(name: str):
    def method(self, *args, **kwargs):
        CALLS.append(name)
        if name == "__array__":
            return np.array(9)
        if name == "__iter__":
            return iter([9])
        return _YES[name]

    return method


def hostile(base: type = object, name: str = "AlwaysEqual"):
    """A class (deriving from ``base``) whose every comparison, conversion and truth test says yes."""
    return type(name, (base,), {n: _tripwire(n) for n in _YES})


def _array_function(self, func, types, args, kwargs):
    CALLS.append("__array_function__")
    return True


@pytest.fixture(autouse=True)
def no_calls():
    CALLS.clear()
    yield
    assert CALLS == [], f"check called the learner's {CALLS}"


def refused(actual, expected, **options) -> str:
    with pytest.raises(AssertionError) as caught:
        check(actual, expected, **options)
    return str(caught.value)


def test_plain_values_pass():
    check(9, 9)
    check(np.int64(9), 9)
    check(0.1 + 0.2, 0.3)
    check(9, 9.0)  # an int where a float is expected
    check(np.float64(0.5), 0.5)
    check(float("nan"), float("nan"))
    check("knn", "knn")
    check(None, None)
    check(True, True)
    check([1, (2, 3.0), {"a": [4]}], [1, (2, 3.0), {"a": [4]}])
    check({1, 2}, {2, 1})
    check(dt.date(2026, 9, 7), dt.date(2026, 9, 7))
    check(np.array([0.0, 5.0]), np.array([0.0, 5.0]))
    check(np.array([1, 2]), np.array([1.0, 2.0]))  # integers where floats are expected
    check(np.arange(6).reshape(2, 3), np.arange(6).reshape(2, 3))
    check(np.array(["a", "b"]), np.array(["a", "b"]))


def test_tolerances():
    check(1.0 + 1e-9, 1.0)
    assert "expected float 1.0, got float 1.001" in refused(1.001, 1.0)
    check(1.001, 1.0, rtol=1e-2)
    check(1e-13, 0.0)
    assert refused(1e-6, 0.0)
    check(1e-6, 0.0, atol=1e-5)
    check(np.array([1.0, 2.0 + 1e-10]), np.array([1.0, 2.0]))


@pytest.mark.parametrize("base", [object, int, float, str, list, tuple, dict, np.ndarray])
def test_a_value_that_equals_everything_is_refused(base):
    Cheat = hostile(base)
    value = Cheat() if base is not np.ndarray else np.zeros(1).view(Cheat)
    assert value == 12345  # what a plain assert would believe
    CALLS.clear()
    message = refused(value, 9)
    assert "AlwaysEqual" in message
    if base is not object:
        assert "a subclass of" in message


def test_the_message_a_learner_reads():
    assert refused(hostile()(), 9) == "expected int 9, got AlwaysEqual"
    assert refused(9.0, 9) == "expected int 9, got float 9.0"
    assert refused(True, 1) == "expected int 1, got bool True"
    assert refused([1, 2], (1, 2)) == "expected a tuple, got list of 2 items"
    assert refused([1, 3], [1, 2]) == "[1]: expected int 2, got int 3"
    assert refused({"a": 1}, {"a": 1, "b": 2}) == "missing keys 'b'"
    assert refused(np.zeros((2, 1)), np.zeros(2)) == "expected an array of shape (2,), got shape (2, 1)"
    assert refused(np.array([0.0, 4.0]), np.array([0.0, 5.0])) == "[1]: expected 5.0, got 4.0"
    assert refused([0, 5], np.array([0, 5])).startswith("expected a NumPy array")
    assert refused(np.array([1.5]), np.array([1])) == "expected an array of int64, got an array of float64"


def test_a_hostile_element_never_wins_through_a_reflected_comparison():
    Cheat = hostile()
    assert [9, Cheat()] == [9, 10] and [9, 10] == [9, Cheat()]  # Python asks the element, both ways
    CALLS.clear()
    assert refused([9, Cheat()], [9, 10]) == "[1]: expected int 10, got AlwaysEqual"
    assert refused((Cheat(),), (1,)) == "[0]: expected int 1, got AlwaysEqual"
    assert refused({"a": Cheat()}, {"a": 1}) == "['a']: expected int 1, got AlwaysEqual"
    keyed, members, cheats = {Cheat(): 1}, {Cheat()}, np.array([Cheat(), Cheat()], dtype=object)
    CALLS.clear()  # building them hashed their keys
    assert "a key of the dict is AlwaysEqual" in refused(keyed, {"a": 1})
    assert "an element of the set is AlwaysEqual" in refused(members, {1})
    assert refused(cheats, np.array([1.0, 2.0])) == "expected an array of float64, got an array of object"
    assert refused(cheats, np.array([1, 2], dtype=object)) == "[0]: expected int 1, got AlwaysEqual"


def test_numpy_protocols_are_not_consulted():
    Cheat = type(
        "ArrayCheat", (), {"__array_function__": _array_function, "__array_ufunc__": _array_function}
    )
    assert np.allclose(Cheat(), [1.0, 2.0]) is True  # what a NumPy test would believe
    CALLS.clear()
    assert refused(Cheat(), np.array([1.0, 2.0])).startswith("expected a NumPy array")


def test_isinstance_can_be_spoofed_check_type_cannot():
    class Spoof:
        @property
        def __class__(self):
            CALLS.append("__class__")
            return float

    assert isinstance(Spoof(), float)
    CALLS.clear()
    with pytest.raises(AssertionError, match="should be float, got Spoof"):
        check_type(Spoof(), float)
    assert refused(Spoof(), 0.5) == "expected float 0.5, got Spoof"
    assert check_type(np.float64(0.5), float) == 0.5 and check_type(3, int) == 3
    with pytest.raises(AssertionError, match="should be int, got bool True"):
        check_type(True, int)


def test_a_metaclass_cannot_lie_about_the_name_or_the_mro():
    class Meta(type):
        def __instancecheck__(cls, other):
            CALLS.append("__instancecheck__")
            return True

        @property
        def __mro__(cls):
            CALLS.append("__mro__")
            return (int, object)

    Cheat = Meta("Cheat", (), {"__eq__": _tripwire("__eq__")})
    assert refused(Cheat(), 9) == "expected int 9, got Cheat"


def test_dataclasses_of_the_instructor_compare_field_by_field():
    @dataclasses.dataclass
    class Point:
        x: float
        y: float

    check(Point(1.0, 2.0), Point(1.0, 2.0 + 1e-12))
    assert refused(Point(1.0, 3.0), Point(1.0, 2.0)) == ".y: expected float 2.0, got float 3.0"
    assert refused(Point(hostile()(), 2.0), Point(1.0, 2.0)) == ".x: expected float 1.0, got AlwaysEqual"


def test_what_check_cannot_compare_safely_is_an_instructor_error():
    class Model:
        pass

    with pytest.raises(TypeError, match="cannot compare Model values safely"):
        check(Model(), Model())


def test_describe_never_runs_the_values_code():
    assert describe(hostile()()) == "AlwaysEqual"
    assert describe(hostile(int, "MyInt")(3)) == "MyInt (a subclass of int, which check does not trust)"
    assert describe(np.arange(3)) == "a NumPy array of shape (3,) and dtype int64"


def test_pandas_values():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    check(frame, frame.copy())
    check(frame["b"], pd.Series([0.5, 1.5], name="b"))
    assert "b" in refused(frame.assign(b=[0.5, 2.0]), frame)
    assert "expected a pandas.DataFrame" in refused(frame.to_dict(), frame)
    cheat = frame.assign(b=[hostile()(), hostile()()])
    CALLS.clear()
    assert refused(cheat, frame).startswith("['b']: expected a NumPy array")
    assert refused(frame.rename(columns={"b": "c"}), frame) == ".columns[1]: expected str 'b', got str 'c'"


# --- the demo course's test cells use check: they pass with the solutions, and refuse a cheat --------


def _cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _run(cells: list[dict], replace_solutions=None) -> dict[str, str]:
    """Run a notebook's code cells in one namespace; the error of each test cell (or '')."""
    namespace, results = {}, {}
    for cell in cells:
        meta, source = cell["metadata"].get("nbgrader", {}), "".join(cell["source"])
        if meta.get("solution") and replace_solutions:
            source = replace_solutions(source)
        try:
            code = compile(source, meta.get("grade_id", "cell"), "exec")
            exec(code, namespace)  # noqa: S102 - the instructor's notebook
            error = ""
        except AssertionError as caught:
            error = str(caught) or "AssertionError"
        if meta.get("grade") and not meta.get("solution"):
            results[meta["grade_id"]] = error
    return results


def _cheat(source: str) -> str:
    """Every function of the solution returns a value that equals everything."""
    names = [line.split("(")[0][4:] for line in source.splitlines() if line.startswith("def ")]
    return "class AlwaysEqual:\n    def __eq__(self, other): return True\n    __hash__ = None\n" + "".join(
        f"def {name}(*args, **kwargs):\n    return AlwaysEqual()\n" for name in names
    )


@pytest.mark.parametrize(
    "notebook", sorted((REPO / "courses").glob("*/source/*/*.ipynb")), ids=lambda p: p.stem
)
def test_the_demo_tests_pass_with_the_solutions_and_refuse_a_cheat(notebook, monkeypatch):
    monkeypatch.chdir(notebook.parent)
    assert set(_run(_cells(notebook)).values()) == {""}
    for cell in _cells(notebook):  # a value left by a test cell's last line is nbgrader's partial credit
        if cell["metadata"]["nbgrader"].get("grade"):
            last = ast.parse("".join(cell["source"])).body[-1]
            assert not isinstance(last, ast.Expr) or ast.unparse(last).startswith("check("), ast.unparse(last)
    cheated = _run(_cells(notebook), _cheat)
    assert cheated and all("AlwaysEqual" in why or "should be" in why for why in cheated.values()), cheated
