"""`ailys accommodation set|list|remove`: a learner's extra time and extensions, for site admins.

Instructors without a shell set them through the exchange's staff routes (docs/accommodations.md).
The values are health-related personal data: printed to the terminal that asked, never logged.
"""

from __future__ import annotations

import getpass

import click

from hub_config.catalogue import UnknownCourse
from hub_config.site_option import catalogue_or_exit, site_option

from . import accommodations
from .courses import course_dir, sync_extensions


def _course(site: str, slug: str):
    catalogue = catalogue_or_exit(site)
    try:
        return catalogue, catalogue.course(slug)
    except UnknownCourse as err:
        raise click.BadParameter(str(err), param_hint="COURSE") from None


def _due_lines(course, learner: str, record: dict) -> list[str]:
    lines = []
    for a in course.assignments:
        if a.due is None:
            continue
        due = accommodations.due_for(course, record, a.name)
        note = ""
        if "%" in (record.get("extra_time") or "") and a.opens is None:
            note = " (no opens in course.yaml: a percentage gives this assignment no extra time)"
        lines.append(f"  {a.name}: due {due.isoformat()}{note}")
    return lines


@click.group()
def accommodation() -> None:
    """Learners' extra time (tiers-temps) and extensions (docs/accommodations.md)."""


@accommodation.command("set")
@click.argument("course")
@click.argument("learner")
@click.option("--extra-time", help="Extra time on every assignment: 33% (of opens to due) or 30m.")
@click.option("--assignment", help="The assignment of --extension.")
@click.option("--extension", help="More time on --assignment, such as 2d or 36h.")
@site_option
def set_command(
    course: str,
    learner: str,
    extra_time: str | None,
    assignment: str | None,
    extension: str | None,
    site: str,
) -> None:
    """Give LEARNER of COURSE extra time, or an extension on one assignment."""
    catalogue, model = _course(site, course)
    try:
        record = accommodations.set_accommodation(
            course_dir(catalogue, course),
            model,
            catalogue.learners(model),
            learner,
            extra_time=extra_time,
            assignment=assignment,
            extension=extension,
            by=getpass.getuser(),
        )
    except accommodations.AccommodationError as err:
        raise click.UsageError(str(err)) from None
    sync_extensions(catalogue, model)
    click.echo("\n".join([f"{learner} in {course}:", *_due_lines(model, learner, record)]))


@accommodation.command("list")
@click.argument("course")
@site_option
def list_command(course: str, site: str) -> None:
    """Every accommodation of COURSE, with each learner's deadlines."""
    catalogue, model = _course(site, course)
    found = accommodations.records(course_dir(catalogue, course))
    if not found:
        click.echo(f"no accommodations in {course}")
    for learner, record in sorted(found.items()):
        extensions = ", ".join(f"{a} +{e}" for a, e in sorted(record.get("extensions", {}).items()))
        head = f"{learner}: extra time {record.get('extra_time') or 'none'}"
        click.echo(
            "\n".join(
                [
                    head + (f"; extensions {extensions}" if extensions else ""),
                    *_due_lines(model, learner, record),
                ]
            )
        )


@accommodation.command("remove")
@click.argument("course")
@click.argument("learner")
@click.option("--assignment", help="Remove only this assignment's extension.")
@site_option
def remove_command(course: str, learner: str, assignment: str | None, site: str) -> None:
    """Remove LEARNER's accommodations in COURSE (or one assignment's extension)."""
    catalogue, model = _course(site, course)
    if not accommodations.remove(course_dir(catalogue, course), model, learner, assignment):
        what = f"extension on {assignment}" if assignment else "accommodations"
        raise click.ClickException(f"{learner} has no {what} in {course}")
    sync_extensions(catalogue, model)
    click.echo(
        f"removed {'the extension of ' + assignment if assignment else 'all accommodations'} of {learner} in {course}"
    )
