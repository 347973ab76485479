"""The in-kernel half of the defence against equality cheats: an audit hook (PEP 578) in each graded
kernel, added before any learner code runs (``sandbox._run_kernel``) and, like every audit hook,
impossible to remove. The other half, which nothing in the kernel can touch, is the grader's
static check of the learner's code (``cheats.py``); this hook refuses, at run time, what would let
code get round that check unseen.

Refused when the Python frame asking is the learner's (a cell that is not one of the notebook's
read-only or test cells, a file of the submission, code compiled from a string), after stepping
over ``inspect``, ``functools``, ``runpy``... that only relay a call (events as they fire on
CPython 3.11, checked by tests/grading_hostile/test_equality.py):

- ``compile``, ``exec``: running code built from a string (exec, eval, compile): code no one read;
- ``sys._getframe``, ``sys._current_frames``, ``object.__getattr__`` of tb_frame, gi_frame,
  cr_frame, ag_frame, ``gc.get_objects``/``get_referrers``/``get_referents``, ``sys.settrace``,
  ``sys.setprofile``: the ways to another frame's globals, to the shell, or to this hook's state;
- ``object.__setattr__`` (a ``__class__`` assigned; a function's ``__code__``, ``__defaults__`` or
  ``__kwdefaults__`` replaced: check()'s tolerances, say), ``code.__new__``, ``function.__new__``,
  ``sys.addaudithook``;

and whoever asks: opening a process's memory (``/proc/<pid>/mem``) for writing, and unpickling a
reference to exec, getattr, setattr, os, subprocess and the like (a pickle is code).

A refusal raises PermissionError("[ailys-guard] ...") in the learner's code; after one, every test
cell fails with that reason (its autograded points are withheld), and the grader flags the
submission for the instructor. Before each test cell, the hook also checks that the builtins,
``grading.checks`` and NumPy's comparisons a test uses are still the objects they were.

What it cannot see, since CPython raises no event for it: a class that defines ``__eq__`` (class
statement or ``type()``), ``setattr`` on a class, a store into a module (``np.allclose = ...``),
ctypes (loaded in every kernel) writing memory, a test's tools replaced while the test runs (by the
learner's function it calls). Those are the static check's; and code running in the kernel's own
process can, with enough effort (memory writes), undo anything this hook does.
"""

from __future__ import annotations

import builtins
import json
import math
import os
import re
import sys
import threading
from pathlib import Path, PosixPath

CHECKOUT = str(Path(__file__).resolve().parents[2])

MARK = "[ailys-guard]"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# refused when the learner's frame asks
_LEARNER_EVENTS = _words("""
    compile exec sys._getframe sys._current_frames gc.get_objects gc.get_referrers gc.get_referents
    sys.settrace sys.setprofile object.__setattr__ object.__getattr__ code.__new__ function.__new__
    sys.addaudithook""")
WATCHED = _LEARNER_EVENTS | {"open", "pickle.find_class"}
_FRAME_ATTRS = _words("tb_frame gi_frame cr_frame ag_frame")
# stdlib modules that only relay a call: the frame that matters is their caller's (not timeit.py,
# which compiles its own template even to time a function)
_RELAYS = _words("""
    inspect.py functools.py runpy.py code.py codeop.py doctest.py cProfile.py profile.py trace.py
    pydoc.py bdb.py pdb.py copyreg.py""")
_MEM = re.compile(r"/proc/\d+(/task/\d+)?/mem")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR
# what a pickle may not name: the code-running parts of Python
_PICKLE_MODULES = _words("""
    os posix nt subprocess sys importlib ctypes gc inspect types code codeop runpy pty socket shutil
    pickle _pickle marshal pydoc pkgutil timeit IPython ipykernel grading __builtin__""")
_PICKLE_BUILTINS = _words(
    "object set frozenset list dict tuple bytearray bytes str int float complex bool slice range"
)
_TRUSTED, _LEARNER, _RELAY = 0, 1, 2
# what test cells compare with: replaced, they would say yes to anything
_BUILTINS = sorted(
    _words("""
    isinstance issubclass type len abs float int bool str all any sum min max round repr getattr hasattr
    sorted set list tuple dict""")
)
_NUMPY = (
    "allclose",
    "isclose",
    "array_equal",
    "array_equiv",
    "testing",
    "testing.assert_allclose",
    "testing.assert_array_equal",
    "testing.assert_equal",
    "testing.assert_almost_equal",
)


def _fixed_cells(workdir: str) -> tuple[set[str], set[str]]:
    """Sources of the notebooks' read-only cells, and of their test cells (the restored originals)."""
    fixed, tests = set(), set()
    for path in sorted(Path(workdir).glob("*.ipynb")):
        with open(path, encoding="utf-8", errors="replace") as f:
            cells = json.load(f).get("cells", [])
        for cell in cells:
            meta = (cell.get("metadata") or {}).get("nbgrader") or {}
            if cell.get("cell_type") != "code" or not meta.get("locked") or meta.get("solution"):
                continue
            source = cell.get("source", "")
            source = ("".join(source) if isinstance(source, list) else str(source)).strip()
            fixed.add(source)
            if meta.get("grade"):
                tests.add(source)
    return fixed, tests


def _trusted_prefixes(workdir: str) -> tuple[tuple[str, ...], str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.join(CHECKOUT, "grading")}
    prefixes = set()
    for root in roots:
        for form in (root, os.path.realpath(root)):
            prefixes.add(form.rstrip("/") + "/")
    return tuple(sorted(prefixes)), os.path.realpath(workdir).rstrip("/") + "/"


def _snapshot(_checks) -> list[tuple[object, str, object]]:
    """(owner, name, object) for what a test relies on; compared by identity before each test cell."""
    items = [(builtins, name, getattr(builtins, name)) for name in _BUILTINS]
    items += [(sys.modules, "grading.checks", _checks), (math, "isclose", math.isclose)]
    items += [(_checks, name, value) for name, value in vars(_checks).items() if not name.startswith("__")]
    numpy = sys.modules.get("numpy")
    for dotted in _NUMPY if numpy is not None else ():
        owner, _, name = dotted.rpartition(".")
        where = getattr(numpy, owner) if owner else numpy
        if hasattr(where, name):
            items.append((where, name, getattr(where, name)))
    for fn in (_checks.check, _checks.check_type):
        items += [(fn, "__code__", fn.__code__), (fn, "__kwdefaults__", fn.__kwdefaults__)]
    return items


def install(workdir: str) -> None:
    """Add the hook. Called once, in the kernel, just before IPython starts; a failure here leaves
    the kernel unguarded (the grader's static check still runs), said in the kernel's log."""
    try:
        import grading.checks  # the real one, in sys.modules before any learner code could put another there

        fixed, tests = _fixed_cells(workdir)
        prefixes, own = _trusted_prefixes(workdir)
        sys.addaudithook(_hook(fixed, tests, prefixes, own, _snapshot(grading.checks), grading.checks))
    except Exception as error:  # noqa: BLE001 - never stop a kernel from starting
        print(f"{MARK} not installed: {error!r}", file=sys.stderr)


def _hook(fixed: set[str], tests: set[str], prefixes: tuple[str, ...], own: str, snapshot: list, _checks):
    getframe, local, realpath, basename = sys._getframe, threading.local(), os.path.realpath, os.path.basename
    kinds: dict[str, int] = {}
    fixed_files: set[str] = set()  # cells IPython compiled from a read-only cell's source
    test_files: set[str] = set()
    refused: list[str] = []
    kwdefaults = {id(fn): dict(fn.__kwdefaults__ or {}) for fn in (_checks.check, _checks.check_type)}
    getattribute = object.__getattribute__

    def kind(filename: str) -> int:
        found = kinds.get(filename)
        if found is None:
            if filename in fixed_files:
                found = _TRUSTED
            elif filename.startswith(own) or not (
                filename.startswith(prefixes) or filename.startswith("<frozen ")
            ):
                found = _LEARNER
            else:
                found = _RELAY if basename(filename) in _RELAYS else _TRUSTED
            kinds[filename] = found
        return found

    def from_learner(frame) -> bool:
        while frame is not None:
            k = kind(frame.f_code.co_filename)
            if k != _RELAY:
                return k == _LEARNER
            frame = frame.f_back
        return False

    def tampered() -> str:
        for owner, name, value in snapshot:
            if owner is sys.modules:
                current = sys.modules.get(name)
            elif name in ("__code__", "__kwdefaults__"):
                current = getattribute(owner, name)
                if name == "__kwdefaults__":
                    if (current or {}) != kwdefaults[id(owner)]:
                        return f"{owner.__name__}'s default tolerances were changed"
                    continue
            else:
                current = getattr(owner, name, None)
            if current is not value:
                where = getattr(owner, "__name__", "sys.modules")
                return f"{where}.{name} was replaced"
        return ""

    def judge(event: str, args: tuple) -> str:
        if event == "open":
            return _mem_write(args, realpath)
        if event == "pickle.find_class":
            module, name = args
            root = str(module).split(".")[0]
            if root in _PICKLE_MODULES or root == "builtins" and name not in _PICKLE_BUILTINS:
                return f"unpickle a reference to {module}.{name}"
            return ""
        if event == "compile":
            source, filename = args
            if type(source) in (bytes, str) and type(filename) is str:
                text = (source.decode("utf-8", "replace") if type(source) is bytes else source).strip()
                if text in fixed:
                    fixed_files.add(filename)
                    kinds.pop(filename, None)
                    if text in tests:
                        test_files.add(filename)
        elif event == "exec" and getattribute(args[0], "co_filename") in test_files:
            why = tampered()
            if why and why not in refused:
                refused.append(why)
            if refused:
                return f"no points for this test: {refused[0]}"
            return ""
        elif event == "object.__getattr__" and args[1] not in _FRAME_ATTRS:
            return ""
        if not from_learner(getframe(2)):
            return ""
        return _describe(event, args)

    def hook(event: str, args: tuple) -> None:
        if event not in WATCHED or getattr(local, "busy", False):
            return
        local.busy = True
        try:
            why = judge(event, args)
        finally:
            local.busy = False
        if why:
            if not why.startswith("no points"):
                refused.append(f"the submission's code tried to {why} (refused)")
            raise PermissionError(f"{MARK} {why}")

    return hook


def _mem_write(args: tuple, realpath) -> str:
    """Opening a process's memory to write into it (in-process code patching)."""
    path, mode, flags = (tuple(args) + (None, None))[:3]
    writes = (
        any(c in mode for c in "wax+")
        if isinstance(mode, str)
        else isinstance(flags, int) and flags & _WRITE_FLAGS
    )
    if not writes or isinstance(path, int):
        return ""
    if type(path) is PosixPath:
        path = str(path)
    if type(path) is bytes:
        path = os.fsdecode(path)
    if type(path) is not str:
        return "open a file for writing through a path object of its own"
    return "write into a process's memory (/proc/.../mem)" if _MEM.fullmatch(realpath(path)) else ""


_DESCRIPTIONS = {
    "compile": "compile code from a string",
    "exec": "run code from a string (exec or eval)",
    "sys._getframe": "reach another frame (sys._getframe)",
    "sys._current_frames": "reach other frames",
    "gc.get_objects": "search the interpreter's objects (gc)",
    "gc.get_referrers": "search the interpreter's objects (gc)",
    "gc.get_referents": "search the interpreter's objects (gc)",
    "sys.settrace": "trace the execution (sys.settrace)",
    "sys.setprofile": "trace the execution (sys.setprofile)",
    "code.__new__": "make a code object",
    "function.__new__": "make a function from a code object",
    "sys.addaudithook": "add an audit hook",
}
_type_name = type.__dict__["__name__"].__get__  # read from the class itself: no code of the learner runs


def _describe(event: str, args: tuple) -> str:
    if event == "object.__setattr__":
        return f"set {args[1]} on a {_type_name(type(args[0]))} object"
    if event == "object.__getattr__":
        return f"read {args[1]} (another frame)"
    return _DESCRIPTIONS.get(event, event)
