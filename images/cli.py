"""`ailys image build|list|check`: course environments (docs/images.md)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub_config.catalogue import CatalogueError
from hub_config.site_option import catalogue_or_exit, site_option
from hub_config.units import format_size

from . import SPECS_DIR, environments
from .build import STEPS, BuildError, ensure, up_to_date
from .check import check
from .spec import load_spec
from .store import DEFAULT_ROOT, ImageStore

store_option = click.option(
    "--store",
    "store_root",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_ROOT,
    show_default=True,
    help="Image store: podman's storage and config, the SquashFS images and the index.",
)
specs_option = click.option(
    "--specs",
    "specs_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=SPECS_DIR,
    show_default=True,
    help="Folder of the environments' specs (images/<env>/).",
)


def _spec_or_exit(env: str, specs_dir: Path):
    try:
        return load_spec(env, specs_dir)
    except CatalogueError as err:
        click.echo(f"The spec of {env} is invalid ({len(err.problems)} problems):", err=True)
        for problem in err.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)


@click.group()
def image() -> None:
    """Course environments: build, list and check their images."""


@image.command()
@click.argument("env")
@store_option
@specs_option
def build(env: str, store_root: Path, specs_dir: Path) -> None:
    """Build ENV's images (OCI and SquashFS) unless its spec's tag is built already."""
    spec = _spec_or_exit(env, specs_dir)
    store = ImageStore(store_root)
    console = Console(stderr=True)
    if image := up_to_date(spec, store):
        ensure(env, store, specs_dir)  # made current if it was not
        click.echo(f"{env}: {image.tag} is built already (spec unchanged)")
        return
    titles = dict(STEPS)
    started = time.monotonic()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        tasks = {name: progress.add_task(f"[dim]{name}: {title}", start=False) for name, title in STEPS}

        def show(step: str, state: str) -> None:
            task = tasks[step]
            if state == "start":
                progress.start_task(task)
                progress.update(task, description=f"[bold]{step}: {titles[step]}")
            else:
                progress.update(task, description=f"[green]{step}: {titles[step]}", total=1, completed=1)
                progress.stop_task(task)

        try:
            image = ensure(env, store, specs_dir, progress=show)
        except BuildError as err:
            progress.update(tasks[err.step], description=f"[red]{err.step}: {titles[err.step]} (failed)")
            for task in progress.tasks:  # the steps that will not run
                if not task.started:
                    progress.update(task.id, visible=False)
            progress.stop()
            click.echo(f"error: {err}", err=True)
            current = store.current(env)
            click.echo(f"{env}: still in service: {current.tag if current else 'no image'}", err=True)
            sys.exit(1)
    times = ", ".join(f"{k} {v:.0f}s" for k, v in image.seconds.items() if v >= 0.5)
    click.echo(
        f"{env}: {image.tag} built in {time.monotonic() - started:.0f}s ({times}); OCI "
        f"{format_size(image.size_bytes, exact=False)}, SquashFS {format_size(image.squashfs_bytes, exact=False)} "
        f"({image.squashfs})"
    )


@image.command("list")
@store_option
@specs_option
@site_option
def list_(store_root: Path, specs_dir: Path, site: str) -> None:
    """Each environment, its current image, sizes, build date and the site's courses using it."""
    catalogue = catalogue_or_exit(site)
    store = ImageStore(store_root)
    table = Table("environment", "tag", "OCI", "SquashFS", "built", "courses")
    for env in environments(specs_dir):
        courses = ", ".join(c.slug for c in catalogue.courses if c.environment == env) or "-"
        current = store.current(env)
        if current is None:
            table.add_row(env, "not built", "-", "-", "-", courses)
            continue
        table.add_row(
            env,
            current.tag,
            format_size(current.size_bytes, exact=False),
            format_size(current.squashfs_bytes, exact=False),
            current.built.strftime("%Y-%m-%d %H:%M UTC"),
            courses,
        )
    Console(width=200).print(table)


@image.command("check")
@click.argument("env")
@store_option
@specs_option
def check_(env: str, store_root: Path, specs_dir: Path) -> None:
    """Run ENV's smoke test in its current image: imports, kernels, exchange client, ch-run."""
    spec = _spec_or_exit(env, specs_dir)
    store = ImageStore(store_root)
    current = store.current(env)
    if current is None:
        click.echo(f"error: {env} has no image yet (ailys image build {env})", err=True)
        sys.exit(1)
    if current.tag != spec.tag:
        click.echo(f"note: {env}'s spec has changed since {current.tag} (ailys image build {env})", err=True)
    results = check(spec, current, store)
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        click.echo(f"{mark} {result.name}: {result.detail}")
    failed = [r for r in results if not r.ok]
    click.echo(f"{env} ({current.tag}): {len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)
