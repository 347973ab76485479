"""`ailys person export NAME`: a zip of everything the platform holds on a person (the GDPR right
of access), with a README.txt that lists what is in it and what is held elsewhere or not at all.

    README.txt                      what follows, and what is not here
    home/...                        the files of their home on the hub's host
    exchange/<course>/submissions/<assignment>/<submission>/...   as the exchange keeps them
    exchange/<course>/feedback/<assignment>/<submission>/...
    grading/<course>/<submitted|autograded|feedback>/<assignment>/...   grading's copies
    grades/<course>.csv, grades/<course>.json                       from each course's gradebook
    hub/account.json                the hub database's records (no token, no password hash)
    cohorts/<course>.json           their trainee record
    accommodations/<course>.json    their extra time and extensions (grading/accommodations.py)
    rosters.json                    directory or provider groups recorded for them
    logins.jsonl                    each login: time (UTC) and method
    archives/<name>-<date>.tar.zst  what retention archived
    footprint.json                  energy and CO2 records of their sessions and graded submissions

The zip is written mode 0600 (it is personal data) and moved into place whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import stat
import zipfile
from pathlib import Path

from ..catalogue import Catalogue
from . import gradebooks
from .holdings import Holdings, holdings


def export(catalogue: Catalogue, name: str, out_zip: Path, now: dt.datetime | None = None) -> Holdings:
    """Write the zip of what the platform holds on ``name`` to ``out_zip``; what was found."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    held = holdings(catalogue, name)
    out_zip = Path(out_zip)
    tmp = out_zip.with_name(f".{out_zip.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with (
            os.fdopen(fd, "wb") as f,
            zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as z,
        ):
            skipped = _pack(z, held)
            z.writestr("README.txt", readme(catalogue, held, skipped, now))
        os.replace(tmp, out_zip)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return held


def _tree(z: zipfile.ZipFile, folder: Path, prefix: str, skipped: list[str]) -> None:
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for file in sorted(files):
            path = Path(top, file)
            arcname = f"{prefix}/{path.relative_to(folder).as_posix()}"
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):  # a link could point at anyone's file: named, not followed
                skipped.append(
                    f"{arcname}: a {'link' if stat.S_ISLNK(mode) else 'special file'}, not included"
                )
                continue
            z.write(path, arcname)


def _json(data) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n"


def _masked(record):
    """A cohort record with the hash of an invitation's token said, not given (a hash of a live
    link is a key to guess at, like a password's)."""
    if isinstance(record, dict):
        return {k: "held (a hash), not exported" if k == "sha256" else _masked(v) for k, v in record.items()}
    if isinstance(record, list):
        return [_masked(v) for v in record]
    return record


def _pack(z: zipfile.ZipFile, held: Holdings) -> list[str]:
    skipped: list[str] = []
    if held.home:
        _tree(z, held.home, "home", skipped)
    for where, folder in held.exchange + held.nbgrader:
        _tree(z, folder, where, skipped)
    for book, record in held.grades:
        z.writestr(f"grades/{book.slug}.csv", gradebooks.grades_csv(record))
        z.writestr(f"grades/{book.slug}.json", _json(record))
    if held.hub:
        z.writestr("hub/account.json", _json(held.hub))
    for slug, record in held.cohorts.items():
        z.writestr(f"cohorts/{slug}.json", _json(_masked(record)))
    for slug, record in held.accommodations.items():
        z.writestr(f"accommodations/{slug}.json", _json(record))
    if held.rosters:
        z.writestr("rosters.json", _json(held.rosters))
    if held.logins:
        z.write(held.logins, "logins.jsonl")
    for archive in held.archives:
        z.write(archive, f"archives/{archive.name}")
    if held.footprints or held.idle_stops:
        records = {
            "records": [dataclasses.asdict(r) for r in held.footprints],
            "idle_stops": [dataclasses.asdict(s) for s in held.idle_stops],
        }
        z.writestr("footprint.json", _json(records))
    return skipped


def _policy(catalogue: Catalogue) -> str:
    from ..units import format_duration

    r = catalogue.site.retention
    return (
        f"Trainees' homes, submissions and feedback are archived {format_duration(r.archive_after)} after "
        f"their courses' access ends, and the archive deleted {format_duration(r.delete_after)} later."
    )


def readme(catalogue: Catalogue, held: Holdings, skipped: list[str], now: dt.datetime) -> str:
    site = catalogue.site
    lines = [
        f"What AILyS Hub (site {site.name}) holds on {held.name}, exported {now:%Y-%m-%d %H:%M} UTC.",
        "",
        "In this archive:",
    ]
    present = [
        (held.home, "home/", "the files of the home on the hub's host"),
        (
            any("/submissions/" in w for w, _ in held.exchange),
            "exchange/<course>/submissions/",
            "each submission as the exchange keeps it, with its time",
        ),
        (
            any("/feedback/" in w for w, _ in held.exchange),
            "exchange/<course>/feedback/",
            "the feedback released on each submission",
        ),
        (held.nbgrader, "grading/<course>/", "the copies grading made: collected, autograded, feedback"),
        (
            held.grades,
            "grades/<course>.csv, .json",
            "the grades of each course's gradebook, every graded cell and comment",
        ),
        (
            held.hub,
            "hub/account.json",
            "the hub's records: created, last activity, groups, roles, servers, API tokens (never a token's value)",
        ),
        (
            held.cohorts,
            "cohorts/<course>.json",
            "the trainee record of each cohort (name, e-mail, company, import)",
        ),
        (
            held.accommodations,
            "accommodations/<course>.json",
            "extra time and extensions granted in each course (who set them, when)",
        ),
        (held.rosters, "rosters.json", "directory or identity provider groups recorded with this name"),
        (held.logins, "logins.jsonl", "each login: its time (UTC) and method (local, ldap, oidc)"),
        (held.archives, "archives/", "archives of files made by the retention policy (tar.zst)"),
        (
            held.footprints or held.idle_stops,
            "footprint.json",
            "energy and CO2 records of each session and graded submission, and idle sessions stopped",
        ),
    ]
    lines += [f"  {path:<30} {what}" for found, path, what in present if found]
    if not held:
        lines.append("  nothing: the platform holds no data under this name")
    lines += ["", "Held but not included:"]
    kept_out = []
    if held.hub and "local_account" in held.hub:
        kept_out.append("the password: only a bcrypt hash of it is held (hub database), never the password")
    if held.unix_account:
        kept_out.append(
            f"a Unix account {held.name} (uid {held.unix_account.pw_uid}) on the hub's host, that runs the servers"
        )
    if held.demo_login:
        kept_out.append(f"a demo password in {held.places.demo_logins} (demonstration sites only)")
    kept_out += [f"named in {where} (course files, kept in git)" for where in held.named_in]
    kept_out += skipped
    lines += [f"  - {line}" for line in kept_out or ["nothing"]]
    lines += ["", "Not held here:"]
    lines += [f"  - {line}" for line in held.elsewhere]
    lines += [
        "",
        "How long:",
        f"  {_policy(catalogue)}",
        "  `ailys person forget` erases it on request; "
        "grades are kept only where a course's rules say so (grades.keep_after_forget: diplomas).",
        "",
    ]
    return "\n".join(lines)
