"""`ailys restore`: an archive of `ailys backup` back into a site's places (hub_config/backup.py
says what each part is).

The hub must be stopped: its pid file names no live jupyterhub and it does not answer. The
archive is read twice: first every part's size and sha256 against the manifest, writing
nothing (a damaged archive changes nothing), then each part is written beside its place and
moved in with one rename. What a site already holds is refused, or with --force moved aside
(<place>.before-restore-<UTC time>; a PostgreSQL database dumped beside the data folder first),
never deleted. Owners: as the archive names them (by name, else number), the source's hub
account becoming this site's; the exchange and grading folders end 0700, the hub account's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import pwd
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from .backup import (
    CHUNK,
    FORMAT,
    MANIFEST,
    SQLITE_SIDECARS,
    BackupError,
    Part,
    digest,
    hub_account,
    pg_dump,
    pg_restore,
    pg_tables,
    site_parts,
)
from .catalogue import Catalogue


def _members(archive: Path):
    """(TarInfo, file object) of each member, streamed; a damaged stream is a BackupError."""
    import zstandard

    try:
        with archive.open("rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as z:
            with tarfile.open(fileobj=z, mode="r|") as tar:
                for info in tar:
                    yield info, tar.extractfile(info) if info.isfile() else None
    except (zstandard.ZstdError, tarfile.TarError, EOFError) as err:
        raise BackupError(f"{archive}: damaged archive: {err}") from None


def verify(archive: Path) -> dict:
    """The manifest of ``archive`` once every part matches its size and sha256; writes nothing."""
    manifest, seen = None, set()
    for info, f in _members(archive):
        if manifest is None:
            if info.name != MANIFEST or f is None:
                raise BackupError(f"{archive}: not an AILyS backup: its first file is not {MANIFEST}")
            try:
                manifest = json.loads(f.read())
                listed = {p["file"]: p for p in manifest["parts"]}
            except (ValueError, KeyError, TypeError) as err:
                raise BackupError(f"{archive}: {MANIFEST} is damaged: {err}") from None
            continue
        entry = listed.get(info.name)
        if entry is None or f is None:
            raise BackupError(f"{archive}: {info.name} is not a part its manifest lists")
        h, size = hashlib.sha256(), 0
        while block := f.read(CHUNK):
            h.update(block)
            size += len(block)
        if size != entry["size"] or h.hexdigest() != entry["sha256"]:
            raise BackupError(
                f"{archive}: {info.name} does not match its manifest (sha256 {h.hexdigest()[:12]}…, "
                f"expected {entry['sha256'][:12]}…; {size} bytes, expected {entry['size']}): "
                "the archive is damaged, nothing was restored"
            )
        seen.add(info.name)
    if manifest is None:
        raise BackupError(f"{archive}: empty archive")
    if missing := set(listed) - seen:
        raise BackupError(f"{archive}: parts listed but missing: {', '.join(sorted(missing))}")
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: backup format {manifest.get('format')!r}, this version reads {FORMAT}")
    return manifest


def _target(catalogue: Catalogue, entry: dict) -> Part:
    """Where a part of the archive goes on this site."""
    name = entry["name"]
    known = {p.name: p for p in site_parts(catalogue, homes=True)}
    if name in known:
        part = known[name]
    elif name.startswith("gradebook-"):  # a course this site does not have: its departed gradebook
        from .personal_data.places import places

        db = places(catalogue).grading_root / name.removeprefix("gradebook-") / "gradebook.db"
        part = Part(name, "sqlite", str(db))
    else:
        raise BackupError(
            f"part {name}: this site has no place for it ({catalogue.site.spawner.kind} spawner)"
        )
    if {part.kind, entry["kind"]} == {"sqlite", "postgresql"}:
        raise BackupError(
            f"part {name}: the archive holds a {entry['kind']} database and this site keeps it in "
            f"{part.kind} ({part.shown}); restore onto a site of the same kind, then migrate"
        )
    return part


def _occupied(part: Part) -> bool:
    if part.kind == "postgresql":
        return pg_tables(part.where) > 0
    path = Path(part.where)
    if part.kind == "sqlite":
        return path.is_file() and path.stat().st_size > 0
    return path.is_dir() and any(path.iterdir())


def _safe(info: tarfile.TarInfo, links: set[str]) -> None:
    """Refuse what could write outside the part's folder or make device files."""
    p = PurePosixPath(info.name)
    if p.is_absolute() or ".." in p.parts:
        raise BackupError(f"{info.name}: a path outside its folder")
    if any(str(parent) in links for parent in p.parents):
        raise BackupError(f"{info.name}: under a symbolic link of the archive")
    if info.islnk() and (
        PurePosixPath(info.linkname).is_absolute() or ".." in PurePosixPath(info.linkname).parts
    ):
        raise BackupError(f"{info.name}: a hard link outside its folder")
    if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
        raise BackupError(f"{info.name}: a device or fifo")
    if info.issym():
        links.add(str(p))


def _extract_folder(tar_file: Path, dest: Path, source_uid: int, owner: pwd.struct_passwd) -> None:
    """The inner tar into ``dest``, owners as in the archive (by name, else number), the source's
    hub account becoming this site's; not root: everything is ours."""
    with tarfile.open(tar_file) as tar:
        members, links = [], set()
        for info in tar:
            _safe(info, links)
            info.mode &= 0o1777  # no setuid or setgid bits come back
            if info.uid == source_uid:
                info.uid, info.gid, info.uname, info.gname = owner.pw_uid, owner.pw_gid, owner.pw_name, ""
            members.append(info)
        tar.extractall(dest, members=members, numeric_owner=False)


@dataclasses.dataclass
class Restored:
    parts: list[tuple[dict, Part]]
    moved_aside: list[str]


def hub_running(catalogue: Catalogue) -> str | None:
    """Why the site's hub looks alive (its pid file names a live jupyterhub, or it answers); None."""
    import httpx

    from .launch import hub_url

    pid_file = catalogue.data_dir / "jupyterhub.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text())
        if b"jupyterhub" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return f"its pid file {pid_file} names process {pid}, which runs"
    with contextlib.suppress(httpx.HTTPError):
        if httpx.get(hub_url(catalogue) + "hub/api/", timeout=2).status_code == 200:
            return f"it answers at {hub_url(catalogue)}"
    return None


def restore(catalogue: Catalogue, archive: Path, force: bool = False) -> Restored:
    if why := hub_running(catalogue):
        raise BackupError(f"the hub of site {catalogue.site.name} is running ({why}): stop it first")
    manifest = verify(archive)
    plan = [(entry, _target(catalogue, entry)) for entry in manifest["parts"]]
    busy = [part for _, part in plan if _occupied(part)]
    if busy and not force:
        raise BackupError(
            "the site already holds data, nothing was restored (--force moves it aside): "
            + "; ".join(f"{p.name} in {p.shown}" for p in busy)
        )
    data = catalogue.data_dir
    data.mkdir(mode=0o711, parents=True, exist_ok=True)
    owner = hub_account(data)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    by_file = {entry["file"]: (entry, part) for entry, part in plan}
    done = Restored([], [])
    with tempfile.TemporaryDirectory(prefix=".ailys-restore-", dir=data) as staging:
        for info, f in _members(archive):
            if info.name not in by_file:
                continue
            entry, part = by_file[info.name]
            file = Path(staging) / Path(info.name).name
            with file.open("wb") as out:
                shutil.copyfileobj(f, out, CHUNK)
            if digest(file) != entry["sha256"]:  # changed since verify read it
                raise BackupError(f"{archive}: {info.name} changed while it was restored; stopped there")
            writing = _Writing(data, manifest["hub_account"]["uid"], owner, busy, stamp, done)
            try:
                _put(part, file, writing)
            except (BackupError, OSError, tarfile.TarError) as err:
                restored = ", ".join(p.name for _, p in done.parts) or "none"
                raise BackupError(f"part {part.name}: {err} (parts restored before it: {restored})") from None
            done.parts.append((entry, part))
    _close_modes(catalogue, owner)
    return done


@dataclasses.dataclass(frozen=True)
class _Writing:
    data: Path
    source_uid: int  # the hub account of the site the archive was made on
    owner: pwd.struct_passwd  # this site's
    busy: list[Part]
    stamp: str
    done: Restored


def _put(part: Part, file: Path, w: _Writing) -> None:
    what = f"part {part.name} into {part.shown}"
    if part.kind == "postgresql":
        if part in w.busy:  # nothing lost: what the database held first goes aside as a dump
            aside = w.data / f"{part.name}.before-restore-{w.stamp}.pgdump"
            pg_dump(part.where, aside, what)
            w.done.moved_aside.append(str(aside))
        pg_restore(part.where, file, what)
        return
    dest = Path(part.where)
    dest.parent.mkdir(parents=True, exist_ok=True)
    new = dest.with_name(f".{dest.name}.restoring")
    shutil.rmtree(new, ignore_errors=True) if new.is_dir() else new.unlink(missing_ok=True)
    if part.kind == "sqlite":
        shutil.move(file, new)
        new.chmod(0o600)
        if os.geteuid() == 0:
            os.chown(new, w.owner.pw_uid, w.owner.pw_gid)
    else:
        new.mkdir(mode=0o700)
        _extract_folder(file, new, w.source_uid, w.owner)
        file.unlink()
    sidecars = [dest.with_name(dest.name + s) for s in SQLITE_SIDECARS] if part.kind == "sqlite" else [dest]
    for old in sidecars:
        if old.exists() or old.is_symlink():
            aside = old.with_name(f"{old.name}.before-restore-{w.stamp}")
            os.replace(old, aside)
            w.done.moved_aside.append(str(aside))
    os.replace(new, dest)


def _close_modes(catalogue: Catalogue, owner: pwd.struct_passwd) -> None:
    """The exchange and grading folders are the hub account's alone, whatever the archive said."""
    from .personal_data.places import places

    where = places(catalogue)
    for folder in (where.exchange_root, where.grading_root, *where.grading_root.glob("*/")):
        if folder.is_dir():
            folder.chmod(0o700)
            if os.geteuid() == 0:
                os.chown(folder, owner.pw_uid, owner.pw_gid)
