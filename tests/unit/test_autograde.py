"""Pure parts of the grading engine: its settings in the schema, how a Slurm array is asked for,
how a notebook's errors and unrun cells are judged."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbgrader.utils import determine_grade
from pydantic import ValidationError

from grading.autograde.course import REASON_CELL, _add_reason_cell, _answer_errors
from grading.autograde.engine import Settings
from grading.autograde.execute import zero_unanswered
from grading.autograde.slurm import batch_script, sbatch_argv
from hub_config.schema import Assignment, Autograde, Grading


def _cell(source: str, outputs=(), execution_count=1, **nbgrader):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs, cell.execution_count = list(outputs), execution_count
    if nbgrader:
        cell.metadata["nbgrader"] = nbgrader
    return cell


def _error(ename: str, evalue: str = "boom"):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])


def test_autograde_settings_take_units_and_refuse_unknown_keys():
    auto = Autograde(timeout="45s", total_timeout="10m", memory="512M")
    assert (auto.timeout, auto.total_timeout, auto.memory) == (45, 600, 512 * 1024**2)
    assert Autograde().timeout == 30 and Autograde().memory == 1024**3
    with pytest.raises(ValidationError, match="timout"):
        Autograde(timout="30s")
    with pytest.raises(ValidationError):
        Autograde(memory="lots")
    assert Assignment(name="ps1").autograde_on_submit is False
    assert Assignment(name="ps1", autograde_on_submit=True).autograde_on_submit


def test_grading_site_settings_check_the_throttle_and_the_account_name():
    assert Grading().throttle == 8 and Grading().user == "ailys-grader"
    with pytest.raises(ValidationError):
        Grading(throttle=0)
    with pytest.raises(ValidationError):
        Grading(user="Not A Name")


def test_sbatch_asks_for_one_throttled_requeueable_array_as_the_grading_account(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    argv = sbatch_argv(
        Path("/w/run"),
        40,
        Settings(total_timeout=600, memory=1024**3),
        Grading(partition="grading", account="ailys", throttle=8),
        "grd-grader",
    )
    assert "--array=0-39%8" in argv and "--requeue" in argv and "--export=NONE" in argv
    assert {"--partition=grading", "--account=ailys", "--uid=grd-grader", "--gid=grd-grader"} <= set(argv)
    assert "--time=12" in argv  # 600 s + 2 minutes of start-up, in minutes
    assert "--mem=2048M" in argv
    assert argv[-1] == "/w/run/task.sh"
    without = sbatch_argv(Path("/w/run"), 3, Settings(), Grading(), None)
    assert not [a for a in without if a.startswith(("--partition", "--account", "--uid"))]


def test_the_batch_script_runs_the_task_of_its_array_index():
    script = batch_script(Path("/w/run"), 3)
    assert script.startswith("#!/bin/sh\n")
    assert '-m grading.autograde.task /w/run/jobs.json "$SLURM_ARRAY_TASK_ID"' in script
    assert "HOME=/w/run" in script


def _result(value: str):
    return nbformat.v4.new_output("execute_result", data={"text/plain": value}, execution_count=1)


TEST = {"grade": True, "solution": False, "points": 1}


def test_only_cells_answered_ok_can_pass_as_tests():
    """What nbgrader would count as passed (no error first) unless a live kernel answered it ok."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("x = 1"),  # answered ok
        _cell("assert f(2) == 4", [_error("AssertionError")], grade_id="failed", **TEST),  # an error
        _cell("assert x == 1", [_result("1")], grade_id="died", **TEST),  # sent, then the kernel died
        _cell(
            "assert x == 1",
            [nbformat.v4.new_output("stream", text="forged\n")],
            execution_count=7,
            grade_id="never",
            **TEST,
        ),
        _cell("assert x == 1", [_result("1"), _error("AssertionError")], grade_id="fake", **TEST),
        _cell("assert x == 1", grade_id="odd", **TEST),  # answered "aborted"
        _cell("", execution_count=None),  # an empty cell is no test
        nbformat.v4.new_markdown_cell("text"),
    ]
    replies = {0: "ok", 1: "error", 4: "error", 5: "aborted"}
    unanswered = zero_unanswered(nb, replies, running=2, why="the kernel died")
    assert unanswered == ["died", "never", "odd"]
    assert nb.cells[0].outputs == [] and [o.ename for o in nb.cells[1].outputs] == ["AssertionError"]
    assert [o.get("ename") for o in nb.cells[2].outputs] == ["NoReply", None]  # its own output stays, after
    assert nb.cells[2].outputs[0].evalue == "the kernel died"
    assert [o.ename for o in nb.cells[3].outputs] == ["NotRun"] and nb.cells[3].execution_count is None
    assert nb.cells[3].outputs[0].evalue == "not run: the kernel died"
    assert [o.get("ename") for o in nb.cells[4].outputs] == ["BadReply", None, "AssertionError"]
    assert "'aborted'" in nb.cells[5].outputs[0].evalue
    assert nb.cells[6].outputs == []
    assert [determine_grade(c)[0] for c in nb.cells[1:6]] == [0, 0, 0, 0, 0]  # nbgrader's own judgement


def test_a_run_that_skipped_a_cell_says_so():
    nb = nbformat.v4.new_notebook()
    nb.cells = [_cell("x = 1"), _cell("assert x == 1", execution_count=3, grade=True)]  # "skip-execution"
    assert zero_unanswered(nb, {0: "ok"}, running=0, why="") == ["cell 2"]
    assert nb.cells[1].outputs[0].evalue == "this cell was not run"
    # a stderr output before the kernel froze scores 0 already; an error still says why
    nb.cells = [_cell("print(1, file=sys.stderr)", [nbformat.v4.new_output("stream", name="stderr")])]
    assert zero_unanswered(nb, {}, running=0, why="it ran longer than the time limit") == ["cell 1"]
    assert [o.get("ename") for o in nb.cells[0].outputs] == ["NoReply", None]


def test_errors_in_the_learners_cells_are_reasons_failing_tests_are_not():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _cell("x = bytearray(10**10)", [_error("MemoryError", "")], grade_id="answer", solution=True),
        _cell(
            "assert f(2) == 4", [_error("AssertionError", "")], grade_id="test", grade=True, solution=False
        ),
        _cell("import os; os.fork()", [_error("BlockingIOError", "[Errno 11]")]),
    ]
    notes = _answer_errors(nb)
    assert notes[0] == "answer raised MemoryError (over the memory limit): "
    assert "raised BlockingIOError (over the process limit)" in notes[1]
    assert len(notes) == 2


def test_the_reason_cell_is_replaced_not_piled_up():
    nb = nbformat.v4.new_notebook()
    nb.cells = [_cell("x = 1")]
    _add_reason_cell(nb, ["first"])
    _add_reason_cell(nb, ["second"])
    reasons = [c for c in nb.cells if c.metadata.get("ailys") == REASON_CELL]
    assert len(reasons) == 1 and "second" in reasons[0].source and nb.cells[0] is reasons[0]
    _add_reason_cell(nb, [])
    assert [c for c in nb.cells if c.metadata.get("ailys") == REASON_CELL] == []


def test_limits_give_each_kernel_a_cpu_backstop_past_the_wall_time():
    limits = Settings(total_timeout=100, memory=2 * 1024**3, processes=32).limits()
    assert limits == {"memory": 2 * 1024**3, "processes": 32, "file_size": 64 * 1024**2, "cpu_time": 130}


def test_a_working_copy_file_is_never_read_through_a_link(tmp_path):
    from grading.autograde.execute import _read_own

    (tmp_path / "other.ipynb").write_text("another learner's notebook")
    (tmp_path / "mine.ipynb").write_text("mine")
    (tmp_path / "planted.ipynb").symlink_to(tmp_path / "other.ipynb")
    assert _read_own(tmp_path / "mine.ipynb") == "mine"
    with pytest.raises(OSError):
        _read_own(tmp_path / "planted.ipynb")
    with pytest.raises(OSError):
        _read_own(tmp_path)  # a folder where a notebook was
