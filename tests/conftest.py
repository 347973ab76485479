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
