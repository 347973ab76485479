"""`ailys backup` and `ailys restore`: one archive of what a site cannot rebuild from git.

The parts, found where the personal-data module finds them (personal_data/places.py, one list):

    hub                the hub database: users, password hashes, groups, tokens, language choices,
                       energy and session records (footprint/records.py)
    gradebook-<slug>   each course's nbgrader gradebook
    exchange           releases, submissions, feedback and the autograde queue (its markers)
    grading            nbgrader's course folders: sources edited in formgrader, submitted,
                       autograded, feedback, accommodations.json (their gradebook.db is the part above)
    cohorts rosters logins archives teams     as places.py and teams.py name them
    homes              only with --homes (a Slurm site's homes are the cluster's)

Not in it, on purpose: secrets/ (made again at start; sessions end), logs/, pid files and the
drop-in folder jupyterhub_config.d (the deploy's). Databases are copied by their own online
backup, consistent while the hub writes: SQLite's backup API, PostgreSQL's pg_dump (custom
format), its password handed over in a temporary PGPASSFILE, never on a command line or in an
environment. Folders go in as inner tar files (links kept as links, owners and modes kept).

The archive, <site>-<UTC time>.tar.zst (mode 0600, the hub account's): manifest.json first (each
part's file, size, sha256; project version; site), then one file per part. `ailys restore`
(hub_config/restore.py) checks every sha256 before it writes anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from importlib.metadata import version
from pathlib import Path, PurePosixPath

import click

from .catalogue import Catalogue
from .site_option import catalogue_or_exit, site_option

FORMAT = 1
MANIFEST = "manifest.json"
CHUNK = 1 << 20
# Files of the grading part that are not data: the gradebook is its own part, nbgrader_config.json
# is written at every start (grading/courses.py).
SQLITE_SIDECARS = ("", "-journal", "-wal", "-shm")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message names the file and the reason."""


@dataclasses.dataclass(frozen=True)
class Part:
    name: str  # hub, gradebook-<slug>, exchange, ...
    kind: str  # sqlite, postgresql or folder
    where: str  # a database URL or a folder

    @property
    def member(self) -> str:
        """Its file in the archive."""
        suffix = {"sqlite": ".sqlite", "postgresql": ".pgdump", "folder": ".tar"}[self.kind]
        return f"parts/{self.name}{suffix}"

    @property
    def shown(self) -> str:
        return _masked(self.where) if self.kind == "postgresql" else self.where


def _database(name: str, url: str) -> Part:
    if url.startswith("sqlite:///"):
        return Part(name, "sqlite", url.removeprefix("sqlite:///"))
    if url.startswith("postgresql"):
        return Part(name, "postgresql", url)
    raise BackupError(f"{name}: database {_masked(url)} is neither SQLite nor PostgreSQL")


def gradebook_urls(catalogue: Catalogue) -> dict[str, str]:
    """Each gradebook's URL, by course: the courses of the site, then gradebooks of departed
    courses left in the grading folder (personal_data/gradebooks.py finds them the same way)."""
    from grading.courses import gradebook_url

    from .personal_data.places import places

    urls = {c.slug: gradebook_url(catalogue, c) for c in catalogue.courses}
    for db in sorted(places(catalogue).grading_root.glob("*/gradebook.db")):
        urls.setdefault(db.parent.name, f"sqlite:///{db}")
    return urls


def site_parts(catalogue: Catalogue, homes: bool) -> list[Part]:
    """Where each part lives on this site."""
    from .personal_data.places import places
    from .team_folders import HOST_KINDS, home_root
    from .teams import teams_dir

    where = places(catalogue)
    folders = {
        "exchange": where.exchange_root,
        "grading": where.grading_root,
        "cohorts": where.cohorts,
        "rosters": where.rosters,
        "logins": where.logins,
        "archives": where.archives,
        "teams": teams_dir(catalogue),
    }
    if homes and catalogue.site.spawner.kind in HOST_KINDS:
        folders["homes"] = home_root(catalogue)
    # Folders first: restore puts a new grading folder in place before the gradebooks go into it.
    parts = [Part(name, "folder", str(path)) for name, path in folders.items()]
    parts.append(_database("hub", where.database_url))
    parts += [_database(f"gradebook-{slug}", url) for slug, url in gradebook_urls(catalogue).items()]
    return parts


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


# --- PostgreSQL: pg_dump and pg_restore, the password in a file of ours ------------------------


@contextlib.contextmanager
def _libpq(url: str):
    """(libpq URL without password, environment) for pg_dump/pg_restore. A password in the URL
    goes into a temporary pgpass file (0600) that only PGPASSFILE names; without one, libpq reads
    the hub account's ~/.pgpass (or the PGPASSFILE the site set), as the hub does."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    u = make_url(url)
    host, port, db, user = u.host or "localhost", str(u.port or 5432), u.database or "", u.username or ""
    dsn = f"postgresql://{quote(user, safe='')}@{host}:{port}/{quote(db, safe='')}"
    if u.query:  # sslmode and the like, as the hub's URL gives them
        dsn += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in u.query.items())
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if u.password is None:
        yield dsn, env
        return

    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace(":", "\\:")

    fd, path = tempfile.mkstemp(prefix="ailys-pgpass-")  # 0600 by mkstemp
    try:
        with os.fdopen(fd, "w") as f:
            f.write(":".join(map(esc, (host, port, db, user, str(u.password)))) + "\n")
        yield dsn, {**env, "PGPASSFILE": path}
    finally:
        os.unlink(path)


def _run_pg(argv: list[str], env: dict, what: str) -> None:
    if not shutil.which(argv[0]):
        raise BackupError(f"{what}: {argv[0]} is not installed (Debian's postgresql-client)")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise BackupError(f"{what}: {argv[0]} failed: {done.stderr.strip()[-800:]}")


def pg_dump(url: str, dest: Path, what: str) -> None:
    with _libpq(url) as (dsn, env):
        _run_pg(["pg_dump", "--format=custom", "--no-owner", f"--file={dest}", f"--dbname={dsn}"], env, what)


def pg_restore(url: str, dump: Path, what: str) -> None:
    with _libpq(url) as (dsn, env):
        argv = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges"]
        _run_pg([*argv, "--single-transaction", f"--dbname={dsn}", str(dump)], env, what)


def pg_tables(url: str) -> int:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        return len(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --- backup --------------------------------------------------------------------------------


def _sqlite_copy(source: Path, dest: Path) -> None:
    """SQLite's online backup: one consistent snapshot, whatever the hub writes meanwhile."""
    src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True, timeout=60)
    out = sqlite3.connect(dest)
    try:
        src.backup(out)
    finally:
        src.close()
        out.close()


def _skip_in_grading(arcname: str) -> bool:
    name = PurePosixPath(arcname).name
    return any(name == f"gradebook.db{s}" for s in SQLITE_SIDECARS) or name == "nbgrader_config.json"


def _folder_tar(part: Part, dest: Path) -> None:
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = PurePosixPath(info.name).parts
        if ".tmp" in parts:  # the exchange's writes in progress (storage.py)
            return None
        if part.name == "grading" and _skip_in_grading(info.name):
            return None
        return info

    root = Path(part.where)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for top, dirs, files in os.walk(root):
            here = Path(top)
            dirs.sort()
            for name in [None, *sorted(files), *(d for d in dirs if (here / d).is_symlink())]:
                path = here / name if name else here
                arcname = "./" + str(path.relative_to(root)) if path != root else "."
                try:
                    info = keep(tar.gettarinfo(path, arcname))
                    if info is None:
                        continue
                    if info.isreg():
                        with path.open("rb") as f:
                            tar.addfile(info, f)
                    else:
                        tar.addfile(info)
                except FileNotFoundError:  # removed since it was listed (a learner's file, a
                    continue  # finished autograde marker): what is there now is what counts
            dirs[:] = [d for d in dirs if not (here / d).is_symlink() and _walks_into(here / d, root, keep)]


def _walks_into(path: Path, root: Path, keep) -> bool:
    """Whether the walk goes into ``path`` (the filter refuses .tmp/ before its contents)."""
    return keep(tarfile.TarInfo("./" + str(path.relative_to(root)))) is not None


def _present(part: Part) -> bool:
    if part.kind == "postgresql":
        return True
    return Path(part.where).exists()


def hub_account(folder: Path) -> pwd.struct_passwd:
    """The account that owns the site's data folder: the hub's."""
    return pwd.getpwuid(folder.stat().st_uid)


@dataclasses.dataclass
class Made:
    path: Path
    manifest: dict
    seconds: float


def backup(catalogue: Catalogue, out_dir: Path, homes: bool = False, now: dt.datetime | None = None) -> Made:
    import zstandard

    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    if not catalogue.data_dir.is_dir():
        raise BackupError(f"{catalogue.data_dir}: the site's data folder does not exist: nothing to back up")
    owner = hub_account(catalogue.data_dir)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = out_dir / f"{catalogue.site.name}-{now:%Y%m%dT%H%M%SZ}.tar.zst"
    entries = []
    with tempfile.TemporaryDirectory(prefix=".ailys-backup-", dir=out_dir) as staging:
        for part in filter(_present, site_parts(catalogue, homes)):
            file = Path(staging) / part.member
            file.parent.mkdir(exist_ok=True)
            what = f"part {part.name} ({part.shown})"
            try:
                if part.kind == "sqlite":
                    _sqlite_copy(Path(part.where), file)
                elif part.kind == "postgresql":
                    pg_dump(part.where, file, what)
                else:
                    _folder_tar(part, file)
            except (OSError, sqlite3.Error) as err:
                raise BackupError(f"{what}: {err}") from None
            entries.append(
                {
                    "name": part.name,
                    "kind": part.kind,
                    "file": part.member,
                    "size": file.stat().st_size,
                    "sha256": digest(file),
                    "source": part.shown,
                }
            )
        manifest = {
            "format": FORMAT,
            "site": catalogue.site.name,
            "version": version("ailys-hub"),
            "made": now.isoformat(timespec="seconds"),
            "hub_account": {"uid": owner.pw_uid, "name": owner.pw_name},
            "parts": entries,
        }
        tmp = path.with_name(f".{path.name}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                compressor = zstandard.ZstdCompressor(level=6, write_checksum=True, threads=-1)
                with compressor.stream_writer(f) as z, tarfile.open(fileobj=z, mode="w|") as tar:
                    body = json.dumps(manifest, indent=1).encode()
                    info = tarfile.TarInfo(MANIFEST)
                    info.size, info.mode, info.mtime = len(body), 0o600, int(now.timestamp())
                    tar.addfile(info, io.BytesIO(body))
                    for entry in entries:
                        tar.add(Path(staging) / entry["file"], arcname=entry["file"])
            if os.geteuid() == 0:
                os.chown(tmp, owner.pw_uid, owner.pw_gid)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return Made(path, manifest, time.monotonic() - started)


# --- the commands (registered in cli.py) ------------------------------------------------------


def _size(n: int) -> str:
    from .units import format_size

    return format_size(n, exact=False)


@click.command("backup")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the archive (made 0700 if missing).",
)
@click.option("--homes", is_flag=True, help="Learners' and teams' homes too (local and docker sites).")
@site_option
def backup_command(out_dir: Path, homes: bool, site: str) -> None:
    """Write one archive of what the site cannot rebuild: hub database, gradebooks, exchange,
    grading folders, cohorts, rosters, log-in records, energy records; homes with --homes."""
    catalogue = catalogue_or_exit(site)
    if homes and catalogue.site.spawner.kind not in ("local", "docker"):
        click.echo(f"homes: not here, the {catalogue.site.spawner.kind} cluster keeps them", err=True)
    try:
        made = backup(catalogue, out_dir, homes)
    except BackupError as err:
        raise click.ClickException(str(err)) from None
    for part in made.manifest["parts"]:
        click.echo(f"  {part['name']:<22} {_size(part['size']):>8}  {part['source']}")
    size = made.path.stat().st_size
    click.echo(
        f"wrote {made.path} ({_size(size)}, {len(made.manifest['parts'])} parts, {made.seconds:.1f} s)"
    )


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore over data already there (moved aside, not deleted).")
@site_option
def restore_command(archive: Path, force: bool, site: str) -> None:
    """Restore ARCHIVE (made by `ailys backup`) into the site's places, the hub stopped; every
    part's sha256 is checked before anything is written."""
    from .restore import restore

    catalogue = catalogue_or_exit(site)
    try:
        done = restore(catalogue, archive, force)
    except BackupError as err:
        raise click.ClickException(str(err)) from None
    for entry, part in done.parts:
        click.echo(f"restored {entry['name']:<22} {_size(entry['size']):>8}  -> {part.shown}")
    for aside in done.moved_aside:
        click.echo(f"moved aside {aside}")
    click.echo(f"restored {len(done.parts)} parts of {archive} into site {catalogue.site.name}")
