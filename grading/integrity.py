"""Submissions whose read-only or test cells were changed: found, flagged, graded on the originals.

nbgrader's OverwriteCells already puts the instructor's version of every locked cell back before
grading, silently. ``FlagTampering`` runs just before it (course folder's nbgrader_config.json,
``Autograde.sanitize_preprocessors``, which `ailys grade` reads too): it compares the learner's
notebook with the gradebook's source cells and, when a locked cell was edited, deleted or
turned into another kind, flags the submitted notebook in the gradebook (the flag formgrader
shows in its submission lists) and says which cells in the log. ``tampering`` gives the same
answer to the grade export, from the collected notebooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor


@dataclass(frozen=True)
class Original:
    """What the gradebook keeps of a locked cell of the released notebook."""

    name: str
    cell_type: str
    source: str


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def released(source: str) -> str:
    """A cell's source as learners received it: without its hidden tests, blank ends dropped."""
    lines, inside = [], False
    for line in source.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif not inside:
            lines.append(line.rstrip())
    return "\n".join(lines).strip()


def changed_cells(nb, originals: list[Original]) -> list[str]:
    """'<grade_id>: edited|deleted|...' for each locked original the notebook does not carry as it was."""
    mine = {}
    for cell in nb.cells:
        grade_id = _meta(cell).get("grade_id")
        if grade_id:
            mine.setdefault(grade_id, cell)
    changes = []
    for original in sorted(originals, key=lambda o: o.name):
        cell = mine.get(original.name)
        if cell is None:
            changes.append(f"{original.name}: deleted")
        elif cell.cell_type != original.cell_type:
            changes.append(f"{original.name}: changed from {original.cell_type} to {cell.cell_type}")
        elif _meta(cell).get("solution") and not _meta(cell).get("locked"):
            changes.append(f"{original.name}: made editable")
        elif released(cell.source) != released(original.source):
            changes.append(f"{original.name}: edited")
    return changes


def originals_of(gb: Gradebook, notebook: str, assignment: str) -> list[Original]:
    nb = gb.find_notebook(notebook, assignment)
    return [Original(c.name, c.cell_type, c.source) for c in nb.source_cells if c.locked]


def tampering(db_url: str, course_id: str, course_root: Path, assignment: str, student: str) -> list[str]:
    """'<notebook>: <grade_id>: edited' lines for a collected submission, [] if none or not collected."""
    found = []
    folder = Path(course_root) / "submitted" / student / assignment
    with Gradebook(db_url, course_id) as gb:
        try:
            notebooks = [n.name for n in gb.find_assignment(assignment).notebooks]
        except MissingEntry:
            return []
        for name in notebooks:
            path = folder / f"{name}.ipynb"
            if not path.exists():
                continue
            try:
                nb = nbformat.read(path, as_version=4)
            except Exception:  # noqa: BLE001 - not a notebook: autograde reports it on its own
                continue
            found += [f"{name}: {change}" for change in changed_cells(nb, originals_of(gb, name, assignment))]
    return found


class FlagTampering(NbGraderPreprocessor):
    """Flag the submitted notebook in the gradebook when a locked cell was changed."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"], info.get("course_id") or self.coursedir_course_id(resources)) as gb:
            try:
                changes = changed_cells(nb, originals_of(gb, info["notebook"], info["assignment"]))
                submitted = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
            except MissingEntry:
                return nb, resources
            if changes:
                submitted.flagged = True
                gb.db.commit()
                self.log.warning(
                    "%s changed read-only or test cells of %s/%s (%s): flagged; the originals are graded",
                    info["student"],
                    info["assignment"],
                    info["notebook"],
                    ", ".join(changes),
                )
        return nb, resources

    def coursedir_course_id(self, resources) -> str:
        from nbgrader.coursedir import CourseDirectory

        return CourseDirectory(config=self.config).course_id
