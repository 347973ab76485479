r"""Learner servers as Slurm jobs on Mesolys: batchspawner's SlurmSpawner, made queue-aware and
resilient.

One launch profile per course the learner belongs to (``profiles``), the batch script from a
Jinja2 template file (templates/slurm-job.sh.j2) with the job's environment written out in full,
the job submitted as the learner, and the failures batchspawner users report most handled:

- a failing squeue (slurmctld down or slow, munge hiccup, anything but a clear answer) never makes
  ``poll()`` report the server gone (batchspawner #171, #174, #315): only squeue saying the job has
  ended, or no longer knowing it, does;
- the job, its node's address and the server's port are saved in the hub's database as soon as they
  are known, so a restarted hub (even after kill -9) finds the running job and its URL again
  (batchspawner #236) and never submits a second one;
- a job that ends outside the hub (scancel, time limit, node failure) is noticed at the next poll;
  sacct's State, ExitCode and Reason are logged and shown to the learner on the launch form;
- while the job is pending, the spawn page shows its place in its partition's queue, Slurm's
  estimated start and the pending reason, refreshed every ``progress_interval`` seconds;
- ``start()`` returns as soon as the server answers, so the hub's own check succeeds at once.

Submitting as the learner
-------------------------
A root hub (the test and ``make up SITE=slurm`` layout) submits with ``sbatch --uid=USER
--gid=GROUP``, cancels with ``scancel --user=USER`` and reads squeue, sacct and scontrol as root.

The production layout on a Mesolys service node is a hub that does not run as root: an account
``jupyterhub`` with a sudoers rule that lets it run the five Slurm commands of this module as
learners (members of one group), and nothing else::

    # /etc/sudoers.d/ailys-hub (mode 0440, checked with visudo -cf before it is put there)
    Cmnd_Alias AILYS_HUB_SLURM = /usr/bin/sbatch, /usr/bin/squeue, /usr/bin/scancel, \
                                 /usr/bin/sacct, /usr/bin/scontrol
    Defaults!AILYS_HUB_SLURM env_keep += "SLURM_CONF"
    Defaults:jupyterhub !requiretty
    jupyterhub ALL = (%mesolys-learners) NOPASSWD: AILYS_HUB_SLURM

    # hub configuration (the site file's spawner.slurm.exec_prefix)
    c.SlurmSpawner.exec_prefix = "sudo -n -u {username} --"

Every Slurm command then runs as ``sudo -n -u <learner> -- <command>``: ``-n`` fails at once where
the rule does not apply (the learner then reads that the hub may not run Slurm commands as them,
and what sudo said). No ``-E`` (the rule has no SETENV): the batch script carries the job's whole
environment (``--export=NONE``), and of the commands' own environment sudo keeps LANG, sets PATH
to its secure_path and keeps SLURM_CONF through env_keep (not needed when slurm.conf is the
system's). docs/design-notes.md explains each line; tests/integration/test_slurm_sudo.py runs it.
(batchspawner's own default, ``sudo -E -u {username}``, is replaced by "" here, meaning "as root,
with --uid".)

The port report
---------------
A job learns its node only when it starts, so the server picks its own free port and posts it to
the hub's ``/hub/api/batchspawner`` (the URL batchspawner's batchspawner-singleuser uses). Importing
this module replaces batchspawner's handler of that URL with ``PortReportHandler``, which accepts a
port and nothing else, from a server that is starting. (batchspawner's handler sets *any* attribute
a learner's server token posts on its spawner, ``exec_prefix`` included, a command the hub runs:
a learner could have the hub run commands of their choice.)

This module depends on the Jupyter ecosystem only (JupyterHub, batchspawner, traitlets, Jinja2),
never on hub_config: the hub configuration sets its traits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import os
import pwd
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from batchspawner import SlurmSpawner as BatchSlurmSpawner
from jupyterhub.apihandlers import APIHandler, default_handlers
from jupyterhub.spawner import SpawnException
from tornado import web
from traitlets import Callable, Dict, Float, Integer, List, Unicode, default, observe, validate

from .accounts import SystemAccountGuard
from .ready import answers

TEMPLATES = Path(__file__).parent / "templates"

# Slurm job states (squeue's %T, sacct's State), by what they mean for a learner's server.
PENDING_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING_STATES = {"RUNNING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "RESIZING", "STOPPED"}
# The server is gone or going: the job is being cleaned up, or has ended.
ENDING_STATES = {"COMPLETING"}
ENDED_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT"}  # fmt: skip
# What squeue prints about a job id it no longer knows (purged after MinJobAge): an answer, not a failure.
UNKNOWN_JOB = "Invalid job id specified"

# Values that go on an #SBATCH line: no spaces, quotes or newlines that could add an option.
SBATCH_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,+:=@-]*$")

# Pending reasons (squeue's %r) in words a learner understands; others are shown as Slurm says them.
PENDING_REASONS = {
    "Resources": "the resources it needs are in use",
    "Priority": "jobs ahead of it have a higher priority",
    "None": "Slurm has not looked at it yet",
    "BeginTime": "it may not start yet",
    "Dependency": "it waits for another job",
    "ReqNodeNotAvail": "a node it needs is unavailable",
    "PartitionDown": "its partition is down",
    "PartitionInactive": "its partition is inactive",
    "Reservation": "it waits for its reservation to start",
    "ReservationDeleted": "its reservation was deleted",
    "QOSMaxJobsPerUserLimit": "you already run as many jobs as your QOS allows",
    "AssocMaxJobsLimit": "your account runs as many jobs as it may",
    "AssocGrpCpuLimit": "your account uses all the CPUs it may",
    "AssocGrpGRES": "your account uses all the GPUs it may",
    "JobHeldAdmin": "an administrator holds it",
    "JobHeldUser": "it is held",
}

# How a job that ended outside the hub is explained to its learner, by sacct's State (first word).
END_REASONS = {
    "CANCELLED": "it was cancelled{by}",
    "TIMEOUT": "it reached its time limit{limit}",
    "NODE_FAIL": "its node{node} failed",
    "OUT_OF_MEMORY": "it ran out of memory",
    "FAILED": "the server exited with an error (exit code {exit_code})",
    "COMPLETED": "the server stopped by itself",
    "PREEMPTED": "a job of higher priority took its place",
    "BOOT_FAIL": "its node could not boot",
    "DEADLINE": "it reached its deadline",
}

# The job's first process: picks a free port, reports it to the hub (PortReportHandler), then
# becomes the server (argv[1:]) through exec, keeping the job's main process. Python run with
# `python -c`, kept here rather than in the template: the template is data only.
LAUNCHER = """\
import json, os, socket, sys, urllib.request
from urllib.parse import urlsplit, urlunsplit
with socket.socket() as s:
    s.bind(("", 0))
    port = s.getsockname()[1]
url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
os.environ["JUPYTERHUB_SERVICE_URL"] = urlunsplit(url._replace(netloc=f"{url.hostname}:{port}"))
request = urllib.request.Request(
    os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/batchspawner",
    data=json.dumps({"port": port}).encode(), method="POST",
    headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"],
             "Content-Type": "application/json"},
)
try:
    urllib.request.urlopen(request, timeout=60).close()
except Exception as error:
    sys.exit(f"ailys-hub: the hub did not take this server's port {port}: {error}")
print(f"ailys-hub: server of job {os.environ.get('SLURM_JOB_ID')} on port {port}", flush=True)
os.execvp(sys.argv[1], sys.argv[1:])
"""


class SlurmSpawnError(SpawnException):
    """A refusal or failure the learner reads as it is (on the form or the spawn page)."""

    def __init__(self, message: str, *, reason: str, status_code: int = 400):
        super().__init__(message, reason=reason, status_code=status_code)
        self.jupyterhub_message = message  # what JupyterHub shows, instead of str(exception)


# --- the port report ---------------------------------------------------------------------------


class PortReportHandler(APIHandler):
    """POST /hub/api/batchspawner {"port": N}, with a starting server's own token: where it listens.

    Replaces batchspawner's handler, which sets any attribute named in the body on the spawner."""

    @web.authenticated
    def post(self):
        token = self.get_auth_token() or ""
        user = self.current_user
        spawner = next(
            (s for s in getattr(user, "spawners", {}).values()
             if s.api_token and hmac.compare_digest(s.api_token, token)),
            None,
        )  # fmt: skip
        if spawner is None:
            raise web.HTTPError(403, "this token is not the token of a server")
        body = self.get_json_body() or {}
        port = body.get("port")
        if set(body) != {"port"} or not isinstance(port, int) or not 0 < port < 65536:
            raise web.HTTPError(400, 'expected {"port": <1-65535>} and nothing else')
        if spawner.pending != "spawn":
            raise web.HTTPError(409, f"{spawner._log_name} is not starting")
        spawner.port = port
        self.set_status(201)
        self.finish(json.dumps({"message": "port recorded"}))


def _install_port_handler() -> None:
    for i, (pattern, *rest) in enumerate(default_handlers):
        if pattern == r"/api/batchspawner":
            default_handlers[i] = (pattern, PortReportHandler)
            return
    default_handlers.append((r"/api/batchspawner", PortReportHandler))


_install_port_handler()


# --- profiles and requests ---------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """What one start asks Slurm for: a course's profile, with the learner's own resources."""

    course: str
    title: str
    partition: str | None
    account: str | None
    qos: str | None
    reservation: str | None
    cpus: int
    memory: int  # bytes
    gpus: int
    walltime: int  # seconds


RESOURCES = {  # key: (what the learner reads, smallest value)
    "cpus": ("CPU cores", 1),
    "memory": ("memory", 1),
    "gpus": ("GPUs", 0),
    "walltime": ("session length", 60),
}
PROFILE_DEFAULTS = {"partition": None, "account": None, "qos": None, "reservation": None,
                    "cpus": 1, "memory": 2 * 1024**3, "gpus": 0, "walltime": 4 * 3600}  # fmt: skip


def format_bytes(n: int) -> str:
    for unit, size in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= size and n % (size // 16 or 1) == 0:
            value = n / size
            return f"{value:g} {unit}iB"
    return f"{n} bytes"


def format_seconds(s: int) -> str:
    hours, rest = divmod(s, 3600)
    minutes = rest // 60
    if hours and minutes:
        return f"{hours} h {minutes:02d} min"
    return f"{hours} h" if hours else f"{max(minutes, 1)} min"


def format_resource(key: str, value: int) -> str:
    if key == "memory":
        return format_bytes(value)
    if key == "walltime":
        return format_seconds(value)
    if key == "cpus":
        return f"{value} CPU core{'s' if value != 1 else ''}"
    return f"{value} GPU{'s' if value != 1 else ''}"


def parse_memory(text: str) -> int:
    """'2G', '512M', '1.5GiB', '2048MB' (binary units, as Slurm; a bare number is GiB) to bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT])?(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"memory: {text!r} is not a size; write it like 2G or 512M")
    number, unit = float(match[1]), (match[2] or "G").upper()
    return int(number * 1024 ** "KMGT".index(unit) * 1024)


def parse_walltime(text: str) -> int:
    """'2h', '90m', '1h30m', '01:30:00', '1:30' (hours:minutes) to seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+:\d{2}(:\d{2})?", text):
        parts = [int(p) for p in text.split(":")] + [0]
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    match = re.fullmatch(r"(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?", text)
    if not text or not match or not any(match.groups()):
        raise ValueError(f"session length: {text!r} is not a duration; write it like 2h, 90m or 01:30:00")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def slurm_time_limit(seconds: int) -> str:
    """Seconds to Slurm's D-HH:MM:SS, rounded up to the minute (Slurm's resolution)."""
    minutes = -(-seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    return f"{days}-{minutes // 60:02d}:{minutes % 60:02d}:00"


# --- talking to Slurm ----------------------------------------------------------------------------


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int | None  # None: did not run to its end (timeout, could not start)
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        status = "timed out" if self.returncode is None else f"exit {self.returncode}"
        said = self.stderr.strip() or self.stdout.strip() or "(no output)"
        return f"{shlex.join(self.argv)}: {status}: {said}"


@dataclass
class JobStatus:
    """What squeue says about a job. ``kind``: pending, running, ending, ended, or unknown when
    squeue gave no clear answer (failed, timed out): then nothing may be concluded."""

    kind: str
    state: str = ""
    node: str = ""
    partition: str = ""
    reason: str = ""
    detail: str = ""  # the failure, for unknown


@dataclass
class QueuePlace:
    position: int
    pending: int
    start: str  # Slurm's estimated start (ISO local time) or ""
    reason: str
    partition: str


@dataclass
class _Progress:
    """What the spawn page shows, updated by start() and read by progress()."""

    stage: str = "submitting"
    job_id: str = ""
    status: JobStatus | None = None
    place: QueuePlace | None = None
    place_time: float = 0.0
    events: list[dict] = field(default_factory=list)


class SlurmSpawner(SystemAccountGuard, BatchSlurmSpawner):
    """A learner's JupyterLab as a Slurm job, with the resources of one of their courses."""

    # --- configuration ---------------------------------------------------------------------------

    profiles = Callable(
        help="Called with the user's group names (list of str), returns the courses they may start: "
        "{course_slug: {'title': str, 'partition': str|None, 'account': str|None, 'qos': str|None, "
        "'reservation': str|None, 'cpus': int, 'memory': int bytes, 'gpus': int, 'walltime': int "
        "seconds}}, in the order the launch form lists them (the first is the default). The values "
        "are both the defaults and the limits of a request. Called on each form and each start, so "
        "a new course needs no restart.",
    ).tag(config=True)

    @default("profiles")
    def _no_profiles(self):
        return lambda groups: {}

    node_addresses = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Node name (as squeue reports it) to the address where the hub reaches that node, e.g. "
        "{'node1': '127.0.0.2'}. A node not listed is reached by its name (DNS).",
    ).tag(config=True)

    slurm_env = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help="Environment of the Slurm commands (sbatch, squeue, scancel, sacct), added to a fixed "
        "PATH and LANG, e.g. {'SLURM_CONF': '/etc/slurm/slurm.conf'}. Variables of env_keep whose "
        "names start with SLURM_ are taken from the hub's environment as well. They are also "
        "set in the job, so that Slurm commands in a learner's terminal reach the same cluster.",
    ).tag(config=True)

    slurm_path = Unicode(
        "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        help="PATH in which the Slurm commands (and sudo, for exec_prefix) are found.",
    ).tag(config=True)

    exec_prefix = Unicode(
        "",
        help="Command that runs each Slurm command as the learner, formatted with {username}, e.g. "
        "'sudo -n -u {username} --' for a non-root hub with a sudoers rule (see the module's "
        "documentation). Empty: the hub is root and submits with sbatch --uid/--gid.",
    ).tag(config=True)

    start_timeout = Integer(
        1800,
        help="Seconds a start may take, queue wait included, before the hub gives up and cancels "
        "the job. Set per site (spawner.start_timeout in the site file): a busy partition may need hours.",
    ).tag(config=True)

    progress_interval = Float(
        2.0,
        help="Seconds between refreshes of the queue position, estimated start and pending reason "
        "shown while the job waits; also the longest pause between squeue checks of a pending job.",
    ).tag(config=True)

    startup_poll_interval = Float(
        0.25,
        help="First pause (seconds) between squeue checks of a new job; it grows by half at each check "
        "up to progress_interval. The job's port report ends the wait at once, whatever this is.",
    ).tag(config=True)

    ready_poll_interval = Float(
        0.05,
        help="Seconds between checks that the started server answers on its node. start() returns only "
        "once it does, so the hub's own check (0.2 s backoff, doubling) succeeds at once.",
    ).tag(config=True)

    slurm_command_timeout = Float(
        30.0,
        help="Seconds after which a Slurm command is killed and its answer taken as unknown. squeue "
        "itself gives up after about 10 s of retries when slurmctld does not answer.",
    ).tag(config=True)

    cancel_retry_timeout = Float(
        60.0,
        help="Seconds during which stop() retries scancel when it fails (slurmctld down). A job still "
        "not cancelled is remembered in the spawner's state and cancelled at its next start.",
    ).tag(config=True)

    stop_wait = Float(
        30.0,
        help="Seconds stop() waits for a cancelled job to leave the queue (Slurm's KillWait included).",
    ).tag(config=True)

    end_record_wait = Float(
        10.0,
        help="Seconds to wait for sacct to record the end of a job (slurmctld reports it to slurmdbd "
        "asynchronously) before explaining it from scontrol (while slurmctld still holds the job, "
        "MinJobAge) or squeue's last answer instead.",
    ).tag(config=True)

    batch_template = Unicode(
        str(TEMPLATES / "slurm-job.sh.j2"),
        help="Jinja2 template file of the batch script. Its context: job_name, comment, partition, "
        "account, qos, reservation, cpus, memory_mb, gpus, time_limit (D-HH:MM:SS), home, output, "
        "environment (sorted name, value pairs) and command (argv list); filters sh (shell-quote) "
        "and sh_join.",
    ).tag(config=True)

    form_template = Unicode(
        str(TEMPLATES / "slurm-form.html.j2"),
        help="Jinja2 template file of the launch form (HTML, autoescaped).",
    ).tag(config=True)

    job_output = Unicode(
        "{home}/.ailys-hub-slurm-%j.log",
        help="The job's output file ({home}: the learner's home; %j: the job id, as sbatch expands it).",
    ).tag(config=True)

    job_name_template = Unicode(
        "ailys-{course}",
        help="Job name ({course}: the course slug). The energy report groups jobs by it.",
    ).tag(config=True)

    job_comment_template = Unicode(
        "ailys-hub:course={course}",
        help="Job comment ({course}: the course slug). sacct keeps it only with "
        "AccountingStoreFlags=job_comment in slurm.conf; squeue and scontrol always show it.",
    ).tag(config=True)

    job_lang = Unicode("C.UTF-8", help="LANG in the job.").tag(config=True)

    job_path = Unicode(
        help="PATH in the job. Default: the folder of the server command's program (the project's "
        "environment), then /usr/local/bin:/usr/bin:/bin.",
    ).tag(config=True)

    @default("job_path")
    def _job_path_default(self):
        first = self.cmd[0] if self.cmd else sys.executable
        folders = [str(Path(first).parent)] if os.path.isabs(first) else []
        return ":".join([*folders, "/usr/local/bin", "/usr/bin", "/bin"])

    job_python = Unicode(
        help="Python that runs the job's launcher. Default: the server command's program when it is "
        "a Python, else the hub's own (the same environment, reachable from the nodes).",
    ).tag(config=True)

    @default("job_python")
    def _job_python_default(self):
        first = self.cmd[0] if self.cmd else ""
        return first if os.path.isabs(first) and Path(first).name.startswith("python") else sys.executable

    # --- state saved in the hub's database ---------------------------------------------------------

    course = Unicode("")
    node = Unicode("")
    node_address = Unicode("")
    last_end = Dict(help="How the previous job ended outside the hub, shown on the next launch form.")
    leftover_jobs = List(Unicode(), help="Jobs whose cancellation failed, cancelled at the next start.")

    @validate("job_id")
    def _job_id_is_a_number(self, proposal):
        value = proposal["value"] or ""
        if value and not re.fullmatch(r"\d+(_\d+)?", value):
            raise ValueError(f"not a Slurm job id: {value!r}")
        return value

    def load_state(self, state):
        super().load_state(state)
        self.course = state.get("course", "")
        self.node = state.get("node", "")
        self.node_address = state.get("node_address", "")
        self.port = int(state.get("port") or 0)
        self.last_end = state.get("last_end") or {}
        self.leftover_jobs = list(state.get("leftover_jobs") or [])

    def get_state(self):
        state = super().get_state()
        state.pop("job_status", None)  # squeue's raw last line: nothing to restore from it
        if self.job_id:
            state.update(course=self.course, node=self.node, node_address=self.node_address, port=self.port)
        if self.last_end:
            state["last_end"] = dict(self.last_end)
        if self.leftover_jobs:
            state["leftover_jobs"] = list(self.leftover_jobs)
        return state

    def clear_state(self):
        """Forget the job; keep how the last one ended (for the next form) and uncancelled jobs."""
        super().clear_state()
        self.course = self.node = self.node_address = ""
        self.port = 0

    def _save_state(self) -> None:
        """Write the state to the hub's database now, not only once start() returns: a hub killed
        meanwhile must find the job again, not submit another."""
        if self.orm_spawner is None:
            return
        self.orm_spawner.state = self.get_state()
        self.user.db.commit()

    # --- lifetime of one start ---------------------------------------------------------------------

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._starting = False
        self._stopping = False
        self._port_event: asyncio.Event | None = None
        self._progress = _Progress(stage="done")
        self._place_lock = asyncio.Lock()

    @observe("port")
    def _port_reported(self, change):
        event = getattr(self, "_port_event", None)  # None before __init__ ends, and between starts
        if change["new"] and event is not None:
            event.set()

    # --- profiles, form and validation ------------------------------------------------------------

    def _group_names(self) -> list[str]:
        return [g.name for g in self.user.groups]

    def _profiles(self) -> dict[str, dict]:
        profiles = self.profiles(self._group_names()) or {}
        return {slug: {**PROFILE_DEFAULTS, "title": slug, **(p or {})} for slug, p in profiles.items()}

    @default("options_form")
    def _options_form_default(self):
        return self._render_form

    def _render_form(self, spawner=None) -> str:
        courses = []
        for slug, p in self._profiles().items():
            limits = ", ".join(format_resource(k, int(p[k])) for k in RESOURCES if k != "gpus" or p[k])
            courses.append({"slug": slug, "title": p["title"], "limits": limits, "partition": p["partition"]})
        env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
        template = env.from_string(Path(self.form_template).read_text())
        # Always a form, even without courses: the page then says why nothing can start.
        return template.render(courses=courses, last_end=(self.last_end or {}).get("message", "")) or " "

    @default("options_from_form")
    def _options_from_form_default(self):
        return self._parse_form

    def _parse_form(self, form_data: dict) -> dict:
        """The launch form's fields to user_options ({"course": slug, and the resources given});
        refused with a message saying why when the course is not the learner's, or over its limits."""
        def field_value(name):
            values = form_data.get(name) or [""]
            return values[0].strip() if isinstance(values, list) else str(values).strip()

        options: dict = {}
        if field_value("course"):
            options["course"] = field_value("course")
        parsers = (("cpus", int), ("gpus", int), ("memory", parse_memory), ("walltime", parse_walltime))
        for key, parse in parsers:
            text = field_value(key)
            if not text:
                continue
            try:
                options[key] = parse(text)
            except ValueError as error:
                why = f"{RESOURCES[key][0]}: {text!r} is not a whole number" if parse is int else str(error)
                raise SlurmSpawnError(f"Not started: {why}.", reason="invalid-request") from None
        self._resolve(options)  # refuse now, on the form, rather than on the spawn page
        return options

    @default("apply_user_options")
    def _apply_user_options_default(self):
        return lambda spawner, options: spawner._resolve(options)

    def _resolve(self, options: dict) -> Launch:
        """user_options checked against the learner's courses: the Launch to submit, or a refusal."""
        profiles = self._profiles()
        if not profiles:
            raise SlurmSpawnError(
                "Not started: you are enrolled in no course, so there is no course environment to start. "
                "Ask your instructor to add you.", reason="no-course")  # fmt: skip
        unknown = set(options) - {"course", *RESOURCES}
        if unknown:
            raise SlurmSpawnError(f"Not started: unknown option(s) {', '.join(sorted(unknown))}.",
                                  reason="invalid-request")  # fmt: skip
        slug = options.get("course") or next(iter(profiles))
        if slug not in profiles:
            raise SlurmSpawnError(
                f"Not started: you are not enrolled in course {slug!r}. "
                f"You can start: {', '.join(profiles)}.", reason="foreign-course", status_code=403)  # fmt: skip
        p = profiles[slug]
        values = {}
        for key, (label, smallest) in RESOURCES.items():
            limit = int(p[key])
            value = options.get(key, limit)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SlurmSpawnError(f"Not started: {label} must be a whole number.", reason="invalid-request")
            if value < smallest:
                raise SlurmSpawnError(
                    f"Not started: {label} must be at least {format_resource(key, smallest)}.",
                    reason="invalid-request")  # fmt: skip
            if value > limit:
                raise SlurmSpawnError(
                    f"Not started: {label} {format_resource(key, value)} is over what course {slug} allows "
                    f"({format_resource(key, limit)}).", reason="over-limit")  # fmt: skip
            values[key] = value
        for key in ("partition", "account", "qos", "reservation"):
            if p[key] is not None and not SBATCH_WORD.match(str(p[key])):
                raise SlurmSpawnError(f"Course {slug} is misconfigured: {key} {p[key]!r}.", reason="config",
                                      status_code=500)  # fmt: skip
        return Launch(course=slug, title=p["title"], partition=p["partition"], account=p["account"],
                      qos=p["qos"], reservation=p["reservation"], **values)  # fmt: skip

    # --- commands --------------------------------------------------------------------------------

    def _command_env(self) -> dict[str, str]:
        env = {"PATH": self.slurm_path, "LANG": "C.UTF-8"}
        env.update({k: os.environ[k] for k in self.env_keep if k.startswith("SLURM_") and k in os.environ})
        env.update(self.slurm_env)
        return env

    def _as_learner(self, argv: list[str]) -> list[str]:
        if self.exec_prefix:
            return [*shlex.split(self.exec_prefix.format(username=self.user.name)), *argv]
        return argv

    async def _run(self, argv: list[str], input: str | None = None,
                   timeout: float | None = None) -> CommandResult:  # fmt: skip
        """Run a Slurm command as the learner (exec_prefix), never through a shell."""
        timeout = timeout or self.slurm_command_timeout
        argv = self._as_learner(argv)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, env=self._command_env(), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
        except OSError as error:
            return CommandResult(argv, None, "", str(error))
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input is not None else None), timeout
            )
        except (asyncio.TimeoutError, asyncio.CancelledError) as error:
            proc.kill()
            await proc.wait()
            if isinstance(error, asyncio.CancelledError):
                raise
            return CommandResult(argv, None, "", f"no answer within {timeout:g} s")
        return CommandResult(argv, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    def _account(self) -> pwd.struct_passwd:
        """The learner's account, which the job runs as (sbatch --uid, exec_prefix): never a system one."""
        try:
            account = pwd.getpwnam(self.user.name)
        except KeyError:
            raise SlurmSpawnError(
                f"Not started: {self.user.name} has no account on the cluster yet. Ask the site's "
                "administrators.", reason="no-account", status_code=500) from None  # fmt: skip
        self.refuse_system_account(account)
        return account

    async def query_job(self, job_id: str | None = None) -> JobStatus:
        """squeue's answer about the job. Only an answer counts: a failed or slow squeue is unknown."""
        job_id = job_id or self.job_id
        result = await self._run(["squeue", "--noheader", f"--jobs={job_id}", "--states=all",
                                  "--format=%i|%T|%B|%P|%r"])  # fmt: skip
        if not result.ok:
            if result.returncode is not None and UNKNOWN_JOB in result.stderr:
                return JobStatus("ended", detail="no longer known to Slurm")
            return JobStatus("unknown", detail=result.describe())
        for line in result.stdout.splitlines():
            fields = line.strip().split("|")
            if len(fields) == 5 and fields[0] == job_id:
                _, state, node, partition, reason = fields
                state = state.split()[0] if state else ""
                if state in PENDING_STATES:
                    kind = "pending"
                elif state in RUNNING_STATES:
                    kind = "running"
                elif state in ENDING_STATES:
                    kind = "ending"
                elif state in ENDED_STATES:
                    kind = "ended"
                else:
                    kind = "unknown"
                node = "" if node in ("", "(null)", "n/a", "None") else node
                self.job_status = line.strip()
                return JobStatus(kind, state, node, partition, reason, detail="" if kind != "unknown" else line)
        if result.stdout.strip() and not result.stdout.strip().startswith(job_id):
            return JobStatus("unknown", detail=f"unexpected squeue output: {result.stdout.strip()[:200]}")
        return JobStatus("ended", detail="no longer in squeue")

    async def queue_place(self, job_id: str, partition: str) -> QueuePlace | None:
        """The job's place among the pending jobs of its partition (priority order), Slurm's
        estimated start and its pending reason; None when squeue does not answer or the job runs."""
        result = await self._run(["squeue", "--noheader", f"--partition={partition}", "--states=PENDING",
                                  "--start", "--sort=-p,i", "--format=%i|%S|%r"])  # fmt: skip
        if not result.ok:
            return None
        rows = [line.strip().split("|") for line in result.stdout.splitlines() if line.count("|") == 2]
        for position, (jid, start, reason) in enumerate(rows, 1):
            if jid == job_id:
                start = "" if start in ("N/A", "", "Unknown") else start
                return QueuePlace(position, len(rows), start, reason, partition)
        return None

    async def job_record(self, job_id: str) -> dict[str, str]:
        """sacct's record of a job: State, ExitCode, Reason, End, Elapsed, Timelimit, NodeList."""
        fields = ["JobID", "State", "ExitCode", "Reason", "End", "Elapsed", "Timelimit", "NodeList"]
        result = await self._run(["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={job_id}",
                                  f"--format={','.join(fields)}"])  # fmt: skip
        if not result.ok:
            return {}
        for line in result.stdout.splitlines():
            values = line.split("|")
            if len(values) == len(fields) and values[0] == job_id:
                return dict(zip(fields, values))
        return {}

    async def job_details(self, job_id: str) -> dict[str, str]:
        """scontrol's view of a job slurmctld still holds, in sacct's field names."""
        result = await self._run(["scontrol", "--oneliner", "show", "job", job_id])
        if not result.ok:
            return {}
        info = dict(re.findall(r"(\S+?)=(\S*)", result.stdout))
        if info.get("JobId") != job_id:
            return {}
        return {"JobID": job_id, "State": info.get("JobState", ""), "ExitCode": info.get("ExitCode", ""),
                "Reason": info.get("Reason", ""), "End": info.get("EndTime", ""),
                "Timelimit": info.get("TimeLimit", ""), "NodeList": info.get("NodeList", "")}  # fmt: skip

    async def _cancel(self, job_id: str, retry_for: float = 0.0) -> bool:
        """scancel the job as its learner; True once Slurm has it cancelled (or it had ended)."""
        argv = ["scancel", job_id] if self.exec_prefix else ["scancel", f"--user={self.user.name}", job_id]
        deadline = asyncio.get_running_loop().time() + retry_for
        while True:
            result = await self._run(argv)
            if result.ok or (result.returncode is not None and (
                    UNKNOWN_JOB in result.stderr or "already completing or completed" in result.stderr)):
                return True
            if asyncio.get_running_loop().time() >= deadline:
                self.log.error("Could not cancel Slurm job %s of %s: %s", job_id, self.user.name,
                               result.describe())  # fmt: skip
                return False
            self.log.warning("scancel of job %s failed, retrying: %s", job_id, result.describe())
            await asyncio.sleep(2)

    async def _cancel_leftovers(self) -> None:
        for job_id in list(self.leftover_jobs):
            if await self._cancel(job_id):
                self.log.info("Cancelled leftover Slurm job %s of %s", job_id, self.user.name)
                self.leftover_jobs = [j for j in self.leftover_jobs if j != job_id]

    # --- the batch script --------------------------------------------------------------------------

    def job_environment(self, account: pwd.struct_passwd) -> dict[str, str]:
        """The job's whole environment: JupyterHub's variables (API token, URLs, OAuth client...),
        Spawner.environment and env_keep, the learner's identity, PATH and LANG, the Slurm variables."""
        env = {k: str(v) for k, v in self.get_env().items()}
        env.update(
            HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name,
            SHELL=account.pw_shell or "/bin/bash", PATH=self.job_path, LANG=self.job_lang,
        )  # fmt: skip
        env.update({k: v for k, v in self._command_env().items() if k.startswith("SLURM_")})
        env.pop("JPY_API_TOKEN", None)  # JupyterHub's pre-0.7 name of the token: nothing reads it
        return env

    def batch_script(self, launch: Launch, account: pwd.struct_passwd, environment: dict[str, str]) -> str:
        home = account.pw_dir
        output = self.job_output.format(home=home, username=account.pw_name, course=launch.course)
        for what, value in (("home", home), ("output file", output)):
            if not value or any(c.isspace() for c in value):
                raise SlurmSpawnError(
                    f"Not started: the {what} {value!r} has spaces, which sbatch cannot take.",
                    reason="config", status_code=500)  # fmt: skip
        job_name = self.job_name_template.format(course=launch.course)
        comment = self.job_comment_template.format(course=launch.course)
        for what, value in (("job name", job_name), ("comment", comment)):
            if not SBATCH_WORD.match(value):
                raise SlurmSpawnError(f"Not started: bad {what} {value!r}.", reason="config", status_code=500)
        for name in environment:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise SlurmSpawnError(f"Not started: bad environment variable name {name!r}.", reason="config",
                                      status_code=500)  # fmt: skip
        templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(Path(self.batch_template).parent)),
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,
        )  # fmt: skip
        templates.filters["sh"] = lambda v: shlex.quote(str(v))
        templates.filters["sh_join"] = lambda argv: shlex.join(str(a) for a in argv)
        command = [self.job_python, "-c", LAUNCHER, *self.cmd, *self.get_args()]
        return templates.get_template(Path(self.batch_template).name).render(
            job_name=job_name, comment=comment, partition=launch.partition, account=launch.account,
            qos=launch.qos, reservation=launch.reservation, cpus=launch.cpus,
            memory_mb=-(-launch.memory // 1024**2), gpus=launch.gpus,
            time_limit=slurm_time_limit(launch.walltime),
            home=home, output=output, environment=sorted(environment.items()), command=command,
        )  # fmt: skip

    async def submit(self, script: str, account: pwd.struct_passwd) -> str:
        argv = ["sbatch", "--parsable"]
        if not self.exec_prefix:
            if os.geteuid() != 0:
                raise SlurmSpawnError(
                    "Not started: the hub is not root and SlurmSpawner.exec_prefix is empty, so it cannot "
                    "submit as the learner. Set exec_prefix (see spawners/slurm.py).", reason="config",
                    status_code=500)  # fmt: skip
            argv += [f"--uid={account.pw_uid}", f"--gid={account.pw_gid}"]
        # sbatch gets longer than the queries: killed after sending its request, it could leave a job
        # the hub never learns of. It gives up by itself when slurmctld does not answer (~16 s).
        result = await self._run(argv, input=script, timeout=max(self.slurm_command_timeout, 120))
        out = result.stdout.strip() if result.ok else ""
        job_id = out.splitlines()[-1].split(";")[0] if out else ""  # "<id>" or "<id>;<cluster>"
        if not re.fullmatch(r"\d+", job_id):
            lines = [line.strip().removeprefix("sbatch: error: ") for line in result.stderr.splitlines()]
            error = "; ".join(line for line in lines if line) or result.describe()
            self.log.error("sbatch for %s failed: %s", self.user.name, result.describe())
            # The prefix itself said no (sudo: the learner is not in the rule's group): not Slurm.
            prefix = Path(shlex.split(self.exec_prefix)[0]).name if self.exec_prefix else ""
            if prefix and result.stderr.startswith(f"{prefix}: "):
                said = result.stderr.splitlines()[0].removeprefix(f"{prefix}: ").strip()
                raise SlurmSpawnError(
                    f"Not started: the hub may not run Slurm commands as {self.user.name} ({prefix} said: "
                    f"{said}). Ask the site's administrators.", reason="exec-prefix", status_code=500)  # fmt: skip
            raise SlurmSpawnError(f"Not started: Slurm refused the job: {error}", reason="slurm-submit",
                                  status_code=503 if result.returncode is None else 400)  # fmt: skip
        return job_id

    # --- start, poll, stop ---------------------------------------------------------------------------

    def _address(self, node: str) -> str:
        return self.node_addresses.get(node, node)

    async def start(self):
        self._starting = True
        self._progress = _Progress()
        self._port_event = asyncio.Event()
        try:
            return await self._start()
        finally:
            self._starting = False
            self._progress.stage = "done"

    async def _start(self):
        loop = asyncio.get_running_loop()
        began = loop.time()
        launch = self._resolve(self.user_options or {})
        account = self._account()
        await self._cancel_leftovers()
        self.port = 0
        self._port_event.clear()
        script = self.batch_script(launch, account, self.job_environment(account))
        self.log.debug("Batch script for %s:\n%s", self.user.name,
                       re.sub(r"(TOKEN=)\S+", r"\1<secret>", script))  # fmt: skip
        job_id = await self.submit(script, account)
        submitted = loop.time()
        self.job_id, self.course, self.node, self.node_address = job_id, launch.course, "", ""
        previous_end = (self.last_end or {}).get("message", "")
        self.last_end = {}
        self._save_state()
        resources = ", ".join(format_resource(k, getattr(launch, k))
                              for k in RESOURCES if k != "gpus" or launch.gpus)  # fmt: skip
        self.log.info("Submitted Slurm job %s for %s: course %s, partition %s, %s", job_id, self.user.name,
                      launch.course, launch.partition or "(default)", resources)  # fmt: skip
        self._progress.job_id = job_id
        self._progress.stage = "queued"
        if previous_end:
            self._progress.events.append({"progress": 5, "message": previous_end})
        partition = launch.partition or "default"
        self._progress.events.append({"progress": 10, "message": f"Submitted Slurm job {job_id} for course "
                                      f"{launch.course} (partition {partition}: {resources})."})  # fmt: skip

        status = await self._wait_for_port(job_id)
        running = loop.time()
        while not status.node:  # the port came first: ask squeue where the job runs
            status = await self.query_job(job_id)
            if status.kind in ("ended", "ending"):
                raise await self._ended_during_start(job_id, status)
            if not status.node:
                await asyncio.sleep(self.startup_poll_interval)
        self.node, self.node_address = status.node, self._address(status.node)
        self._save_state()
        self._progress.stage = "connecting"
        await self._wait_until_answering(job_id, self.node_address, self.port)
        ready = loop.time()
        self._save_state()
        self.log.info(
            "Slurm job %s of %s ready at %s:%s (node %s) in %.2f s: submit %.2f s, queue and launch %.2f s, "
            "server %.2f s", job_id, self.user.name, self.node_address, self.port, self.node, ready - began,
            submitted - began, running - submitted, ready - running)  # fmt: skip
        return self.node_address, self.port

    async def _wait_for_port(self, job_id: str) -> JobStatus:
        """Until the job's server reports its port, check the job with squeue (more often at first):
        a job that ends first fails the start with Slurm's reason."""
        interval = self.startup_poll_interval
        status = JobStatus("pending")
        unknown_since = None
        while not self.port:
            status = await self.query_job(job_id)
            self._progress.status = status
            if status.kind in ("ended", "ending"):
                if self.port:  # reported meanwhile: the job ended after starting its server
                    break
                raise await self._ended_during_start(job_id, status)
            if status.kind == "unknown":
                unknown_since = unknown_since or asyncio.get_running_loop().time()
                self.log.warning("squeue gave no answer about job %s of %s (waiting): %s", job_id,
                                 self.user.name, status.detail)  # fmt: skip
            else:
                unknown_since = None
            if status.kind == "running" and self._progress.stage == "queued":
                self._progress.stage = "running"
            try:
                await asyncio.wait_for(self._port_event.wait(), interval)
            except asyncio.TimeoutError:
                pass
            interval = min(interval * 1.5, self.progress_interval)
        if status.kind != "running":
            status = JobStatus("running")  # node unknown yet: the caller asks squeue
        self._progress.stage = "running"
        return status

    async def _wait_until_answering(self, job_id: str, address: str, port: int) -> None:
        """Return once the server accepts connections on its node; fail if the job ends first or
        nothing answers within http_timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.http_timeout
        next_check = loop.time() + 1.0
        while loop.time() < deadline:
            if await answers(address, port):
                return
            if loop.time() >= next_check:
                status = await self.query_job(job_id)
                if status.kind in ("ended", "ending"):
                    raise await self._ended_during_start(job_id, status)
                next_check = loop.time() + 1.0
            await asyncio.sleep(self.ready_poll_interval)
        raise SlurmSpawnError(
            f"Not started: job {job_id} runs on {self.node}, but its server did not answer at {address}:{port} "
            f"within {self.http_timeout:g} s.", reason="no-answer", status_code=500)  # fmt: skip

    async def _ended_during_start(self, job_id: str, status: JobStatus) -> SlurmSpawnError:
        end = await self._explain_end(job_id, status)
        self.last_end = end
        return SlurmSpawnError(end["message"], reason="job-ended", status_code=500)

    async def _explain_end(self, job_id: str, status: JobStatus | None = None) -> dict:
        """How the job ended, in words: sacct's State, ExitCode and Reason (waiting up to
        end_record_wait for slurmdbd to have them), else squeue's last answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.end_record_wait
        record = await self.job_record(job_id)
        while record.get("State", "").split(" ")[0] not in ENDED_STATES and loop.time() < deadline:
            await asyncio.sleep(0.25)
            record = await self.job_record(job_id)
        source = "sacct"
        if record.get("State", "").split(" ")[0] not in ENDED_STATES:
            record, source = await self.job_details(job_id), "scontrol"
        if record.get("State", "").split(" ")[0] in ENDED_STATES:
            state_words, exit_code, reason = record["State"], record["ExitCode"], record["Reason"]
            slurm_says = f"{source}: State={state_words}, ExitCode={exit_code}, Reason={reason}"
        else:  # neither has it any more (or not yet): what squeue last said
            record = {}
            state_words, reason = (status.state, status.reason) if status else ("", "")
            exit_code = ""
            seen = status.state or status.detail if status else "nothing"
            slurm_says = f"no record of its end; squeue said {seen}"
        state = state_words.split(" ")[0]
        by = ""
        if state == "CANCELLED" and " by " in state_words:
            uid = state_words.rsplit(" ", 1)[-1]
            try:
                by = f" by {pwd.getpwuid(int(uid)).pw_name}"
            except (KeyError, ValueError):
                by = f" by uid {uid}"
        words = END_REASONS.get(state, "it ended ({state})").format(
            by=by, state=state or "state unknown", exit_code=exit_code.split(":")[0] or "?",
            limit=f" ({record['Timelimit']})" if record.get("Timelimit") else "",
            node=f" {record['NodeList']}" if record.get("NodeList") not in (None, "", "None assigned") else "",
        )  # fmt: skip
        when = record.get("End", "")
        when = f" at {when.replace('T', ' ')}" if when and when not in ("Unknown", "None") else ""
        session = f"({'course ' + self.course + ', ' if self.course else ''}Slurm job {job_id})"
        if self._starting:
            output = self.job_output.format(home="~", username=self.user.name, course=self.course)
            message = (f"Your session {session} ended before its server answered{when}: {words}. "
                       f"({slurm_says}.) The job's output is in {output.replace('%j', job_id)}.")  # fmt: skip
        else:
            message = (f"Your previous session {session} ended{when}: {words}. ({slurm_says}.) "
                       "You can start a new one.")  # fmt: skip
        return {"job_id": job_id, "course": self.course, "state": state_words, "exit_code": exit_code,
                "reason": reason, "end": record.get("End", ""), "message": message}  # fmt: skip

    async def poll(self):
        """None while the job is pending or running, or while squeue gives no clear answer
        (slurmctld down...): only Slurm saying the job has ended ends the server for the hub."""
        if not self.job_id:
            return None if self._starting else 0
        job_id = self.job_id
        status = await self.query_job(job_id)
        if status.kind in ("pending", "running"):
            return None
        if status.kind == "unknown":
            answering = await answers(self.node_address, self.port) if self.port else None
            self.log.warning(
                "squeue gave no answer about job %s of %s; keeping the server (it %s): %s", job_id,
                self.user.name, {True: "answers", False: "does not answer", None: "has no port yet"}[answering],
                status.detail)  # fmt: skip
            return None
        if self._starting or self._stopping:
            return 1
        end = await self._explain_end(job_id, status)
        self.last_end = end
        self.log.warning("Slurm job %s of %s ended outside the hub: %s", job_id, self.user.name, end["message"])
        exit_code = end.get("exit_code", "").split(":")[0]
        self.clear_state()
        self._save_state()
        return int(exit_code) if exit_code.isdigit() and int(exit_code) else 1

    async def get_url(self):
        """The server's URL from the saved state (node address and port), so that a restarted hub
        checks the right place even if it was killed before recording it (batchspawner #236)."""
        if self.node_address and self.port and self.server:
            return f"http://{self.node_address}:{self.port}{self.server.base_url}"
        return await super().get_url()

    async def stop(self, now=False):
        """scancel the job (retrying while Slurm does not answer), then wait until it has left
        the queue. A job that cannot be cancelled is remembered and cancelled at the next start."""
        job_id = self.job_id
        if not job_id:
            return
        self._stopping = True
        try:
            self.log.info("Cancelling Slurm job %s of %s", job_id, self.user.name)
            if not await self._cancel(job_id, retry_for=0 if now else self.cancel_retry_timeout):
                self.leftover_jobs = [*self.leftover_jobs, job_id]
                return
            if now:
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.stop_wait
            while loop.time() < deadline:
                status = await self.query_job(job_id)
                if status.kind == "ended":
                    return
                await asyncio.sleep(0.2)
            self.log.warning("Slurm job %s of %s was cancelled but is still in the queue after %g s",
                             job_id, self.user.name, self.stop_wait)  # fmt: skip
        finally:
            self._stopping = False

    # --- progress ------------------------------------------------------------------------------

    async def _refresh_place(self) -> None:
        """The queue place of the pending job, at most every progress_interval seconds."""
        async with self._place_lock:
            loop = asyncio.get_running_loop()
            p = self._progress
            if loop.time() - p.place_time < self.progress_interval:
                return
            status = p.status
            if not p.job_id or not status or status.kind != "pending" or not status.partition:
                return
            p.place = await self.queue_place(p.job_id, status.partition)
            p.place_time = loop.time()

    def _pending_message(self) -> str:
        p = self._progress
        place, status = p.place, p.status
        if place is None:
            partition = status.partition if status else ""
            reason = status.reason if status else ""
            where = f" in partition {partition}" if partition else ""
            because = f"; reason: {reason} ({PENDING_REASONS.get(reason, reason)})" if reason else ""
            return f"Job {p.job_id} is waiting in the queue{where}{because}."
        if place.start:
            try:
                start = dt.datetime.fromisoformat(place.start)
                minutes = max(0, round((start - dt.datetime.now()).total_seconds() / 60))
                estimate = f"Slurm's estimated start: {start:%H:%M} (in about {minutes} min)"
            except ValueError:
                estimate = f"Slurm's estimated start: {place.start}"
        else:
            estimate = "no estimated start from Slurm yet"
        return (f"Job {p.job_id} is {_ordinal(place.position)} of {place.pending} pending in partition "
                f"{place.partition}; {estimate}; reason: {place.reason} "
                f"({PENDING_REASONS.get(place.reason, place.reason)}).")  # fmt: skip

    async def progress(self):
        """Events for the spawn page: the previous session's end, the submission, then while the job
        is pending its queue place, estimated start and reason (refreshed), then its node."""
        sent = 0
        last = None
        progress = self._progress
        while True:
            if self._progress is not progress:  # start() has begun (this generator may come first)
                progress, sent, last = self._progress, 0, None
            p = progress
            for event in p.events[sent:]:
                yield event
            sent = len(p.events)
            if not self._starting and not self._spawn_pending:
                return
            event = None
            if not self._starting:
                pass  # start() has not begun yet, or has just ended
            elif p.stage == "queued" and p.status and p.status.kind == "pending":
                await self._refresh_place()
                event = {"progress": 30, "message": self._pending_message()}
            elif p.stage == "queued" and p.status and p.status.kind == "unknown":
                event = {"progress": 30, "message": f"Job {p.job_id} is submitted; Slurm's controller does not "
                         "answer at the moment, still trying."}
            elif p.stage == "running":
                node = f" on {p.status.node}" if p.status and p.status.node else ""
                event = {"progress": 60, "message": f"Job {p.job_id} is running{node}; JupyterLab is starting."}
            elif p.stage == "connecting":
                event = {"progress": 80, "message": f"JupyterLab of job {p.job_id} listens on {self.node}, "
                         f"port {self.port}; connecting."}
            if event and event["message"] != last:
                last = event["message"]
                yield event
            await asyncio.sleep(0.25)
