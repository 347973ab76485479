"""The one strict schema of site and course files: defaults and documentation live here.

Every model forbids unknown keys, so a misspelt key is an error rather than a silent
default. Each field's description is its documentation: ``ailys docs`` renders
docs/reference.md from it.
"""

from __future__ import annotations

import datetime as dt
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from .units import Bytes, Seconds

Username = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$"),
    Field(description="A login name, usable as a Unix account: lowercase letters, digits, _ and -."),
]
Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$"),
    Field(description="Lowercase letters, digits and dashes, 3 to 40 characters."),
]
Port = Annotated[int, Field(ge=1, le=65535)]


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
    hub_port: Port = Field(8081, description="Port of the hub itself on 127.0.0.1 (proxy and servers reach it).")
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
    admin_users: list[Username] = Field(default_factory=list, description="Site administrators.")
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


class SpawnerSettings(Strict):
    """How learner servers start, wherever they run."""

    kind: Literal["local", "slurm", "docker"] = Field(
        "local",
        description="local: a process on this host (the embedded default); slurm: a Slurm job "
        "(Mesolys); docker: a container.",
    )
    start_timeout: Seconds = Field(120, description="Time a server may take to start.")
    http_timeout: Seconds = Field(60, description="Time a started server may take to answer HTTP.")
    local: LocalSpawner = Field(default_factory=LocalSpawner, description="Settings of the local kind.")

    @field_validator("kind")
    @classmethod
    def _kind_available(cls, kind: str) -> str:
        if kind != "local":
            raise ValueError(f"spawner kind {kind!r} is not available in this version yet; use 'local'")
        return kind


class Culler(Strict):
    """jupyterhub-idle-culler, run by the hub as a service."""

    enabled: bool = Field(True, description="Stop idle servers.")
    timeout: Seconds = Field(3600, gt=0, description="A server idle this long is stopped.")
    every: Seconds = Field(300, gt=0, description="How often the culler looks.")
    max_age: Seconds = Field(0, description="Stop servers older than this even if busy (0: never).")
    concurrency: int = Field(10, ge=1, description="Requests the culler makes to the hub at once.")


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


# --- course ----------------------------------------------------------------------------------


class Title(Strict):
    fr: str = Field(min_length=1, description="In French.")
    en: str = Field(min_length=1, description="In English.")


class Resources(Strict):
    """What one learner server of the course may use."""

    cpus: int = Field(1, ge=1, le=256, description="CPU cores.")
    memory: Bytes = Field(2 * 1024**3, gt=0, description="Memory, such as 2G (binary units, as Slurm).")
    gpus: int = Field(0, ge=0, le=16, description="GPUs.")
    walltime: Seconds = Field(4 * 3600, gt=0, description="Longest session, such as 4h or 04:00:00.")
    partition: str | None = Field(None, description="Slurm partition (default: the site's).")
    account: str | None = Field(None, description="Slurm account to charge.")
    qos: str | None = Field(None, description="Slurm quality of service.")


class Assignment(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")] = Field(
        description="nbgrader assignment name: the folder under source/."
    )
    due: dt.datetime | None = Field(None, description="Deadline (ISO 8601, with time zone).")


class Demo(Strict):
    notebook: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.ipynb$")] = Field(
        description="Notebook path under the course's demos/ folder."
    )
    title: Title
    public: bool = Field(False, description="Open without an account.")


class Course(Strict):
    """A course: courses/<slug>/course.yaml."""

    slug: Slug = Field(description="The course's identifier; must equal its folder's name.")
    title: Title
    kind: Literal["academic", "short-course", "project-team"] = Field(
        description="academic: a master's or PhD course; short-course: continuing education for "
        "industrial trainees; project-team: a greenhouse team of 4 to 6 learners."
    )
    instructors: list[Username] = Field(min_length=1, description="Staff who teach and grade.")
    learners: list[Username] = Field(default_factory=list, description="Enrolled learners.")
    start: dt.date = Field(description="First day (YYYY-MM-DD).")
    end: dt.date = Field(description="Last day (YYYY-MM-DD), not before start.")
    resources: Resources = Field(default_factory=Resources)
    environment: Slug = Field("python-ml", description="Course environment (built by images/).")
    assignments: list[Assignment] = Field(default_factory=list, description="nbgrader assignments.")
    demos: list[Demo] = Field(default_factory=list, description="Voilà demos.")

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
        return f"course-{self.slug}"

    @property
    def staff_group(self) -> str:
        return f"staff-{self.slug}"
