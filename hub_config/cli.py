"""`ailys`: the admin command line of AILyS Hub."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
from traitlets.config import Config

from . import docs as reference_docs
from .appliers import apply_all
from .catalogue import Catalogue
from .launch import (
    hub_launch,
    hub_url,
    podman_answers,
    podman_launch,
    podman_socket,
    proxy_launch,
    start,
    wait_for_hub,
    wait_for_podman,
)
from .secrets import Secrets, ensure_demo_logins, load_secrets
from .site_option import catalogue_or_exit, site_option
from .sources import course_warnings
from .sync import hub_api_for, sync


@click.group()
def main() -> None:
    """AILyS Hub: the Jupyter platform of the AILyS AI cluster."""


@main.command()
@site_option
def validate(site: str) -> None:
    """Check the site file and every course folder; list all problems, then warnings."""
    catalogue = catalogue_or_exit(site)
    for course in catalogue.courses:  # test cells that a learner's value could answer itself
        for weak in course_warnings(catalogue.courses_dir / course.slug):
            click.echo(f"warning: {weak}", err=True)
    click.echo(
        f"ok: site {catalogue.site.name}, {len(catalogue.courses)} courses, {len(catalogue.people())} people"
    )


def rendered_config(catalogue: Catalogue) -> dict:
    """The configuration the hub would run, with every secret replaced by '***'."""
    masked = Secrets(
        catalogue.data_dir / "secrets",
        proxy_token="***",
        sync_token="***",
        cli_token="***",
        prometheus_token="***",
    )
    config = apply_all(Config(), catalogue, masked)
    return json.loads(json.dumps(config, default=lambda v: sorted(v) if isinstance(v, set) else str(v)))


@main.command()
@site_option
def render(site: str) -> None:
    """Print the hub configuration the site and its courses produce (secrets masked)."""
    click.echo(json.dumps(rendered_config(catalogue_or_exit(site)), indent=2, sort_keys=True))


@main.group(invoke_without_command=True)
@site_option
@click.pass_context
def courses(ctx: click.Context, site: str) -> None:
    """List the courses (`ailys courses sync` applies them to a running hub)."""
    ctx.obj = site
    if ctx.invoked_subcommand:
        return
    catalogue = catalogue_or_exit(site)
    for c in catalogue.courses:
        click.echo(
            f"{c.slug:<20} {c.kind:<14} {c.start} → {c.end}  {len(c.instructors)} staff, "
            f"{len(catalogue.learners(c))} learners  {c.title.en}"
        )


@courses.command("sync")
@click.pass_obj
def courses_sync(site: str) -> None:
    """Bring the running hub's groups and memberships up to date with the course folders."""
    catalogue = catalogue_or_exit(site)
    try:
        changes = sync(catalogue, hub_api_for(catalogue))
    except (httpx.HTTPError, RuntimeError) as err:
        raise click.ClickException(f"cannot reach the hub at {hub_url(catalogue)}: {err}") from None
    for line in changes.lines() or ["already up to date"]:
        click.echo(line)


@main.group()
def person() -> None:
    """What the platform holds on a person: export it, or forget them (GDPR access and erasure)."""


def _checked_person(name: str) -> str:
    from .personal_data.places import check_person

    try:
        return check_person(name)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="NAME") from None


@person.command("export")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Zip file to write.")
@site_option
def person_export(name: str, out: Path | None, site: str) -> None:
    """A zip of everything held on NAME (default: ./<NAME>-personal-data-<date>.zip), mode 0600."""
    import datetime as dt

    from .personal_data import export

    name = _checked_person(name)
    catalogue = catalogue_or_exit(site)
    out = out or Path(f"{name}-personal-data-{dt.datetime.now(dt.UTC):%Y-%m-%d}.zip")
    try:
        held = export(catalogue, name, out)
    except OSError as err:
        raise click.ClickException(f"cannot write {out}: {err.strerror}") from None
    for line in held.lines() or [f"nothing held on {name}"]:
        click.echo(f"exported: {line}")
    click.echo(f"wrote {out}")


@person.command("forget")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@site_option
def person_forget(name: str, yes: bool, site: str) -> None:
    """Remove what is held on NAME, keeping grades where a course's rules say so; print what was removed."""
    from .personal_data import forget
    from .personal_data.holdings import holdings
    from .personal_data.hub_records import running_hub

    name = _checked_person(name)
    catalogue = catalogue_or_exit(site)
    held = holdings(catalogue, name)
    if not held:
        click.echo(f"nothing held on {name}")
        return
    if not yes:
        click.echo(f"This removes, for good, what the platform holds on {name}:")
        for line in held.lines():
            click.echo(f"  {line}")
        click.confirm("Go on?", abort=True)
    # The hub stops their servers and drops them from memory; a stopped hub has its database changed.
    report = forget(catalogue, name, hub=running_hub(catalogue))
    for line in report.lines():
        click.echo(line)


@main.group()
def retention() -> None:
    """The site's retention policy for trainees' data (site file: retention)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Say what would be archived and deleted; change nothing.")
@site_option
def retention_run(dry_run: bool, site: str) -> None:
    """Archive the files of trainees whose access closed archive_after ago; delete old archives."""
    from .personal_data import run_retention

    run = run_retention(catalogue_or_exit(site), dry_run=dry_run)
    for line in run.lines() or ["nothing to archive or delete"]:
        click.echo(line)


def _check_traversable(path: Path) -> None:
    """As root, learners' processes must reach their homes and the environment."""
    for folder in [path, *path.parents]:
        if folder.exists() and not folder.stat().st_mode & 0o001:
            raise click.ClickException(
                f"{folder} cannot be traversed by other users, so learners' servers could not reach "
                f"{path}. Run `chmod o+x {folder}` or put the project where all users can traverse it."
            )


def _check_slurm(catalogue: Catalogue) -> None:
    """A Slurm site needs its cluster up, and accounts on it for the people of its courses."""
    slurm = catalogue.site.spawner.slurm
    env = dict(os.environ)
    if slurm.slurm_conf:
        env["SLURM_CONF"] = str((catalogue.site_file.parent / slurm.slurm_conf).resolve())
    try:
        done = subprocess.run(
            ["sinfo", "--noheader", "--format=%P %a %D"], env=env, capture_output=True, text=True, timeout=30
        )
        failure = done.stderr.strip() if done.returncode else ""
    except (OSError, subprocess.TimeoutExpired) as err:
        failure = str(err)
    if failure:
        where = env.get("SLURM_CONF", "/etc/slurm/slurm.conf")
        raise click.ClickException(
            f"the Slurm cluster of site {catalogue.site.name} ({where}) does not answer: {failure}. "
            "For the slurm site of this checkout, `make slurm-site` (or `make up SITE=slurm`) starts it."
        )
    without = sorted(name for name in catalogue.people() if not _has_account(name))
    if without:
        click.echo(
            f"warning: no Unix account on this host for {', '.join(without)}: their servers cannot start "
            "until the cluster's administrators create them (`make slurm-site` for the slurm site)",
            err=True,
        )


def _start_podman(catalogue: Catalogue) -> subprocess.Popen | None:
    """podman's service for a docker site (None if one already answers on its socket), with the
    image store's podman config; warns of course environments that have no image yet."""
    if os.geteuid() != 0:
        raise click.ClickException(
            "the docker site runs each learner's container as their own uid: run `ailys up` as root"
        )
    import importlib

    store = importlib.import_module("images.store")  # by name, as the `ailys image` commands are
    given = catalogue.site.spawner.docker.image_store
    root = (catalogue.site_file.parent / given).resolve() if given else store.DEFAULT_ROOT
    for env in sorted({c.environment for c in catalogue.courses}):
        if store.ImageStore(root).current(env) is None:
            click.echo(f"warning: environment {env} has no image yet: `ailys image build {env}`", err=True)
    socket = podman_socket(catalogue)
    if podman_answers(socket):
        return None
    socket.parent.mkdir(parents=True, exist_ok=True)
    socket.unlink(missing_ok=True)  # left by a service that was killed
    podman = start(podman_launch(catalogue, store.podman_env(root)))
    (catalogue.data_dir / "podman.pid").write_text(f"{podman.pid}\n")
    try:
        wait_for_podman(socket, timeout=60, alive=lambda: podman.poll() is None)
    except (RuntimeError, TimeoutError) as err:
        _stop_podman(catalogue, podman)
        raise click.ClickException(f"{err}; see {catalogue.data_dir / 'logs' / 'podman.log'}") from None
    return podman


def _stop_podman(catalogue: Catalogue, podman: subprocess.Popen | None) -> None:
    """Stop the service by its PID; the containers it started have been stopped by the hub."""
    if podman is not None and podman.poll() is None:
        podman.terminate()
        try:
            podman.wait(timeout=30)
        except subprocess.TimeoutExpired:
            podman.kill()
    (catalogue.data_dir / "podman.pid").unlink(missing_ok=True)


def _has_account(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def shutdown_hub(catalogue: Catalogue) -> None:
    """Ask the hub to stop every learner server and then itself."""
    token = load_secrets(catalogue.data_dir).cli_token
    httpx.post(
        hub_url(catalogue) + "hub/api/shutdown",
        json={"servers": True, "proxy": False},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    ).raise_for_status()


@main.command()
@site_option
def up(site: str) -> None:
    """Start the proxy and the hub of a site in the foreground; Ctrl-C stops them."""
    catalogue = catalogue_or_exit(site)
    data = catalogue.data_dir
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        for folder in (data, data.parent):
            folder.chmod(folder.stat().st_mode | 0o011)
        _check_traversable(data)
        _check_traversable(Path(sys.executable).parent)
    if _hub_answers(catalogue):
        raise click.ClickException(f"a hub already answers at {hub_url(catalogue)}; `ailys down` stops it")
    if catalogue.site.spawner.kind == "slurm":
        _check_slurm(catalogue)
    secrets = load_secrets(data)
    podman = _start_podman(catalogue) if catalogue.site.spawner.kind == "docker" else None
    logins = (
        ensure_demo_logins(secrets, catalogue.people()) if catalogue.site.authentication.demo_accounts else {}
    )
    # Ctrl-C and SIGTERM both stop the site (the hub, in a session of its own, gets neither), set
    # before anything starts. Started from a script (`ailys up &`), SIGINT arrives ignored; the hub
    # and its services would inherit that, and the hub stops its services with SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))
    proxy = start(proxy_launch(catalogue, secrets))
    (data / "proxy.pid").write_text(f"{proxy.pid}\n")
    hub = start(hub_launch(catalogue))
    try:
        try:
            wait_for_hub(
                catalogue, secrets, timeout=120, alive=lambda: hub.poll() is None and proxy.poll() is None
            )
        except (RuntimeError, TimeoutError) as err:
            hub.terminate()
            raise click.ClickException(f"{err}; see {data / 'logs'}") from None
        _say_up(catalogue, secrets, logins)
        hub.wait()
    except KeyboardInterrupt:
        click.echo("Stopping learner servers, the hub and the proxy...")
        try:
            shutdown_hub(catalogue)
            hub.wait(timeout=120)
        except (httpx.HTTPError, subprocess.TimeoutExpired):
            hub.terminate()
            try:
                hub.wait(timeout=60)
            except subprocess.TimeoutExpired:
                hub.kill()
    finally:
        proxy.terminate()
        proxy.wait()
        (data / "proxy.pid").unlink(missing_ok=True)
        _stop_podman(catalogue, podman)  # last: the hub stopped the containers through it


def _say_up(catalogue: Catalogue, secrets: Secrets, logins: dict[str, str]) -> None:
    click.echo(f"AILyS Hub ({catalogue.site.name}) is up: {hub_url(catalogue)}")
    click.echo(f"Logs: {catalogue.data_dir / 'logs'}. Stop with Ctrl-C.")
    if logins:
        click.echo(f"Demo logins (also in {secrets.demo_logins_file}):")
        for course in catalogue.courses:
            roles = [("instructor", n) for n in course.instructors] + [
                ("learner", n) for n in catalogue.learners(course)
            ]
            for role, name in roles:
                click.echo(f"  {name:<14} {logins[name]:<14} {role} of {course.slug}")
        for name in catalogue.site.authentication.admin_users:
            click.echo(f"  {name:<14} {logins[name]:<14} site admin")


def _hub_answers(catalogue: Catalogue) -> bool:
    try:
        return httpx.get(hub_url(catalogue) + "hub/api/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@main.command()
@site_option
def down(site: str) -> None:
    """Stop the learner servers, the hub and the proxy of a site started by `ailys up`."""
    catalogue = catalogue_or_exit(site)
    if _hub_answers(catalogue):
        shutdown_hub(catalogue)
        click.echo("hub and learner servers stopping")
    pid_file = catalogue.data_dir / "proxy.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            click.echo("proxy stopped")
        except ProcessLookupError:
            pass
        pid_file.unlink()
    podman_pid = catalogue.data_dir / "podman.pid"
    if podman_pid.exists():  # once the hub has stopped the containers through it
        deadline = time.monotonic() + 120
        while _hub_answers(catalogue) and time.monotonic() < deadline:
            time.sleep(0.5)
        try:
            os.kill(int(podman_pid.read_text()), signal.SIGTERM)
            click.echo("podman service stopped")
        except ProcessLookupError:
            pass
        podman_pid.unlink(missing_ok=True)


@main.group()
@site_option
@click.pass_context
def cohort(ctx: click.Context, site: str) -> None:
    """Trainees of a short course: import a CSV, invitation links and e-mails (docs/cohorts.md)."""
    ctx.obj = site


def _cohort_call(action):
    """Run a hub_config.cohorts action; its errors (bad CSV rows, SMTP) as a clean exit."""
    from .cohorts import CohortError, CsvError

    try:
        return action()
    except (CohortError, CsvError) as err:
        raise click.ClickException(str(err)) from None


def _say_invitations(made, refused: dict[str, str], catalogue: Catalogue, how: str) -> None:
    from zoneinfo import ZoneInfo

    from .cohorts.invitations import link

    for invitation in made:
        t = invitation.trainee
        if how == "link":
            click.echo(
                f"{t['username']:<16} {t['first_name']} {t['last_name']}  {link(catalogue, invitation.token)}"
            )
        elif t["email"] in refused:
            click.echo(f"not sent to {t['username']} <{t['email']}>: {refused[t['email']]}", err=True)
        else:
            click.echo(f"invitation sent to {t['username']} <{t['email']}>")
    if made:
        until = made[0].expires.astimezone(ZoneInfo(catalogue.site.timezone))
        click.echo(f"valid until {until:%Y-%m-%d %H:%M %Z}, once each; earlier links no longer work")
    else:
        click.echo("every trainee has set a password: no invitation to make")


@cohort.command("import")
@click.argument("course")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--send", is_flag=True, help="E-mail an invitation to each trainee added.")
@click.pass_obj
def cohort_import(site: str, course: str, csv_file: Path, send: bool) -> None:
    """Add the trainees of CSV_FILE (email, first name, last name, company) to COURSE's cohort."""
    from . import cohorts

    catalogue = catalogue_or_exit(site)
    imported = _cohort_call(lambda: cohorts.import_file(catalogue, course, csv_file))
    for t in imported.added:
        click.echo(
            f"added {t['username']:<16} {t['first_name']} {t['last_name']} <{t['email']}> {t['company']}"
        )
    click.echo(f"{len(imported.added)} added, {len(imported.kept)} already in the cohort of {course}")
    if send and imported.added:
        names = {t["username"] for t in imported.added}
        made, refused = _cohort_call(lambda: cohorts.invite(catalogue, course, names))
        _say_invitations(made, refused, catalogue, "mail")


@cohort.command("invitations")
@click.argument("course")
@click.argument("usernames", nargs=-1)
@click.pass_obj
def cohort_invitations(site: str, course: str, usernames: tuple[str, ...]) -> None:
    """Print a fresh link for each trainee of COURSE without a password (or only USERNAMES), to
    hand out in class; their earlier links stop working."""
    from . import cohorts

    catalogue = catalogue_or_exit(site)
    made = _cohort_call(lambda: cohorts.links(catalogue, course, set(usernames) or None))
    _say_invitations(made, {}, catalogue, "link")


@cohort.command("invite")
@click.argument("course")
@click.argument("usernames", nargs=-1)
@click.pass_obj
def cohort_invite(site: str, course: str, usernames: tuple[str, ...]) -> None:
    """E-mail a fresh link to each trainee of COURSE without a password (or only USERNAMES),
    through the site's smtp settings, in French and English."""
    from . import cohorts

    catalogue = catalogue_or_exit(site)
    made, refused = _cohort_call(lambda: cohorts.invite(catalogue, course, set(usernames) or None))
    _say_invitations(made, refused, catalogue, "mail")
    if refused:
        sys.exit(1)


@main.command()
def docs() -> None:
    """Write docs/reference.md from the schema."""
    path = reference_docs.write()
    click.echo(f"wrote {path}")


class _LazyCommand(click.Command):
    """A command of another package, named by an import string, imported only when run."""

    def __init__(self, name: str, target: str, short_help: str):
        super().__init__(name, short_help=short_help)
        self.target = target

    def make_context(self, info_name, args, parent=None, **extra):
        module, _, attr = self.target.partition(":")
        real = getattr(__import__(module, fromlist=[attr]), attr)
        return real.make_context(info_name, args, parent=parent, **extra)


main.add_command(
    _LazyCommand("grade", "grading.cli:grade", "Autograde an assignment's submissions, sandboxed.")
)
main.add_command(
    _LazyCommand("grades", "grading.export:grades", "Export a course's grades (Moodle CSV and JSON).")
)
main.add_command(
    _LazyCommand(
        "accommodation", "grading.accommodation_cli:accommodation", "Learners' extra time and extensions."
    )
)
main.add_command(
    _LazyCommand("energy", "footprint.cli:energy", "Energy and CO2 of sessions and grading runs (report).")
)
main.add_command(
    _LazyCommand(
        "usage", "footprint.usage:usage_command", "Sessions, learner-hours, active learners per week."
    )
)
main.add_command(
    _LazyCommand("image", "images.cli:image", "Course environments: build, list and check their images.")
)
main.add_command(
    _LazyCommand("serve", "hub_config.serve:serve", "Run the hub, proxy or podman service in the foreground.")
)
main.add_command(
    _LazyCommand("doctor", "hub_config.doctor:doctor", "Check a deployed node; one sentence per problem.")
)
main.add_command(
    _LazyCommand("backup", "hub_config.backup:backup_command", "One archive of what the site cannot rebuild.")
)
main.add_command(
    _LazyCommand("restore", "hub_config.backup:restore_command", "Restore an archive of `ailys backup`.")
)


if __name__ == "__main__":
    main()
