"""Launch profiles of the Slurm spawner, from course.yaml resources.

A learner may start the environment of each course they belong to (group course-<slug>, or
staff-<slug> for its instructors), with that course's resources as defaults and limits. The
spawner calls ``CourseProfiles`` on each launch form and each start (spawners/slurm/, trait
``profiles``), so a course added on disk is offered without a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from .catalogue import Catalogue, LiveCatalogue
from .schema import Course


def course_profile(course: Course, default_partition: str | None) -> dict:
    """The spawner's profile of one course (the keys of SlurmSpawner.profiles)."""
    r = course.resources
    title = (
        course.title.fr if course.title.fr == course.title.en else f"{course.title.fr} ({course.title.en})"
    )
    return {
        "title": title,
        "partition": r.partition or default_partition,
        "account": r.account,
        "qos": r.qos,
        "reservation": r.reservation,
        "cpus": r.cpus,
        "memory": r.memory,
        "gpus": r.gpus,
        "walltime": r.walltime,
        "environment": course.environment,  # images/<environment>/: the container or HPC image
    }


def energy_per_hour(course: Course, energy, partition: str | None) -> dict:
    """The launch form's estimate of a course's resources (cores, memory, GPUs) used in full for an
    hour: {"wh": ..., "wh_low", "wh_high", "co2_g"}, from the site's energy settings for the
    partition's hardware (None: the hub host's, for containers). The model is
    footprint/model.py's, imported here only: one arithmetic for the form and the records (it is
    pure, standard library only, and imports nothing of hub_config's)."""
    from footprint.model import Range, carbon_g, factors_for, hourly_energy_wh

    r = course.resources
    factors = factors_for(energy, partition)
    wh = hourly_energy_wh(r.cpus, r.memory / 1024**3, r.gpus, factors)
    co2 = carbon_g(wh, factors)
    # The model is linear in each resource: the form recomputes the figure from these when the
    # learner edits the resources, with no formula of its own (spawners/templates/slurm-form.html.j2).
    unit: dict = {}
    for key, one in (("cpus", (1, 0, 0)), ("memory_gb", (0, 1, 0)), ("gpus", (0, 0, 1))):
        per = hourly_energy_wh(*one, factors)
        unit[key] = [per.value, per.low, per.high]
    unit["co2_g_per_wh"] = carbon_g(Range.exact(1.0), factors).value
    return {"wh": wh.value, "wh_low": wh.low, "wh_high": wh.high, "co2_g": co2.value, "per_unit": unit}


def _launch_order(course: Course, today: dt.date) -> tuple:
    """Courses in session first (the form's default is the first), then upcoming, then past."""
    if course.start <= today <= course.end:
        return (0, course.slug)
    if today < course.start:
        return (1, course.start, course.slug)
    return (2, -course.end.toordinal(), course.slug)


def profiles_for(
    catalogue: Catalogue, groups: list[str], default_partition: str | None, today: dt.date
) -> dict[str, dict]:
    """{slug: profile} of the courses whose learner or staff group is among ``groups``."""
    mine = [c for c in catalogue.courses if {c.learner_group, c.staff_group} & set(groups)]
    return {
        c.slug: {
            **course_profile(c, default_partition),
            "energy_wh_per_hour": energy_per_hour(
                c,
                catalogue.site.energy,
                (c.resources.partition or default_partition)
                if catalogue.site.spawner.kind == "slurm"
                else None,
            ),
        }
        for c in sorted(mine, key=lambda c: _launch_order(c, today))
    }


class CourseProfiles:
    """SlurmSpawner.profiles of a site: reads the course folders at each call (last valid kept)."""

    def __init__(self, site_file: Path | str, default_partition: str | None):
        self.site_file = str(site_file)
        self.default_partition = default_partition
        self._live = LiveCatalogue(self.site_file, logging.getLogger("JupyterHub"))

    def __call__(self, groups: list[str]) -> dict[str, dict]:
        return profiles_for(self._live.current(), groups, self.default_partition, dt.date.today())

    def __repr__(self) -> str:  # as `ailys render` prints it
        return f"CourseProfiles({self.site_file!r}, default_partition={self.default_partition!r})"
