"""The grading service's one change to nbgrader: formgrader's autograde route, made by an explicit call."""

import subprocess
import sys

import pytest


@pytest.fixture
def formgrader_handlers(monkeypatch):
    """formgrader's handler list, restored after the test (it is nbgrader's module state)."""
    from nbgrader.server_extensions.formgrader import apihandlers

    monkeypatch.setattr(apihandlers, "default_handlers", list(apihandlers.default_handlers))
    return apihandlers


def test_importing_the_service_changes_no_handler_list():
    code = (
        "import grading.service\n"
        "from nbgrader.server_extensions.formgrader import apihandlers as a\n"
        "assert any(h is a.AutogradeHandler for _, h, *_ in a.default_handlers)\n"
        "assert not any(getattr(h, 'ailys_sandboxed', False) for _, h, *_ in a.default_handlers)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_use_sandboxed_autograde_replaces_formgraders_autograde_route_only(formgrader_handlers):
    from grading.service import use_sandboxed_autograde

    before = list(formgrader_handlers.default_handlers)
    ours = use_sandboxed_autograde()
    after = formgrader_handlers.default_handlers
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(after) == len(before) and len(changed) == 1
    (pattern, stock), (same_pattern, handler) = changed[0]
    assert pattern == same_pattern and pattern.endswith("/autograde")
    assert stock is formgrader_handlers.AutogradeHandler and handler is ours
    assert issubclass(ours, formgrader_handlers.BaseApiHandler)
    assert use_sandboxed_autograde() is ours and formgrader_handlers.default_handlers == after  # once only


def test_library_code_imports_no_command_line_module():
    code = (
        "import sys, grading.cli, grading.export, grading.service, grading.autograde.on_submit\n"
        "import grading.exchange.service, gallery.app, hub_config.login.local, hub_config.profiles\n"
        "assert 'hub_config.cli' not in sys.modules, 'hub_config.cli imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
