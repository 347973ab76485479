"""The launch request: the launch form's fields, and a request resolved against the learner's course
profiles into what one start asks Slurm for (``Launch``), or refused with the reason. Pure.

A profile is what ``SlurmSpawner.profiles`` returns for one course (hub_config/profiles.py builds them
from course.yaml, whose schema holds the defaults): typed values, sizes in bytes, durations in
seconds. The form's texts are read by hub_config/units.py, as course.yaml's are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hub_config.units import parse_duration, parse_size

from .errors import SlurmSpawnError
from .words import format_resource

RESOURCES = {  # key: (what the learner reads, smallest value)
    "cpus": ("CPU cores", 1),
    "memory": ("memory", 1),
    "gpus": ("GPUs", 0),
    "walltime": ("session length", 60),
}
SLURM_NAMES = ("partition", "account", "qos", "reservation")  # each optional: None is Slurm's default
# Values that go on an #SBATCH line: no spaces, quotes or newlines that could add an option.
SBATCH_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,+:=@-]*$")


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
    environment: str | None = None  # images/<environment>/ of the course, when its profile names one


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


FORM_FIELDS = {"cpus": _whole_number, "gpus": _whole_number, "memory": parse_size, "walltime": parse_duration}


def parse_form(form_data: dict) -> dict:
    """The launch form's fields to user_options: {"course": slug} and the resources given, typed;
    a text that is not a value is refused, saying why."""

    def field_value(name):
        values = form_data.get(name) or [""]
        return values[0].strip() if isinstance(values, list) else str(values).strip()

    options: dict = {}
    if field_value("course"):
        options["course"] = field_value("course")
    for key, parse in FORM_FIELDS.items():
        text = field_value(key)
        if not text:
            continue
        try:
            options[key] = parse(text)
        except ValueError as error:
            raise SlurmSpawnError(
                f"Not started: {RESOURCES[key][0]}: {error}.", reason="invalid-request"
            ) from None
    return options


def check_profiles(profiles: dict[str, dict]) -> dict[str, dict]:
    """The profiles, each with its title (the slug when not given); a profile without one of the
    resources is a misconfiguration of the site, refused rather than filled with a guess."""
    checked = {}
    for slug, profile in profiles.items():
        profile = {"title": slug, **(profile or {})}
        for key in RESOURCES:
            value = profile.get(key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SlurmSpawnError(
                    f"Course {slug} is misconfigured: {key} {value!r} is not a whole number.",
                    reason="config",
                    status_code=500,
                )
        checked[slug] = profile
    return checked


def resolve(options: dict, profiles: dict[str, dict]) -> Launch:
    """user_options checked against the learner's courses (their checked profiles, the first the
    default): the Launch to submit, or a refusal saying why."""
    if not profiles:
        raise SlurmSpawnError(
            "Not started: you are enrolled in no course, so there is no course environment to start. "
            "Ask your instructor to add you.",
            reason="no-course",
        )
    unknown = set(options) - {"course", *RESOURCES}
    if unknown:
        raise SlurmSpawnError(
            f"Not started: unknown option(s) {', '.join(sorted(unknown))}.", reason="invalid-request"
        )
    slug = options.get("course") or next(iter(profiles))
    if slug not in profiles:
        raise SlurmSpawnError(
            f"Not started: you are not enrolled in course {slug!r}. You can start: {', '.join(profiles)}.",
            reason="foreign-course",
            status_code=403,
        )
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
                reason="invalid-request",
            )
        if value > limit:
            raise SlurmSpawnError(
                f"Not started: {label} {format_resource(key, value)} is over what course {slug} allows "
                f"({format_resource(key, limit)}).",
                reason="over-limit",
            )
        values[key] = value
    names = {key: p.get(key) for key in SLURM_NAMES}
    for key, name in names.items():
        if name is not None and not SBATCH_WORD.match(str(name)):
            raise SlurmSpawnError(
                f"Course {slug} is misconfigured: {key} {name!r}.", reason="config", status_code=500
            )
    return Launch(course=slug, title=p["title"], **names, **values, environment=p.get("environment"))
