"""`ailys`: the admin command line of AILyS Hub."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

import click
import httpx
from traitlets.config import Config

from . import docs as reference_docs
from .appliers import apply_all
from .catalogue import Catalogue
from .launch import hub_launch, hub_url, proxy_launch, start, wait_for_hub
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
    masked = Secrets(catalogue.data_dir / "secrets", proxy_token="***", sync_token="***", cli_token="***")
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


if __name__ == "__main__":
    main()
