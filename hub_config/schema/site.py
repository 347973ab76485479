"""The site file: hub_config/sites/<name>.yaml."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .energy import Energy
from .people import Authentication, Retention, Smtp
from .team import TeamAccounts, Teams
from .types import (
    DEFAULT_MAX_WALLTIME,
    RESERVED_ACCOUNTS,
    Bytes,
    CourseKind,
    Port,
    Seconds,
    Slug,
    SlurmName,
    Strict,
    Username,
    Walltime,
    argv_templates,
)

# --- site ------------------------------------------------------------------------------------


class Listen(Strict):
    """Where browsers and the hub's own parts meet."""

    ip: IPv4Address = Field(IPv4Address("127.0.0.1"), description="Address the proxy serves browsers on.")
    port: Port = Field(8000, description="Port the proxy serves browsers on.")
    base_url: str = Field("/", pattern=r"^/([^/]+/)*$", description="URL prefix of the whole site.")
    hub_port: Port = Field(
        8081, description="Port of the hub itself on 127.0.0.1 (proxy and servers reach it)."
    )
    proxy_api_port: Port = Field(8001, description="Port of the proxy's REST API on 127.0.0.1.")
    route_check_every: Seconds = Field(
        30,
        ge=5,
        le=3600,
        description="How often the hub compares the proxy's routes with its servers and adds what is "
        "missing (JupyterHub's last_activity_interval, 5 minutes by default): after the proxy restarts, "
        "learners reach their running servers again within this time.",
    )

    @field_validator("hub_port", "proxy_api_port")
    @classmethod
    def _distinct_ports(cls, port: int, info: ValidationInfo) -> int:
        taken = {k: v for k, v in info.data.items() if k.endswith("port") and v == port}
        if taken:
            raise ValueError(f"port {port} is already used by {', '.join(taken)}")
        return port


class LocalSpawner(Strict):
    """Learner servers as processes on the hub's host."""

    home_root: Path = Field(
        Path("homes"),
        description="Folder of the learners' homes, relative to data_dir unless absolute. "
        "Each home is readable by its owner only.",
    )


# What the argv templates of TraineeAccounts may name; each value is checked before it is formatted in.
TRAINEE_TEMPLATE_FIELDS = ("username", "uid", "group", "home", "shell", "comment", "course")


TraineeCommands = argv_templates(TRAINEE_TEMPLATE_FIELDS)


class TraineeAccounts(Strict):
    """Unix and Slurm accounts for the trainees of short courses (local hub accounts, in no
    directory), made at their first server start by `ailys-provision-trainee`, which the hub runs
    through one sudo rule, and removed when they are forgotten or retired (docs/design-notes.md,
    "Accounts on the cluster for trainees")."""

    command: str = Field(
        "sudo -n /usr/local/sbin/ailys-provision-trainee --site {site}",
        description="How the hub runs the provisioning command, with {site} (this file's absolute path, "
        "which the sudoers rule fixes); the hub adds `add NAME COURSE`. The program must be root's, in "
        "the project's root-owned environment or linked from it.",
    )
    uid_min: int = Field(
        70000,
        ge=1000,
        description="First uid of the trainees' range. The range is theirs alone: no directory or local "
        "account may have a uid in it, since an account in it counts as a trainee's.",
    )
    uid_max: int = Field(79999, le=2**31 - 2, description="Last uid of the trainees' range.")
    group: Username = Field(
        description="Primary group of every trainee: the learners' group of the hub's Slurm sudo rule "
        "(mesolys-learners), which must exist."
    )
    slurm_accounts: list[SlurmName] = Field(
        min_length=1,
        description="Slurm accounts a trainee may be associated with (sacctmgr add user). The first is "
        "for courses whose resources name no account; a short course naming another is refused.",
    )
    home_root: Path = Field(
        Path("/home"),
        description="Folder (absolute, existing) of the trainees' homes, <home_root>/<name>, mode 0700.",
    )
    shell: str = Field(
        "/usr/sbin/nologin",
        pattern=r"^/\S+$",
        description="Login shell: nologin, so a trainee never logs in to a node outside the hub (their "
        "JupyterLab terminals still open a shell).",
    )
    create: TraineeCommands = Field(
        default_factory=lambda: [
            [
                "useradd",
                "--uid",
                "{uid}",
                "--gid",
                "{group}",
                "--no-user-group",
                "--home-dir",
                "{home}",
                "--create-home",
                "--key",
                "HOME_MODE=0700",
                "--shell",
                "{shell}",
                "--comment",
                "{comment}",
                "{username}",
            ],
        ],
        description="Commands (argv lists, run as root in order, no shell) that create a trainee's Unix "
        "account, with {username}, {uid}, {group}, {home}, {shell}, {comment} and {course}. The default "
        "makes it on this host, "
        "right where the nodes read this host's accounts (the test cluster); on a cluster whose nodes do "
        "not share /etc/passwd, the site's own account tool (its directory, or the tool that pushes "
        "accounts to the nodes).",
    )
    remove: TraineeCommands = Field(
        default_factory=lambda: [["userdel", "--remove", "{username}"]],
        description="Commands that remove a trainee's Unix account and home (after their Slurm jobs are "
        "cancelled and their association deleted), same fields as create.",
    )

    @model_validator(mode="after")
    def _a_range(self) -> TraineeAccounts:
        if self.uid_max < self.uid_min:
            raise ValueError(f"uid_max ({self.uid_max}) is below uid_min ({self.uid_min})")
        if not self.home_root.is_absolute():
            raise ValueError(f"home_root must be an absolute path, not {self.home_root}")
        if "{site}" not in self.command:
            raise ValueError("command must contain {site}, the site file the sudoers rule fixes")
        return self


class SlurmSettings(Strict):
    """Learner servers as Slurm jobs (Mesolys), through spawners/slurm/."""

    slurm_conf: Path | None = Field(
        None,
        description="slurm.conf of the cluster, relative to this file unless absolute; given to every "
        "Slurm command and to the jobs as SLURM_CONF. Default: the system's (/etc/slurm/slurm.conf).",
    )
    default_partition: SlurmName | None = Field(
        None, description="Partition of courses whose resources name none. Default: the cluster's."
    )
    node_addresses: dict[SlurmName, str] = Field(
        default_factory=dict,
        description="Node name (as squeue prints it) to the address where the hub reaches it, for nodes "
        "whose names do not resolve from the hub host, e.g. {node1: 10.1.0.11}.",
    )
    exec_prefix: str = Field(
        "",
        description="Command that runs sbatch, squeue, scancel and sacct as the learner, with {username}, "
        "e.g. 'sudo -n -u {username} --' for a hub account that is not root (the production layout: "
        "docs/design-notes.md). Empty: the hub is root and submits with sbatch --uid.",
    )
    command_timeout: Seconds = Field(
        30,
        gt=0,
        description="A Slurm command that has not answered after this long counts as failed "
        "(slurmctld down); the server is kept and the command tried again at the next poll.",
    )
    trainees: TraineeAccounts | None = Field(
        None,
        description="Accounts on the cluster for trainees of short courses, made at their first start. "
        "None: every person needs an account made by the administrators (or the directory) first.",
    )
    teams: TeamAccounts | None = Field(
        None,
        description="Each project team's Unix group, team account, Slurm association and folder on the "
        "cluster, made by the hub through its sudo rule (docs/teams.md). None: the administrators (or "
        "the directory) make them.",
    )
    container: Literal["none", "charliecloud"] = Field(
        "none",
        description="none: the learner's server runs in the hub's own environment, which the nodes reach "
        "at the same path; charliecloud: inside the HPC image (SquashFS) of the course's environment, "
        "run by ch-run on the node with the learner's home bound at its own path (homes under /home, "
        "or /tmp for test clusters). A course whose image is not built yet is refused before anything "
        "is submitted, naming `ailys image build ENV`. docs/slurm-containers.md.",
    )
    image_store: Path | None = Field(
        None,
        description="With container charliecloud: the image store (`ailys image build`) whose SquashFS "
        "images the nodes run, relative to this file unless absolute. It must be a path every node "
        "reads at the same place (on Mesolys, a shared file system). Default: the store's default, "
        "var/images of the checkout.",
    )
    ch_run: Path = Field(
        Path("/usr/bin/ch-run"),
        description="With container charliecloud: ch-run on the nodes (Debian's charliecloud-runtime, "
        "built with SquashFUSE).",
    )

    @field_validator("ch_run")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        if not path.is_absolute():
            raise ValueError("must be an absolute path: the batch script runs it on the node")
        return path

    @field_validator("exec_prefix")
    @classmethod
    def _names_the_learner(cls, prefix: str) -> str:
        if prefix and "{username}" not in prefix:
            raise ValueError("must contain {username}, the learner the command runs as")
        return prefix


class DockerSettings(Strict):
    """Learner servers as containers (one VM for a short course), through spawners/docker/: each
    course's environment image (images/, `ailys image build`) run by podman, whose Docker-compatible
    API DockerSpawner talks to (docs/containers.md)."""

    socket: Path = Field(
        Path("podman/podman.sock"),
        description="Unix socket of the podman service (`podman system service`) the hub talks to, "
        "relative to data_dir unless absolute; `ailys up` starts the service there and stops it.",
    )
    image_store: Path | None = Field(
        None,
        description="Folder of the image store (`ailys image build`: podman's storage and config, the "
        "index of built images), relative to this file unless absolute. Default: the store's "
        "default, var/images of the checkout, where `ailys image build` puts them.",
    )
    network: Literal["host"] = Field(
        "host",
        description="Network of the containers. host: the host's own network, as a local process; the "
        "server listens on 127.0.0.1 on a free port the spawner picks, and reaches the hub and the "
        "exchange on 127.0.0.1, with no address translation (the fastest start here; "
        "docs/containers.md says what it shares). The only mode in this version.",
    )
    home_root: Path = Field(
        Path("homes"),
        description="Folder of the learners' homes, relative to data_dir unless absolute: the same "
        "homes as the local kind (<home_root>/<name>, mode 0700, owned by the learner's uid), bound "
        "into the container at the same path.",
    )
    pids_limit: int = Field(
        1024,
        ge=64,
        le=65536,
        description="Processes (and threads) a container may run at once: a fork bomb stops there, "
        "not at the machine's limit.",
    )
    tmp_size: Bytes = Field(
        256 * 1024**2,
        gt=0,
        description="Size of the container's /tmp (in memory, counted in the course's memory limit); "
        "the image itself is read-only.",
    )


# The start timeout of a kind when the site sets none: a Slurm job may wait in the queue.
DEFAULT_START_TIMEOUT = {"local": 120, "slurm": 1800, "docker": 300}


class SpawnerSettings(Strict):
    """How learner servers start, wherever they run."""

    kind: Literal["local", "slurm", "docker"] = Field(
        "local",
        description="local: a process on this host (the embedded default); slurm: a Slurm job "
        "(Mesolys); docker: a container of the course's environment image, on podman.",
    )
    start_timeout: Seconds | None = Field(
        None,
        gt=0,
        description="Time a server may take to start, queue wait included. Default: 2m for local, "
        "30m for slurm (a busy partition may need more: set it per site), 5m for docker.",
    )
    http_timeout: Seconds = Field(60, description="Time a started server may take to answer HTTP.")
    poll_interval: Seconds = Field(
        30,
        gt=0,
        description="How often the hub checks that each running server is still alive (a process that "
        "died, a Slurm job cancelled or out of walltime): the longest it takes to notice.",
    )
    min_uid: int = Field(
        1000,
        ge=1,
        description="Smallest uid a learner's server may run as (every kind: process, Slurm job, container). "
        "A person whose account has a smaller uid (a system account, such as one made with useradd "
        "--system), nobody (65534) or whose primary group is root is refused before anything starts; "
        "the local kind creates accounts from this uid up. Debian gives people uids from 1000 "
        "(UID_MIN, /etc/login.defs). People's names are also refused when they are those of system "
        f"or service accounts: {', '.join(f'`{name}`' for name in RESERVED_ACCOUNTS)}.",
    )
    max_walltime: dict[CourseKind, Annotated[Walltime, Field(gt=0)]] = Field(
        DEFAULT_MAX_WALLTIME,
        validate_default=True,
        description="Longest resources.walltime a course of each kind may ask for; a course over it is "
        "refused when the catalogue loads. Kinds not given keep their default: academic 12h (a long "
        "lab day), short-course 8h (one training day), project-team 24h (a greenhouse team's run).",
    )
    local: LocalSpawner = Field(default_factory=LocalSpawner, description="Settings of the local kind.")
    slurm: SlurmSettings = Field(default_factory=SlurmSettings, description="Settings of the slurm kind.")
    docker: DockerSettings = Field(default_factory=DockerSettings, description="Settings of the docker kind.")

    @field_validator("max_walltime", mode="before")
    @classmethod
    def _default_kinds(cls, given):
        return {**DEFAULT_MAX_WALLTIME, **given} if isinstance(given, dict) else given

    @property
    def effective_start_timeout(self) -> int:
        return self.start_timeout or DEFAULT_START_TIMEOUT[self.kind]


class Culler(Strict):
    """jupyterhub-idle-culler, run by the hub as a service."""

    enabled: bool = Field(True, description="Stop idle servers.")
    timeout: Seconds = Field(3600, gt=0, description="A server idle this long is stopped.")
    every: Seconds = Field(300, gt=0, description="How often the culler looks.")
    max_age: Seconds = Field(0, description="Stop servers older than this even if busy (0: never).")
    concurrency: int = Field(10, ge=1, description="Requests the culler makes to the hub at once.")


class Gallery(Strict):
    """Voilà demo gallery (gallery/README.md). Each open page holds a kernel (~200M): caps bound visitors."""

    enabled: bool = Field(True, description="Run the gallery and link it from the hub's login page.")
    port: Port = Field(8090, description="Port of the gallery service on 127.0.0.1 (the proxy reaches it).")
    max_kernels: int = Field(
        8, ge=1, le=1000, description="Kernels at most in the whole gallery, preheated ones included."
    )
    max_kernels_per_demo: int = Field(4, ge=1, le=1000, description="Kernels at most for one demo.")
    preheat: int = Field(
        1,
        ge=0,
        le=10,
        description="Kernels kept ready per demo, their page already executed, so a visitor waits only "
        "for the browser (0: none). They count in the caps.",
    )
    idle_timeout: Seconds = Field(
        600,
        ge=10,
        description="A page left open with no activity this long loses its kernel (abandoned page).",
    )
    closed_page_timeout: Seconds = Field(
        30,
        ge=2,
        description="A kernel that no page is connected to this long is shut down: a closed page, a lost "
        "connection, or a plain HTTP request that never opened the page.",
    )
    render_timeout: Seconds = Field(
        30,
        ge=5,
        description="Time a demo's notebook may take to execute; a render still unfinished then (a stalled "
        "kernel reply) is given up with its kernel and done again.",
    )
    retry_after: Seconds = Field(
        10, ge=1, description="Retry-After of the 'busy, retry' page shown above the caps."
    )
    run_as: Username = Field(
        "nobody",
        description="Account the gallery and its kernels run as when the hub runs as root (demo code never "
        "runs as root). It must be able to read the courses' demos/ folders.",
    )

    @field_validator("max_kernels_per_demo")
    @classmethod
    def _per_demo_within_total(cls, per_demo: int, info: ValidationInfo) -> int:
        total = info.data.get("max_kernels")
        if total is not None and per_demo > total:
            raise ValueError(f"{per_demo} is more than max_kernels ({total})")
        return per_demo


class Exchange(Strict):
    """The assignment exchange (grading/exchange/): a hub service keeping nbgrader's assignments,
    submissions and feedback in <data_dir>/exchange, which only the hub's account can read."""

    ip: IPv4Address = Field(
        IPv4Address("127.0.0.1"),
        description="Address the exchange listens on and learners' servers connect to: one that "
        "every node running learners' servers reaches (Slurm sites: the hub host's cluster address).",
    )
    port: Port = Field(8082, description="Port of the exchange service.")


class Grading(Strict):
    """Where and as whom `ailys grade` runs learners' code (grading/autograde/)."""

    user: Username = Field(
        "ailys-grader",
        description="Unprivileged Unix account that runs submissions; it must not be able to read "
        "learners' homes. Each submission also runs in its own user, mount, network and PID namespaces.",
    )
    work_dir: Path = Field(
        Path("grading-work"),
        description="Folder of the working copies of submissions, relative to data_dir unless absolute; "
        "on a Slurm site, a folder every grading node mounts.",
    )
    workers: int = Field(2, ge=1, le=256, description="Submissions graded at once by the local backend.")
    partition: SlurmName | None = Field(None, description="Slurm partition of grading array jobs.")
    account: SlurmName | None = Field(None, description="Slurm account charged for grading.")
    throttle: int = Field(8, ge=1, le=1000, description="Array tasks running at once (sbatch --array=...%N).")


class Formgraders(Strict):
    """The per-course grading interfaces (grading/service.py): one hub service `grading-<slug>`
    (nbgrader's formgrader) for each course with assignments, reached by that course's instructors only."""

    port: Port = Field(
        8300,
        description="Port of the first course's grading service on 127.0.0.1; the next courses, in "
        "the order of their slugs, take the following ports.",
    )
    database_url: str | None = Field(
        None,
        pattern=r"^postgresql(\+\w+)?://.*\{course\}",
        description="PostgreSQL URL of the courses' gradebooks with {course} where the course's slug "
        "goes, one database per course (nbgrader's gradebook holds one course): e.g. "
        "postgresql://grader@db/nbgrader_{course}; its password in the hub account's ~/.pgpass. "
        "Default: each course's own SQLite gradebook.db in <data_dir>/grading/<slug>/.",
    )


class Quotas(Strict):
    """Disk each person may use (hub_config/quotas.py, docs/backup.md): so one learner cannot fill
    the disk the hub's database lives on. Sizes with their unit (200M, 2G); none: no limit."""

    home: Bytes | None = Field(
        None,
        description="A learner's home. Shown to them on their footprint page against this, with a "
        "message when over; enforced by the file system's quotas (setquota) on a deployed node, "
        "not by the local site.",
    )
    exchange: Bytes | None = Field(
        None,
        description="All of a learner's submissions kept by the exchange, in every course: a "
        "submission that would go over it is refused with a message in their assignment list "
        "(earlier submissions are kept).",
    )


class Site(Strict):
    """A deployment of the hub: hub_config/sites/<name>.yaml. Relative paths are relative to this file."""

    name: Slug = Field(description="The site's name, as in the file name.")
    description: str = Field("", description="One line for people reading `ailys render`.")
    listen: Listen = Field(default_factory=Listen)
    data_dir: Path = Field(
        description="Where the hub keeps its state: database, secrets, homes, logs. Never in git."
    )
    courses_dir: Path = Field(description="The folder of course folders.")
    courses_sync_every: Seconds = Field(
        60,
        ge=5,
        description="How often the course-sync service rereads courses_dir and brings groups and "
        "memberships up to date (`ailys courses sync` does it at once).",
    )
    services_start_timeout: Seconds = Field(
        120,
        ge=10,
        le=3600,
        description="How long the hub waits at its start for each hub service it runs (gallery, "
        "exchange, formgraders, footprint...) to answer; JupyterHub stops if one does not. Its own "
        "default, 30 s, is too short for a busy node: the gallery preheats its demos' kernels.",
    )
    database_url: str | None = Field(
        None,
        pattern=r"^(sqlite:///|postgresql(\+\w+)?://)",
        description="SQLAlchemy URL of the hub database. Default: SQLite in data_dir. "
        "PostgreSQL (postgresql://user@host/db) for large sites; its password goes in a ~/.pgpass "
        "file of the hub's account (mode 0600, or PGPASSFILE), never in this file.",
    )
    authentication: Authentication = Field(default_factory=Authentication)
    timezone: str = Field(
        "Europe/Paris",
        description="IANA time zone in which course dates and times without a zone are read "
        "(access windows, deadlines shown to people).",
    )
    smtp: Smtp | None = Field(None, description="Mail server for invitations (none: print them).")
    retention: Retention = Field(default_factory=Retention)
    spawner: SpawnerSettings = Field(default_factory=SpawnerSettings)
    culler: Culler = Field(default_factory=Culler)
    gallery: Gallery = Field(default_factory=Gallery)
    exchange: Exchange = Field(default_factory=Exchange)
    grading: Grading = Field(default_factory=Grading)
    formgraders: Formgraders = Field(default_factory=Formgraders)
    energy: Energy = Field(default_factory=Energy)
    teams: Teams = Field(default_factory=Teams, description="Project teams: folders, sizes, mentor page.")
    quotas: Quotas = Field(default_factory=Quotas, description="Disk each person may use.")

    @field_validator("exchange")
    @classmethod
    def _exchange_port_free(cls, exchange: Exchange, info: ValidationInfo) -> Exchange:
        listen, gallery = info.data.get("listen"), info.data.get("gallery")
        ports = ("port", "hub_port", "proxy_api_port")
        taken = [f"listen.{k}" for k in ports if getattr(listen, k, 0) == exchange.port]
        taken += ["gallery.port"] if gallery and gallery.enabled and gallery.port == exchange.port else []
        if taken:
            raise ValueError(f"port {exchange.port} is already used by {taken[0]}")
        return exchange

    @field_validator("gallery")
    @classmethod
    def _gallery_port_free(cls, gallery: Gallery, info: ValidationInfo) -> Gallery:
        listen = info.data.get("listen")
        taken = [
            k for k in ("port", "hub_port", "proxy_api_port") if listen and getattr(listen, k) == gallery.port
        ]
        if gallery.enabled and taken:
            raise ValueError(f"port {gallery.port} is already used by listen.{taken[0]}")
        return gallery

    @model_validator(mode="after")
    def _footprint_port_free(self) -> Site:
        # Every `*port` key of the other sections (listen, gallery, exchange, formgraders' first,
        # any service added later), skipping a service that is turned off. After: energy is
        # often left to its defaults, which field validators do not see.
        port = self.energy.service.port
        taken = [
            f"{section}.{key}"
            for section in type(self).model_fields
            if section != "energy"
            and isinstance(part := getattr(self, section), Strict)
            and getattr(part, "enabled", True)
            for key in type(part).model_fields
            if key.endswith("port") and getattr(part, key) == port
        ]
        if self.energy.service.enabled and taken:
            raise ValueError(f"energy.service.port {port} is already used by {taken[0]}")
        return self
