"""The Slurm spawner itself: its state in the hub's database, and a learner's server through its
life (start, poll, stop, and the spawn page's progress while the job waits).

Its settings are in settings.py, Slurm's commands in client.py, the launch request in request.py,
the batch script in batch.py, the learner's words in words.py.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
from dataclasses import dataclass, field
from pathlib import Path

from jupyterhub.spawner import Spawner
from traitlets import Callable, Dict, List, Unicode, default, observe, validate

from ..accounts import SystemAccountGuard
from ..launch_form import LaunchForm
from ..ready import answers, serves
from ..team_links import LINKS_VARIABLE, links_value
from ..team_server import TeamServer
from ..teams import TeamLinks
from .batch import render_batch_script
from .client import JobStatus, QueuePlace, SlurmClient, has_ended
from .container import (
    IMAGE_JUPYTER_CONFIG,
    IMAGE_PATH,
    IMAGE_PYTHON,
    Charliecloud,
    charliecloud,
    current_image,
)
from .errors import SlurmSpawnError
from .request import RESOURCES, Launch, check_profiles, parse_form, resolve
from .settings import SlurmSpawnerSettings
from .words import end_of_job, format_resource, pending_message

# Login shells that refuse a login (trainees' accounts): the job's SHELL is then /bin/bash.
NO_LOGIN_SHELLS = {"", "/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false"}


@dataclass
class _Progress:
    """What the spawn page shows, updated by start() and read by progress()."""

    stage: str = "submitting"
    job_id: str = ""
    status: JobStatus | None = None
    place: QueuePlace | None = None
    place_time: float = 0.0
    events: list[dict] = field(default_factory=list)


class SlurmSpawner(TeamServer, TeamLinks, SystemAccountGuard, LaunchForm, SlurmSpawnerSettings, Spawner):
    """A learner's JupyterLab as a Slurm job, with the resources of one of their courses."""

    # --- configuration ---------------------------------------------------------------------------

    profiles = Callable(
        help="Called with the user's group names (list of str), returns the courses they may start: "
        "{course_slug: {'title': str, 'partition': str|None, 'account': str|None, 'qos': str|None, "
        "'reservation': str|None, 'cpus': int, 'memory': int bytes, 'gpus': int, 'walltime': int "
        "seconds, 'environment': str (images/<environment>/, for container)}}, in the order the "
        "launch form lists them (the first is the default). The values "
        "are both the defaults and the limits of a request; the four resources are required, the "
        "Slurm names optional. Called on each form and each start, so a new course needs no restart.",
    ).tag(config=True)

    @default("profiles")
    def _no_profiles(self):
        return lambda groups: {}

    @default("ip")
    def _all_addresses(self):
        # The server listens on its compute node, where the hub reaches it (not the hub's loopback).
        return "0.0.0.0"

    # --- state saved in the hub's database ---------------------------------------------------------

    job_id = Unicode("")
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
        self.job_id = state.get("job_id", "")
        self.course = state.get("course", "")
        self.node = state.get("node", "")
        self.node_address = state.get("node_address", "")
        self.port = int(state.get("port") or 0)
        self.last_end = state.get("last_end") or {}
        self.leftover_jobs = list(state.get("leftover_jobs") or [])

    def get_state(self):
        state = super().get_state()
        if self.job_id:
            state.update(
                job_id=self.job_id,
                course=self.course,
                node=self.node,
                node_address=self.node_address,
                port=self.port,
            )
        if self.last_end:
            state["last_end"] = dict(self.last_end)
        if self.leftover_jobs:
            state["leftover_jobs"] = list(self.leftover_jobs)
        return state

    def clear_state(self):
        """Forget the job; keep how the last one ended (for the next form) and uncancelled jobs."""
        super().clear_state()
        self.job_id = self.course = self.node = self.node_address = ""
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

    def _profiles(self) -> dict[str, dict]:
        # A team account: its team's course only (team_server.py).
        profiles = self.team_profiles()
        if profiles is None:
            profiles = self.profiles([g.name for g in self.user.groups])
        return check_profiles(profiles or {})

    @default("options_form")
    def _options_form_default(self):
        return self._render_form

    def _render_form(self, spawner=None) -> str:
        courses = []
        for slug, p in self._profiles().items():
            courses.append(
                {
                    "slug": slug,
                    "title": p["title"],
                    "cpus": int(p["cpus"]),
                    "memory": int(p["memory"]),
                    "gpus": int(p["gpus"]),
                    "walltime": int(p["walltime"]),
                    "partition": p.get("partition"),
                    # hub_config/profiles.py: the course's resources used in full for an hour
                    "energy": p.get("energy_wh_per_hour"),
                    # what the form's figure starts from when the learner edits a resource
                    "resources": {"cpus": p["cpus"], "memory_gb": p["memory"] / 1024**3, "gpus": p["gpus"]},
                }
            )
        return self.render_launch_form(
            self.form_template, courses, last_end=(self.last_end or {}).get("message", "")
        )

    @default("options_from_form")
    def _options_from_form_default(self):
        return self._parse_form

    def _parse_form(self, form_data: dict) -> dict:
        options = parse_form(form_data)
        self._resolve(options)  # refuse now, on the form, rather than on the spawn page
        return options

    @default("apply_user_options")
    def _apply_user_options_default(self):
        return lambda spawner, options: spawner._resolve(options)

    def _resolve(self, options: dict) -> Launch:
        return resolve(options, self._profiles())

    # --- Slurm, as the learner -----------------------------------------------------------------------

    def _command_env(self) -> dict[str, str]:
        env = {"PATH": self.slurm_path, "LANG": "C.UTF-8"}
        env.update({k: os.environ[k] for k in self.env_keep if k.startswith("SLURM_") and k in os.environ})
        env.update(self.slurm_env)
        return env

    @property
    def slurm(self) -> SlurmClient:
        return SlurmClient(
            username=self.user.name,
            exec_prefix=self.exec_prefix,
            env=self._command_env(),
            timeout=self.slurm_command_timeout,
            log=self.log,
        )

    def _account(self) -> pwd.struct_passwd:
        """The learner's account, which the job runs as (sbatch --uid, exec_prefix): never a system one."""
        try:
            account = pwd.getpwnam(self.user.name)
        except KeyError:
            raise SlurmSpawnError(
                f"Not started: {self.user.name} has no account on the cluster yet. Ask the site's "
                "administrators.",
                reason="no-account",
                status_code=500,
            ) from None
        self.refuse_system_account(account)
        return account

    async def _learner_account(self, course: str) -> pwd.struct_passwd:
        """The learner's account, made first by provision_command if they have none (a trainee); a
        team account's, made or refreshed by team_provision_command before each of its starts."""
        if self.team_provision_command and self.team() is not None:
            await self._provision(
                course,
                self.team_provision_command,
                f"Preparing team account {self.user.name} on the cluster.",
                failure=f"the team account {self.user.name} could not be prepared on the cluster",
            )
            return self._account()
        try:
            pwd.getpwnam(self.user.name)
        except KeyError:
            if self.provision_command:
                await self._provision(
                    course,
                    self.provision_command,
                    f"Creating your account on the cluster for course {course}.",
                )
        return self._account()

    async def _provision(
        self,
        course: str,
        command: list[str],
        message: str,
        failure: str = "your account on the cluster could not be created",
    ) -> None:
        argv = [arg.format(username=self.user.name, course=course) for arg in command]
        self._progress.events.append({"progress": 5, "message": message})
        runner = SlurmClient(
            username=self.user.name,
            exec_prefix="",  # the command itself goes through sudo, as root
            env={"PATH": self.slurm_path, "LANG": "C.UTF-8"},
            timeout=self.provision_timeout,
            log=self.log,
        )
        began = asyncio.get_running_loop().time()
        result = await runner.run(argv)
        if not result.ok:
            self.log.error("Provisioning of %s failed: %s", self.user.name, result.describe())
            said = (result.stderr.strip() or result.stdout.strip() or result.describe()).splitlines()[-1]
            raise SlurmSpawnError(
                f"Not started: {failure} ({said}). Ask the site's administrators.",
                reason="provision",
                status_code=500,
            )
        self.log.info(
            "Provisioned %s for course %s in %.2f s: %s",
            self.user.name,
            course,
            asyncio.get_running_loop().time() - began,
            result.stdout.strip().replace("\n", "; "),
        )

    async def _cancel_leftovers(self) -> None:
        for job_id in list(self.leftover_jobs):
            if await self.slurm.cancel(job_id):
                self.log.info("Cancelled leftover Slurm job %s of %s", job_id, self.user.name)
                self.leftover_jobs = [j for j in self.leftover_jobs if j != job_id]

    # --- the batch script --------------------------------------------------------------------------

    def job_environment(self, account: pwd.struct_passwd) -> dict[str, str]:
        """The job's whole environment: JupyterHub's variables (API token, URLs, OAuth client...),
        Spawner.environment and env_keep, the learner's identity, PATH and LANG, the Slurm variables."""
        env = {k: str(v) for k, v in self.get_env().items()}
        env.update(
            HOME=account.pw_dir,
            USER=account.pw_name,
            LOGNAME=account.pw_name,
            # A trainee's login shell says no (no login outside the hub); their terminals need one.
            SHELL=account.pw_shell if account.pw_shell not in NO_LOGIN_SHELLS else "/bin/bash",
            PATH=self.job_path,
            LANG=self.job_lang,
        )
        env.update({k: v for k, v in self._command_env().items() if k.startswith("SLURM_")})
        env.pop("JPY_API_TOKEN", None)  # JupyterHub's pre-0.7 name of the token: nothing reads it
        # A person's team-<team> links, made in their home by their own job (spawners/team_links.py):
        # the hub is not root here, and root may not write in homes on a shared file system.
        if self.team() is None and (links := self.team_links_of(account.pw_name)) is not None:
            env[LINKS_VARIABLE] = links_value(*links)
        if self.container != "none":  # the image's programs and learner config, not the hub's
            env.update(PATH=IMAGE_PATH, JUPYTER_CONFIG_PATH=self.team_config_path(IMAGE_JUPYTER_CONFIG))
        return env

    def container_for(self, image: Path | None, account: pwd.struct_passwd) -> Charliecloud | None:
        """The ch-run line of a server in ``image`` (None: no container)."""
        return charliecloud(self.ch_run, image, account.pw_dir) if image else None

    def batch_script(
        self,
        launch: Launch,
        account: pwd.struct_passwd,
        environment: dict[str, str],
        container: Charliecloud | None = None,
    ) -> str:
        home = account.pw_dir
        return render_batch_script(
            self.batch_template,
            launch,
            home=home,
            output=self.job_output.format(home=home, username=account.pw_name, course=launch.course),
            job_name=self.job_name_template.format(course=launch.course),
            comment=self.job_comment_template.format(course=launch.course),
            environment=environment,
            python=IMAGE_PYTHON if container else self.job_python,
            command=[*(self.container_cmd if container else self.cmd), *self.get_args()],
            container=container,
        )

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
        # Before anything is made or submitted: a course whose image is not built is refused.
        image = (
            current_image(self.image_store or None, launch.environment, launch.course)
            if self.container == "charliecloud"
            else None
        )
        account = await self._learner_account(launch.course)
        container = self.container_for(image, account)
        await self._cancel_leftovers()
        self.port = 0
        self._port_event.clear()
        script = self.batch_script(launch, account, self.job_environment(account), container)
        self.log.debug(
            "Batch script for %s:\n%s", self.user.name, re.sub(r"(TOKEN=)\S+", r"\1<secret>", script)
        )
        job_id = await self.slurm.submit(script, account)
        submitted = loop.time()
        self.job_id, self.course, self.node, self.node_address = job_id, launch.course, "", ""
        previous_end = (self.last_end or {}).get("message", "")
        self.last_end = {}
        self._save_state()
        resources = ", ".join(
            format_resource(k, getattr(launch, k)) for k in RESOURCES if k != "gpus" or launch.gpus
        )
        self.log.info(
            "Submitted Slurm job %s for %s: course %s, partition %s, %s%s",
            job_id,
            self.user.name,
            launch.course,
            launch.partition or "(default)",
            resources,
            f", in image {container.image}" if container else "",
        )
        self._progress.job_id = job_id
        self._progress.stage = "queued"
        if previous_end:
            self._progress.events.append({"progress": 5, "message": previous_end})
        partition = launch.partition or "default"
        self._progress.events.append(
            {
                "progress": 10,
                "message": f"Submitted Slurm job {job_id} for course "
                f"{launch.course} (partition {partition}: {resources}).",
            }
        )

        status = await self._wait_for_port(job_id)
        running = loop.time()
        while not status.node:  # the port came first: ask squeue where the job runs
            status = await self.slurm.query_job(job_id)
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
            "server %.2f s",
            job_id,
            self.user.name,
            self.node_address,
            self.port,
            self.node,
            ready - began,
            submitted - began,
            running - submitted,
            ready - running,
        )
        return self.node_address, self.port

    async def _wait_for_port(self, job_id: str) -> JobStatus:
        """Until the job's server reports its port, check the job with squeue (more often at first):
        a job that ends first fails the start with Slurm's reason."""
        interval = self.startup_poll_interval
        status = JobStatus("pending")
        unknown_since = None
        while not self.port:
            status = await self.slurm.query_job(job_id)
            self._progress.status = status
            if status.kind in ("ended", "ending"):
                if self.port:  # reported meanwhile: the job ended after starting its server
                    break
                raise await self._ended_during_start(job_id, status)
            if status.kind == "unknown":
                unknown_since = unknown_since or asyncio.get_running_loop().time()
                self.log.warning(
                    "squeue gave no answer about job %s of %s (waiting): %s",
                    job_id,
                    self.user.name,
                    status.detail,
                )
            else:
                unknown_since = None
            if status.kind == "running" and self._progress.stage == "queued":
                self._progress.stage = "running"
            try:
                await asyncio.wait_for(self._port_event.wait(), interval)
            except TimeoutError:
                pass
            interval = min(interval * 1.5, self.progress_interval)
        if status.kind != "running":
            status = JobStatus("running")  # node unknown yet: the caller asks squeue
        self._progress.stage = "running"
        return status

    async def _wait_until_answering(self, job_id: str, address: str, port: int) -> None:
        """Return once the server answers under its own URL on its node (spawners/ready.py); fail if
        the job ends first or nothing answers within http_timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.http_timeout
        next_check = loop.time() + 1.0
        while loop.time() < deadline:
            if await serves(address, port, self.server.base_url):
                return
            if loop.time() >= next_check:
                status = await self.slurm.query_job(job_id)
                if status.kind in ("ended", "ending"):
                    raise await self._ended_during_start(job_id, status)
                next_check = loop.time() + 1.0
            await asyncio.sleep(self.ready_poll_interval)
        raise SlurmSpawnError(
            f"Not started: job {job_id} runs on {self.node}, but its server did not answer at "
            f"{address}:{port} "
            f"within {self.http_timeout:g} s.",
            reason="no-answer",
            status_code=500,
        )

    async def _ended_during_start(self, job_id: str, status: JobStatus) -> SlurmSpawnError:
        end = await self._explain_end(job_id, status)
        self.last_end = end
        return SlurmSpawnError(end["message"], reason="job-ended", status_code=500)

    async def _explain_end(self, job_id: str, status: JobStatus | None = None) -> dict:
        """How the job ended, in words: sacct's State, ExitCode and Reason (waiting up to
        end_record_wait for slurmdbd to have them), else scontrol's, else squeue's last answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.end_record_wait
        record = await self.slurm.job_record(job_id)
        while not has_ended(record) and loop.time() < deadline:
            await asyncio.sleep(0.25)
            record = await self.slurm.job_record(job_id)
        source = "sacct"
        if not has_ended(record):
            record, source = await self.slurm.job_details(job_id), "scontrol"
        output = self.job_output.format(home="~", username=self.user.name, course=self.course)
        return end_of_job(
            job_id, record, source, status, course=self.course, starting=self._starting, output=output
        )

    async def poll(self):
        """None while the job is pending or running, or while squeue gives no clear answer
        (slurmctld down...): only Slurm saying the job has ended ends the server for the hub."""
        if not self.job_id:
            return None if self._starting else 0
        job_id = self.job_id
        status = await self.slurm.query_job(job_id)
        if status.kind in ("pending", "running"):
            return None
        if status.kind == "unknown":
            answering = await answers(self.node_address, self.port) if self.port else None
            self.log.warning(
                "squeue gave no answer about job %s of %s; keeping the server (it %s): %s",
                job_id,
                self.user.name,
                {True: "answers", False: "does not answer", None: "has no port yet"}[answering],
                status.detail,
            )
            return None
        if self._starting or self._stopping:
            return 1
        end = await self._explain_end(job_id, status)
        self.last_end = end
        self.log.warning(
            "Slurm job %s of %s ended outside the hub: %s", job_id, self.user.name, end["message"]
        )
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
            if not await self.slurm.cancel(job_id, retry_for=0 if now else self.cancel_retry_timeout):
                self.leftover_jobs = [*self.leftover_jobs, job_id]
                return
            if now:
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.stop_wait
            while loop.time() < deadline:
                status = await self.slurm.query_job(job_id)
                if status.kind == "ended":
                    return
                await asyncio.sleep(0.2)
            self.log.warning(
                "Slurm job %s of %s was cancelled but is still in the queue after %g s",
                job_id,
                self.user.name,
                self.stop_wait,
            )
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
            p.place = await self.slurm.queue_place(p.job_id, status.partition)
            p.place_time = loop.time()

    def _pending_message(self) -> str:
        p = self._progress
        return pending_message(p.job_id, p.status, p.place)

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
                event = {
                    "progress": 30,
                    "message": f"Job {p.job_id} is submitted; Slurm's controller does not "
                    "answer at the moment, still trying.",
                }
            elif p.stage == "running":
                node = f" on {p.status.node}" if p.status and p.status.node else ""
                event = {
                    "progress": 60,
                    "message": f"Job {p.job_id} is running{node}; JupyterLab is starting.",
                }
            elif p.stage == "connecting":
                event = {
                    "progress": 80,
                    "message": f"JupyterLab of job {p.job_id} listens on {self.node}, "
                    f"port {self.port}; connecting.",
                }
            if event and event["message"] != last:
                last = event["message"]
                yield event
            await asyncio.sleep(0.25)
