"""The demos' plots keep their meaning with a colour blindness (docs/accessibility.md): every colour a
demo draws with is one of Okabe and Ito's, named in the code, and the colours of one demo stay apart
once seen with deuteranopia or protanopia (Machado, Oliveira and Fernandes 2009, full severity).

Read from the notebooks' code, not run: each plotting call must name its colour."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import nbformat
import numpy as np
import pytest

DEMOS = sorted((Path(__file__).resolve().parents[2] / "courses").glob("*/demos/*.ipynb"))
OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
NEUTRAL = {"gray", "grey"}  # guide lines only, never data
COLOUR_MAPS = {"cividis", "viridis"}  # perceptually uniform, readable with a colour blindness
PLOTTING = {
    "plot",
    "scatter",
    "bar",
    "barh",
    "semilogx",
    "semilogy",
    "loglog",
    "contourf",
    "fill_between",
    "hist",
}
COLOUR_KEYWORDS = {"color", "c", "edgecolor", "edgecolors", "facecolor", "cmap"}
# Machado et al. 2009, severity 1: linear RGB -> linear RGB as seen with the deficiency.
SIMULATE = {
    "deuteranopia": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ],
    "protanopia": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
}
APART = 20  # CIE76 ΔE between two colours of one plot, as a colour-blind reader sees them


def linear(hex_colour: str) -> np.ndarray:
    c = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(rgb: np.ndarray) -> np.ndarray:
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])  # D65 white
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def seen_apart(a: str, b: str, deficiency: str) -> float:
    m = np.array(SIMULATE[deficiency])
    return float(np.linalg.norm(lab(np.clip(m @ linear(a), 0, 1)) - lab(np.clip(m @ linear(b), 0, 1))))


def code(notebook: Path) -> ast.Module:
    nb = nbformat.read(notebook, as_version=4)
    return ast.parse("\n".join(c.source for c in nb.cells if c.cell_type == "code"), filename=str(notebook))


def palette_name(node: ast.AST) -> str | None:
    """'blue' for OKABE_ITO["blue"]; None for anything else."""
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "OKABE_ITO"
        and isinstance(node.slice, ast.Constant)
    ):
        return node.slice.value
    return None


def problems(tree: ast.Module) -> list[str]:
    """Every colour of the code that is not the palette's, each with its line."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "OKABE_ITO" for t in node.targets):
            if ast.literal_eval(node.value) != OKABE_ITO:
                found.append(f"line {node.lineno}: OKABE_ITO is not Okabe and Ito's palette")
        if not isinstance(node, ast.Call):
            continue
        called = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if called == "ListedColormap":
            for item in node.args[0].elts:
                if palette_name(item) not in OKABE_ITO:
                    found.append(f"line {item.lineno}: a colour map of colours outside the palette")
        keywords = {k.arg: k.value for k in node.keywords}
        if called == "cycler":
            continue  # the default cycle: only used by a call that names no colour, refused above
        if called in PLOTTING:
            # a format string such as "g--" picks one of matplotlib's basic colours
            formats = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            for named in [f for f in formats if set(f) & set("bgrcmykw")]:
                found.append(f"line {node.lineno}: the format {named!r} names a colour")
            if not COLOUR_KEYWORDS & set(keywords) and not any(set(f) & set("bgrcmykw") for f in formats):
                found.append(f"line {node.lineno}: {called}() without a colour (matplotlib's default)")
        for key, value in keywords.items():
            if key not in COLOUR_KEYWORDS or palette_name(value) in OKABE_ITO:
                continue
            if key == "cmap" and isinstance(value, ast.Constant) and value.value in COLOUR_MAPS:
                continue
            if key == "cmap" and isinstance(value, ast.Name):
                continue  # a ListedColormap of the code: checked where it is built
            if key == "c" and isinstance(value, ast.Name) and "cmap" in keywords:
                continue  # data mapped through the call's colour map
            if isinstance(value, ast.Constant) and value.value in NEUTRAL and called == "axvline":
                continue
            found.append(f"line {value.lineno}: {key}={ast.unparse(value)} is outside the palette")
    return found


def used(tree: ast.Module) -> set[str]:
    return {name for node in ast.walk(tree) if (name := palette_name(node)) in OKABE_ITO}


def test_the_simulation_tells_the_default_palette_s_red_and_green_apart_from_ours():
    # matplotlib's tab10 red and green, the pair a deuteranope confuses: the check would catch it.
    assert seen_apart("#d62728", "#2ca02c", "deuteranopia") < APART
    assert seen_apart(OKABE_ITO["blue"], OKABE_ITO["orange"], "deuteranopia") > APART


@pytest.mark.parametrize("notebook", DEMOS, ids=lambda p: p.stem)
def test_a_demo_draws_with_colours_that_survive_colour_blindness(notebook):
    tree = code(notebook)
    assert not problems(tree), f"{notebook}: " + "; ".join(problems(tree))
    colours = used(tree)
    assert len(colours) >= 2, f"{notebook}: its plot names its colours from OKABE_ITO"
    for (a, b), deficiency in itertools.product(itertools.combinations(sorted(colours), 2), SIMULATE):
        apart = seen_apart(OKABE_ITO[a], OKABE_ITO[b], deficiency)
        assert apart > APART, f"{notebook}: {a} and {b} are {apart:.0f} apart with {deficiency}"


def test_a_colour_outside_the_palette_is_named_with_its_line():
    tree = ast.parse('ax.plot(x, y, "r-")\nax.bar(x, y)\nax.scatter(x, y, color="tab:green")\n')
    assert problems(tree) == [
        "line 1: the format 'r-' names a colour",
        "line 2: bar() without a colour (matplotlib's default)",
        "line 3: color='tab:green' is outside the palette",
    ]
