"""The `footprint` hub service (hub_config/appliers/footprint.py starts it): pages for learners and
instructors, the running figure of a session for the JupyterLab status bar, the sampling of local
and container sessions, and on the Slurm site the periodic `ailys energy collect`.

Hub API (its token's role, the appliers' FOOTPRINT_SCOPES): list:users and read:servers to know
who runs which server since when, read:users:groups to tell a session's course when its form named
none. Visitors are identified by OAuth (HubOAuth); their identity model holds their groups.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import signal
import time
from pathlib import Path

import httpx
import tornado.web
from jupyterhub.services.auth import HubOAuth
from tornado.ioloop import IOLoop, PeriodicCallback

from hub_config import names
from hub_config.catalogue import LiveCatalogue
from hub_config.service_pages import ServiceOAuthCallback, ServicePage

from . import live, pages, sstat
from .collect import sacct_env
from .model import Range, carbon_g, core_usage, estimated_energy_wh, factors_for
from .records import (
    IdleStop,
    connect,
    drop_live,
    load_live,
    read,
    read_idle_stops,
    save_live,
    store,
    store_idle_stop,
)

TEMPLATES = str(Path(__file__).parent / "templates")
log = logging.getLogger("footprint")
# How often the hub's list of running servers is read (seconds; never more than sample_every): a
# new session gets its figure, and its walltime warning, within this, whatever sample_every is.
LOOK_EVERY = 10


def _epoch(text: str | None) -> float | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


class Sessions:
    """Running sessions, as the hub lists them and /proc measures them (local and container)."""

    def __init__(self, app: FootprintApp):
        self.app = app
        self.meters: dict[tuple[str, str], live.Meter] = {}
        self.cpu_spent = 0.0  # the service's own CPU seconds on sampling (make bench-energy)
        self.samples = 0
        self.restored = False

    async def servers(self) -> list[dict]:
        """Every active server: {who, server, started, last_activity, user_options, groups}."""
        r = await self.app.hub.get("users", params={"state": "active"})
        r.raise_for_status()
        found = []
        for user in r.json():
            for name, server in (user.get("servers") or {}).items():
                if server.get("started") and server.get("ready"):
                    found.append(
                        {"who": user["name"], "server": name, "groups": user.get("groups") or [], **server}
                    )
        return found

    def course_of(self, server: dict) -> str | None:
        """The course the form chose, else the learner's one course; None when they have several."""
        chosen = (server.get("user_options") or {}).get("course")
        if chosen:
            return chosen
        slugs = {names.course_of_group(g) for g in server["groups"]} - {None}
        return slugs.pop() if len(slugs) == 1 else None

    async def tick(self, now: float | None = None) -> None:
        """One look at the hub's servers (``now``: the clock, given by make bench-energy's hour)."""
        try:
            servers = await self.servers()
        except (httpx.HTTPError, ValueError) as err:
            log.warning("footprint: the hub's server list failed: %s", err)
            return
        started = time.process_time()
        now = time.time() if now is None else now
        if not self.restored:  # the sessions sampled before a restart: still running, or ended
            self.restored = True
            for row in load_live(self.app.engine):
                self.meters.setdefault((row["who"], row["server"]), live.Meter.restored(row))
        seen = {}
        for s in servers:
            key = (s["who"], s["server"])
            since = _epoch(s["started"])
            meter = self.meters.get(key)
            if meter is None or meter.started != since:  # new, or restarted between two samples
                if meter is not None:
                    self.ended(meter, now)
                meter = live.Meter(s["who"], s["server"], self.app.kind, self.course_of(s), since)
                self.meters[key] = meter
            meter.last_activity = _epoch(s.get("last_activity"))
            meter.extra = {"user_options": s.get("user_options") or {}}
            seen[key] = meter
        for key in set(self.meters) - set(seen):
            self.ended(self.meters.pop(key), now)
        # A session is sampled when first seen (so even a short one has a figure and a record),
        # then every `sample_every`; the hub's list is read more often, it is the cheap part.
        due = {k: m for k, m in seen.items() if now - m.last_sample >= self.app.every - self.app.look / 2}
        if self.app.kind in ("local", "docker"):
            if due:
                self.measure(due, now)
                save_live(self.app.engine, [m.saved() for m in due.values() if m.last_sample])
        elif self.app.kind == "slurm" and due:
            exec_prefix = self.app.catalogue.current().site.spawner.slurm.exec_prefix
            await sstat.measure(due, self.app.slurm_env(), exec_prefix, now)
        self.cpu_spent += time.process_time() - started
        self.samples += 1

    def measure(self, meters: dict, now: float) -> None:
        if any(m.root is None for m in meters.values()):
            roots = live.find_roots()
            for key, meter in meters.items():
                meter.root = meter.root or roots.get(key)
        figures = live.sample({k: m.root for k, m in meters.items() if m.root})
        for key, meter in meters.items():
            if key in figures:
                meter.update(*figures[key], now)
            else:
                meter.root = None  # gone or replaced: looked for again next time

    def ended(self, meter: live.Meter, now: float) -> None:
        """A session is over: its record (local, container), and the culler's stop if it was idle."""
        end = meter.last_sample or now
        if self.app.kind in ("local", "docker") and meter.last_sample:
            store(self.app.engine, [live.footprint_of_meter(meter, end, self.app.factors(None))])
            drop_live(self.app.engine, meter.ref)
        culler = self.app.catalogue.current().site.culler
        if (
            not meter.from_database  # when it ended while the service was down is not known
            and culler.enabled
            and meter.last_activity
            and now - meter.last_activity >= culler.timeout - self.app.every
        ):
            cores, limit = self.app.allocation(meter)
            duration = now - meter.started
            store_idle_stop(
                self.app.engine,
                IdleStop(
                    ref=meter.ref,
                    who=meter.who,
                    course=meter.course,
                    kind=self.app.kind,
                    end=dt.datetime.fromtimestamp(now, dt.UTC),
                    cores=cores,
                    idle_hours=(now - meter.last_activity) / 3600,
                    reclaimed_core_hours=live.reclaimed_core_hours(cores, duration, limit or culler.max_age),
                ),
            )

    def running(self, who: str) -> list[dict]:
        """The running figures of ``who``'s sessions (the status bar's, and the page's)."""
        now = time.time()
        out = []
        for meter in self.meters.values():
            if meter.who != who:
                continue
            cores, limit = self.app.allocation(meter)
            if self.app.kind == "slurm" and meter.last_sample:
                # sstat's CPU time of the job so far, over its allocation (the sacct record's model).
                runtime = max(1.0, meter.last_sample - (meter.job_start or meter.started))
                used = core_usage(meter.cpu_s, runtime, cores)
                usage = live.Usage(runtime, cores, used, self.app.memory_gb(meter))
                wh, method = (
                    estimated_energy_wh(usage, self.app.factors(self.app.partition(meter))),
                    "estimate",
                )
            elif self.app.kind == "slurm":
                # No sstat figure yet (the job is starting, or sstat failed): the allocation at
                # full use is the most it can be, idle the least.
                usage = live.Usage(max(1.0, now - meter.started), cores, 1.0, self.app.memory_gb(meter))
                full = estimated_energy_wh(usage, self.app.factors(self.app.partition(meter)))
                wh, method = Range(full.value, 0.0, full.high), "allocation"
            else:
                usage = live.usage_of(meter.cpu_s, (meter.last_sample or now) - meter.started, meter.peak_rss)
                wh, method = estimated_energy_wh(usage, self.app.factors(None)), "estimate"
            partition = self.app.partition(meter) if self.app.kind == "slurm" else None
            co2 = carbon_g(wh, self.app.factors(partition))
            out.append(
                {
                    "server": meter.server,
                    "course": meter.course,
                    "kind": self.app.kind,
                    "started": dt.datetime.fromtimestamp(meter.started, dt.UTC).isoformat(),
                    "ends": dt.datetime.fromtimestamp(meter.started + limit, dt.UTC).isoformat()
                    if limit
                    else None,
                    "cpu_seconds": round(meter.cpu_s, 2),
                    "energy_wh": _range(wh),
                    "co2_g": _range(co2),
                    "method": method,
                }
            )
        return out


def _range(r: Range) -> dict:
    return {"value": round(r.value, 4), "low": round(r.low, 4), "high": round(r.high, 4)}


class Page(ServicePage):
    templates = (str(TEMPLATES),)

    @property
    def app(self) -> FootprintApp:
        return self.settings["footprint"]

    def page(self, name: str, status: int = 200, **ns) -> None:
        super().page(name, status, p=pages, **ns)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.page("footprint-error.html", status_code, code=status_code, reason=self._reason)


class MeHandler(Page):
    @tornado.web.authenticated
    async def get(self):
        from hub_config.quotas import person_usage

        who = self.current_user["name"]
        records = pages.of_person(read(self.app.engine, who=who), who)  # the one rule, twice
        catalogue = self.app.catalogue.current()
        courses = []
        for course in catalogue.courses:
            mine = pages.in_window([r for r in records if r.course == course.slug], course.start, course.end)
            if mine:
                courses.append((course, pages.total(mine)))
        self.page(
            "footprint-me.html",
            who=who,
            running=self.app.sessions.running(who),
            courses=courses,
            everything=pages.total(records),
            disk=await asyncio.to_thread(person_usage, catalogue, who),  # a walk of their home
        )


class MeApiHandler(Page):
    def check_xsrf_cookie(self):
        # JupyterHub accepts a service's cookie on a fetch() only with an XSRF token, which the
        # status bar (a page under /user/) cannot read from a cookie of /services/footprint/. A GET
        # from the same origin changes nothing and no other origin may read its answer (no CORS).
        if self.request.method == "GET" and self.request.headers.get("Sec-Fetch-Site") == "same-origin":
            return
        super().check_xsrf_cookie()

    @tornado.web.authenticated
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            json.dumps(
                {
                    "who": self.current_user["name"],
                    "sessions": self.app.sessions.running(self.current_user["name"]),
                }
            )
        )


class CourseHandler(Page):
    def allowed(self, slug: str):
        course = next((c for c in self.app.catalogue.current().courses if c.slug == slug), None)
        if course is None:
            raise tornado.web.HTTPError(404)
        if not pages.may_see_course(self.current_user.get("groups") or [], slug, course.staff_group):
            raise tornado.web.HTTPError(403, f"the figures of {slug} are for its instructors")
        return course

    @tornado.web.authenticated
    def get(self, slug: str):
        course = self.allowed(slug)
        records = read(self.app.engine, course=slug)
        stops = read_idle_stops(self.app.engine, course=slug)
        self.page(
            "footprint-course.html",
            course=course,
            everything=pages.total(records),
            learners=pages.learner_sessions(records),
            assignments=pages.assignment_runs(records),
            stops=len(stops),
            reclaimed=sum(s.reclaimed_core_hours for s in stops),
            idle_hours=sum(s.idle_hours * s.cores for s in stops),
        )


class PlotHandler(CourseHandler):
    @tornado.web.authenticated
    async def get(self, slug: str):
        self.allowed(slug)
        records = read(self.app.engine, course=slug)
        png = await asyncio.to_thread(plot, slug, records)
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "no-store")
        self.finish(png)


def plot(slug: str, records) -> bytes:
    """Energy per learner and per assignment, drawn by the admin report's plot (report.as_png)."""
    from .report import Total, as_png

    rows = []
    for label, sums in (
        ("session", pages.learner_sessions(records)),
        ("autograde", pages.assignment_runs(records)),
    ):
        for name, s in sums.items():
            rows.append(
                Total(
                    name,
                    "-",
                    label,
                    s.records,
                    s.measured,
                    s.estimate,
                    s.core_hours,
                    0,
                    0,
                    *_flat(s.energy),
                    *_flat(s.co2),
                )
            )
    return as_png(rows, title=f"Energy of {slug}: learners' sessions and assignments' grading")


def _flat(r: Range) -> tuple[float, float, float]:
    return r.value, r.low, r.high


OAuthCallback = ServiceOAuthCallback


class FootprintApp:
    def __init__(self, site_file: str, base_url: str):
        self.catalogue = LiveCatalogue(site_file, log, sources=False)
        catalogue = self.catalogue.current()
        site = catalogue.site
        self.site_file = site_file
        self.kind = site.spawner.kind
        self.settings = site.energy.service
        self.every = self.settings.sample_every
        self.look = min(self.every, LOOK_EVERY)
        from hub_config.appliers.storage import database_url

        self.engine = connect(database_url(catalogue))
        self.hub = httpx.AsyncClient(
            base_url=os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api").rstrip("/") + "/",
            headers={"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"},
            timeout=30,
        )
        self.sessions = Sessions(self)
        self.base_url = base_url

    def factors(self, partition: str | None):
        return factors_for(self.catalogue.current().site.energy, partition)

    def _course(self, meter):
        return next((c for c in self.catalogue.current().courses if c.slug == meter.course), None)

    def allocation(self, meter) -> tuple[float, float | None]:
        """(cores, walltime in seconds or None) of a session: its form's choice, else its course's."""
        options = meter.extra.get("user_options") or {}
        course = self._course(meter)
        cores = options.get("cpus") or (course.resources.cpus if course else 1)
        walltime = options.get("walltime") or (
            course.resources.walltime if course and self.kind != "local" else None
        )
        return float(cores), (float(walltime) if walltime else None)

    def memory_gb(self, meter) -> float:
        options = meter.extra.get("user_options") or {}
        course = self._course(meter)
        return (options.get("memory") or (course.resources.memory if course else 0)) / 1024**3

    def partition(self, meter) -> str | None:
        course = self._course(meter)
        return (
            course.resources.partition if course else None
        ) or self.catalogue.current().site.spawner.slurm.default_partition

    def slurm_conf(self) -> Path | None:
        site = self.catalogue.current()
        conf = site.site.spawner.slurm.slurm_conf  # relative to the site file, as the spawner reads it
        return (site.site_file.parent / conf).resolve() if conf else None

    def slurm_env(self) -> dict[str, str]:
        return sacct_env(self.slurm_conf())

    def collect(self) -> None:
        """`ailys energy collect` in a thread: sacct may take seconds."""
        from hub_config.appliers.storage import database_url

        from .collect import collect

        site, conf = self.catalogue.current(), self.slurm_conf()
        try:
            done = collect(database_url(site), site.site.energy, slurm_conf=conf)
            if done.new:
                log.info("footprint: %d new records from %d Slurm jobs", done.new, done.read)
        except (RuntimeError, FileNotFoundError, OSError) as err:
            log.warning("footprint: collect failed: %s", err)

    def make_app(self) -> tornado.web.Application:
        hub_auth = HubOAuth(api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""), cache_max_age=60)
        base = self.base_url
        return tornado.web.Application(
            [
                (base, MeHandler),
                (f"{base}api/me", MeApiHandler),
                (rf"{base}course/([^/]+)", CourseHandler),
                (rf"{base}course/([^/]+)/plot\.png", PlotHandler),
                (f"{base}oauth_callback", OAuthCallback),
            ],
            footprint=self,
            hub_auth=hub_auth,
            base_url=base,
            hub_url=os.environ.get("JUPYTERHUB_BASE_URL", "/"),
            cookie_secret=os.urandom(32),
        )

    def start(self, port: int) -> None:
        self.make_app().listen(port, "127.0.0.1")
        loop = IOLoop.current()
        loop.add_callback(self.sessions.tick)
        PeriodicCallback(self.sessions.tick, self.look * 1000).start()
        if self.kind == "slurm":
            run = lambda: loop.run_in_executor(None, self.collect)  # noqa: E731
            loop.add_callback(run)  # at start: what ended while the hub was down
            PeriodicCallback(run, self.settings.collect_every * 1000).start()

        # The hub stops its services one after another at shutdown (SIGINT, then SIGTERM): stop at
        # once, without waiting for a sacct read still running in its thread (records are idempotent,
        # the next start reads it again).
        def stop(*_) -> None:
            loop.asyncio_loop.call_soon_threadsafe(loop.stop)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        loop.start()
        os._exit(0)
