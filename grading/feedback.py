"""Feedback that never shows hidden tests.

nbgrader's GenerateFeedback renders the autograded notebook as it is, and autograding puts the
instructor's test cells back whole: hidden tests included, and a failing hidden test's traceback
quotes its line. ``HideHiddenTests`` (added to ``GenerateFeedback.preprocessors`` by the course
folder's nbgrader_config.json, which `ailys grade --feedback` reads too) removes the hidden
regions from the cells, and replaces an error output that quotes any hidden line by a short
note: the learner sees that a hidden test failed, not what it checks.
"""

from __future__ import annotations

import re

import nbformat
from nbgrader.preprocessors import ClearHiddenTests

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
NOTE = "A hidden test failed (hidden tests are not shown).\n"


def hidden_lines(source: str, begin: str, end: str) -> list[str]:
    """The non-blank lines between the hidden test delimiters, stripped."""
    lines, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def quotes_any(output: dict, lines: list[str]) -> bool:
    text = ANSI.sub("", "\n".join([*output.get("traceback", []), str(output.get("evalue", ""))]))
    return any(line in text for line in lines)


class HideHiddenTests(ClearHiddenTests):
    def preprocess_cell(self, cell, resources, cell_index):
        secret = hidden_lines(cell.source, self.begin_test_delimeter, self.end_test_delimeter)
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if secret and cell.cell_type == "code":
            cell.outputs = [
                nbformat.v4.new_output("stream", name="stderr", text=NOTE)
                if out.get("output_type") == "error" and quotes_any(out, secret)
                else out
                for out in cell.outputs
            ]
        return cell, resources
