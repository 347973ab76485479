"""Strict comparisons for test cells: ``check(actual, expected)`` in place of ``assert actual == expected``.

``assert square(3) == 9`` asks the learner's value whether it equals 9: an object whose ``__eq__``
always says yes passes, and so does one whose ``__bool__``, ``__sub__`` or ``__abs__`` lies to
``assert result`` or ``assert abs(x - 9) < 1e-6``. ``check`` never asks the value anything. It reads
the value's exact type with ``type()`` (which a class cannot lie about, unlike ``isinstance``
through a ``__class__`` property), accepts only types that Python, NumPy or pandas implement (a
subclass of them is refused: it may override their operators), then compares with those types' own
code, recursing into lists, tuples, dicts and sets so that no element is ever compared the other way
round (Python's reflected comparison would ask a hostile element). Floats are compared with a
tolerance. A mismatch raises AssertionError with a message a learner can act on:
``expected int 9, got AlwaysEqual``.

In a test cell::

    from grading.checks import check, check_type
    check(square(3), 9)
    check(distances(X, x), np.array([0.0, 5.0]))          # type, shape, dtype kind, values
    check(rate, 0.5, rtol=1e-3)
    labels = [check_type(knn_predict(X, y, p, 3), int) for p in points]  # int or a NumPy integer

Importable in learners' kernels (the hub's environment) and in graded kernels, where the grading
sandbox imports it before any learner code runs (grading/autograde/guard.py).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
import sys
from fractions import Fraction

# Taken now, before a learner's code could replace a builtin.
_type, _len, _repr, _float, _int, _bool, _sorted, _range = (type, len, repr, float, int, bool, sorted, range)
_mro = type.__dict__["__mro__"].__get__  # the real MRO, whatever a metaclass says
_type_name = type.__dict__["__name__"].__get__
_module = type.__dict__["__module__"].__get__
_class_dict = type.__dict__["__dict__"].__get__
_getattribute = object.__getattribute__
_dict_keys, _dict_getitem, _dict_len = dict.keys, dict.__getitem__, dict.__len__
_list_getitem, _list_len = list.__getitem__, list.__len__
_tuple_getitem, _tuple_len = tuple.__getitem__, tuple.__len__

try:
    import numpy as _np
except ImportError:  # pragma: no cover - every course environment has NumPy
    _np = None

if _np is not None:
    _NP_SCALARS = frozenset(t for t in set(_np.sctypeDict.values()) if _type(t) is _type)
    _ndarray, _np_isclose, _np_array_equal = _np.ndarray, _np.isclose, _np.array_equal
    _np_argwhere, _np_count_nonzero, _np_asarray = _np.argwhere, _np.count_nonzero, _np.asarray
else:  # pragma: no cover
    _NP_SCALARS, _ndarray = frozenset(), None

_NONE = _type(None)
# exact types whose == is C code comparing plain data: safe once both sides are of that very type
_PLAIN = frozenset(
    {_dt.date, _dt.datetime, _dt.time, _dt.timedelta, _dt.timezone, range, bytes, bytearray}
    | {t for t in _NP_SCALARS if _np.dtype(t).kind in "MmS"}
)
_CONTAINERS = {list: "list", tuple: "tuple", dict: "dict", set: "set", frozenset: "frozenset"}
RTOL, ATOL = 1e-7, 1e-12


def _kind(value) -> str | None:
    """'bool', 'int', 'float', 'complex', 'str' for a scalar of a trusted type, else None."""
    t = _type(value)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float"
    if t is complex:
        return "complex"
    if t is str:
        return "str"
    if t in _NP_SCALARS:
        code = _np.dtype(t).kind
        return {"b": "bool", "i": "int", "u": "int", "f": "float", "c": "complex", "U": "str"}.get(code)
    return None


def _name(t) -> str:
    """A class's name, read from the class itself (no code of the class runs)."""
    name, module = _type_name(t), _module(t)
    if _type(module) is str and module.split(".")[0] in ("numpy", "pandas"):
        return f"{module.split('.')[0]}.{name}"
    return name if _type(name) is str else "an object"


def _trusted_base(t) -> str:
    for base in _mro(t)[1:]:
        if (
            base in _CONTAINERS
            or base in (int, float, str, complex, bool)
            or base in _NP_SCALARS
            or base is _ndarray
        ):
            return _name(base)
    return ""


def _short(value) -> str:
    """A trusted value, shown briefly."""
    kind = _kind(value)
    if kind == "float":
        return _repr(_float(value))
    if kind == "int":
        return _repr(_int(value))
    if kind == "bool":
        return _repr(_bool(value))
    if kind in ("str", "complex"):
        text = _repr(str(value) if kind == "str" else complex(value))
        return text if _len(text) <= 60 else text[:57] + "..."
    if value is None:
        return ""
    t = _type(value)
    if t is _ndarray:
        return f"of shape {tuple(value.shape)} and dtype {value.dtype}"
    if t in _CONTAINERS:
        return f"of {_len(value)} items"
    return ""


def describe(value) -> str:
    """'int 9', 'float 0.5', 'list of 3 items', 'AlwaysEqual', 'MyInt (a subclass of int)'."""
    t = _type(value)
    if value is None:
        return "None"
    if _kind(value) or t in _CONTAINERS or t is _ndarray:
        kind = {"int": "int", "float": "float", "bool": "bool", "str": "str", "complex": "complex"}.get(
            _kind(value)
        )
        shown = _short(value)
        label = kind or ("a NumPy array" if t is _ndarray else _CONTAINERS[t])
        return f"{label} {shown}".strip()
    base = _trusted_base(t)
    return f"{_name(t)} (a subclass of {base}, which check does not trust)" if base else _name(t)


def _fail(where: str, message: str):
    raise AssertionError(f"{where}: {message}" if where else message)


def check(actual, expected, *, rtol: float = RTOL, atol: float = ATOL, exact_type: bool = False) -> None:
    """Raise AssertionError unless ``actual`` is ``expected``: same kind of value, same contents.

    Kinds: an expected int wants an int (or a NumPy integer); an expected float accepts an int or
    a float, within ``rtol``/``atol`` (NaN equals NaN); bool, str, None, containers and arrays want
    the same kind. ``exact_type=True`` also refuses int for float, NumPy scalars for Python ones.
    """
    _compare(actual, expected, "", rtol, atol, exact_type)


def check_type(value, *types, what: str = "the value"):
    """``value`` if its exact type is one of ``types`` (int, float also take NumPy's), else AssertionError.

    The isinstance test a ``__class__`` property cannot fool: ``check_type(result, float)``.
    """
    t = _type(value)
    for wanted in types:
        if t is wanted or (wanted in (int, float, bool, complex, str) and _kind(value) == wanted.__name__):
            return value
    names = " or ".join(_name(w) for w in types)
    _fail("", f"{what} should be {names}, got {describe(value)}")


def _compare(actual, expected, where: str, rtol: float, atol: float, exact: bool) -> None:
    te, ta = _type(expected), _type(actual)
    if exact and ta is not te:
        _fail(where, f"expected {describe(expected)}, got {describe(actual)}")
    want = _kind(expected)
    if want is not None:
        return _compare_scalar(actual, expected, want, where, rtol, atol)
    if expected is None or te is _type(Ellipsis) or _is_enum_member(expected):
        if actual is not expected:
            _fail(
                where,
                f"expected {'None' if expected is None else _repr(expected)}, got {describe(actual)}",
            )
        return None
    if te in _CONTAINERS:
        if ta is not te:
            _fail(where, f"expected a {_CONTAINERS[te]}, got {describe(actual)}")
        return _compare_container(actual, expected, te, where, rtol, atol, exact)
    if te is _ndarray:
        return _compare_array(actual, expected, where, rtol, atol, exact)
    if _is_pandas(te):
        return _compare_pandas(actual, expected, where, rtol, atol, exact)
    if ta is not te:
        _fail(where, f"expected {_name(te)}, got {describe(actual)}")
    if te is Fraction:  # pure Python, with writable slots: compare its two ints instead
        _compare(actual.numerator, expected.numerator, f"{where}.numerator", rtol, atol, True)
        return _compare(actual.denominator, expected.denominator, f"{where}.denominator", rtol, atol, True)
    if te in _PLAIN:
        if not _plain_ok(actual):
            _fail(
                where, f"expected {_repr(expected)}, got a {_name(te)} with a time zone check does not trust"
            )
        if expected != actual:
            _fail(where, f"expected {_repr(expected)}, got {_repr(actual)}")
        return None
    if "__dataclass_fields__" in _class_dict(te):  # the instructor's dataclass: compare field by field
        for f in dataclasses.fields(te):
            _compare(
                _getattribute(actual, f.name),
                _getattribute(expected, f.name),
                f"{where}.{f.name}",
                rtol,
                atol,
                exact,
            )
        return None
    raise TypeError(
        f"check() cannot compare {_name(te)} values safely: compare their attributes or convert them"
    )


def _plain_ok(value) -> bool:
    """A datetime or time compares through its tzinfo's methods: only Python's own timezone is trusted."""
    tz = _getattribute(value, "tzinfo") if _type(value) in (_dt.datetime, _dt.time) else None
    return tz is None or _type(tz) is _dt.timezone


def _is_enum_member(value) -> bool:
    return enum.Enum in _mro(_type(value))


def _compare_scalar(actual, expected, want: str, where: str, rtol: float, atol: float) -> None:
    got = _kind(actual)
    accepted = {
        "bool": ("bool",),
        "int": ("int",),
        "float": ("int", "float"),
        "complex": ("int", "float", "complex"),
        "str": ("str",),
    }[want]
    if got not in accepted:
        _fail(where, f"expected {describe(expected)}, got {describe(actual)}")
    if want == "float":
        a, e = _float(actual), _float(expected)
        same = (math.isnan(a) and math.isnan(e)) or math.isclose(a, e, rel_tol=rtol, abs_tol=atol)
    elif want == "complex":
        a, e = complex(actual), complex(expected)
        same = abs(a - e) <= max(rtol * max(abs(a), abs(e)), atol)
    elif want == "int":
        same = _int(actual) == _int(expected)
    elif want == "bool":
        same = _bool(actual) is _bool(expected)
    else:
        same = str(actual) == str(expected)
    if not same:
        _fail(where, f"expected {describe(expected)}, got {describe(actual)}")


def _trusted_key(value) -> bool:
    """A dict key or set element whose hash and == are Python's or NumPy's own."""
    t = _type(value)
    if _kind(value) or value is None or t is bytes:
        return True
    if t is tuple:
        return all(_trusted_key(_tuple_getitem(value, i)) for i in _range(_tuple_len(value)))
    if t is frozenset:
        return all(_trusted_key(v) for v in value)
    return t in _PLAIN and t is not bytearray and _plain_ok(value)


def _show_key(key) -> str:
    return _repr(key) if _trusted_key(key) else describe(key)


def _compare_container(actual, expected, t, where, rtol, atol, exact) -> None:
    if t in (list, tuple):
        get, size = (_list_getitem, _list_len) if t is list else (_tuple_getitem, _tuple_len)
        if size(actual) != size(expected):
            _fail(where, f"expected a {_CONTAINERS[t]} of {size(expected)} items, got {size(actual)}")
        for i in _range(size(expected)):
            _compare(get(actual, i), get(expected, i), f"{where}[{i}]", rtol, atol, exact)
        return
    if t is dict:
        keys = list(_dict_keys(actual))
        for key in keys:
            if not _trusted_key(key):
                _fail(where, f"a key of the dict is {describe(key)}, which check does not trust")
        got, want = set(keys), set(_dict_keys(expected))
        missing = [k for k in _dict_keys(expected) if k not in got]
        extra = [k for k in keys if k not in want]
        if missing or extra:
            parts = ([f"missing keys {', '.join(_show_key(k) for k in missing[:5])}"] if missing else []) + (
                [f"unexpected keys {', '.join(_show_key(k) for k in extra[:5])}"] if extra else []
            )
            _fail(where, "; ".join(parts))
        for key in _dict_keys(expected):
            _compare(
                _dict_getitem(actual, key),
                _dict_getitem(expected, key),
                f"{where}[{key!r}]",
                rtol,
                atol,
                exact,
            )
        return
    items = list(actual)  # a set: exact type checked, so iteration is the set's own
    for item in items:
        if not _trusted_key(item):
            _fail(
                where, f"an element of the {_CONTAINERS[t]} is {describe(item)}, which check does not trust"
            )
    got, want = set(items), set(expected)
    if got != want:
        missing, extra = want - got, got - want
        parts = (
            [f"missing {', '.join(_repr(k) for k in _sorted(missing, key=_repr)[:5])}"] if missing else []
        ) + ([f"unexpected {', '.join(_repr(k) for k in _sorted(extra, key=_repr)[:5])}"] if extra else [])
        _fail(where, "; ".join(parts))


_ARRAY_KINDS = {
    "b": "b",
    "i": "iu",
    "u": "iu",
    "f": "iuf",
    "c": "iufc",
    "U": "U",
    "S": "S",
    "M": "M",
    "m": "m",
}


def _compare_array(actual, expected, where, rtol, atol, exact) -> None:
    if _type(actual) is not _ndarray:
        _fail(where, f"expected a NumPy array {_short(expected)}, got {describe(actual)}")
    if tuple(actual.shape) != tuple(expected.shape):
        _fail(where, f"expected an array of shape {tuple(expected.shape)}, got shape {tuple(actual.shape)}")
    ek, ak = expected.dtype.kind, actual.dtype.kind
    if exact and actual.dtype != expected.dtype:
        _fail(where, f"expected an array of dtype {expected.dtype}, got dtype {actual.dtype}")
    if ek == "O":  # the instructor's objects: compare element by element, as Python values
        if ak != "O":
            _fail(where, f"expected an array of objects, got dtype {actual.dtype}")
        flat_a, flat_e = actual.reshape(-1), expected.reshape(-1)
        for i in _range(flat_e.shape[0]):
            index = tuple(int(j) for j in _np.unravel_index(i, expected.shape))
            _compare(flat_a[i], flat_e[i], f"{where}[{', '.join(map(str, index))}]", rtol, atol, exact)
        return
    if ak not in _ARRAY_KINDS.get(ek, ek) or actual.dtype.hasobject:
        _fail(where, f"expected an array of {expected.dtype}, got an array of {actual.dtype}")
    if ek in "fc":
        same = _np_isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    elif ek in "iub":
        same = actual == expected
    else:
        if not _np_array_equal(actual, expected):
            _fail(where, f"the array differs from the expected {expected.dtype} array")
        return
    same = _np_asarray(same)
    if not same.all():
        first = tuple(int(j) for j in _np_argwhere(~same)[0]) if same.ndim else ()
        a, e = actual[first], expected[first]
        more = int(_np_count_nonzero(~same)) - 1
        at = f"{where}[{', '.join(map(str, first))}]" if first else where
        _fail(
            at, f"expected {_short(e)}, got {_short(a)}" + (f" (and {more} more differences)" if more else "")
        )


def _pandas():
    return sys.modules.get("pandas")


def _is_pandas(t) -> bool:
    pd = _pandas()
    return pd is not None and (t in (pd.DataFrame, pd.Series) or pd.Index in _mro(t))


def _compare_pandas(actual, expected, where, rtol, atol, exact) -> None:
    pd = _pandas()
    te = _type(expected)
    if _type(actual) is not te:
        _fail(where, f"expected a {_name(te)}, got {describe(actual)}")
    if pd.Index in _mro(te):
        return _compare(_values(actual), _values(expected), f"{where}(labels)", rtol, atol, exact)
    if te is pd.DataFrame:
        _compare(_values(actual.columns), _values(expected.columns), f"{where}.columns", rtol, atol, exact)
    _compare(_values(actual.index), _values(expected.index), f"{where}.index", rtol, atol, exact)
    if te is pd.Series:
        _compare(actual.name, expected.name, f"{where}.name", rtol, atol, exact)
        return _compare(_values(actual), _values(expected), f"{where}(values)", rtol, atol, exact)
    for j, label in enumerate(_values(expected.columns)):
        _compare(
            _values(actual.iloc[:, j]), _values(expected.iloc[:, j]), f"{where}[{label!r}]", rtol, atol, exact
        )


def _values(pandas_object):
    """A pandas column or index as a NumPy array; object arrays of extension values (NA...) as lists."""
    array = pandas_object.to_numpy()
    if array.dtype.kind == "O":
        return [_pandas_scalar(v) for v in array.tolist()]
    return array


def _pandas_scalar(value):
    pd = _pandas()
    if value is pd.NA or value is pd.NaT:
        return None  # missing, in any pandas spelling, compares as None
    return value


__all__ = ["check", "check_type", "describe"]
