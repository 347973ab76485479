"""`ailys grade`: autograde an assignment's collected submissions in parallel, sandboxed."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hub_config.catalogue import UnknownCourse
from hub_config.site_option import catalogue_or_exit, site_option

from .autograde.course import Course, SubmissionError
from .autograde.engine import Summary, grade_local
from .autograde.on_submit import settings_for
from .courses import course_dir as grading_course_dir


@click.command()
@click.argument("course")
@click.argument("assignment")
@click.option(
    "--backend",
    type=click.Choice(["local", "slurm"]),
    default="local",
    show_default=True,
    help="local: parallel kernels on this host; slurm: one array job on the grading partition.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Submissions graded at once (local backend). Default: the site's grading.workers.",
)
@click.option("--only-new", is_flag=True, help="Skip submissions already graded (same timestamp.txt).")
@click.option(
    "--course-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The nbgrader course folder (source/, submitted/, gradebook.db). Default: the course's folder.",
)
@click.option(
    "--feedback", is_flag=True, help="Also generate each learner's feedback (nbgrader generate_feedback)."
)
@site_option
def grade(
    course: str,
    assignment: str,
    backend: str,
    workers: int | None,
    only_new: bool,
    course_dir: Path | None,
    feedback: bool,
    site: str,
) -> None:
    """Autograde the collected submissions of ASSIGNMENT in COURSE (a course slug).

    Each submission runs in a fresh kernel with the course's time and memory limits, in a copy of
    that submission only, without network, as the site's grading account. Results go to the
    gradebook; a broken or hostile submission gets zero and a reason in its feedback.
    """
    logging.getLogger("ailys.grade").setLevel(logging.ERROR)
    catalogue = catalogue_or_exit(site)
    try:
        model = catalogue.course(course)
    except UnknownCourse as err:
        raise click.BadParameter(str(err), param_hint="COURSE") from None
    names = [a.name for a in model.assignments]
    if names and assignment not in names:
        raise click.BadParameter(
            f"{assignment!r} is not an assignment of {course} ({', '.join(names)})", param_hint="ASSIGNMENT"
        )
    root = course_dir or grading_course_dir(catalogue, course)  # the folder grading/courses.py prepares
    if not (root / "source" / assignment).is_dir():
        raise click.ClickException(
            f"{root / 'source' / assignment} does not exist: is {root} the nbgrader course folder?"
        )
    nbcourse = Course(root, course)
    settings = settings_for(catalogue, model)
    workers = workers or catalogue.site.grading.workers
    todo = nbcourse.students(assignment)
    try:
        summary = _grade(
            nbcourse, catalogue, assignment, backend, settings, workers, only_new, feedback, len(todo)
        )
    except SubmissionError as error:  # the course itself is not ready (assignment not generated...)
        raise click.ClickException(str(error)) from None
    except RuntimeError as error:  # the Slurm backend: sbatch refused, or the cluster went silent
        raise click.ClickException(f"{error}; the submissions not graded are recorded as failed") from None
    report(summary)
    from footprint.autograde import record_local_run  # local workers' energy records

    if error := record_local_run(catalogue, summary, course, assignment, settings):
        click.echo(f"energy records not stored: {error}", err=True)  # the grades are saved


def _grade(nbcourse, catalogue, assignment, backend, settings, workers, only_new, feedback, total) -> Summary:
    todo = range(total)
    if backend == "slurm":
        from .autograde.slurm import client_env, grade_slurm

        slurm_conf = catalogue.site.spawner.slurm.slurm_conf
        # the allow-list, not this shell's environment: its tokens stay here
        env = client_env((catalogue.site_file.parent / slurm_conf).resolve() if slurm_conf else None)
        summary = _with_progress(
            len(todo),
            lambda progress: grade_slurm(
                nbcourse,
                assignment,
                settings,
                catalogue.site.grading,
                only_new=only_new,
                progress=progress,
                env=env,
            ),
        )
    else:
        summary = _with_progress(
            len(todo),
            lambda progress: grade_local(
                nbcourse,
                assignment,
                settings,
                workers=workers,
                only_new=only_new,
                progress=progress,
                feedback=feedback,
            ),
        )
    return summary


def _with_progress(total: int, run) -> Summary:
    console = Console(stderr=True)
    counts = {"done": 0, "failed": 0}
    columns = [
        TextColumn("[bold]grading"),
        BarColumn(),
        TextColumn("{task.fields[line]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("grading", total=total, line=f"0 done, 0 failed, {total} remaining")

        def advance(outcome) -> None:
            counts["done"] += 1
            counts["failed"] += outcome.status == "failed"
            left = max(0, bar.tasks[0].total - counts["done"])
            bar.update(
                task, advance=1, line=f"{counts['done']} done, {counts['failed']} failed, {left} remaining"
            )

        summary = run(advance)
        bar.update(
            task,
            total=counts["done"] + len(summary.skipped) or 1,
            completed=counts["done"] + len(summary.skipped),
        )
    return summary


def report(summary: Summary) -> None:
    graded = [o for o in summary.outcomes if o.status == "graded"]
    click.echo(
        f"graded {len(graded)}, failed {len([o for o in summary.outcomes if o.status == 'failed'])}, "
        f"skipped (already graded) {len(summary.skipped)} in {summary.seconds:.1f} s"
    )
    for outcome in sorted(summary.failed, key=lambda o: o.student):  # failed, or graded with notes
        click.echo(
            f"  {outcome.student} ({outcome.status}) {outcome.score:g}/{outcome.max_score:g}: "
            f"{'; '.join(outcome.reasons)}"
        )
    sys.stdout.flush()
