"""The exchange service: a hub-managed tornado service that holds nbgrader's released
assignments, submissions and feedback (storage.py) and decides who may reach what.

    python -m grading.exchange.service <site file>

Every request carries a JupyterHub API token (``Authorization: token ...``) that must hold
``access:services!service=<this service>``; the hub says whose token it is (HubAuth). Who
may do what comes from the hub's groups, read with the service's own token:
``course-<slug>`` are the learners and ``staff-<slug>`` the instructors of a course. A hub
service named ``grading-<slug>`` (a per-course grading service) acts as staff of that course.
Courses, deadlines and submission limits come from the course files.

Its API, under <prefix>api/, is the route table of routes.py: ``make_app`` serves each route
with the handler ``HANDLERS`` names for it, and refuses to start if the two disagree. A submission
may carry an ``Idempotency-Key`` header (the client sends one per attempt, resent by its retries):
the first request with a key records the submission, a later one gets that record back.
<prefix>metrics serves Prometheus metrics (metrics.py) to a token with hub_config/metrics.py's scope.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
from jupyterhub.services.auth import HubAuth
from jupyterhub.utils import url_path_join
from tornado import httpserver, ioloop, web
from tornado.log import app_log, enable_pretty_logging

from hub_config import names
from hub_config.catalogue import LiveCatalogue
from hub_config.metrics import MetricsHandler
from hub_config.schema import Course

from .. import accommodations
from ..courses import course_dir, sync_extensions
from . import metrics
from .practice import PracticeGrading, wanted
from .routes import ROUTES
from .storage import ExchangeProblem, ExchangeStore, Limits, check_name

# Files move through their own threads: decoding, checking and writing a 20 MB submission (27 MB of
# base64), or reading and encoding a release for fetch or a submission for collect, would stall every
# other request on the event loop. Autograde on submit holds the loop's default threads for minutes.
# A few, since each holds a set of files three times over (JSON text, base64 strings, bytes).
FILE_WORK = ThreadPoolExecutor(max_workers=4, thread_name_prefix="exchange-files")

GROUPS_TTL = 10.0  # seconds a user's hub groups are trusted before being asked again
CATALOGUE_TTL = 5.0


def encode_files(files: dict[str, bytes]) -> dict[str, str]:
    return {path: base64.b64encode(data).decode("ascii") for path, data in files.items()}


def decode_files(body: dict) -> dict[str, bytes]:
    files = body.get("files")
    if not isinstance(files, dict):
        raise ExchangeProblem(400, "the request body needs 'files': {path: base64 content}")
    try:
        return {path: base64.b64decode(text, validate=True) for path, text in files.items()}
    except (binascii.Error, TypeError, ValueError) as err:
        raise ExchangeProblem(400, f"a file's content is not valid base64: {err}") from None


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def limits_of(course: Course, quota: int | None = None) -> Limits:
    """``quota``: the site's quotas.exchange."""
    s = course.submission
    return Limits(
        max_file_size=s.max_file_size, max_total_size=s.max_total_size, max_files=s.max_files, quota=quota
    )


def due_of(course: Course, assignment: str, record: dict | None = None) -> dt.datetime | None:
    """The deadline of ``assignment``; with a learner's accommodations ``record``, theirs."""
    return accommodations.due_for(course, record, assignment)  # a deadline without a zone is UTC


class Context:
    """What every handler shares: storage, the course files, the hub's answers (cached briefly)."""

    def __init__(self, store: ExchangeStore, site_file: str, hub_auth: HubAuth):
        self.store = store
        self.catalogue = LiveCatalogue(site_file, app_log)
        self.hub_auth = hub_auth
        self.practice = PracticeGrading(store, self.catalogue, app_log)
        self._catalogue_at = 0.0
        self._courses: dict[str, Course] = {}
        self._groups: dict[str, tuple[float, set[str]]] = {}
        self.http = httpx.AsyncClient(
            base_url=hub_auth.api_url.rstrip("/") + "/",
            headers={"Authorization": f"token {hub_auth.api_token}"},
            timeout=30,
        )

    def courses(self) -> dict[str, Course]:
        if time.monotonic() - self._catalogue_at > CATALOGUE_TTL:
            self._courses = {c.slug: c for c in self.catalogue.current().courses}
            self._catalogue_at = time.monotonic()
        return self._courses

    def course_dir(self, slug: str):
        return course_dir(self.catalogue.current(), slug)

    def accommodation(self, slug: str, learner: str) -> dict | None:
        """One learner's accommodations in a course (None: none), read at each request."""
        return accommodations.records(self.course_dir(slug)).get(learner)

    async def groups_of(self, name: str) -> set[str]:
        at, groups = self._groups.get(name, (0.0, set()))
        if time.monotonic() - at > GROUPS_TTL:
            r = await self.http.get(f"users/{name}")
            if r.status_code != 404:  # 404: the user was deleted since the token was checked
                r.raise_for_status()
            groups = set(r.json().get("groups") or []) if r.status_code == 200 else set()
            self._groups[name] = (time.monotonic(), groups)
        return groups


class APIHandler(web.RequestHandler):
    def initialize(self, ctx: Context, routes: dict[str, str]):
        self.ctx = ctx
        self.routes = routes  # the route's name for each method at this path, for the metrics
        self.who: dict = {}

    def on_finish(self):
        route = self.routes.get(self.request.method, "other")
        metrics.LATENCY.labels(route).observe(self.request.request_time())
        if self.get_status() >= 400:
            metrics.REFUSALS.labels(metrics.reason_of(self.get_status())).inc()

    def check_xsrf_cookie(self):
        pass  # token-authenticated API: no cookies are read

    async def prepare(self):
        token = self.ctx.hub_auth.get_token(self, in_cookie=False)
        if not token:
            raise ExchangeProblem(401, "no JupyterHub API token in the Authorization header")
        model = await self.ctx.hub_auth.user_for_token(token, sync=False)
        if not model:
            raise ExchangeProblem(401, "the hub does not know this token (expired or revoked?)")
        if not self.ctx.hub_auth.check_scopes(self.ctx.hub_auth.access_scopes, model):
            narrowest = max(self.ctx.hub_auth.access_scopes, key=len)  # access:services!service=<name>
            raise ExchangeProblem(403, f"this token lacks the scope {narrowest}")
        self.who = {"name": model["name"], "kind": model.get("kind", "user")}

    # --- who may do what -------------------------------------------------------------

    async def role_in(self, slug: str) -> str | None:
        name, kind = self.who["name"], self.who["kind"]
        if kind == "service":
            return "staff" if name == names.grading_service(slug) else None
        groups = await self.ctx.groups_of(name)
        if names.staff_group(slug) in groups:
            return "staff"
        if names.course_group(slug) in groups:
            return "learner"
        return None

    async def course(self, slug: str, need: str | None = None, doing: str = "") -> tuple[Course, str]:
        """The course and the caller's role in it; 404 for an unknown course, 403 for a stranger."""
        check_name("course", slug)
        course = self.ctx.courses().get(slug)
        if course is None:
            raise ExchangeProblem(404, f"there is no course {slug!r} on this hub")
        role = await self.role_in(slug)
        if role is None:
            raise ExchangeProblem(
                403, f"{self.who['name']} is neither a learner nor an instructor of course {slug!r}"
            )
        if need and role != need:
            whom = "instructors" if need == "staff" else "learners"
            raise ExchangeProblem(403, f"only {whom} of {slug!r} may {doing}")
        return course, role

    def only_own(self, role: str, learner: str | None, what: str) -> str | None:
        """A learner sees their own submissions and feedback, and nobody else's."""
        if role == "staff":
            return learner
        if learner not in (None, "", self.who["name"]):
            raise ExchangeProblem(403, f"{self.who['name']} may see only their own {what}")
        return self.who["name"]

    # --- plumbing --------------------------------------------------------------------------

    def body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as err:
            raise ExchangeProblem(400, f"the request body is not JSON: {err}") from None
        if not isinstance(body, dict):
            raise ExchangeProblem(400, "the request body must be a JSON object")
        return body

    def reply(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    async def off_loop(self, work):
        """Run ``work()`` (reading, writing, encoding files) in FILE_WORK; return its result."""
        return await ioloop.IOLoop.current().run_in_executor(FILE_WORK, work)

    async def reply_with_files(self, meta: dict, read_files) -> None:
        """Answer ``meta`` plus ``files``: read by ``read_files()``, encoded off the event loop."""
        text = await self.off_loop(lambda: json.dumps({**meta, "files": encode_files(read_files())}))
        self.set_header("Content-Type", "application/json")
        self.finish(text)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def log_action(self, action: str, **what) -> None:
        app_log.info(
            "%s %s by %s %s",
            action,
            " ".join(f"{k}={v}" for k, v in what.items()),
            self.who["kind"],
            self.who["name"],
        )

    def write_error(self, status_code: int, **kwargs) -> None:
        err = kwargs.get("exc_info", (None, None))[1]
        if isinstance(err, ExchangeProblem):
            data = {"error": err.message, "problems": err.problems, "status": err.status}
        elif isinstance(err, web.HTTPError):
            data = {"error": err.log_message or self._reason, "status": status_code}
        else:
            data = {
                "error": f"the exchange failed: {type(err).__name__}; see the hub's log",
                "status": status_code,
            }
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def _handle_request_exception(self, e):
        if isinstance(e, ExchangeProblem):
            app_log.warning("%s %s: %s %s", self.request.method, self.request.path, e.status, e.message)
            if not self._finished:
                self.send_error(e.status, exc_info=sys.exc_info())
            return
        super()._handle_request_exception(e)


class CoursesHandler(APIHandler):
    async def get(self):
        mine = []
        for slug in sorted(self.ctx.courses()):
            role = await self.role_in(slug)
            if role:
                mine.append({"course_id": slug, "role": role})
        self.reply({"courses": mine})


class CourseHandler(APIHandler):
    async def get(self, slug):
        course, role = await self.course(slug)
        s = course.submission
        own = self.ctx.accommodation(slug, self.who["name"]) if role == "learner" else None
        self.reply(
            {
                "course_id": slug,
                "role": role,
                "submission": {
                    "max_file_size": s.max_file_size,
                    "max_total_size": s.max_total_size,
                    "max_files": s.max_files,
                },
                # a learner's own deadlines (their accommodations counted); staff: course.yaml's
                "due": {a.name: iso(due_of(course, a.name, own)) for a in course.assignments},
            }
        )


class AssignmentsHandler(APIHandler):
    async def get(self, slug):
        course, role = await self.course(slug)
        own = self.ctx.accommodation(slug, self.who["name"]) if role == "learner" else None
        released = self.ctx.store.released(slug)
        for meta in released:
            meta["due"] = iso(due_of(course, meta["assignment_id"], own))
        self.reply({"assignments": released})


class AssignmentHandler(APIHandler):
    async def get(self, slug, assignment):
        await self.course(slug)
        meta = self.ctx.store.release_of(slug, assignment)
        await self.reply_with_files(meta, lambda: self.ctx.store.released_files(slug, assignment))

    async def put(self, slug, assignment):
        await self.course(slug, need="staff", doing="release assignments")
        check_name("assignment", assignment)
        who, now = self.who["name"], self.now()

        def store() -> dict:
            body = self.body()
            force = bool(body.get("force"))
            return self.ctx.store.release(slug, assignment, decode_files(body), who, now, force=force)

        meta = await self.off_loop(store)
        self.log_action("released", course=slug, assignment=assignment)
        self.reply(meta, status=201)

    async def delete(self, slug, assignment):
        await self.course(slug, need="staff", doing="unrelease assignments")
        self.ctx.store.unrelease(slug, assignment)
        self.log_action("unreleased", course=slug, assignment=assignment)
        self.reply({"course_id": slug, "assignment_id": assignment, "released": False})


class SubmitHandler(APIHandler):
    async def post(self, slug, assignment):
        course, _ = await self.course(slug, need="learner", doing="submit")
        learner, now = self.who["name"], self.now()  # its time of arrival, however long storing takes
        key = self.request.headers.get("Idempotency-Key")
        autograde = wanted(course, assignment)

        def store() -> dict:
            files = decode_files(self.body())
            return self.ctx.store.submit(
                slug,
                assignment,
                learner,
                files,
                limits_of(course, self.ctx.catalogue.current().site.quotas.exchange),
                now,
                due_of(course, assignment, self.ctx.accommodation(slug, learner)),
                key=key,
                autograde=autograde,
            )

        try:
            meta = await self.off_loop(store)
        except ExchangeProblem as err:
            if err.status == 422:
                self.log_action(
                    "refused submission", course=slug, assignment=assignment, problems=len(err.problems)
                )
            raise
        queued = self.ctx.practice.submitted(course, assignment, self.who["name"], meta)
        replayed = bool(meta.get("replayed"))
        (metrics.REPLAYS if replayed else metrics.SUBMISSIONS).labels(slug).inc()
        self.log_action(
            "answered a retried submission" if replayed else "submitted",
            course=slug,
            assignment=assignment,
            id=meta["id"],
            late=meta["late"],
            autograde=queued,
        )
        self.reply({**meta, "autograde_on_submit": queued}, status=200 if replayed else 201)


class SubmissionsHandler(APIHandler):
    async def get(self, slug):
        _, role = await self.course(slug)
        learner = self.only_own(role, self.get_query_argument("student", None), "submissions")
        assignment = self.get_query_argument("assignment", None) or None
        if assignment:
            check_name("assignment", assignment)
        if learner:
            check_name("learner", learner)
        self.reply({"submissions": self.ctx.store.submissions(slug, assignment, learner)})


class SubmissionHandler(APIHandler):
    async def get(self, slug, assignment, learner, sub_id):
        _, role = await self.course(slug)
        self.only_own(role, learner, "submissions")
        files = await self.off_loop(
            lambda: self.ctx.store.submission_files(slug, assignment, learner, sub_id)
        )
        meta = next(m for m in self.ctx.store.submissions(slug, assignment, learner) if m["id"] == sub_id)
        if role == "staff":
            self.log_action("collected", course=slug, assignment=assignment, learner=learner, id=sub_id)
        await self.reply_with_files(meta, lambda: files)


class FeedbackListHandler(APIHandler):
    async def get(self, slug):
        _, role = await self.course(slug)
        learner = self.only_own(role, self.get_query_argument("student", None), "feedback")
        assignment = self.get_query_argument("assignment", None) or None
        if assignment:
            check_name("assignment", assignment)
        self.reply({"feedback": self.ctx.store.feedback(slug, assignment, learner)})


class FeedbackReleaseHandler(APIHandler):
    async def put(self, slug, assignment, learner):
        await self.course(slug, need="staff", doing="release feedback")
        check_name("assignment", assignment)
        check_name("learner", learner)
        who, now = self.who["name"], self.now()

        def store() -> dict:
            body = self.body()
            timestamp = body.get("timestamp")
            if not isinstance(timestamp, str):
                raise ExchangeProblem(
                    400, "the request body needs 'timestamp': the submission's timestamp.txt"
                )
            files = decode_files(body)
            return self.ctx.store.release_feedback(slug, assignment, learner, timestamp, files, who, now)

        meta = await self.off_loop(store)
        self.log_action(
            "released feedback", course=slug, assignment=assignment, learner=learner, id=meta["submission_id"]
        )
        self.reply(meta, status=201)


class FeedbackHandler(APIHandler):
    async def get(self, slug, assignment, learner, sub_id):
        _, role = await self.course(slug)
        self.only_own(role, learner, "feedback")
        await self.reply_with_files(
            {}, lambda: self.ctx.store.feedback_files(slug, assignment, learner, sub_id)
        )


class QuietRefusals(APIHandler):
    """Accommodations are health-related: a refusal's message may quote a value, so the log gets
    its status only (the caller gets the whole message)."""

    def _handle_request_exception(self, e):
        if isinstance(e, ExchangeProblem):
            app_log.warning("%s %s: %s (accommodations)", self.request.method, self.request.path, e.status)
            if not self._finished:
                self.send_error(e.status, exc_info=sys.exc_info())
            return
        super()._handle_request_exception(e)


class AccommodationsHandler(QuietRefusals):
    """Staff of the course only: every learner's accommodations."""

    async def get(self, slug):
        await self.course(slug, need="staff", doing="read accommodations")
        self.reply({"accommodations": accommodations.records(self.ctx.course_dir(slug))})


class AccommodationHandler(QuietRefusals):
    """Staff of the course only: set or remove one learner's extra time or extension."""

    async def put(self, slug, learner):
        course, _ = await self.course(slug, need="staff", doing="set accommodations")
        body = self.body()
        unknown = sorted(set(body) - {"extra_time", "assignment", "extension"})
        if unknown:
            raise ExchangeProblem(
                400, f"unknown field {unknown[0]!r}: give extra_time, assignment, extension"
            )
        for key in ("extra_time", "assignment", "extension"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise ExchangeProblem(400, f"{key}: a text such as 33%, 30m or 2d, not {body[key]!r}")
        try:
            record = accommodations.set_accommodation(
                self.ctx.course_dir(slug),
                course,
                self.ctx.catalogue.current().learners(course),
                learner,
                extra_time=body.get("extra_time"),
                assignment=body.get("assignment"),
                extension=body.get("extension"),
                by=self.who["name"],
            )
        except accommodations.AccommodationError as err:
            raise ExchangeProblem(422, str(err)) from None
        await self.off_loop(lambda: sync_extensions(self.ctx.catalogue.current(), course))
        self.log_action("set accommodations", course=slug, learner=learner)  # never the values: health data
        self.reply({"learner": learner, **record})

    async def delete(self, slug, learner):
        course, _ = await self.course(slug, need="staff", doing="remove accommodations")
        assignment = self.get_query_argument("assignment", None) or None
        if not accommodations.remove(self.ctx.course_dir(slug), course, learner, assignment):
            what = f"extension on {assignment}" if assignment else "accommodations"
            raise ExchangeProblem(404, f"{learner} has no {what} in course {slug}")
        await self.off_loop(lambda: sync_extensions(self.ctx.catalogue.current(), course))
        self.log_action("removed accommodations", course=slug, learner=learner)
        self.reply({"learner": learner, "removed": assignment or "all"})


class NotFoundHandler(web.RequestHandler):
    """Any other path: a JSON answer, like the rest of the API."""

    def prepare(self):
        self.set_status(404)
        self.finish(
            {"error": f"the exchange has no {self.request.method} {self.request.path}", "status": 404}
        )


# The handler of each route of the table (routes.py), by name; the routes of one path share one.
HANDLERS: dict[str, type[APIHandler]] = {
    "courses": CoursesHandler,
    "course": CourseHandler,
    "assignments": AssignmentsHandler,
    "fetch_assignment": AssignmentHandler,
    "release_assignment": AssignmentHandler,
    "unrelease_assignment": AssignmentHandler,
    "submit": SubmitHandler,
    "submissions": SubmissionsHandler,
    "collect": SubmissionHandler,
    "feedback": FeedbackListHandler,
    "release_feedback": FeedbackReleaseHandler,
    "fetch_feedback": FeedbackHandler,
    "accommodations": AccommodationsHandler,
    "set_accommodation": AccommodationHandler,
    "remove_accommodation": AccommodationHandler,
}


def answered(handler: type[web.RequestHandler]) -> set[str]:
    """The methods a handler class defines; tornado answers 405 to the others."""
    default = web.RequestHandler
    return {
        m for m in handler.SUPPORTED_METHODS if getattr(handler, m.lower()) is not getattr(default, m.lower())
    }


def make_app(ctx: Context, prefix: str) -> web.Application:
    """One rule per path of the route table, each answering exactly the table's methods there."""
    handlers: dict[str, type[APIHandler]] = {}
    methods: dict[str, dict[str, str]] = {}
    for route in ROUTES:
        handler = handlers.setdefault(route.pattern, HANDLERS[route.name])
        methods.setdefault(route.pattern, {})[route.method] = route.name
        if handler is not HANDLERS[route.name]:
            raise RuntimeError(f"route {route.name}: {route.path} is already {handler.__name__}'s")
    for pattern, handler in handlers.items():
        if answered(handler) != set(methods[pattern]):
            raise RuntimeError(
                f"{handler.__name__} answers {sorted(answered(handler))} at {pattern}, "
                f"the route table {sorted(methods[pattern])}"
            )
    api = url_path_join(prefix, "api/")
    rules = [(api + p, handler, {"ctx": ctx, "routes": methods[p]}) for p, handler in handlers.items()]
    hub_auth = getattr(ctx, "hub_auth", None)  # None: a route-table check without a service
    rules.append((url_path_join(prefix, "metrics"), MetricsHandler, {"hub_auth": hub_auth}))
    return web.Application(rules, default_handler_class=NotFoundHandler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site_file")
    parser.add_argument(
        "--max-body", type=int, default=0, help="largest request in bytes (default: from the courses' limits)"
    )
    args = parser.parse_args(argv)
    enable_pretty_logging()
    app_log.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per hub request otherwise

    live = LiveCatalogue(args.site_file, app_log)
    catalogue = live.current()
    store = ExchangeStore(catalogue.data_dir / "exchange")
    name = os.environ.get("JUPYTERHUB_SERVICE_NAME", names.EXCHANGE_SERVICE)
    hub_auth = HubAuth(cache_max_age=60)
    if not hub_auth.access_scopes:
        hub_auth.access_scopes = {names.access_scope(name)}
    ctx = Context(store, args.site_file, hub_auth)
    # Base64 makes a body 4/3 of its files; leave room for the JSON around them.
    biggest = max((c.submission.max_total_size for c in catalogue.courses), default=0)
    max_body = args.max_body or max(64 * 1024**2, biggest * 3 // 2 + 1024**2)
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8082"))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", names.service_prefix(name))
    server = httpserver.HTTPServer(make_app(ctx, prefix), max_body_size=max_body)
    server.listen(url.port, url.hostname)
    ioloop.IOLoop.current().add_callback(ctx.practice.resume)  # the queue an earlier run left
    app_log.info(
        "exchange %s serving %s at %s%s, keeping files in %s (0700)",
        name,
        prefix,
        url.netloc,
        prefix,
        store.root,
    )
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
