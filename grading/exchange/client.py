"""nbgrader's exchange, spoken over HTTP to the exchange service (service.py).

``ExchangeAPI`` is the service's API, one method per route of the route table (routes.py); the
eight classes below, subclasses of nbgrader.exchange.abc, selected with ``c.ExchangeFactory.*`` (see
spawners/jupyter-config/learner/nbgrader_config.py). They send the caller's JupyterHub API
token ($JUPYTERHUB_API_TOKEN, which the hub gives every server, its terminals, kernels and
Slurm jobs) to the service URL ($AILYS_EXCHANGE_URL, set by the hub), so they work the same
on the hub host, on a Slurm node and in a container: no shared folder. Local paths, the
layout of the learner's folder, timestamps and the JSON the Assignments panel reads follow
nbgrader's default (filesystem) exchange.

An exchange that is restarting (killed, redeployed) must not cost a learner their submission at a
deadline: reads and submissions are retried on a connection error or a 5xx answer for up to
``retry_for`` seconds, and each submission sends one random ``Idempotency-Key`` with all its
attempts, so the service records it once however many of them reach it.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import os
import re
import secrets
import shutil
import time
from pathlib import Path

import httpx
from nbgrader.exchange import abc
from nbgrader.exchange.abc.exchange import ExchangeError
from nbgrader.utils import ignore_patterns, parse_utc
from traitlets import Bool, Float, Unicode, default

from .routes import BY_NAME
from .storage import human_size


class ExchangeRefused(ExchangeError):
    """The service answered with an error; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class ExchangeAPI:
    """The exchange service at ``url`` (ending with its prefix), called with ``token``: one method
    per route of routes.ROUTES, of the same name. A refusal raises ExchangeRefused, no answer
    ExchangeError, each logged first as nbgrader's exchange classes do (``fail``)."""

    RETRIED = (500, 502, 503, 504)  # the service restarting, or the proxy in front of it

    def __init__(
        self,
        url: str,
        token: str,
        timeout: float,
        log,
        transport=None,
        retry_for: float = 0.0,
        first_wait: float = 0.5,
    ):
        self.service_url = url
        self.api_url = url.rstrip("/") + "/api/"
        self.token = token
        self.timeout = timeout
        self.log = log
        self.transport = transport  # an httpx transport: tests' stand-in for the network
        self.retry_for = retry_for  # seconds a retried request keeps being tried (0: once)
        self.first_wait = first_wait  # seconds before the first retry, doubling to 5

    def call(
        self, name: str, *parts: str, params: dict | None = None, json: dict | None = None, key: str = ""
    ) -> dict:
        """``key``: an idempotency key, which makes a POST safe to retry (GETs always are)."""
        route = BY_NAME[name]
        query = {k: v for k, v in (params or {}).items() if v}  # an empty filter is no filter
        if set(query) - set(route.query):
            raise TypeError(f"{name} takes no query {sorted(set(query) - set(route.query))}")
        headers = {"Authorization": f"token {self.token}", **({"Idempotency-Key": key} if key else {})}
        retried = route.method == "GET" or bool(key)
        deadline, wait = time.monotonic() + (self.retry_for if retried else 0), self.first_wait
        with httpx.Client(transport=self.transport, headers=headers, timeout=self.timeout) as http:
            while True:
                try:
                    r = http.request(route.method, self.api_url + route.url(*parts), params=query, json=json)
                    if r.status_code not in self.RETRIED:
                        break
                    failure = f"it answered {r.status_code}"
                except httpx.HTTPError as err:
                    r, failure = None, str(err)
                if time.monotonic() + wait > deadline:
                    break
                self.log.warning("The exchange is unavailable (%s); trying again in %.1f s", failure, wait)
                time.sleep(wait)
                wait = min(wait * 2, 5.0)
        if r is None:
            message = f"Cannot reach the exchange at {self.service_url}: {failure}"
            self.log.fatal(message)
            raise ExchangeError(message) from None
        try:
            data = r.json()
        except ValueError:
            data = {"error": r.text[:300] or r.reason_phrase}
        if r.status_code >= 400:
            message = data.get("error", r.reason_phrase)
            problems = data.get("problems") or []
            if problems:  # one line per file, under the message's own head
                message = message.split(": ", 1)[0] + ":" + "".join(f"\n  - {p}" for p in problems)
            else:
                message = f"{message} (the exchange answered {r.status_code})"
            self.log.fatal(message)
            raise ExchangeRefused(message, r.status_code)
        return data

    def courses(self) -> list[dict]:
        """[{course_id, role}] of the caller's courses."""
        return self.call("courses")["courses"]

    def course(self, course: str) -> dict:
        return self.call("course", course)

    def assignments(self, course: str) -> list[dict]:
        return self.call("assignments", course)["assignments"]

    def fetch_assignment(self, course: str, assignment: str) -> dict:
        return self.call("fetch_assignment", course, assignment)

    def release_assignment(self, course: str, assignment: str, files: dict[str, str], force: bool) -> dict:
        return self.call("release_assignment", course, assignment, json={"files": files, "force": force})

    def unrelease_assignment(self, course: str, assignment: str) -> dict:
        return self.call("unrelease_assignment", course, assignment)

    def submit(self, course: str, assignment: str, files: dict[str, str], key: str = "") -> dict:
        """``key``: this attempt's idempotency key (a new random one if not given)."""
        return self.call("submit", course, assignment, json={"files": files}, key=key or new_key())

    def submissions(self, course: str, assignment: str = "", student: str = "") -> list[dict]:
        """A learner gets their own only, whatever ``student`` says."""
        params = {"assignment": assignment, "student": student}
        return self.call("submissions", course, params=params)["submissions"]

    def collect(self, course: str, assignment: str, learner: str, submission: str) -> dict:
        return self.call("collect", course, assignment, learner, submission)

    def feedback(self, course: str, assignment: str = "", student: str = "") -> list[dict]:
        params = {"assignment": assignment, "student": student}
        return self.call("feedback", course, params=params)["feedback"]

    def release_feedback(
        self, course: str, assignment: str, learner: str, timestamp: str, files: dict[str, str]
    ) -> dict:
        body = {"timestamp": timestamp, "files": files}
        return self.call("release_feedback", course, assignment, learner, json=body)

    def fetch_feedback(self, course: str, assignment: str, learner: str, submission: str) -> dict:
        return self.call("fetch_feedback", course, assignment, learner, submission)

    def accommodations(self, course: str) -> dict[str, dict]:
        """Staff: {learner: {extra_time, extensions, updated, by}} (grading/accommodations.py)."""
        return self.call("accommodations", course)["accommodations"]

    def set_accommodation(
        self,
        course: str,
        learner: str,
        extra_time: str | None = None,
        assignment: str = "",
        extension: str = "",
    ) -> dict:
        body = {"extra_time": extra_time, "assignment": assignment or None, "extension": extension or None}
        return self.call("set_accommodation", course, learner, json=body)

    def remove_accommodation(self, course: str, learner: str, assignment: str = "") -> dict:
        return self.call("remove_accommodation", course, learner, params={"assignment": assignment})


def new_key() -> str:
    """A submission attempt's idempotency key."""
    return secrets.token_urlsafe(24)


def pack(folder: str, ignore) -> dict[str, bytes]:
    """The files under ``folder`` that nbgrader would copy (``ignore`` as for shutil.copytree)."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        skipped = set(ignore(dirpath, dirnames + filenames)) if ignore else set()
        dirnames[:] = sorted(
            d for d in dirnames if d not in skipped and not os.path.islink(os.path.join(dirpath, d))
        )
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if name in skipped or os.path.islink(path):
                continue
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder).replace(os.sep, "/")] = f.read()
    return files


def unpack(files: dict[str, str], dest: str, only_missing: bool = False) -> list[str]:
    """Write base64 ``files`` under ``dest``; refuse any path that would leave it."""
    written = []
    root = os.path.realpath(dest)
    for rel, text in sorted(files.items()):
        target = os.path.realpath(os.path.join(root, rel))
        if os.path.isabs(rel) or not target.startswith(root + os.sep):
            raise ExchangeError(f"the exchange sent a file outside the assignment: {rel!r}")
        if only_missing and os.path.exists(target):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(base64.b64decode(text))
        written.append(rel)
    return written


def _sha256(path: str) -> str | None:
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class HubExchange(abc.Exchange):
    service_url = Unicode(
        help="URL of the exchange service, ending with its prefix. Default: $AILYS_EXCHANGE_URL."
    ).tag(config=True)
    api_token = Unicode(help="JupyterHub API token sent to the service. Default: $JUPYTERHUB_API_TOKEN.").tag(
        config=True
    )
    request_timeout = Float(120.0, help="Seconds a request to the exchange may take.").tag(config=True)
    retry_for = Float(
        120.0,
        help="Seconds a read or a submission is retried while the exchange cannot be reached or "
        "answers 5xx (the hub restarts a stopped exchange within about 30 s). 0: no retry.",
    ).tag(config=True)
    path_includes_course = Bool(
        False,
        help="Fetch and submit from <assignment_dir>/<course>/<assignment> rather than "
        "<assignment_dir>/<assignment> (as nbgrader's default exchange).",
    ).tag(config=True)

    @default("service_url")
    def _service_url_default(self):
        return os.environ.get("AILYS_EXCHANGE_URL", "")

    @default("api_token")
    def _api_token_default(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    # --- talking to the service ------------------------------------------------------

    @property
    def api(self) -> ExchangeAPI:
        """The service, with this server's token; checked when first used, as nbgrader's own
        exchange checks its folder."""
        started = "(is this a server started by the hub?)"
        if not self.service_url:
            self.fail(f"No exchange service URL: $AILYS_EXCHANGE_URL is not set {started}")
        if not self.api_token:
            self.fail(f"No JupyterHub API token: $JUPYTERHUB_API_TOKEN is not set {started}")
        return ExchangeAPI(
            self.service_url, self.api_token, self.request_timeout, self.log, retry_for=self.retry_for
        )

    def courses(self, role: str | None = None) -> list[str]:
        """The course of the command line, or every course where the caller has ``role``."""
        mine = {c["course_id"]: c["role"] for c in self.api.courses()}
        course_id = self.coursedir.course_id
        if course_id:
            if role and mine.get(course_id, role) != role:
                return []  # e.g. an instructor's own submissions (--cached): there are none
            return [course_id]  # one not theirs: the exchange's 403 says so
        return [c for c, r in sorted(mine.items()) if role in (None, r)]

    def need_course(self) -> str:
        if not self.coursedir.course_id:
            self.fail("No course id specified. Re-run with --course flag.")
        return self.coursedir.course_id

    def local_assignment_dir(self, course_id: str, assignment_id: str) -> str:
        parts = [course_id, assignment_id] if self.path_includes_course else [assignment_id]
        return os.path.abspath(os.path.join(self.assignment_dir, *parts))

    def packed(self, folder: str, max_file_size=None) -> dict[str, str]:
        ignore = ignore_patterns(
            exclude=self.coursedir.ignore,
            include=self.coursedir.include,
            max_file_size=max_file_size,
            log=self.log,
        )
        return {p: base64.b64encode(d).decode("ascii") for p, d in pack(folder, ignore).items()}

    def init_src(self):
        pass

    def init_dest(self):
        pass

    def copy_files(self):
        pass


class ExchangeList(abc.ExchangeList, HubExchange):
    """Released assignments (default), the caller's submissions (cached), or a course's
    submissions for its instructors (inbound), in the shape of nbgrader's default exchange."""

    def list_files(self):
        if self.inbound:
            return self._submissions(role="staff")
        if self.cached:
            return self._submissions(role="learner")
        return self._released()

    def remove_files(self):
        if self.inbound or self.cached:
            self.fail("Submissions are never removed from the exchange: every one is kept.")
        removed = self._released()
        for info in removed:
            self.api.unrelease_assignment(info["course_id"], info["assignment_id"])
            info["status"] = "removed"
            self.log.info("Removed %s %s", info["course_id"], info["assignment_id"])
        return removed

    def _released(self) -> list[dict]:
        found = []
        for course_id in self.courses():
            for meta in self.api.assignments(course_id):
                if self.coursedir.assignment_id and meta["assignment_id"] != self.coursedir.assignment_id:
                    continue
                local = self.local_assignment_dir(course_id, meta["assignment_id"])
                fetched = os.path.exists(local)
                info = {
                    "course_id": course_id,
                    "assignment_id": meta["assignment_id"],
                    "status": "fetched" if fetched else "released",
                    "path": local if fetched else f"{course_id}/{meta['assignment_id']}",
                    "released_at": meta["released_at"],
                    "due": meta.get("due"),
                    "notebooks": [
                        {
                            "notebook_id": os.path.splitext(os.path.basename(nb))[0],
                            "path": os.path.join(local, nb) if fetched else nb,
                        }
                        for nb in meta["notebooks"]
                    ],
                }
                self.log.info(
                    "%s %s%s", course_id, meta["assignment_id"], " (already downloaded)" if fetched else ""
                )
                found.append(info)
        return found

    def _submissions(self, role: str) -> list[dict]:
        assignment = self.coursedir.assignment_id
        student = self.coursedir.student_id if role == "staff" and self.coursedir.student_id != "*" else ""
        grouped: dict[tuple, list] = {}
        for course_id in self.courses(role):
            subs = self.api.submissions(course_id, assignment, student)
            feedback = {}
            if role == "learner":
                for fb in self.api.feedback(course_id, assignment):
                    feedback[(fb["assignment_id"], fb["timestamp"])] = fb
            for sub in subs:
                info = self._submission_info(sub, feedback.get((sub["assignment_id"], sub["timestamp"])))
                grouped.setdefault((course_id, sub["student_id"], sub["assignment_id"]), []).append(info)
        result = []
        for (course_id, student_id, assignment_id), infos in sorted(grouped.items()):
            infos.sort(key=lambda i: i["timestamp"])
            for info in infos:
                self.log.info("%s %s %s %s", course_id, student_id, assignment_id, info["timestamp"])
            result.append(
                {
                    "course_id": course_id,
                    "student_id": student_id,
                    "assignment_id": assignment_id,
                    "status": "submitted",
                    "submissions": infos,
                }
            )
        return result

    def _submission_info(self, sub: dict, feedback: dict | None) -> dict:
        local = self.local_assignment_dir(sub["course_id"], sub["assignment_id"])
        local_feedback_dir = os.path.join(local, "feedback", sub["timestamp"])
        notebooks = []
        for nb in sub["notebooks"]:
            notebook_id = os.path.splitext(os.path.basename(nb))[0]
            local_html = os.path.join(local_feedback_dir, f"{notebook_id}.html")
            local_sum = _sha256(local_html)
            exchange = (feedback or {}).get("files", {}).get(f"{notebook_id}.html")
            notebooks.append(
                {
                    "notebook_id": notebook_id,
                    "path": os.path.join(local, nb),
                    "has_local_feedback": local_sum is not None,
                    "has_exchange_feedback": exchange is not None,
                    "local_feedback_path": local_html if local_sum else None,
                    "feedback_updated": bool(local_sum and exchange and exchange["sha256"] != local_sum),
                }
            )
        has_local = bool(notebooks) and all(n["has_local_feedback"] for n in notebooks)
        return {
            "course_id": sub["course_id"],
            "student_id": sub["student_id"],
            "assignment_id": sub["assignment_id"],
            "timestamp": sub["timestamp"],
            "submission_id": sub["id"],
            "late": sub.get("late", False),
            "status": "submitted",
            "path": local,
            "notebooks": notebooks,
            "has_local_feedback": has_local,
            "has_exchange_feedback": bool(notebooks) and all(n["has_exchange_feedback"] for n in notebooks),
            "feedback_updated": any(n["feedback_updated"] for n in notebooks),
            "local_feedback_path": local_feedback_dir if has_local else None,
        }


class ExchangeFetchAssignment(abc.ExchangeFetchAssignment, HubExchange):
    def init_src(self):
        course_id = self.need_course()
        self.released = self.api.fetch_assignment(course_id, self.coursedir.assignment_id)

    def init_dest(self):
        self.dest_path = self.local_assignment_dir(self.coursedir.course_id, self.coursedir.assignment_id)
        if os.path.isdir(self.dest_path) and not self.replace_missing_files:
            root = os.path.relpath(self.dest_path, os.path.abspath(self.assignment_dir))
            self.fail(f"You already have a copy of the assignment in this directory: {root}")

    def copy_files(self):
        written = unpack(self.released["files"], self.dest_path, only_missing=self.replace_missing_files)
        for rel in written if self.replace_missing_files else []:
            self.log.warning("Replacing missing file '%s'", rel)
        self.log.info("Fetched as: %s %s", self.coursedir.course_id, self.coursedir.assignment_id)


class ExchangeSubmit(abc.ExchangeSubmit, HubExchange):
    def init_src(self):
        self.src_path = self.local_assignment_dir(self.coursedir.course_id, self.coursedir.assignment_id)
        if not os.path.isdir(self.src_path):
            self.fail(f"Assignment not found at: {self.src_path}")

    def init_dest(self):
        self.need_course()

    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        # Sizes are checked by the service, which names each file over the limit: none skipped here.
        files = self.packed(self.src_path)
        course = self.api.course(course_id)
        limit = course["submission"]["max_total_size"]
        total = sum(len(t) * 3 // 4 for t in files.values())
        if total > limit:
            big = sorted(files, key=lambda p: -len(files[p]))[:3]
            self.fail(
                f"{assignment_id} not submitted (nothing was sent; earlier submissions are kept):\n"
                f"  - all files: {human_size(total)} in total, over the course's limit of {human_size(limit)} "
                f"(largest: {', '.join(big)})"
            )
        self.log.info("Source: %s", self.src_path)
        meta = self.api.submit(course_id, assignment_id, files)
        self.timestamp = meta["timestamp"]
        if meta.get("late"):
            self.log.warning("Submitted after the deadline (%s)", meta["due"])
        self.log.info("Submitted as: %s %s %s", course_id, assignment_id, meta["timestamp"])


class ExchangeFetchFeedback(abc.ExchangeFetchFeedback, HubExchange):
    def init_src(self):
        course_id = self.need_course()
        self.feedback = self.api.feedback(course_id, self.coursedir.assignment_id)
        if not self.feedback:
            self.log.warning("No feedback yet for %s %s", course_id, self.coursedir.assignment_id or "")

    def copy_files(self):
        for fb in self.feedback:
            dest = os.path.join(
                self.local_assignment_dir(fb["course_id"], fb["assignment_id"]), "feedback", fb["timestamp"]
            )
            parts = fb["course_id"], fb["assignment_id"], fb["student_id"], fb["submission_id"]
            for rel in unpack(self.api.fetch_feedback(*parts)["files"], dest):
                self.log.info("Fetched feedback: %s", os.path.join(dest, rel))


class ExchangeReleaseAssignment(abc.ExchangeReleaseAssignment, HubExchange):
    def init_src(self):
        self.src_path = self.coursedir.format_path(
            self.coursedir.release_directory, ".", self.coursedir.assignment_id
        )
        if not os.path.isdir(self.src_path):
            source = self.coursedir.format_path(
                self.coursedir.source_directory, ".", self.coursedir.assignment_id
            )
            if os.path.isdir(source):
                self.fail(
                    f"Assignment found in '{source}' but not '{self.src_path}', run `nbgrader generate_assignment` first."
                )
            self.fail(f"Assignment not found at: {self.src_path}")

    def init_dest(self):
        self.need_course()

    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        files = self.packed(self.src_path, max_file_size=self.coursedir.max_file_size)
        self.log.info("Source: %s", self.src_path)
        try:
            self.api.release_assignment(course_id, assignment_id, files, force=self.force)
        except ExchangeRefused as err:
            if err.status == 409:
                self.fail(
                    f"Destination already exists, add --force to overwrite: {course_id} {assignment_id}"
                )
            raise
        self.log.info("Released as: %s %s", course_id, assignment_id)


class ExchangeCollect(abc.ExchangeCollect, HubExchange):
    """The latest submission of each learner (or the last before the deadline, with
    --before-duedate) into submitted/<learner>/<assignment>/, with nbgrader's timestamp.txt;
    with all_submissions, every one of them as well, into submission_history/."""

    all_submissions = Bool(
        False,
        help="Also copy every submission, not only the one graded, to <course root>/submission_history/"
        "<learner>/<assignment>/<submission id>/, each with its timestamp.txt (copied once).",
    ).tag(config=True)

    def init_src(self):
        course_id = self.need_course()
        student = self.coursedir.student_id if self.coursedir.student_id != "*" else ""
        subs = self.api.submissions(course_id, self.coursedir.assignment_id, student)
        self.all_records = subs
        by_learner: dict[str, list] = {}
        for sub in subs:
            by_learner.setdefault(sub["student_id"], []).append(sub)
        self.duedate = self._duedate()
        self.src_records = []
        for records in by_learner.values():
            records.sort(key=lambda s: parse_utc(s["timestamp"]), reverse=True)
            pick = records[0]
            if self.before_duedate and self.duedate is not None:
                pick = next((r for r in records if parse_utc(r["timestamp"]) <= self.duedate), records[0])
            self.src_records.append(pick)

    def _duedate(self):
        """The gradebook's due date, as nbgrader's collect uses it; else the one in course.yaml."""
        try:
            from nbgrader.api import Gradebook, MissingEntry

            with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
                try:
                    return gb.find_assignment(self.coursedir.assignment_id).duedate
                except MissingEntry:
                    pass
        except Exception as err:  # noqa: BLE001 (no gradebook, or none readable, where collect runs)
            self.log.debug("No gradebook due date: %s", err)
        due = self.api.course(self.coursedir.course_id)["due"].get(self.coursedir.assignment_id)
        return parse_utc(due) if due else None

    def _fetch_into(self, rec: dict, dest: str) -> None:
        """A submission's files and timestamp.txt at ``dest``, whole or not at all."""
        sub = self.api.collect(rec["course_id"], rec["assignment_id"], rec["student_id"], rec["id"])
        staging = dest + ".collecting"
        shutil.rmtree(staging, ignore_errors=True)
        unpack(sub["files"], staging)
        Path(staging, "timestamp.txt").write_text(sub["timestamp"])  # the exchange's, never the learner's
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.rename(staging, dest)

    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        if self.all_submissions:
            for rec in self.all_records:
                dest = os.path.join(
                    self.coursedir.root, "submission_history", rec["student_id"], assignment_id, rec["id"]
                )
                if not os.path.isdir(dest):
                    self._fetch_into(rec, dest)
                    self.log.info(
                        "Kept submission %s %s %s", rec["student_id"], assignment_id, rec["timestamp"]
                    )
        if not self.src_records:
            self.log.warning("No submissions of '%s' for course '%s' to collect", assignment_id, course_id)
        for rec in self.src_records:
            student_id = rec["student_id"]
            dest = self.coursedir.format_path(self.coursedir.submitted_directory, student_id, assignment_id)
            existing = self.coursedir.get_existing_timestamp(dest) if os.path.isdir(dest) else None
            new = parse_utc(rec["timestamp"])
            if os.path.isdir(dest):
                newer = self.update and (existing is None or new > existing)
                if not (newer or (self.before_duedate and existing != new)):
                    self.log.info(
                        "Submission already exists, use --update to update: %s %s", student_id, assignment_id
                    )
                    continue
            updating = os.path.isdir(dest)
            self._fetch_into(rec, dest)
            self.log.info(
                "%s submission: %s %s", "Updating" if updating else "Collecting", student_id, assignment_id
            )


class ExchangeReleaseFeedback(abc.ExchangeReleaseFeedback, HubExchange):
    """feedback/<learner>/<assignment>/*.html of each learner, for the submission named by its timestamp.txt."""

    def init_src(self):
        student_id = self.coursedir.student_id if self.coursedir.student_id else "*"
        self.src_path = self.coursedir.format_path(
            self.coursedir.feedback_directory, student_id, self.coursedir.assignment_id
        )

    def init_dest(self):
        self.need_course()

    def copy_files(self):
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        exclude = set(filter(None, (self.coursedir.student_id_exclude or "").split(",")))
        pattern = self.coursedir.format_path(
            self.coursedir.feedback_directory, "(?P<student_id>[^/]+)", assignment_id, escape=True
        )
        for folder in sorted(glob.glob(self.src_path)):
            m = re.fullmatch(pattern, folder)
            if not m or m["student_id"] in exclude:
                continue
            student_id = m["student_id"]
            html = {os.path.basename(p): p for p in sorted(glob.glob(os.path.join(folder, "*.html")))}
            stamp = os.path.join(folder, "timestamp.txt")
            if not html or not os.path.isfile(stamp):
                self.log.warning("No feedback or no timestamp.txt in %s: skipped", folder)
                continue
            files = {name: base64.b64encode(Path(p).read_bytes()).decode("ascii") for name, p in html.items()}
            timestamp = Path(stamp).read_text().strip()
            self.log.info(
                "Releasing feedback for student '%s' on assignment '%s/%s' (%s)",
                student_id,
                course_id,
                assignment_id,
                timestamp,
            )
            self.api.release_feedback(course_id, assignment_id, student_id, timestamp, files)


# For c.ExchangeFactory (nbgrader_config.py), by name.
FACTORY = {
    "exchange": f"{__name__}.HubExchange",
    "fetch_assignment": f"{__name__}.ExchangeFetchAssignment",
    "fetch_feedback": f"{__name__}.ExchangeFetchFeedback",
    "release_assignment": f"{__name__}.ExchangeReleaseAssignment",
    "release_feedback": f"{__name__}.ExchangeReleaseFeedback",
    "list": f"{__name__}.ExchangeList",
    "submit": f"{__name__}.ExchangeSubmit",
    "collect": f"{__name__}.ExchangeCollect",
}
