"""An accessibility audit of the page a browser test is on: axe-core (from npm, installed by
`make test-deps`, never from a CDN) injected into the page and run there.

Each audit's whole result goes to test-output/a11y/<name>.json (docs/accessibility.md reads
them); the caller gets the violations a person is blocked by (impact serious or critical).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import OUTPUT, need

AXE = Path(sys.prefix) / "lib" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
A11Y_OUTPUT = OUTPUT / "a11y"

# Violations of upstream widgets inside our pages that we cannot fix there, each with the upstream
# issue that tracks it (docs/accessibility.md): (rule, a piece of the offending element's HTML) ->
# issue. Anything else fails. Empty: the one we had, ipywidgets' unnamed slider handles
# (jupyter-widgets/ipywidgets#2650), the gallery now names (gallery/kernels.py, SLIDER_NAMES).
UPSTREAM: dict[tuple[str, str], str] = {}

# axe.run's options: only the violations travel back (a lab page has thousands of passes).
RUN = """async (within) => {
    const result = await axe.run(within ? {include: [within]} : document, {resultTypes: ['violations']});
    return {url: result.url, testEngine: result.testEngine, violations: result.violations};
}"""


def audit(page, name: str, within: str | None = None) -> list[dict]:
    """Run axe-core on ``page`` as it is now (or on the part ``within``, a CSS selector); save the
    result as ``name``.json and return the serious and critical violations (each with its rule id,
    help text and offending nodes)."""
    need(AXE.exists(), f"axe-core is not installed ({AXE}): make test-deps")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(RUN, within)
    result["name"] = name
    A11Y_OUTPUT.mkdir(parents=True, exist_ok=True)
    (A11Y_OUTPUT / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


def ours(violations: list[dict]) -> list[dict]:
    """The violations left once the nodes of known upstream problems (UPSTREAM) are set aside."""
    left = []
    for v in violations:
        nodes = [
            n
            for n in v["nodes"]
            if not any(rule == v["id"] and piece in n["html"] for rule, piece in UPSTREAM)
        ]
        if nodes:
            left.append({**v, "nodes": nodes})
    return left


def describe(violations: list[dict]) -> str:
    """The violations as a person fixing them reads them: rule, impact, help, where."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} [{len(v['nodes'])} element(s)]")
        for node in v["nodes"][:5]:
            lines.append(
                f"    {' '.join(node['target'])}: {node.get('failureSummary', '').splitlines()[-1:]}"
            )
    return "\n".join(lines)


def assert_accessible(page, name: str, within: str | None = None) -> None:
    """One of our pages (or its part ``within``): no serious or critical violation but the known
    upstream ones."""
    found = ours(audit(page, name, within))
    assert not found, f"accessibility of {name} ({page.url}):\n{describe(found)}"
