"""Trainee cohorts of short courses: import from a CSV, invitation links, invitation e-mails.

A cohort lives in the site's data, never in course.yaml or git (personal data must be
erasable): <data_dir>/cohorts/<slug>.json, mode 0600, written by `ailys cohort import` and by
the hub's invitation page:

    {"course": "<slug>",
     "trainees": [{"username": "zcohortine",           # derived from the names, unique on the site
                   "email": "zoe@example.fr",          # as in the CSV; matched without case
                   "first_name": "Zoé", "last_name": "Cohortine", "company": "Acme",
                   "imported": "2026-12-02T08:00:00+00:00",          # UTC
                   "invitation": {"sha256": "<hex of the token>",    # or null: none made yet
                                  "created": "...", "expires": "...", "used": null},
                   "password_set": null}]}                           # when, through the page

hub_config/roster.py reads the usernames from it (the course's learners); the course sync, the
retention and `ailys person export/forget` read the rest.

Modules: spreadsheet.py (reading the CSV), usernames.py (deriving names), store.py (the files
and the import), invitations.py (tokens and links), mail.py (sending), page.py (the hub's
invitation page).
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from ..catalogue import Catalogue
from .invitations import Invitation, new_invitations
from .mail import compose, send
from .spreadsheet import CsvError, parse_trainees
from .store import CohortError, Imported, import_trainees, short_course

__all__ = ["CohortError", "CsvError", "import_file", "invite", "links"]


def import_file(catalogue: Catalogue, slug: str, csv_path: Path) -> Imported:
    """Import a trainees CSV into the course's cohort: all of it, or nothing (CsvError)."""
    short_course(catalogue, slug)
    try:
        data = Path(csv_path).read_bytes()
    except OSError as err:
        raise CohortError(f"{csv_path} cannot be read: {err.strerror}") from None
    return import_trainees(catalogue, slug, parse_trainees(data, str(csv_path)))


def links(catalogue: Catalogue, slug: str, usernames: set[str] | None = None) -> list[Invitation]:
    """Fresh links for the trainees who have not set a password (earlier links stop working)."""
    return new_invitations(catalogue, slug, usernames)


def invite(
    catalogue: Catalogue, slug: str, usernames: set[str] | None = None
) -> tuple[list[Invitation], dict[str, str]]:
    """E-mail a fresh link to each trainee without a password; the invitations sent, and the
    addresses the mail server refused."""
    course = short_course(catalogue, slug)
    if catalogue.site.smtp is None:
        send(catalogue, [])  # raises, saying what to do instead
    made = new_invitations(catalogue, slug, usernames)
    messages: list[EmailMessage] = [compose(catalogue, course, invitation) for invitation in made]
    refused = send(catalogue, messages) if messages else {}
    return made, refused
