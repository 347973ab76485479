"""The one strict schema of site and course files: defaults and documentation live here.

Every model forbids unknown keys, so a misspelt key is an error rather than a silent
default. Each field's description is its documentation: ``ailys docs`` renders
docs/reference.md from it.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from . import names
from .units import format_duration, parse_duration, parse_size

# Field types: the file says "4G" or "1h30m" (a unit always, hub_config/units.py), the model holds
# bytes or seconds.
Bytes = Annotated[int, BeforeValidator(parse_size), WithJsonSchema({"type": "string", "examples": ["4G"]})]
Seconds = Annotated[
    int, BeforeValidator(parse_duration), WithJsonSchema({"type": "string", "examples": ["1h30m"]})
]

Username = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$"),
    Field(description="A login name, usable as a Unix account: lowercase letters, digits, _ and -."),
]

# Names (fnmatch patterns) of Debian's system and service accounts, and of the services a hub or
# compute node runs: never a person of the hub (learner, instructor, admin), whatever uid the account
# has on this host. A learner's server runs as the account of that name (sbatch --uid, a process of a
# root hub): `learners: [root]` would give a course author root, or the munge key, on the nodes. An
# account of another name below spawner.min_uid is refused by the spawners. Service accounts that are
# system accounts on purpose (gallery.run_as, grading.user) are Username, not Person.
RESERVED_ACCOUNTS = (
    # base-passwd (Debian's static accounts)
    "root",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "gnats",
    "nobody",
    # systemd's and Debian's convention for new system accounts (_apt, _chrony, _rpc...)
    "systemd-*",
    "_*",
    # common services of a hub, a service node or a compute node
    "messagebus",
    "sshd",
    "munge",
    "slurm",
    "slurmdbd",
    "postgres",
    "mysql",
    "mariadb",
    "redis",
    "nginx",
    "openldap",
    "prometheus",
    "polkitd",
    "avahi",
    "dnsmasq",
    "ntp",
    "chrony",
    "statd",
    "tss",
    "uuidd",
    "tcpdump",
    "usbmux",
    "rtkit",
    "colord",
    "geoclue",
    "pulse",
    "saned",
    "lightdm",
    "gdm",
    "sddm",
    "adm",
    "operator",
    "halt",
    "shutdown",
    "ftp",
    "dbus",
    "rpc",
    "rpcuser",
    "docker",
    "podman",
    # the hub's own accounts (docs/design-notes.md; grading.user's default)
    "jupyterhub",
    "ailys-*",
)


def is_reserved(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in RESERVED_ACCOUNTS)


def _not_reserved(name: str) -> str:
    if is_reserved(name):
        raise ValueError(
            f"{name!r} is the name of a system or service account (RESERVED_ACCOUNTS in "
            "hub_config/schema.py), never a person of the hub"
        )
    return name


# A person: learner, instructor, admin (and later trainees, team members).
Person = Annotated[Username, AfterValidator(_not_reserved)]
Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    Field(description="Lowercase letters, digits and dashes, 3 to 40 characters."),
]
Port = Annotated[int, Field(ge=1, le=65535)]
# A partition, account, qos or reservation name: one word that sbatch takes as it is.
SlurmName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")]
CourseKind = Literal["academic", "short-course", "project-team"]


def _within_a_year(seconds: int) -> int:
    if seconds > 365 * 86400:  # "99999h": a typo or a unit mistake, never a session
        raise ValueError(f"{format_duration(seconds)} is more than 365 days; a session length is such as 4h")
    return seconds


# A learner server's longest session (a Slurm job's --time): refused above a year whatever the site.
Walltime = Annotated[Seconds, AfterValidator(_within_a_year)]
# Longest walltime a course of each kind may ask for, unless the site says otherwise.
DEFAULT_MAX_WALLTIME = {"academic": "12h", "short-course": "8h", "project-team": "24h"}


def submodel(annotation) -> type[BaseModel] | None:
    """The model inside a field's type (``Resources``, ``list[Demo]``, ``Title | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(submodel, get_args(annotation)) if m), None)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    @field_validator("hub_port", "proxy_api_port")
    @classmethod
    def _distinct_ports(cls, port: int, info: ValidationInfo) -> int:
        taken = {k: v for k, v in info.data.items() if k.endswith("port") and v == port}
        if taken:
            raise ValueError(f"port {port} is already used by {', '.join(taken)}")
        return port


class LocalAccounts(Strict):
    """Accounts whose passwords the hub keeps (bcrypt hashes in the hub database)."""

    kind: Literal["local"] = Field(
        "local",
        description="local: passwords kept by the hub (NativeAuthenticator). "
        "LDAP and OIDC sites arrive with their own kinds.",
    )
    admin_users: list[Person] = Field(
        default_factory=list,
        description="Site administrators. System account names are refused (spawner.min_uid).",
    )
    demo_accounts: bool = Field(
        False,
        description="Give every person of the catalogue, and the admins, a generated password at "
        "`ailys up` (printed once, kept in <data_dir>/secrets/demo-logins.txt). For demos only.",
    )
    minimum_password_length: int = Field(10, ge=8, description="Shortest password accepted.")
    allowed_failed_logins: int = Field(5, ge=0, description="Failed logins before a lockout (0: never).")
    lockout: Seconds = Field(600, description="How long a locked-out login waits.")


class LocalSpawner(Strict):
    """Learner servers as processes on the hub's host."""

    home_root: Path = Field(
        Path("homes"),
        description="Folder of the learners' homes, relative to data_dir unless absolute. "
        "Each home is readable by its owner only.",
    )


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

    @field_validator("exec_prefix")
    @classmethod
    def _names_the_learner(cls, prefix: str) -> str:
        if prefix and "{username}" not in prefix:
            raise ValueError("must contain {username}, the learner the command runs as")
        return prefix


# The start timeout of a kind when the site sets none: a Slurm job may wait in the queue.
DEFAULT_START_TIMEOUT = {"local": 120, "slurm": 1800, "docker": 300}


class SpawnerSettings(Strict):
    """How learner servers start, wherever they run."""

    kind: Literal["local", "slurm", "docker"] = Field(
        "local",
        description="local: a process on this host (the embedded default); slurm: a Slurm job "
        "(Mesolys); docker: a container.",
    )
    start_timeout: Seconds | None = Field(
        None,
        gt=0,
        description="Time a server may take to start, queue wait included. Default: 2m for local, "
        "30m for slurm (a busy partition may need more: set it per site).",
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

    @field_validator("kind")
    @classmethod
    def _kind_available(cls, kind: str) -> str:
        if kind == "docker":
            raise ValueError(
                "spawner kind 'docker' is not available in this version yet; use 'local' or 'slurm'"
            )
        return kind

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
    database_url: str | None = Field(
        None,
        pattern=r"^(sqlite:///|postgresql(\+\w+)?://)",
        description="SQLAlchemy URL of the hub database. Default: SQLite in data_dir. "
        "PostgreSQL (postgresql://user@host/db) for large sites; its password goes in a ~/.pgpass "
        "file of the hub's account (mode 0600, or PGPASSFILE), never in this file.",
    )
    authentication: LocalAccounts = Field(default_factory=LocalAccounts)
    spawner: SpawnerSettings = Field(default_factory=SpawnerSettings)
    culler: Culler = Field(default_factory=Culler)
    gallery: Gallery = Field(default_factory=Gallery)
    exchange: Exchange = Field(default_factory=Exchange)
    grading: Grading = Field(default_factory=Grading)
    formgraders: Formgraders = Field(default_factory=Formgraders)

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


# --- course ----------------------------------------------------------------------------------


class Title(Strict):
    fr: str = Field(min_length=1, description="In French.")
    en: str = Field(min_length=1, description="In English.")


class Resources(Strict):
    """What one learner server of the course may use."""

    cpus: int = Field(1, ge=1, le=256, description="CPU cores.")
    memory: Bytes = Field(2 * 1024**3, gt=0, description="Memory, such as 2G (binary units, as Slurm).")
    gpus: int = Field(0, ge=0, le=16, description="GPUs.")
    walltime: Walltime = Field(
        4 * 3600,
        gt=0,
        description="Longest session, such as 4h or 04:00:00; at most the site's spawner.max_walltime "
        "for the course's kind.",
    )
    partition: SlurmName | None = Field(None, description="Slurm partition (default: the site's).")
    account: SlurmName | None = Field(None, description="Slurm account to charge.")
    qos: SlurmName | None = Field(None, description="Slurm quality of service.")
    reservation: SlurmName | None = Field(
        None, description="Slurm reservation (a class's time slot on Mesolys)."
    )


class Assignment(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")] = Field(
        description="nbgrader assignment name: the folder under source/."
    )
    due: dt.datetime | None = Field(None, description="Deadline (ISO 8601, with time zone).")
    autograde_on_submit: bool = Field(
        False,
        description="Autograde each submission as it arrives and release its feedback to the learner "
        "(practice work); instructors see it in the grading interface like any other.",
    )


class Demo(Strict):
    # Each path segment starts with a letter, digit or _: no '..', no hidden file, no absolute path.
    notebook: Annotated[
        str, StringConstraints(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.ipynb$")
    ] = Field(description="Notebook path under the course's demos/ folder, such as knn.ipynb.")
    title: Title
    description: Title | None = Field(None, description="A sentence or two for the gallery's listing.")
    public: bool = Field(False, description="Open without an account.")
    members_only: bool = Field(
        False,
        description="Only the course's learners and instructors (and site admins) may open it; "
        "otherwise anyone logged in to the hub may. Not allowed with public.",
    )

    @field_validator("members_only")
    @classmethod
    def _not_public(cls, members_only: bool, info: ValidationInfo) -> bool:
        if members_only and info.data.get("public"):
            raise ValueError("a demo cannot be both public and members_only")
        return members_only


class Submission(Strict):
    """What the exchange accepts as one submission of an assignment (grading/exchange/)."""

    max_file_size: Bytes = Field(5 * 1024**2, gt=0, description="Largest file, such as 5M.")
    max_total_size: Bytes = Field(20 * 1024**2, gt=0, description="Largest submission, all files together.")
    max_files: int = Field(100, ge=1, le=10000, description="Most files in one submission.")


class Autograde(Strict):
    """Limits of one submission's autograding (`ailys grade`, grading/autograde/): each runs in a
    fresh kernel, in a copy of that submission only, without network, as the site's grading account."""

    timeout: Seconds = Field(30, gt=0, description="Longest run of one cell; a longer one is interrupted.")
    total_timeout: Seconds = Field(
        600, gt=0, description="Longest run of a whole submission; past it the kernel is killed."
    )
    memory: Bytes = Field(1024**3, gt=0, description="Memory one submission may allocate, such as 1G.")
    processes: int = Field(64, ge=8, le=4096, description="Processes and threads one submission may run.")
    max_output: Bytes = Field(
        8 * 1024**2, gt=0, description="Output kept from one notebook; the rest is dropped."
    )
    preload: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]] = Field(
        ["numpy", "scipy", "pandas", "sklearn", "matplotlib", "matplotlib.pyplot"],
        description="Modules imported once by the template each kernel is forked from (missing ones "
        "are skipped): submissions then start in a fraction of a second.",
    )


class LatePolicy(Strict):
    """What a submission after an assignment's `due` gets in `ailys grades export`."""

    action: Literal["accept", "flag", "zero"] = Field(
        "flag",
        description="accept: graded as any other, not marked; flag: graded and marked late; "
        "zero: marked late and exported with 0 for that assignment.",
    )
    grace: Seconds = Field(0, description="Time after the deadline still counted on time, such as 15m.")


class Grades(Strict):
    """The course's gradebook and grade export (grading/courses.py, grading/export.py)."""

    database_url: str | None = Field(
        None,
        pattern=r"^(sqlite:///|postgresql(\+\w+)?://)",
        description="SQLAlchemy URL of this course's nbgrader gradebook. Default: the site's "
        "formgraders.database_url, else SQLite in the course's grading folder.",
    )
    late: LatePolicy = Field(default_factory=LatePolicy, description="How late submissions are exported.")
    emails: dict[Person, str] = Field(
        default_factory=dict,
        description="Learner to email address, for the Moodle CSV export (its 'Email address' column; "
        "empty for learners not listed).",
    )

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: dict[str, str]) -> dict[str, str]:
        bad = sorted(
            k for k, v in emails.items() if not re.fullmatch(r"[^@\s,\"]+@[^@\s,\"]+\.[^@\s,\"]+", v)
        )
        if bad:
            raise ValueError(f"not an email address for {', '.join(bad)}")
        return emails


class Course(Strict):
    """A course: courses/<slug>/course.yaml."""

    slug: Slug = Field(description="The course's identifier; must equal its folder's name.")
    title: Title
    kind: CourseKind = Field(
        description="academic: a master's or PhD course; short-course: continuing education for "
        "industrial trainees; project-team: a greenhouse team of 4 to 6 learners."
    )
    instructors: list[Person] = Field(
        min_length=1,
        description="Staff who teach and grade. System account names are refused (site: spawner.min_uid).",
    )
    learners: list[Person] = Field(
        default_factory=list,
        description="Enrolled learners. System account names are refused (site: spawner.min_uid).",
    )
    start: dt.date = Field(description="First day (YYYY-MM-DD).")
    end: dt.date = Field(description="Last day (YYYY-MM-DD), not before start.")
    resources: Resources = Field(default_factory=Resources)
    environment: Slug = Field("python-ml", description="Course environment (built by images/).")
    assignments: list[Assignment] = Field(default_factory=list, description="nbgrader assignments.")
    demos: list[Demo] = Field(default_factory=list, description="Voilà demos.")
    submission: Submission = Field(
        default_factory=Submission,
        description="Limits of a submission to the exchange: a file or a total over them is refused "
        "with a message naming it, and earlier submissions are kept.",
    )
    autograde: Autograde = Field(default_factory=Autograde, description="Limits of autograding.")
    grades: Grades = Field(default_factory=Grades, description="Gradebook, late policy and emails.")

    @field_validator("instructors", "learners", "assignments", "demos")
    @classmethod
    def _no_doubles(cls, items: list, info: ValidationInfo) -> list:
        ids = [getattr(i, "name", None) or getattr(i, "notebook", i) for i in items]
        doubles = sorted({i for i in ids if ids.count(i) > 1})
        if doubles:
            raise ValueError(f"{', '.join(doubles)} listed more than once")
        if info.field_name == "learners":
            both = sorted(set(items) & set(info.data.get("instructors", [])))
            if both:
                raise ValueError(f"{', '.join(both)} cannot be both instructor and learner of one course")
        return items

    @field_validator("end")
    @classmethod
    def _not_before_start(cls, end: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("start")
        if start and end < start:
            raise ValueError(f"the course ends ({end}) before it starts ({start})")
        return end

    @property
    def learner_group(self) -> str:
        return names.course_group(self.slug)

    @property
    def staff_group(self) -> str:
        return names.staff_group(self.slug)
