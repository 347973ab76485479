"""Fixtures the hostile-submission modules share: each module names its own grading account
(GRADER), so that modules graded at the same time on two test workers never share one."""

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.grading_hostile.build import grading_account


@pytest.fixture(scope="module")
def grader(request):
    """The module's grading account (its GRADER), made for the module and removed after it."""
    with grading_account(request.module.GRADER) as name:
        yield name


@pytest.fixture
def work_dir():
    """The grading work folder (settings.work_dir): traversable by the grading account."""
    path = Path(tempfile.mkdtemp(prefix="grd-work-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
