"""The field types every part of the schema shares: sizes and durations with units, names a Unix
account or Slurm takes, the accounts that are never a person of the hub, and the strict base model."""

from __future__ import annotations

import fnmatch
import string
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from ..units import format_duration, parse_duration, parse_size

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
    # a project team's account and Unix group, and its mentors' hub group (hub_config/names.py):
    # a person of that name would own a team's folder and server
    "team-*",
    "mentors-*",
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


class Title(Strict):
    fr: str = Field(min_length=1, description="In French.")
    en: str = Field(min_length=1, description="In English.")


def argv_templates(fields: tuple[str, ...]):
    """A list of argv templates (run as root, no shell) naming only ``fields``: the provisioning
    commands' (ailys-provision-trainee), each value checked before it is formatted in."""

    def known_fields(templates: list[list[str]]) -> list[list[str]]:
        for argv in templates:
            for arg in argv:
                try:
                    names = {name for _, name, _, _ in string.Formatter().parse(arg) if name is not None}
                except ValueError as err:
                    raise ValueError(f"{arg!r}: {err}") from None
                unknown = sorted(names - set(fields))
                if unknown:
                    raise ValueError(f"{arg!r} names {', '.join(unknown)}; known: {', '.join(fields)}")
        return templates

    return Annotated[list[Annotated[list[str], Field(min_length=1)]], AfterValidator(known_fields)]
