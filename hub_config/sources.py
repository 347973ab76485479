"""Static checks of a course's nbgrader sources (courses/<slug>/source/*/*.ipynb): warnings, not errors.

A test cell that writes ``assert square(3) == 9`` asks the learner's value whether it equals 9,
and a value whose ``__eq__`` always says yes passes (issue 10, defect 3). ``weak_tests`` finds, with
``ast`` only, each assert of a test cell that puts a learner's value through ``==``, ``!=``, an
ordering, ``in``, ``isinstance`` or NumPy's ``allclose`` family, or takes its truth value: the places
to use ``grading.checks.check``. A learner's value is a name the notebook's solution cells define,
and what a test cell computes from one; ``check_type(value, int)`` returns a value it vouches for.

It lives here, not in grading/, because it reads course folders as `ailys validate` does, and
hub_config imports nothing of grading; the grader's own checks (grading/autograde/cheats.py) are
about submissions, not sources.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

SANITIZERS = {"check", "check_type"}  # grading.checks: their results are plain values
NUMPY_COMPARISONS = {"allclose", "isclose", "array_equal", "array_equiv", "all", "any"}
_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}


@dataclass(frozen=True)
class WeakTest:
    file: Path
    grade_id: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: test cell {self.grade_id}, line {self.line}: {self.reason}"


def parse_cell(source: str) -> ast.Module | None:
    """A code cell as Python: IPython's %magic and !shell lines blanked (line numbers kept)."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a cell binds in the notebook's namespace (definitions, assignments, imports, globals)."""
    names: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if top:
                names.add(node.name)
            for child in ast.iter_child_nodes(node):
                visit(child, False)
            return
        if isinstance(node, ast.Global):
            names.update(node.names)
        elif top and isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif top and isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif top and isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        for child in ast.iter_child_nodes(node):
            visit(
                child,
                top
                and not isinstance(
                    node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
                ),
            )

    visit(tree, True)
    return names


def _names_in(node: ast.AST) -> set[str]:
    """Names an expression reads, skipping what goes through a sanitizer."""
    found: set[str] = set()

    def visit(n: ast.AST) -> None:
        if isinstance(n, ast.Call) and _callee(n) in SANITIZERS:
            return
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            found.add(n.id)
        for child in ast.iter_child_nodes(n):
            visit(child)

    visit(node)
    return found


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def weak_tests(tree: ast.Module, learner_names: set[str]) -> list[tuple[int, str]]:
    """(line, reason) for each assert that compares a learner's value in a way the value decides."""
    tainted = set(learner_names)
    found: dict[int, str] = {}

    def snippet(node: ast.AST) -> str:
        text = ast.unparse(node)
        return text if len(text) <= 60 else text[:57] + "..."

    def is_tainted(node: ast.AST) -> bool:
        return bool(_names_in(node) & tainted)

    def check_assert(node: ast.Assert) -> None:
        reason = ""
        for sub in ast.walk(node.test):
            if isinstance(sub, ast.Compare):
                operands = [sub.left, *sub.comparators]
                ops = [_OPS[type(op)] for op in sub.ops if type(op) in _OPS]
                if ops and any(is_tainted(o) for o in operands):
                    reason = f"`{snippet(sub)}` lets the learner's value answer `{ops[0]}`"
                    break
            elif isinstance(sub, ast.Call) and any(
                is_tainted(a) for a in [*sub.args, *(k.value for k in sub.keywords)]
            ):
                name = _callee(sub)
                if name == "isinstance":
                    reason = f"`{snippet(sub)}` can be fooled by a `__class__` property; use check_type"
                    break
                if isinstance(sub.func, ast.Attribute) and name in NUMPY_COMPARISONS:
                    reason = f"`{snippet(sub)}` lets the learner's value answer (through __array_function__)"
                    break
        if (
            not reason
            and isinstance(node.test, (ast.Name, ast.Attribute, ast.Call, ast.Subscript))
            and is_tainted(node.test)
        ):
            reason = f"`assert {snippet(node.test)}` lets the learner's value decide its truth (`__bool__`)"
        if reason:
            found.setdefault(node.lineno, reason + "; use grading.checks.check(actual, expected)")

    def visit(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Assert):
                check_assert(stmt)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
                targets = set().union(
                    *(_targets(t) for t in getattr(stmt, "targets", [getattr(stmt, "target", None)]))
                )
                if is_tainted(stmt.value):
                    tainted.update(targets)
                elif not isinstance(stmt, ast.AugAssign):
                    tainted.difference_update(targets)
            elif isinstance(stmt, (ast.For, ast.AsyncFor)) and is_tainted(stmt.iter):
                tainted.update(_targets(stmt.target))
            for field in ("body", "orelse", "finalbody"):
                if isinstance(inner := getattr(stmt, field, None), list):
                    visit(inner)
            for handler in getattr(stmt, "handlers", None) or []:
                visit(handler.body)

    visit(tree.body)
    return sorted(found.items())


def _nbgrader(cell: dict) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def notebook_warnings(path: Path) -> list[WeakTest]:
    """Every weak assert of the test cells (graded, not solution, code) of one source notebook."""
    try:
        cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return []  # not ours to judge: nbgrader says what is wrong with it
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    learner: set[str] = set()
    for cell in code:
        if _nbgrader(cell).get("solution") and (tree := parse_cell(_source(cell))) is not None:
            learner |= top_level_names(tree)
    warnings = []
    for cell in code:
        meta = _nbgrader(cell)
        if not meta.get("grade") or meta.get("solution"):
            continue
        tree = parse_cell(_source(cell))
        if tree is None:
            continue
        for line, reason in weak_tests(tree, learner):
            warnings.append(WeakTest(Path(path), str(meta.get("grade_id", "?")), line, reason))
    return warnings


def course_warnings(course_folder: Path) -> list[WeakTest]:
    """Weak asserts in every notebook of courses/<slug>/source/<assignment>/."""
    source = Path(course_folder) / "source"
    return [w for path in sorted(source.glob("*/*.ipynb")) for w in notebook_warnings(path)]
