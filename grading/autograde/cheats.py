"""Equality cheats, found by the grader in its own process, where no submission can reach.

The learner's code runs in the same Python process as the test cells, so it can hand a test a
value that answers ``==`` (or ``bool()``, ``abs()``, ``np.allclose``...) with whatever passes, or
change what the test compares with. ``findings`` reads the learner's code statically (``ast``, after
nbgrader ran it): the notebook's answer cells and added cells, and the code files of the submission.
It reports code that

- defines a special method that decides how a value compares, converts or answers NumPy
  (``__eq__``, ``__bool__``, ``__len__``, ``__sub__``, ``__abs__``, ``__float__``,
  ``__array_function__``, ``__class__``, ``__getattribute__``...: every dunder but a known-harmless
  few such as ``__init__``, ``__repr__``, ``__iter__``, ``__getitem__``), in a class or anywhere
  as a name or a string; builds a class at run time (``type()`` with three arguments, metaclasses,
  ``make_dataclass``); uses ``unittest.mock.ANY`` or ``pytest.approx``;
- changes what the tests use: rebinds a name a test cell takes from a read-only cell or from
  builtins (``np``, ``isinstance``, ``check``), stores into a module or a read-only cell's object
  (``np.allclose = ...``, ``builtins.abs = ...``), passes a module to a function, reaches
  ``sys.modules``, builtins, frames, ``gc``, IPython's shell (magics other than %time, %timeit,
  %matplotlib included);
- could do either out of sight: exec, eval, compile, getattr/setattr with a computed name,
  pickles, imports of modules neither installed nor in the submission, compiled code or IPython
  settings shipped in the submission.

It also reads what the sandbox's audit hook (``guard.py``) refused during the run. The verdict,
from ``withhold``: every autograded test cell of the notebook gets an error output saying why (so
nbgrader's SaveAutoGrades records 0), the submitted notebook is flagged in the gradebook (formgrader
shows it; the instructor may give the points by hand), and the reasons reach the learner's feedback.
An assignment that asks learners to write ``__eq__`` or operators is therefore always flagged for
manual grading.

Not covered: library functions that evaluate a computed string (a pandas ``query`` built at run
time, say) and are not listed here; code hidden in data and run by a path this check does not
know. The guard refuses exec/compile at run time, whoever asks, when the asking frame is the
learner's.
"""

from __future__ import annotations

import ast
import builtins
import importlib.machinery
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from hub_config.sources import parse_cell, top_level_names

from .guard import MARK

HELD = "AutogradeHeld"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# dunders that cannot change what a comparison, a conversion or a NumPy function answers
SAFE_DUNDERS = frozenset(
    f"__{name}__"
    for name in _words("""
    init new repr str format post_init iter next reversed getitem setitem delitem missing call enter
    exit aenter aexit aiter anext await del copy deepcopy reduce reduce_ex getstate setstate
    init_subclass set_name class_getitem get set delete slots doc module qualname name annotations
    match_args all version author file main future sizeof dir""")
)
_DUNDER = re.compile(r"__[A-Za-z][A-Za-z0-9_]*?__")
REFLECTIVE = {
    "exec": "runs code from a string",
    "eval": "runs code from a string",
    "compile": "compiles code",
    "globals": "reaches the notebook's globals",
    "locals": "reaches a namespace",
    "vars": "reaches a namespace",
    "setattr": "sets an attribute by name",
    "delattr": "deletes an attribute by name",
    "breakpoint": "starts a debugger",
    "get_ipython": "reaches IPython's shell",
}
# modules that reach the interpreter, the shell, the tests' own tools, or run code from data
DENIED_MODULES = _words("""
    builtins __builtin__ gc inspect importlib imp pkgutil pydoc runpy code codeop unittest mock pytest
    _pytest hypothesis doctest pickle cPickle _pickle marshal dill cloudpickle copyreg shelve IPython
    ipykernel jupyter_client traitlets grading timeit cProfile profile trace bdb pdb sympy numexpr""")
ALLOWED_SUBMODULES = ("IPython.display",)
# attribute or imported names that reach frames, memory, the shell, or make classes and code
DENIED_NAMES = _words("""
    f_globals f_locals f_back f_builtins f_code tb_frame gi_frame cr_frame ag_frame co_code co_consts
    as_strided ctypeslib byte_bounds pythonapi PyObj_FromPtr py_object memmove memset memcpy
    from_address addressof _getframe _current_frames settrace setprofile addaudithook walk_stack walk_tb
    currentframe sympify parse_expr lambdify read_pickle attrgetter methodcaller run_cell set_custom_exc
    ast_transformers input_transformers_post input_transformers_cleanup user_ns user_global_ns new_class
    prepare_class FunctionType CodeType LambdaType make_dataclass make_class resolve_name ANY approx""")
SAFE_SYS = _words("""
    version version_info platform maxsize float_info int_info stdout stderr getsizeof getrecursionlimit
    setrecursionlimit byteorder exit argv path executable implementation float_repr_style hexversion""")
ALLOWED_MAGICS = {"time", "timeit", "capture"}  # their code is checked like a cell's
SETTING_MAGICS = {("matplotlib", None), ("autoreload", None), ("load_ext", "autoreload")}  # run no code
HARMLESS_CALLS = _words("print repr str dir help type id isinstance hasattr getattr display")
STORE_OK = ("pandas.options.", "matplotlib.rcParams", "matplotlib.pyplot.rcParams")  # settings, not functions
MAX_FILE = 1 << 20
_IMPORTABLE: dict[str, bool] = {}


@dataclass(frozen=True)
class Finding:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class Context:
    """What the notebook's read-only cells provide, and what its test cells read."""

    instructor_names: set[str]
    instructor_imports: dict[str, str]  # name -> the module (or object) path it is bound to
    test_reads: set[str]
    local_modules: set[str]  # top-level modules the submission ships


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _text(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _imports(tree: ast.AST) -> dict[str, str]:
    """Every name an import binds (anywhere in the code), with the dotted path it is bound to."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                found[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name != "*":
                    found[a.asname or a.name] = f"{node.module}.{a.name}"
    return found


def _reads(tree: ast.AST) -> set[str]:
    """Names a cell reads that it does not bind itself: taken from earlier cells or builtins."""
    loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return loads - top_level_names(tree)


def _importable(name: str) -> bool:
    """Installed where the kernel imports from (the submission's own folder aside)?"""
    if name not in _IMPORTABLE:
        here = {"", ".", os.getcwd()}
        path = [p for p in sys.path if p not in here]
        _IMPORTABLE[name] = (
            name in sys.builtin_module_names
            or name in sys.stdlib_module_names
            or importlib.machinery.PathFinder.find_spec(name, path) is not None
        )
    return _IMPORTABLE[name]


class _Scan(ast.NodeVisitor):
    """One unit of learner code (a cell or a file): findings as (line, what)."""

    def __init__(self, context: Context, tree: ast.Module):
        self.context, self.found = context, []
        self.aliases = {**context.instructor_imports, **_imports(tree)}
        self.scopes: list[set[str]] = []  # locals of the enclosing functions and comprehensions
        self.classes = 0  # inside a class body (its names are the class's)
        self._globals: set[str] = set()  # names a `global` statement of the enclosing function makes global
        self.extra: list[tuple[int, str]] = []  # code strings of allowed magics, checked like cells
        self._alias_assignments(tree)

    def _alias_assignments(self, tree) -> None:
        """``m = np``, ``t = np.testing``: stores through m or t change the module too."""
        for _ in range(3):
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Assign)
                    and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                ):
                    path = self.path_of(node.value)
                    if path:
                        self.aliases.setdefault(node.targets[0].id, path)

    def add(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0), what))

    def is_global(self, name: str) -> bool:
        return not any(name in scope for scope in self.scopes)

    def path_of(self, node: ast.AST) -> str:
        """'numpy.testing.assert_allclose' for np.testing.assert_allclose, when np is a module alias."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases and self.is_global(node.id):
            return ".".join([self.aliases[node.id], *reversed(parts)])
        return ""

    def root(self, node: ast.AST) -> ast.Name | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node if isinstance(node, ast.Name) else None

    # --- names, dunders, strings -------------------------------------------------------------------

    def dunder(self, node: ast.AST, name: str | None) -> None:
        if (
            name
            and name.startswith("__")
            and name.endswith("__")
            and len(name) > 4
            and name not in SAFE_DUNDERS
        ):
            if self.classes and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Name)):
                self.add(node, f"a class defines {name}: its values answer tests themselves")
            else:
                self.add(node, f"uses {name}")

    def visit_Expr(self, node: ast.Expr) -> None:
        if not (
            isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        ):  # a docstring does nothing
            self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, (str, bytes)):
            text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
            for name in _DUNDER.findall(text):
                if name not in SAFE_DUNDERS:
                    self.add(node, f"names {name} in a string")
                    break

    def visit_Name(self, node: ast.Name) -> None:
        self.dunder(node, node.id)
        if isinstance(node.ctx, ast.Load) and self.is_global(node.id):
            if node.id in REFLECTIVE:
                self.add(node, f"{REFLECTIVE[node.id]} ({node.id})")
            elif node.id in ("getattr", "type"):
                self.add(node, f"uses {node.id} in a way that can reach any attribute or make a class")
        elif isinstance(node.ctx, (ast.Store, ast.Del)) and self.at_top(node.id):
            self.rebinding(node)

    def at_top(self, name: str) -> bool:
        """Does binding ``name`` here bind the notebook's global?"""
        return (not self.scopes and not self.classes) or name in self._globals

    def rebinding(self, node: ast.AST, name: str = "", imported: str = "") -> None:
        name, context = name or node.id, self.context
        if name not in context.test_reads:
            return
        if name in context.instructor_names:
            if imported and context.instructor_imports.get(name) == imported:
                return  # the same import again
            self.add(node, f"rebinds {name}, which the tests take from a read-only cell")
        elif hasattr(builtins, name):
            self.add(node, f"rebinds the builtin {name}, which the tests use")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        inner = node.value
        if (
            node.attr in ("__name__", "__qualname__")
            and isinstance(inner, ast.Attribute)
            and inner.attr == "__class__"
        ):
            return self.visit(inner.value)  # x.__class__.__name__: a name to print
        self.dunder(node, node.attr)
        if node.attr in DENIED_NAMES:
            self.add(node, f"uses .{node.attr}")
        path = self.path_of(node)
        if path:
            self.module_path(node, path)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.store(node)
        self.generic_visit(node)

    def module_path(self, node: ast.AST, path: str) -> None:
        top = path.split(".")[0]
        if top in DENIED_MODULES and not path.startswith(ALLOWED_SUBMODULES):
            self.add(node, f"uses {path}")
        elif top == "sys" and path.count(".") >= 1 and path.split(".")[1] not in SAFE_SYS:
            self.add(node, f"uses {'.'.join(path.split('.')[:2])}")
        elif path in ("joblib.load", "torch.load"):
            self.add(node, f"loads a pickle ({path}), which can run code")

    def store(self, target: ast.AST) -> None:
        """An attribute or item stored into something the tests may use."""
        root = self.root(target)
        if root is None or not self.is_global(root.id):
            return
        path = self.path_of(target.value if isinstance(target, ast.Subscript) else target) or ""
        if path.startswith(STORE_OK):
            return
        context = self.context
        provided = root.id in context.instructor_names and root.id in context.test_reads
        if provided or root.id in self.aliases or hasattr(builtins, root.id):
            self.add(target, f"changes {ast.unparse(target)[:60]}, which the tests may rely on")

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.store(node)
        self.generic_visit(node)

    # --- definitions and scopes ------------------------------------------------------------------

    def visit_FunctionDef(self, node) -> None:
        self.dunder(node, node.name)
        if self.at_top(node.name):
            self.rebinding(node, node.name)
        for d in node.decorator_list + [a for a in node.args.defaults + node.args.kw_defaults if a]:
            self.visit(d)
        args = node.args
        params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a}
        for a in args.posonlyargs + args.args + args.kwonlyargs:
            self.dunder(a, a.arg)
        declared = {n for s in ast.walk(node) if isinstance(s, (ast.Global, ast.Nonlocal)) for n in s.names}
        assigned = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        assigned |= {
            a.asname or a.name.split(".")[0]
            for s in ast.walk(node)
            if isinstance(s, (ast.Import, ast.ImportFrom))
            for a in s.names
        }
        saved_classes, saved_globals = self.classes, self._globals
        self.classes = 0
        self._globals = saved_globals | {
            n for s in ast.walk(node) if isinstance(s, ast.Global) for n in s.names
        }
        self.scopes.append((params | assigned) - declared)
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()
        self.classes, self._globals = saved_classes, saved_globals

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        args = node.args
        for default in [a for a in args.defaults + args.kw_defaults if a]:
            self.visit(default)
        self.scopes.append({a.arg for a in args.posonlyargs + args.args + args.kwonlyargs})
        self.visit(node.body)
        self.scopes.pop()

    def visit_comprehension_scope(self, node) -> None:
        """A comprehension's targets are its own: binding them binds no global."""
        self.scopes.append(
            {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
        )
        self.generic_visit(node)
        self.scopes.pop()

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_comprehension_scope

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.dunder(node, node.name)
        if self.at_top(node.name):
            self.rebinding(node, node.name)
        for k in node.keywords:
            if k.arg == "metaclass":
                self.add(node, f"class {node.name} has a metaclass")
        for base in node.bases:
            name = (
                base.id
                if isinstance(base, ast.Name)
                else base.attr
                if isinstance(base, ast.Attribute)
                else ""
            )
            if name == "type" or name.endswith("Meta"):
                self.add(node, f"class {node.name} is a metaclass")
        for item in node.bases + node.keywords + node.decorator_list:
            self.visit(item)
        self.classes += 1
        for stmt in node.body:
            self.visit(stmt)
        self.classes -= 1

    def visit_arg(self, node: ast.arg) -> None:
        self.dunder(node, node.arg)

    def visit_keyword(self, node: ast.keyword) -> None:
        self.dunder(node, node.arg)
        self.generic_visit(node)

    # --- imports and calls -----------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.imported(node, a.name, a.name)
            name = a.asname or a.name.split(".")[0]
            if self.at_top(name):
                self.rebinding(node, name, a.name if a.asname else name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.add(node, "imports from its own package")
            return
        for a in node.names:
            if a.name in DENIED_NAMES:
                self.add(node, f"imports {a.name} from {node.module}")
            self.dunder(node, a.name)
            self.imported(node, node.module or "", f"{node.module}.{a.name}")
            if a.name != "*" and self.at_top(a.asname or a.name):
                self.rebinding(node, a.asname or a.name, f"{node.module}.{a.name}")

    def imported(self, node: ast.AST, module: str, path: str) -> None:
        top = module.split(".")[0]
        if top in DENIED_MODULES and not path.startswith(ALLOWED_SUBMODULES):
            self.add(node, f"imports {module}")
        elif top == "sys" and path.count(".") and path.split(".")[1] not in SAFE_SYS:
            self.add(node, f"imports {path}")
        elif top not in self.context.local_modules and not _importable(top):
            self.add(node, f"imports {top}, which is neither installed nor in the submission")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and self.is_global(func.id):
            if func.id == "getattr" and len(node.args) >= 2 and _plain_name(node.args[1]):
                return self.visit_args(node)
            if func.id == "type" and len(node.args) == 1 and not node.keywords:
                return self.visit_args(node)
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if len(node.args) == 3 and (name == "type" or name.endswith(("Meta", "meta"))):
            self.add(node, "makes a class at run time")
        if self.magic(node):
            return None
        if (
            name in ("eval", "query")
            and isinstance(func, ast.Attribute)
            and node.args
            and not isinstance(node.args[0], (ast.Constant, ast.JoinedStr))
        ):
            self.add(node, f"evaluates a computed string (.{name})")
        for k in node.keywords:
            if k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and not k.value.value):
                self.add(node, "loads a pickle (allow_pickle), which can run code")
        if name not in HARMLESS_CALLS:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if (
                    isinstance(arg, ast.Name)
                    and arg.id in self.aliases
                    and self.is_global(arg.id)
                    and "." not in self.aliases[arg.id]
                ):
                    self.add(node, f"passes the module {arg.id} to a function")
        self.generic_visit(node)

    def visit_args(self, node: ast.Call) -> None:
        for item in [*node.args, *node.keywords]:
            self.visit(item)

    def magic(self, node: ast.Call) -> bool:
        """IPython's %time, %timeit, %matplotlib (their code checked too); any other magic is reported."""
        func = node.func
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            return False
        args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
        magic = args[0] if func.attr in ("run_line_magic", "run_cell_magic") and args else None
        if magic in ALLOWED_MAGICS:
            self.extra += [(node.lineno, code) for code in args[1:] if isinstance(code, str)]
            return True
        if (magic, None) in SETTING_MAGICS or (magic, str(args[1:2] and args[1]).strip()) in SETTING_MAGICS:
            return True
        if func.attr in ("run_line_magic", "run_cell_magic"):
            self.add(node, f"runs the IPython magic %{args[0] if args and isinstance(args[0], str) else '?'}")
            return True
        if func.attr in ("system", "getoutput"):
            self.add(node, "runs a shell command through IPython")
            return True
        return False  # any other use of the shell: get_ipython itself is reported


def _plain_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and not node.value.startswith("__")


def parse(source: str) -> ast.Module | None:
    """A cell as Python, magics turned into calls as IPython runs them (None: not Python at all)."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ImportError, ValueError):
        return None


def scan(source: str, context: Context, where: str, depth: int = 0) -> list[Finding]:
    """The findings of one unit of learner code; ``where`` names it ("cell answer", "helpers.py")."""
    tree = parse(source)
    if tree is None:
        return []  # it fails to run too
    visitor = _Scan(context, tree)
    visitor.visit(tree)
    found = [
        Finding(f"{where}, line {line}" if line and not depth else where, what)
        for line, what in visitor.found
    ]
    for line, code in visitor.extra if depth < 3 else ():
        found += scan(code, context, f"{where}, line {line} (%magic)" if not depth else where, depth + 1)
    return found


def context_of(cells: list) -> Context:
    """From the instructor's cells (read-only and tests) of a notebook."""
    names, imports, reads = set(), {}, set()
    for cell in cells:
        tree = parse_cell(_text(cell))
        if tree is None:
            continue
        names |= top_level_names(tree)
        imports.update(_imports(tree))
        if _meta(cell).get("grade"):
            reads |= _reads(tree)
    return Context(names, imports, reads, set())


def instructor_cells(nb) -> tuple[list, list]:
    """A sanitized notebook's code cells: the instructor's (read-only and test cells, which nbgrader's
    OverwriteCells put back as the gradebook has them, dropping the grade_id of any it does not
    know) and the learner's (answer cells, and any cell they added)."""
    mine, theirs = [], []
    for cell in nb.cells:
        meta = _meta(cell)
        if cell.cell_type == "code":
            (
                mine if meta.get("grade_id") and meta.get("locked") and not meta.get("solution") else theirs
            ).append(cell)
    return mine, theirs


def findings(nb, folder: Path | None = None, source_folder: Path | None = None) -> list[Finding]:
    """Every finding in one executed notebook and in the code files of its submission's ``folder``."""
    fixed, learner = instructor_cells(nb)
    context = context_of(fixed)
    files, found = _code_files(folder, source_folder) if folder else ({}, [])
    context.local_modules = {Path(f).parts[0].removesuffix(".py") for f in files}
    for index, cell in enumerate(nb.cells):
        if any(cell is c for c in learner):
            label = _meta(cell).get("grade_id")
            found += scan(_text(cell), context, f"cell {label}" if label else f"cell {index + 1}")
    for relative, text in files.items():
        found += scan(text, context, relative)
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = out.get("evalue", "") if out.get("output_type") == "error" else out.get("text", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            if MARK in text:
                line = text[text.index(MARK) :].splitlines()[0]
                found.append(Finding("the sandbox", line.removeprefix(MARK).strip()))
    return list(dict.fromkeys(found))


def _code_files(folder: Path, source_folder: Path | None) -> tuple[dict[str, str], list[Finding]]:
    """The submission's code files that are not the instructor's (relative path -> text), and
    findings for what cannot be checked: compiled code, IPython settings, a file over 1 MB, a
    module that shadows an installed one."""
    files, found = {}, []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        relative = str(path.relative_to(folder))
        parts = Path(relative).parts
        settings = any(p in (".ipython", ".jupyter") for p in parts) or re.match(
            r"(ipython|jupyter)_.*config", path.name
        )
        if not (settings or path.suffix in (".py", ".ipy", ".pyc", ".pyo", ".so", ".pyd", ".dylib", ".pth")):
            continue
        theirs = source_folder / relative if source_folder else None
        data = path.read_bytes() if path.stat().st_size <= MAX_FILE else None
        if theirs and theirs.is_file() and data is not None and theirs.read_bytes() == data:
            continue  # the instructor's own file, copied by nbgrader
        if settings:
            found.append(
                Finding(
                    relative,
                    "IPython or Jupyter settings in the submission, which run code as the kernel starts",
                )
            )
        elif path.suffix not in (".py", ".ipy"):
            found.append(Finding(relative, "compiled code in the submission, which Python may load unread"))
        elif data is None:
            found.append(Finding(relative, "a code file too large to check"))
        else:
            files[relative] = data.decode("utf-8", errors="replace")
            if len(parts) == 1 and path.suffix == ".py" and _importable(path.stem):
                found.append(Finding(relative, f"shadows the installed module {path.stem}"))
    return files, found


def withhold(nb, course, student: str, assignment: str, name: str) -> list[str]:
    """Course.record's step, before nbgrader saves the grades: with findings, every autograded test
    cell of ``nb`` fails (an error output naming them), the notebook is flagged in the gradebook,
    and the note for the learner and the instructor is returned."""
    folder = course.autograded(student, assignment)
    source_folder = Path(course.coursedir.format_path(course.coursedir.source_directory, ".", assignment))
    found = findings(nb, folder if folder.is_dir() else None, source_folder)
    if not found:
        return []
    shown = "; ".join(str(f) for f in found[:6]) + (f"; and {len(found) - 6} more" if len(found) > 6 else "")
    note = f"autograded points withheld for the instructor to review: {shown}"
    for cell in nb.cells:
        meta = _meta(cell)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cell.outputs.insert(
                0, nbformat.v4.new_output("error", ename=HELD, evalue=note, traceback=[f"{HELD}: {note}"])
            )
    with Gradebook(course.db_url, course.coursedir.course_id) as gb:
        try:
            gb.find_submission_notebook(Path(name).stem, assignment, student).flagged = True
            gb.db.commit()
        except MissingEntry:
            pass
    return [note]
