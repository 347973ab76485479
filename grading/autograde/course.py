"""An nbgrader course folder, as the grading engine reads and writes it (the one writer).

Grading a submission is nbgrader's Autograde converter cut in two at its Execute step:

1. ``prepare``: nbgrader's sanitizing pass (ClearOutput, DeduplicateIds, OverwriteKernelspec,
   OverwriteCells, CheckCellMetadata), and its bookkeeping (student and submission in the gradebook,
   source files copied over), into autograded/<student>/<assignment>/;
2. execution, elsewhere: a worker, a Slurm task (grading/autograde/execute.py);
3. ``record``: nbgrader's autograde pass after Execute (IgnorePattern, ClearMetadata, LimitOutput,
   SaveAutoGrades, AssignLatePenalties, CheckCellMetadata) on the executed notebooks.

Steps 1 and 3 touch the gradebook and run only in the process that runs ``ailys grade`` (or the
exchange's on-submit call), one submission at a time: no lost update, whatever runs step 2.
A submission that cannot be graded gets zero and a reason, both in its autograded notebook (so
in its feedback) and in ``.ailys-autograde.json`` next to it, which is also how ``--only-new``
knows what is already graded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)
from traitlets import List
from traitlets.config import Config, JSONFileConfigLoader, PyFileConfigLoader

from .. import accommodations
from ..integrity import released
from .cheats import withhold

MARKER = ".ailys-autograde.json"
REASON_CELL = "ailys-autograde-reason"
log = logging.getLogger("ailys.grade")


class SubmissionError(Exception):
    """This submission cannot be graded; the message is the reason the learner reads."""


@dataclass
class Outcome:
    student: str
    status: str  # graded | failed | skipped
    score: float = 0.0
    max_score: float = 0.0
    reasons: list[str] = field(default_factory=list)


def alembic_on_path() -> None:
    """nbgrader runs `alembic` from PATH when it opens a gradebook: ours is beside this Python."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


class _Sanitize(Autograde):
    """nbgrader's Autograde with its sanitizing pass only: execution happens in the sandbox."""

    autograde_preprocessors = List([])


class Course:
    """One nbgrader course folder: source/, release/, submitted/, autograded/, feedback/, gradebook."""

    def __init__(self, root: Path | str, course_id: str = ""):
        alembic_on_path()
        self.root = Path(root).resolve()
        self.config = Config()
        # The folder's nbgrader settings, as stock nbgrader reads them: nbgrader_config.json (what
        # grading/courses.py writes), after a nbgrader_config.py of a folder made by hand.
        for name, loader in (
            ("nbgrader_config.py", PyFileConfigLoader),
            ("nbgrader_config.json", JSONFileConfigLoader),
        ):
            if (self.root / name).exists():
                self.config.merge(loader(name, path=str(self.root)).load_config())
        self.config.CourseDirectory.root = str(self.root)
        if course_id:
            self.config.CourseDirectory.course_id = course_id
        self.coursedir = CourseDirectory(config=self.config)
        self.db_url = self.coursedir.db_url

    def submitted(self, student: str, assignment: str) -> Path:
        return Path(self.coursedir.format_path(self.coursedir.submitted_directory, student, assignment))

    def autograded(self, student: str, assignment: str) -> Path:
        return Path(self.coursedir.format_path(self.coursedir.autograded_directory, student, assignment))

    def students(self, assignment: str) -> list[str]:
        """Learners with a collected submission of ``assignment``, sorted."""
        base = Path(self.coursedir.root) / self.coursedir.submitted_directory
        return sorted(p.parent.name for p in base.glob(f"*/{assignment}") if p.is_dir())

    def _timestamp(self, student: str, assignment: str) -> str:
        stamp = self.submitted(student, assignment) / "timestamp.txt"
        return stamp.read_text().strip() if stamp.exists() else ""

    def is_graded(self, student: str, assignment: str) -> bool:
        """Graded already, from this very submission (its timestamp.txt)?"""
        marker = self.autograded(student, assignment) / MARKER
        try:
            data = json.loads(marker.read_text())
        except (OSError, ValueError):
            return False
        return data.get("submitted") == self._timestamp(student, assignment)

    # --- 1. prepare -----------------------------------------------------------------------------

    def prepare(self, student: str, assignment: str) -> list[str]:
        """Sanitize the submission into autograded/; return its notebooks' file names."""
        self._check_readable(student, assignment)
        config = Config(self.config)
        config.CourseDirectory.student_id = student
        config.CourseDirectory.assignment_id = assignment
        config.BaseConverter.force = True
        converter = _Sanitize(coursedir=CourseDirectory(config=config), config=config)
        converter.log = log
        try:
            converter.start()
        except Exception as error:  # noqa: BLE001 - nbgrader says why in its log; we say it shorter
            raise SubmissionError(f"nbgrader could not read this submission: {error}") from None
        notebooks = sorted(p.name for p in self.autograded(student, assignment).glob("*.ipynb"))
        if not notebooks:
            raise SubmissionError("the submission holds none of the assignment's notebooks")
        return notebooks

    def _check_readable(self, student: str, assignment: str) -> None:
        for path in sorted(self.submitted(student, assignment).glob("*.ipynb")):
            try:
                nbformat.validate(nbformat.read(path, as_version=4))
            except Exception as error:  # noqa: BLE001 - JSON, schema or encoding: all the learner's
                first = (
                    str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
                )
                raise SubmissionError(f"{path.name} is not a valid notebook ({first})") from None

    def changed_read_only_cells(self, student: str, assignment: str, notebook: str) -> list[str]:
        """Test and read-only cells the learner edited (nbgrader restored them from the source)."""
        try:
            mine = nbformat.read(self.submitted(student, assignment) / notebook, as_version=4)
            restored = nbformat.read(self.autograded(student, assignment) / notebook, as_version=4)
        except (OSError, ValueError):
            return []
        originals = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in restored.cells}
        changed = []
        for cell in mine.cells:
            meta = cell.metadata.get("nbgrader", {})
            if (
                meta.get("grade_id")
                and not meta.get("solution")
                and (meta.get("locked") or meta.get("grade"))
            ):
                # the original still has the hidden tests that release took out of the learner's copy
                if released(originals.get(meta["grade_id"], cell.source)) != released(cell.source):
                    changed.append(meta["grade_id"])
        return changed

    def working_copy(
        self, student: str, assignment: str, work_root: Path, owner: tuple[int, int] | None
    ) -> Path:
        """A copy of the sanitized submission only, owned by the grading account (mode 700)."""
        copy = Path(os.path.realpath(work_root)) / f"{student}--{assignment}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self.autograded(student, assignment), copy, ignore=shutil.ignore_patterns(MARKER))
        copy.chmod(0o700)
        if owner and os.geteuid() == 0:
            for folder, dirs, files in os.walk(copy):
                for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                    os.lchown(name, *owner)
        return copy

    # --- 3. record ------------------------------------------------------------------------------

    def record(self, student: str, assignment: str, executed: dict[str, str], reasons: list[str]) -> Outcome:
        """Save the executed notebooks' grades in the gradebook, with nbgrader's preprocessors."""
        self._extension(student, assignment)  # before AssignLatePenalties reads the learner's due
        for name in sorted(executed):
            notebook_reasons = [r.split(": ", 1)[1] for r in reasons if r.startswith(f"{name}: ")]
            changed = self.changed_read_only_cells(student, assignment, name)
            if changed:
                note = f"{name}: read-only or test cells edited ({', '.join(changed)}); the originals were graded"
                reasons.append(note)
                notebook_reasons.append(note.split(": ", 1)[1])
            nb = nbformat.reads(executed[name], as_version=4)
            for note in _answer_errors(nb) + withhold(nb, self, student, assignment, name):  # cheats.py
                reasons.append(f"{name}: {note}")
                notebook_reasons.append(note)
            _add_reason_cell(nb, notebook_reasons)
            resources = self._resources(student, assignment, name)
            for step in (
                IgnorePattern,
                ClearMetadataPreprocessor,
                LimitOutput,
                SaveAutoGrades,
                AssignLatePenalties,
                CheckCellMetadata,
            ):
                nb, resources = step(config=self.config)(nb, resources)
            nbformat.write(nb, self.autograded(student, assignment) / name)
        return self._finish(student, assignment, "graded", reasons)

    def record_failure(self, student: str, assignment: str, reason: str) -> Outcome:
        """Zero for every grade of the submission, and the reason where the learner will read it."""
        try:
            self._ensure_submission(student, assignment)
        except MissingEntry:
            raise SubmissionError(
                f"assignment {assignment} is not in the gradebook (generate it first)"
            ) from None
        dest = self.autograded(student, assignment)
        dest.mkdir(parents=True, exist_ok=True)
        release = Path(self.coursedir.format_path(self.coursedir.release_directory, ".", assignment))
        with Gradebook(self.db_url, self.coursedir.course_id) as gb:
            for notebook in gb.find_assignment(assignment).notebooks:
                submission = gb.find_submission_notebook(notebook.name, assignment, student)
                for grade in submission.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                gb.db.commit()
                shown = release / f"{notebook.name}.ipynb"  # the learner's starting version: no solutions
                nb = nbformat.read(shown, as_version=4) if shown.exists() else nbformat.v4.new_notebook()
                _add_reason_cell(nb, [reason])
                nbformat.write(nb, dest / f"{notebook.name}.ipynb")
        return self._finish(student, assignment, "failed", [reason])

    def _ensure_submission(self, student: str, assignment: str) -> None:
        with Gradebook(self.db_url, self.coursedir.course_id) as gb:
            gb.find_assignment(assignment)
            gb.update_or_create_student(student)
            stamp = self.coursedir.get_existing_timestamp(str(self.submitted(student, assignment)))
            gb.update_or_create_submission(assignment, student, **({"timestamp": stamp} if stamp else {}))

    def _extension(self, student: str, assignment: str) -> None:
        """The learner's extension (grading/accommodations.py) on their submission's row."""
        seconds = accommodations.extension_seconds(self.root, student, assignment)
        with Gradebook(self.db_url, self.coursedir.course_id) as gb:
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                return
            wanted = dt.timedelta(seconds=seconds) if seconds else None
            if sub.extension != wanted:
                sub.extension = wanted
                gb.db.commit()

    def _resources(self, student: str, assignment: str, name: str) -> dict:
        return {
            "unique_key": Path(name).stem,
            "nbgrader": {
                "student": student,
                "assignment": assignment,
                "notebook": Path(name).stem,
                "db_url": self.db_url,
            },
        }

    def _finish(self, student: str, assignment: str, status: str, reasons: list[str]) -> Outcome:
        with Gradebook(self.db_url, self.coursedir.course_id) as gb:
            submission = gb.find_submission(assignment, student)
            score, max_score = submission.score, submission.max_score
        marker = {
            "submitted": self._timestamp(student, assignment),
            "status": status,
            "reasons": reasons,
            "score": score,
            "max_score": max_score,
        }
        (self.autograded(student, assignment) / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        return Outcome(student, status, score, max_score, reasons)

    def generate_feedback(self, student: str, assignment: str) -> Path:
        """nbgrader's feedback (HTML) for one learner: feedback/<student>/<assignment>/."""
        config = Config(self.config)
        config.CourseDirectory.student_id = student
        config.CourseDirectory.assignment_id = assignment
        config.BaseConverter.force = True
        converter = GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)
        converter.log = log
        converter.start()
        return Path(self.coursedir.format_path(self.coursedir.feedback_directory, student, assignment))


_HINTS = {
    "MemoryError": " (over the memory limit)",
    "BlockingIOError": " (over the process limit)",
    "KeyboardInterrupt": " (interrupted at the time limit)",
}


def _answer_errors(nb) -> list[str]:
    """Errors raised by the learner's own cells (test cells failing are ordinary wrong answers)."""
    notes = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade") and not meta.get("solution"):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                where = meta.get("grade_id") or f"cell {cell.get('id', '?')}"
                value = str(out.get("evalue", ""))[:160]
                notes.append(f"{where} raised {out.get('ename')}{_HINTS.get(out.get('ename'), '')}: {value}")
    return notes


def _add_reason_cell(nb, reasons: list[str]) -> None:
    nb.cells = [c for c in nb.cells if c.metadata.get("ailys") != REASON_CELL]
    if reasons:
        text = "**Autograding notes**\n\n" + "\n".join(f"- {r}" for r in reasons)
        cell = nbformat.v4.new_markdown_cell(text)
        cell.metadata["ailys"] = REASON_CELL
        nb.cells.insert(0, cell)
