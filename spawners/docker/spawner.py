"""The container spawner itself: its settings, its state in the hub's database, and a learner's
container through its life (start, poll, stop, and the spawn page's progress).

What a container is made of is in container.py, its first process in launcher.py, the learner's
words in words.py; the launch request (form fields, limits) is the Slurm site's
(spawners/slurm/request.py), since a course's resources mean the same on both.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker.errors
import requests.exceptions
from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from traitlets import Callable, Dict, Float, Integer, Unicode, default

from ..homes import LearnerHome
from ..launch_form import TEMPLATES, LaunchForm
from ..ready import serves
from ..slurm.request import Launch, check_profiles, parse_form, resolve
from ..team_server import TeamServer
from .container import ContainerPlan, plan_container, server_env
from .errors import ContainerSpawnError
from .words import end_of_container, gone, limits_words

LAUNCHER = (Path(__file__).parent / "launcher.py").read_text()
FORM_FIELDS = ["cpus", "memory"]  # what a container limits; GPUs and session length are Slurm's
# What the Docker API may answer when podman's service is down or slow: not a sign that a
# container has ended.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


class ContainerSpawner(TeamServer, LearnerHome, LaunchForm, DockerSpawner):
    """A learner's JupyterLab in a container of one of their courses' environment image."""

    profiles = Callable(
        help="Called with the user's group names, returns the courses they may start, as "
        "SlurmSpawner.profiles does (hub_config/profiles.py), each with its 'environment' "
        "(images/<environment>/). cpus and memory are the container's limits (defaults and "
        "maxima of the form). Called on each form and each start.",
    ).tag(config=True)

    @default("profiles")
    def _no_profiles(self):
        return lambda groups: {}

    image_store = Unicode(
        help="Folder of the image store of `ailys image build` (images/store.py): which image is "
        "in service for each environment. Empty: the store's default (var/images of the checkout).",
    ).tag(config=True)

    form_template = Unicode(
        str(TEMPLATES / "slurm-form.html.j2"),
        help="Jinja2 template file of the launch form (HTML, autoescaped); shows cpus and memory.",
    ).tag(config=True)

    pids_limit = Integer(1024, help="Processes and threads a container may run at once.").tag(config=True)
    tmp_size = Integer(256 * 1024**2, help="Bytes of the container's /tmp (memory).").tag(config=True)

    engine_threads = Integer(
        8,
        min=1,
        help="Threads that call podman's API at once, shared by all servers. DockerSpawner's own is "
        "one: the learners of a class starting together would then wait for each other's container "
        "create and start, one after the other.",
    ).tag(config=True)

    @property
    def executor(self):
        cls = ContainerSpawner
        if cls._engine_executor is None:
            cls._engine_executor = ThreadPoolExecutor(self.engine_threads, thread_name_prefix="podman")
        return cls._engine_executor

    _engine_executor: ThreadPoolExecutor | None = None

    ready_poll_interval = Float(
        0.05,
        help="Seconds between checks that the started server answers. start() returns only once it "
        "does, so the hub's own check (0.2 s backoff, doubling) succeeds at once.",
    ).tag(config=True)

    # DockerSpawner's defaults, for host networking and course images (docs/containers.md).
    @default("ip")
    def _loopback(self):
        return "127.0.0.1"  # the host's network: loopback only, on a port of its own

    @default("network_name")
    def _host_network(self):
        return "host"

    @default("use_internal_ip")
    def _no_port_mapping(self):
        return True  # nothing to publish on the host's network; get_ip_and_port says where

    @default("remove")
    def _remove(self):
        return True

    @default("pull_policy")
    def _never_pull(self):
        return "never"  # no registry: images are built here

    @default("prefix")
    def _prefix(self):
        return "ailys"

    # --- state saved in the hub's database -------------------------------------------------------

    course = Unicode("")
    course_env = Unicode("", help="The course's environment (images/<env>/) of the running container.")
    cpus = Float(0)
    memory = Integer(0)
    last_end = Dict(help="How the previous container ended outside the hub, shown on the next form.")

    def load_state(self, state):
        super().load_state(state)
        self.course = state.get("course", "")
        self.course_env = state.get("course_env", "")
        self.cpus = float(state.get("cpus") or 0)
        self.memory = int(state.get("memory") or 0)
        self.last_end = state.get("last_end") or {}

    def get_state(self):
        state = super().get_state()
        if self.object_id:
            state.update(course=self.course, course_env=self.course_env, cpus=self.cpus, memory=self.memory)
        if self.last_end:
            state["last_end"] = dict(self.last_end)
        return state

    def clear_state(self):
        """Forget the container; keep how the last one ended, for the next form."""
        super().clear_state()
        self.object_id = ""
        self.course = self.course_env = ""

    def _save_state(self) -> None:
        """Write the state now: a hub killed before the next save still knows what it saw."""
        if self.orm_spawner is not None:
            self.orm_spawner.state = self.get_state()
            self.user.db.commit()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._starting = self._stopping = False
        self._plan: ContainerPlan | None = None
        self._events: list[dict] = []

    # --- profiles, form and validation ----------------------------------------------------------

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
        courses = [
            {
                "slug": slug,
                "title": p["title"],
                "cpus": p["cpus"],
                "memory": int(p["memory"]),
                "gpus": 0,
                "partition": None,
                "environment": p.get("environment") or "?",
            }
            for slug, p in self._profiles().items()
        ]
        last_end = (self.last_end or {}).get("message", "")
        return self.render_launch_form(self.form_template, courses, last_end=last_end, fields=FORM_FIELDS)

    @default("options_from_form")
    def _options_from_form_default(self):
        return self._parse_form

    def _parse_form(self, form_data: dict) -> dict:
        options = parse_form({k: v for k, v in form_data.items() if k in ("course", *FORM_FIELDS)})
        self._resolve(options)  # refuse now, on the form, rather than on the spawn page
        return options

    @default("apply_user_options")
    def _apply_user_options_default(self):
        return lambda spawner, options: spawner._resolve(options)

    def _resolve(self, options: dict) -> Launch:
        return resolve(options, self._profiles())

    def _image_of(self, launch: Launch) -> str:
        """The tag in service for the course's environment; a clear refusal when none is built."""
        from images.store import ImageStore  # dependency-free; the hub's environment has it

        env = launch.environment or "python-ml"
        built = (ImageStore(Path(self.image_store)) if self.image_store else ImageStore()).current(env)
        if built is None:
            raise ContainerSpawnError(
                f"Not started: the environment {env} of course {launch.course} has no image yet. The "
                f"site's administrators build it with `ailys image build {env}`.",
                reason="no-image",
                status_code=503,
            )
        return built.tag

    # --- the container --------------------------------------------------------------------------

    def get_env(self):
        return server_env(super().get_env(), self._plan) if self._plan else super().get_env()

    async def get_command(self):
        """The launcher (launcher.py, by the image's Python) then the server's own command."""
        return [self.cmd[0], "-c", LAUNCHER, *self.cmd, *self.get_args()]

    async def get_ip_and_port(self):
        return self.ip, self.port  # the host's network: where the server was told to listen

    # --- start, poll, stop ----------------------------------------------------------------------

    async def start(self):
        self._starting = True
        try:
            return await self._start()
        finally:
            self._starting = False

    def _team_mounts(self, account) -> dict[str, int]:
        """The team folders this container binds, with their groups' gids: a person's teams
        (spawners/teams.py), or a team account's own folder (team_server.py)."""
        mounts = self.team_mounts(account)
        team = self.team()
        if team:
            mounts[team["folder"]] = account.pw_gid
        return mounts

    async def _start(self):
        loop = asyncio.get_running_loop()
        began = loop.time()
        launch = self._resolve(self.user_options or {})
        image = self._image_of(launch)
        groups = [g.name for g in self.user.groups]  # read the ORM here, not in the thread
        account = await asyncio.to_thread(self._prepare_home, groups)
        if account is None:
            raise ContainerSpawnError(
                "Not started: containers run as each learner's own uid, so the hub must run as root.",
                reason="not-root",
                status_code=500,
            )
        plan = plan_container(
            image=image,
            course=launch.course,
            environment=launch.environment or "python-ml",
            cpus=launch.cpus,
            memory=launch.memory,
            account=account,
            username=self.user.name,
            pids_limit=self.pids_limit,
            tmp_size=self.tmp_size,
            teams=self._team_mounts(account),
        )
        self._plan = plan
        self.image, self.mem_limit, self.cpu_limit = plan.image, plan.mem_limit, plan.cpu_limit
        self.volumes, self.extra_create_kwargs, self.extra_host_config = plan.volumes, plan.create, plan.host
        self.port = random_port()
        self.course, self.course_env = launch.course, launch.environment or "python-ml"
        self.cpus, self.memory = plan.cpu_limit, plan.mem_limit
        previous = (self.last_end or {}).get("message", "")
        self.last_end = {}
        self._events = [{"progress": 5, "message": previous}] if previous else []
        self._events.append(
            {
                "progress": 20,
                "message": f"Starting course {launch.course} in environment {self.course_env} "
                f"({image}), limits {limits_words(plan.cpu_limit, plan.mem_limit)}.",
            }
        )
        try:
            ip, port = await super().start()
        except docker.errors.ImageNotFound:
            raise ContainerSpawnError(
                f"Not started: image {image} of environment {self.course_env} is in the image index but "
                f"not in podman's store. The site's administrators rebuild it with "
                f"`ailys image build {self.course_env}`.",
                reason="no-image",
                status_code=503,
            ) from None
        self._save_state()  # the container id, before the wait: a restarted hub finds it
        created = loop.time()
        self._events.append({"progress": 60, "message": f"Container {self.object_name} started."})
        await self._wait_until_answering(ip, port)
        self.log.info(
            "Container %s of %s (course %s, %s, %s) ready at %s:%s in %.2f s: create and start %.2f s, "
            "server %.2f s",
            self.object_name,
            self.user.name,
            self.course,
            image,
            limits_words(self.cpus, self.memory),
            ip,
            port,
            loop.time() - began,
            created - began,
            loop.time() - created,
        )
        return ip, port

    async def _wait_until_answering(self, ip: str, port: int) -> None:
        """Return once the server answers under its own URL (spawners/ready.py); fail with the reason
        if its container ends first. Past http_timeout the hub's own check reports the failure with its usual message."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.http_timeout
        next_check = loop.time() + 0.5
        while loop.time() < deadline:
            if await serves(ip, port, self.server.base_url):
                return
            if loop.time() >= next_check:
                container = await self.get_object()
                if container is None or not container["State"].get("Running"):
                    end = await self._ended(container)
                    raise ContainerSpawnError(end["message"], reason="container-ended", status_code=500)
                next_check = loop.time() + 0.5
            await asyncio.sleep(self.ready_poll_interval)

    async def _ended(self, container: dict | None) -> dict:
        """Explain an ended (or vanished) container to its learner, log it, and remove it."""
        if container is None:
            end = gone(course=self.course, name=self.object_name)
        else:
            end = end_of_container(
                container["State"],
                course=self.course,
                cpus=self.cpus,
                memory=self.memory,
                starting=self._starting,
                name=self.object_name,
            )
            try:
                logs = await self.docker("logs", self.object_id, tail=10)
                tail = logs.decode(errors="replace").strip()
            except ENGINE_ERRORS as err:
                tail = f"(no log: {err})"
            self.log.warning(
                "Container %s of %s ended outside the hub: %s\nIts last lines:\n%s",
                self.object_name,
                self.user.name,
                end["message"],
                tail,
            )
            await self.remove_object()
        self.last_end = end
        self.object_id = ""
        self._save_state()
        return end

    async def poll(self):
        """None while the container runs, or while podman gives no answer (its service restarting):
        only podman saying the container has ended, or no longer knowing it, ends the server."""
        if not self.object_id:
            return None if self._starting else 0
        try:
            container = await self.get_object()
        except ENGINE_ERRORS as err:
            self.log.warning(
                "podman gave no answer about container %s of %s; keeping the server: %s",
                self.object_name,
                self.user.name,
                err,
            )
            return None
        if container is not None and container["State"].get("Running"):
            return None
        if self._starting or self._stopping:
            return 1
        end = await self._ended(container)
        return end["exit_code"] or 1

    async def stop(self, now=False):
        if not self.object_id:
            self.clear_state()
            return
        self._stopping = True
        try:
            await super().stop(now=now)
        finally:
            self._stopping = False

    async def progress(self):
        """The spawn page's events: the previous session's end, the image and limits, the start."""
        sent = 0
        while self._starting or sent < len(self._events):
            for event in self._events[sent:]:
                yield event
            sent = len(self._events)
            await asyncio.sleep(0.2)
