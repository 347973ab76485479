"""Shared test plumbing: where tests write output, and how a missing service is reported."""

import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI") == "true"
OUTPUT = Path(__file__).parent.parent / "test-output"


def need(condition: bool, reason: str) -> None:
    """Skip loudly on a laptop that cannot start a service; fail in CI, where it must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test, but: {reason}")
    pytest.skip(f"SKIPPED, NOT TESTED: {reason}")


@pytest.fixture
def output_dir(request) -> Path:
    """A folder for this test's screenshots and logs: test-output/<test name>/."""
    path = OUTPUT / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`-n 2 --dist loadgroup`, as `make test` runs), a module's tests stay
    together on one worker, since they share its module-scoped services (a hub, a Slurm cluster);
    unit tests, which start nothing, spread freely."""
    for item in items:
        if not item.nodeid.startswith("tests/unit/"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
