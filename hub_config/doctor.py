"""`ailys doctor`: on a deployed node, what a deploy needs, checked, and one sentence per problem.

Each check is a small function returning a Finding; the command prints them all (ok or not) and
exits 1 if any failed. Run it as root or as the hub account on the service node (docs/deploy.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import pwd
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import click
import httpx

from .catalogue import Catalogue
from .secrets import load_secrets
from .site_option import catalogue_or_exit, site_option

CERT_WARN_DAYS = 14
DISK_MIN_FREE = 5 * 1024**3  # bytes: below this, or below 10 %, the data folder is nearly full


@dataclasses.dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    sentence: str


def hub_through_nginx(url: str, cafile: str | None) -> Finding:
    try:
        answer = httpx.get(url.rstrip("/") + "/hub/api/", verify=cafile or True, timeout=10)
    except httpx.HTTPError as err:
        return Finding("nginx", False, f"The hub does not answer at {url} through nginx: {err}.")
    if answer.status_code != 200:
        return Finding("nginx", False, f"The hub answers HTTP {answer.status_code} at {url} through nginx.")
    return Finding("nginx", True, f"The hub answers at {url} through nginx.")


def certificate(url: str, cafile: str | None, now: dt.datetime | None = None) -> Finding:
    from cryptography import x509

    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or 443
    now = now or dt.datetime.now(dt.UTC)
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            unchecked = ssl.create_default_context()
            unchecked.check_hostname, unchecked.verify_mode = False, ssl.CERT_NONE
            with unchecked.wrap_socket(raw, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
    except OSError as err:
        return Finding("certificate", False, f"No TLS certificate could be read from {host}:{port}: {err}.")
    cert = x509.load_der_x509_certificate(der)
    ends = cert.not_valid_after_utc
    days = (ends - now).days
    if ends <= now:
        return Finding(
            "certificate",
            False,
            f"The certificate of {host} expired on {ends:%Y-%m-%d} ({-days} days ago): renew it.",
        )
    try:
        context = ssl.create_default_context(cafile=cafile)
        with socket.create_connection((host, port), timeout=10) as raw:
            context.wrap_socket(raw, server_hostname=host).close()
    except ssl.SSLError as err:
        return Finding("certificate", False, f"The certificate of {host} is not trusted: {err.reason}.")
    if days < CERT_WARN_DAYS:
        return Finding("certificate", False, f"The certificate of {host} expires in {days} days: renew it.")
    return Finding("certificate", True, f"The certificate of {host} is valid for {days} more days.")


def slurm_as_hub(catalogue: Catalogue, hub_user: str, probe: str) -> Finding:
    """A Slurm command run as ``probe`` by the hub account, through the site's exec_prefix."""
    prefix = catalogue.site.spawner.slurm.exec_prefix or "sudo -n -u {username} --"
    argv = [*prefix.format(username=probe).split(), "squeue", "--version"]
    if os.geteuid() == 0 and hub_user != "root":
        argv = ["setpriv", f"--reuid={hub_user}", f"--regid={hub_user}", "--init-groups", "--", *argv]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Finding("slurm", False, f"Slurm's commands cannot be run as {probe} by {hub_user}: {err}.")
    if done.returncode:
        said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return Finding(
            "slurm",
            False,
            f"The hub account {hub_user} may not run Slurm commands as {probe} "
            f"(the sudo rule, /etc/sudoers.d/: {said[0]}).",
        )
    return Finding("slurm", True, f"Slurm commands answer as {probe} for the hub account {hub_user}.")


def database(catalogue: Catalogue) -> Finding:
    import sqlalchemy

    from .appliers.storage import database_url

    url = database_url(catalogue)
    shown = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as err:  # any driver's error: the sentence names it
        return Finding("database", False, f"The hub database {shown} cannot be reached: {err}.")
    return Finding("database", True, f"The hub database {shown} answers.")


def disk(data_dir: Path) -> Finding:
    usage = shutil.disk_usage(data_dir)
    free_gib = usage.free / 1024**3
    if usage.free < DISK_MIN_FREE or usage.free < usage.total / 10:
        return Finding(
            "disk",
            False,
            f"The disk of {data_dir} is nearly full: {free_gib:.1f} GiB free of {usage.total / 1024**3:.0f}.",
        )
    return Finding("disk", True, f"The disk of {data_dir} has {free_gib:.1f} GiB free.")


def images(catalogue: Catalogue) -> Finding | None:
    """Each course environment's image, where learners' servers run in one (docker, charliecloud)."""
    spawner = catalogue.site.spawner
    if spawner.kind == "docker":
        given = spawner.docker.image_store
    elif spawner.kind == "slurm" and spawner.slurm.container == "charliecloud":
        given = spawner.slurm.image_store
    else:
        return None
    import importlib

    store = importlib.import_module("images.store")
    root = (catalogue.site_file.parent / given).resolve() if given else store.DEFAULT_ROOT
    missing = sorted(
        env
        for env in {c.environment for c in catalogue.courses}
        if store.ImageStore(root).current(env) is None
    )
    if missing:
        return Finding(
            "images",
            False,
            f"No image for {', '.join(missing)} in {root}: run `ailys image build ENV` for each.",
        )
    return Finding("images", True, f"Every course environment has its image in {root}.")


def proxy_and_services(catalogue: Catalogue) -> Finding:
    from .launch import service_prefixes

    secrets = load_secrets(catalogue.data_dir)
    api = f"http://127.0.0.1:{catalogue.site.listen.proxy_api_port}/api/routes"
    try:
        routes = httpx.get(api, headers={"Authorization": f"token {secrets.proxy_token}"}, timeout=10)
        routes.raise_for_status()
    except httpx.HTTPError as err:
        return Finding("services", False, f"The proxy's API does not answer at {api}: {err}.")
    present = {r.rstrip("/") + "/" for r in routes.json()}
    missing = sorted(service_prefixes(catalogue, secrets) - present)
    if missing:
        return Finding(
            "services", False, f"The proxy runs, but these services are not up: {', '.join(missing)}."
        )
    return Finding("services", True, "The proxy runs and every hub service has its route.")


def findings(catalogue: Catalogue, url: str, cafile: str | None, hub_user: str, probe: str | None):
    yield hub_through_nginx(url, cafile)
    if url.startswith("https:"):
        yield certificate(url, cafile)
    if probe or catalogue.site.spawner.kind == "slurm":
        yield slurm_as_hub(catalogue, hub_user, probe or _a_learner(catalogue))
    yield database(catalogue)
    yield disk(catalogue.data_dir)
    if (found := images(catalogue)) is not None:
        yield found
    yield proxy_and_services(catalogue)


def _a_learner(catalogue: Catalogue) -> str:
    for name in catalogue.people():
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return "nobody"


@click.command()
@site_option
@click.option("--url", required=True, help="The hub's public URL, as browsers reach it through nginx.")
@click.option(
    "--cacert", type=click.Path(exists=True, dir_okay=False), help="CA bundle the certificate must chain to."
)
@click.option("--hub-user", default=None, help="The hub account (default: the data folder's owner).")
@click.option(
    "--probe-user", default=None, help="A learner to try the sudo rule as (default on Slurm: a course's)."
)
def doctor(site: str, url: str, cacert: str | None, hub_user: str | None, probe_user: str | None) -> None:
    """Check a deployed node: nginx, certificate, Slurm through sudo, database, disk, images, services."""
    catalogue = catalogue_or_exit(site)
    hub_user = hub_user or pwd.getpwuid(catalogue.data_dir.stat().st_uid).pw_name
    problems = 0
    for finding in findings(catalogue, url, cacert, hub_user, probe_user):
        problems += not finding.ok
        click.echo(f"{'ok  ' if finding.ok else 'FAIL'} {finding.check:<12} {finding.sentence}")
    if problems:
        raise SystemExit(1)
