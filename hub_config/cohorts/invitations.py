"""One-time invitation links: a trainee sets their password at <hub>/hub/invitation/<token>.

The token (secrets.token_urlsafe) exists only in the link: the cohort file keeps its SHA-256, when
it was made and when it expires (authentication.invitation_lifetime). Making new links for a
trainee replaces their old one; using one records when, and the trainee's password as set.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import secrets
from pathlib import Path

from ..catalogue import Catalogue
from ..launch import hub_url
from .store import CohortError, all_cohorts, locked, now_utc, read_cohort, short_course, stamp, write_cohort

ROUTE = r"/invitation/([A-Za-z0-9_-]{16,128})"  # under the hub's /hub/ prefix
TOKEN_BYTES = 32


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public_url(catalogue: Catalogue) -> str:
    """The hub's address as people reach it, ending in /."""
    configured = catalogue.site.authentication.public_url
    return configured.rstrip("/") + "/" if configured else hub_url(catalogue)


def link(catalogue: Catalogue, token: str) -> str:
    return f"{public_url(catalogue)}hub/invitation/{token}"


@dataclasses.dataclass(frozen=True)
class Invitation:
    """A fresh link for one trainee (the token is never written anywhere)."""

    trainee: dict
    token: str
    expires: dt.datetime


def pending(cohort: dict) -> list[dict]:
    """Trainees who have not set their password yet."""
    return [t for t in cohort["trainees"] if not t.get("password_set")]


def new_invitations(
    catalogue: Catalogue, slug: str, usernames: set[str] | None = None, now: dt.datetime | None = None
) -> list[Invitation]:
    """Fresh links for the course's trainees without a password, or for the trainees named in
    ``usernames`` whether or not they have one (a forgotten password: the link sets a new one);
    their earlier links stop working. CohortError for a name not in the cohort."""
    short_course(catalogue, slug)
    now = now or now_utc()
    expires = now + dt.timedelta(seconds=catalogue.site.authentication.invitation_lifetime)
    made = []
    with locked(catalogue.data_dir):
        cohort = read_cohort(catalogue.data_dir, slug)
        if usernames is None:
            chosen = pending(cohort)
        else:
            chosen = [t for t in cohort["trainees"] if t["username"] in usernames]
            unknown = sorted(set(usernames) - {t["username"] for t in chosen})
            if unknown:
                raise CohortError(f"not in the cohort of {slug}: {', '.join(unknown)}")
        for trainee in chosen:
            token = secrets.token_urlsafe(TOKEN_BYTES)
            trainee["invitation"] = {
                "sha256": digest(token),
                "created": stamp(now),
                "expires": stamp(expires),
                "used": None,
            }
            made.append(Invitation(trainee, token, expires))
        if made:
            write_cohort(catalogue.data_dir, slug, cohort)
    return made


@dataclasses.dataclass(frozen=True)
class Found:
    """What a token is: ``state`` is valid, used, expired or unknown."""

    state: str
    slug: str | None = None
    trainee: dict | None = None
    when: dt.datetime | None = None  # used at, or expired at


def _find(data_dir: Path, token: str) -> tuple[str, dict, dict] | None:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", token or ""):
        return None
    wanted = digest(token)
    for slug, cohort in all_cohorts(data_dir).items():
        for trainee in cohort["trainees"]:
            invitation = trainee.get("invitation") or {}
            if secrets.compare_digest(invitation.get("sha256", ""), wanted):
                return slug, cohort, trainee
    return None


def look_up(data_dir: Path, token: str, now: dt.datetime | None = None) -> Found:
    found = _find(data_dir, token)
    if found is None:
        return Found("unknown")
    slug, _, trainee = found
    invitation = trainee["invitation"]
    if invitation.get("used"):
        return Found("used", slug, trainee, dt.datetime.fromisoformat(invitation["used"]))
    expires = dt.datetime.fromisoformat(invitation["expires"])
    if (now or now_utc()) >= expires:
        return Found("expired", slug, trainee, expires)
    return Found("valid", slug, trainee, expires)


def use(data_dir: Path, token: str, now: dt.datetime | None = None) -> Found:
    """Mark a valid invitation used (once: a second call finds it used) and the password set."""
    now = now or now_utc()
    with locked(data_dir):
        found = look_up(data_dir, token, now)
        if found.state != "valid":
            return found
        slug, cohort, trainee = _find(data_dir, token)
        trainee["invitation"]["used"] = stamp(now)
        trainee["password_set"] = stamp(now)
        write_cohort(data_dir, slug, cohort)
    return Found("valid", slug, trainee, now)
