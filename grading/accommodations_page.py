"""The accommodations page of a course's grading service: its instructors (the only ones the
service lets in: access:services!service=grading-<slug>) see and set each learner's extra time
and extensions, in French or English, without a shell and without editing anyone's files.

    <base_url>services/grading-<slug>/accommodations

A set or a removal goes through grading/accommodations.py (the same checks as `ailys
accommodation`), then into nbgrader's gradebook (courses.sync_extensions), so formgrader shows
each learner's own deadline at once. Values are health-related: never logged, page never cached.
"""

from __future__ import annotations

import getpass
import os

from jupyter_server.base.handlers import JupyterHandler
from markupsafe import Markup
from tornado import web

from hub_config import i18n

from . import accommodations
from .courses import course_dir, sync_extensions

FIELDS = {"learner", "extra_time", "assignment", "extension"}  # the form's, and the module's names


def _course():
    from hub_config.catalogue import load_catalogue

    catalogue = load_catalogue(os.environ["AILYS_SITE_FILE"])
    return catalogue, catalogue.course(os.environ["AILYS_COURSE"])


class AccommodationsPage(JupyterHandler):
    def lang(self) -> str:
        if not hasattr(self, "_lang"):
            self._lang = i18n.language(self)
        return self._lang

    def show(self, status: int = 200, problem: str = "", done: str = "") -> None:
        catalogue, course = _course()
        learners = catalogue.learners(course)
        held = accommodations.records(course_dir(catalogue, course.slug))
        rows = [
            {
                "learner": name,
                "record": held.get(name, {}),
                "dues": [
                    (a.name, accommodations.due_for(course, held.get(name), a.name))
                    for a in course.assignments
                    if a.due is not None
                ],
            }
            for name in learners
        ]
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            i18n.render(
                "accommodations.html",
                self.lang(),
                course=course,
                rows=rows,
                assignments=[a.name for a in course.assignments],
                problem=problem,
                done=done,
                xsrf=Markup(self.xsrf_form_html()),  # noqa: S704 - tornado's own hidden input
                formgrader=self.base_url + "formgrader",
                language_links=i18n.switch(self),
            )
        )

    @web.authenticated
    def get(self):
        self.show()

    @web.authenticated
    def post(self):
        catalogue, course = _course()
        form = {k: (self.get_body_argument(k, "") or "").strip() or None for k in FIELDS}
        folder = course_dir(catalogue, course.slug)
        try:
            if self.get_body_argument("action", "set") == "remove":
                accommodations.check_request(
                    course, catalogue.learners(course), form["learner"] or "", form["assignment"]
                )
                if not accommodations.remove(folder, course, form["learner"], form["assignment"]):
                    raise accommodations.AccommodationError(f"learner: {form['learner']} has none to remove")
                done = "removed"
            else:
                accommodations.set_accommodation(
                    folder,
                    course,
                    catalogue.learners(course),
                    form["learner"] or "",
                    extra_time=form["extra_time"],
                    assignment=form["assignment"],
                    extension=form["extension"],
                    by=getattr(self.current_user, "username", None) or getpass.getuser(),
                )
                done = "saved"
        except accommodations.AccommodationError as err:
            self.show(422, problem=str(err))
            return
        sync_extensions(catalogue, course)
        self.log.info("accommodations of %s changed in %s", form["learner"], course.slug)  # never the values
        self.show(done=done)
