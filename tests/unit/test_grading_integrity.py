"""Changed read-only cells, and feedback without hidden tests: the pure parts."""

import nbformat
import pytest

from grading.feedback import NOTE, HideHiddenTests, hidden_lines
from grading.integrity import Original, changed_cells, released

TEST = "assert x == 42\n### BEGIN HIDDEN TESTS\nassert x > 0, 'secret'\n### END HIDDEN TESTS"


def cell(kind, source, grade_id, **meta):
    c = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source)
    c.metadata.nbgrader = {"grade_id": grade_id, "locked": False, "solution": False, "grade": False, **meta}
    return c


ORIGINALS = [Original("intro", "markdown", "Do not change this."), Original("test", "code", TEST)]


def notebook(intro="Do not change this.", test="assert x == 42", drop=(), test_meta=None):
    cells = [
        cell("markdown", intro, "intro", locked=True),
        cell("code", "x = 42", "answer", solution=True),
        cell("code", test, "test", **{"grade": True, "locked": True, **(test_meta or {})}),
    ]
    return nbformat.v4.new_notebook(cells=[c for c in cells if c.metadata.nbgrader["grade_id"] not in drop])


def test_a_learners_untouched_notebook_has_no_change_though_hidden_tests_were_removed():
    assert changed_cells(notebook(), ORIGINALS) == []
    assert changed_cells(notebook(test="assert x == 42\n\n"), ORIGINALS) == []  # trailing blank lines


@pytest.mark.parametrize(
    ("nb", "expected"),
    [
        (notebook(test="assert True"), ["test: edited"]),
        (notebook(intro="I changed the rules"), ["intro: edited"]),
        (notebook(drop=("test",)), ["test: deleted"]),
        (notebook(test_meta={"solution": True, "locked": False}), ["test: made editable"]),
    ],
)
def test_edited_deleted_or_unlocked_cells_are_named(nb, expected):
    assert changed_cells(nb, ORIGINALS) == expected


def test_a_cell_turned_into_markdown_is_named():
    nb = notebook()
    nb.cells[2] = cell("markdown", "assert x == 42", "test", grade=True, locked=True)
    assert changed_cells(nb, ORIGINALS) == ["test: changed from code to markdown"]


def test_released_drops_the_hidden_region_only():
    assert released(TEST) == "assert x == 42"
    assert hidden_lines(TEST, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS") == ["assert x > 0, 'secret'"]


def _error(traceback_line):
    return nbformat.v4.new_output(
        "error",
        ename="AssertionError",
        evalue="secret",
        traceback=["\x1b[0;31m---\x1b[0m", traceback_line, "AssertionError: secret"],
    )


def test_feedback_hides_hidden_tests_and_the_traceback_that_quotes_them():
    nb = notebook(test=TEST)
    nb.cells[2].outputs = [_error("----> 3 \x1b[38;5;28massert\x1b[39;00m x > 0, \x1b[33m'secret'\x1b[0m")]
    out, _ = HideHiddenTests().preprocess(nb, {})
    test = out.cells[2]
    assert test.source == "assert x == 42" and "secret" not in str(test)
    assert test.outputs == [nbformat.v4.new_output("stream", name="stderr", text=NOTE)]


def test_feedback_keeps_a_visible_tests_traceback():
    nb = notebook(test=TEST)
    nb.cells[2].outputs = [
        nbformat.v4.new_output(
            "error", ename="AssertionError", evalue="", traceback=["----> 1 assert x == 42", "AssertionError"]
        )
    ]
    out, _ = HideHiddenTests().preprocess(nb, {})
    assert out.cells[2].outputs[0]["output_type"] == "error"
    assert "secret" not in str(out.cells[2])
