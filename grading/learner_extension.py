"""nbgrader's learner side in a learner's server, imported at its first request.

nbgrader's three learner server extensions (the Assignments panel: fetch, submit, feedback; the
course list; the Validate button) import nbgrader's whole application at the server's start:
setuptools (nbgrader.utils), nbconvert, the gradebook's SQLAlchemy models, RapidFuzz. That is
23 MB and 0.25 s of CPU in every learner's server (docs/scaling.md), most of which never open the
panel. This server extension takes their URLs instead; the first request to one of them loads the
three as ServerApp would have, and nbgrader's own handlers answer it and every later one.

Runs inside learners' servers (also in course images: images/spec.py copies it), so it imports
only jupyter_server and tornado at load.
"""

from __future__ import annotations

import importlib

from jupyter_server.utils import url_path_join
from tornado.routing import PathMatches, Router, Rule

# In ServerApp's order (it loads extensions sorted by name): the first one's /nbgrader_version wins.
NBGRADER_LEARNER_EXTENSIONS = (
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
    "nbgrader.server_extensions.validate_assignment",
)
# Every route of their handler tables (nbgrader 0.9, `default_handlers` of each), under base_url.
NBGRADER_LEARNER_ROUTES = (
    r"/(assignments(/(fetch|submit|fetch_feedback|validate))?|courses|formgraders|nbgrader_version)"
)


class NbgraderAtFirstRequest(Router):
    """The target of nbgrader's routes until nbgrader is loaded, then of none."""

    def __init__(self, serverapp) -> None:
        self.serverapp = serverapp
        self.loaded = False

    def find_handler(self, request, **kwargs):
        if self.loaded:
            return None  # the router goes on to nbgrader's own rules, added after this one
        self.loaded = True  # once, even if it fails: a broken nbgrader is logged, not retried
        try:
            load_nbgrader(self.serverapp)
        except Exception:
            self.serverapp.log.exception("nbgrader's learner extensions failed to load")
        return self.serverapp.web_app.find_handler(request)


def load_nbgrader(serverapp) -> None:
    """What ServerApp does for each extension: its module's loader, given the server."""
    for name in NBGRADER_LEARNER_EXTENSIONS:
        importlib.import_module(name)._load_jupyter_server_extension(serverapp)
    serverapp.log.info("nbgrader's learner extensions loaded at their first request")


def _jupyter_server_extension_points():
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp) -> None:
    # A rule of tornado's router, not web_app.add_handlers: that one takes handler classes only (it
    # checks each method is authenticated). This rule handles no request itself: nbgrader's
    # handlers do, authenticated; an anonymous request can only make nbgrader load, as at a start.
    route = url_path_join(serverapp.web_app.settings["base_url"], NBGRADER_LEARNER_ROUTES)
    router = serverapp.web_app.default_router
    router.rules.insert(0, router.process_rule(Rule(PathMatches(route), NbgraderAtFirstRequest(serverapp))))
