"""`ailys backup` / `ailys restore` on files alone (SQLite databases, folders; no hub, no server):
the round trip, a damaged archive refused with nothing written, a full target refused."""

from __future__ import annotations

import os
import sqlite3
import stat
import tarfile

import pytest
import yaml
from click.testing import CliRunner

from hub_config.backup import BackupError, backup
from hub_config.catalogue import load_catalogue
from hub_config.cli import main
from hub_config.restore import restore, verify
from tests.unit.conftest import SITE, course


def make_site(root, name="unit"):
    (root / "courses" / "algo").mkdir(parents=True)
    (root / "courses" / "algo" / "course.yaml").write_text(yaml.safe_dump(course()))
    site_file = root / f"{name}.yaml"
    site_file.write_text(yaml.safe_dump({**SITE, "name": name}))
    catalogue = load_catalogue(site_file)
    catalogue.data_dir.mkdir(mode=0o711)
    return catalogue


def fill(catalogue):
    """A hub database, a gradebook, a submission in the exchange, a cohort and a home."""
    data = catalogue.data_dir
    with sqlite3.connect(data / "jupyterhub.sqlite") as db:
        db.execute("CREATE TABLE users (name TEXT)")
        db.executemany("INSERT INTO users VALUES (?)", [("ana",), ("ben",)])
    (data / "grading" / "algo").mkdir(parents=True, mode=0o700)
    with sqlite3.connect(data / "grading" / "algo" / "gradebook.db") as db:
        db.execute("CREATE TABLE grade (student TEXT, score REAL)")
        db.execute("INSERT INTO grade VALUES ('ana', 3.5)")
    (data / "grading" / "algo" / "source" / "ps1").mkdir(parents=True)
    (data / "grading" / "algo" / "source" / "ps1" / "ps1.ipynb").write_text("{}")
    sub = data / "exchange" / "algo" / "submissions" / "ps1" / "ana" / "20261001T120000.000000Z"
    (sub / "files").mkdir(parents=True)
    (sub / "files" / "ps1.ipynb").write_text('{"answer": 42}')
    (data / "exchange").chmod(0o700)
    (data / "exchange" / "algo" / ".tmp").mkdir()  # a write in progress: not backed up
    (data / "exchange" / "algo" / ".tmp" / "half").write_text("x")
    (data / "cohorts").mkdir()
    (data / "cohorts" / "algo.json").write_text('{"trainees": []}')
    home = data / "homes" / "ana"
    home.mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    (home / "notes.txt").chmod(0o600)
    (home / "team-x").symlink_to("/nonexistent/teams/x")  # a team link, kept as a link


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_round_trip_onto_a_fresh_site_brings_back_every_part(tmp_path):
    source = make_site(tmp_path / "a")
    fill(source)
    made = backup(source, tmp_path / "out", homes=True)
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    names = [p["name"] for p in made.manifest["parts"]]
    assert {"hub", "gradebook-algo", "exchange", "grading", "cohorts", "homes"} <= set(names)
    assert made.manifest["site"] == "unit" and made.manifest["version"]

    target = make_site(tmp_path / "b", "other")
    done = restore(target, made.path)
    assert {p.name for _, p in done.parts} == set(names) and not done.moved_aside
    data = target.data_dir
    with sqlite3.connect(data / "jupyterhub.sqlite") as db:
        assert db.execute("SELECT name FROM users ORDER BY name").fetchall() == [("ana",), ("ben",)]
    with sqlite3.connect(data / "grading" / "algo" / "gradebook.db") as db:
        assert db.execute("SELECT * FROM grade").fetchall() == [("ana", 3.5)]
    sub = data / "exchange" / "algo" / "submissions" / "ps1" / "ana" / "20261001T120000.000000Z"
    assert (sub / "files" / "ps1.ipynb").read_text() == '{"answer": 42}'
    assert not (data / "exchange" / "algo" / ".tmp").exists()
    assert (data / "grading" / "algo" / "source" / "ps1" / "ps1.ipynb").is_file()
    assert stat.S_IMODE((data / "exchange").stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "grading" / "algo").stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "homes" / "ana" / "notes.txt").stat().st_mode) == 0o600
    assert os.readlink(data / "homes" / "ana" / "team-x") == "/nonexistent/teams/x"
    assert (data / "cohorts" / "algo.json").read_text() == '{"trainees": []}'


def test_a_corrupted_archive_is_refused_and_nothing_is_written(tmp_path):
    source = make_site(tmp_path / "a")
    fill(source)
    made = backup(source, tmp_path / "out")
    raw = bytearray(made.path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one byte changed
    made.path.write_bytes(bytes(raw))

    target = make_site(tmp_path / "b", "other")
    before = tree(target.data_dir)
    with pytest.raises(BackupError, match=str(made.path)) as err:
        restore(target, made.path)
    assert "damaged" in str(err.value)
    assert tree(target.data_dir) == before == []
    # the command says the same, names the file and exits with an error
    result = CliRunner().invoke(main, ["restore", str(made.path), "--site", str(target.site_file)])
    assert result.exit_code == 1 and str(made.path) in result.output and "damaged" in result.output
    assert tree(target.data_dir) == []


def test_a_part_that_does_not_match_its_sha256_is_named(tmp_path):
    source = make_site(tmp_path / "a")
    fill(source)
    made = backup(source, tmp_path / "out")
    # rebuilt with the cohort part changed and the manifest kept: a valid stream, a wrong part
    import io

    import zstandard

    with made.path.open("rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as z:
        members = []
        with tarfile.open(fileobj=z, mode="r|") as tar:
            for info in tar:
                members.append((info, tar.extractfile(info).read()))
    changed = made.path.with_name("changed.tar.zst")
    with changed.open("wb") as f, zstandard.ZstdCompressor().stream_writer(f) as z:
        with tarfile.open(fileobj=z, mode="w|") as tar:
            for info, body in members:
                if info.name == "parts/cohorts.tar":
                    body = body.replace(b'{"trainees": []}', b'{"trainees": [1]}')
                tar.addfile(info, io.BytesIO(body))
    with pytest.raises(BackupError, match=r"parts/cohorts\.tar does not match its manifest"):
        verify(changed)


def test_restore_refuses_a_site_that_holds_data_unless_forced_and_moves_it_aside(tmp_path):
    source = make_site(tmp_path / "a")
    fill(source)
    made = backup(source, tmp_path / "out")
    target = make_site(tmp_path / "b", "other")
    (target.data_dir / "exchange" / "algo").mkdir(parents=True)
    (target.data_dir / "exchange" / "algo" / "kept.txt").write_text("theirs")
    with pytest.raises(BackupError, match=r"already holds data.*exchange in .*/b/data/exchange"):
        restore(target, made.path)
    assert not (target.data_dir / "jupyterhub.sqlite").exists()

    done = restore(target, made.path, force=True)
    [aside] = [p for p in done.moved_aside if "exchange.before-restore-" in p]
    assert (tmp_path / aside / "algo" / "kept.txt").read_text() == "theirs"  # nothing lost
    assert (target.data_dir / "exchange" / "algo" / "submissions").is_dir()


def test_a_member_outside_its_folder_is_refused(tmp_path):
    from hub_config.restore import _safe

    for name in ("/etc/passwd", "../../etc/passwd", "a/../../b"):
        with pytest.raises(BackupError, match="outside its folder"):
            _safe(tarfile.TarInfo(name), set())
    link = tarfile.TarInfo("ln")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc"
    links: set[str] = set()
    _safe(link, links)  # a link itself is kept as a link...
    with pytest.raises(BackupError, match="under a symbolic link"):
        _safe(tarfile.TarInfo("ln/passwd"), links)  # ...never written through


def test_a_postgresql_password_goes_to_a_private_file_never_the_command_line(monkeypatch):
    from hub_config.backup import _libpq

    monkeypatch.setenv("PGPASSWORD", "leaked")
    url = "postgresql+psycopg://hub:s3cr:t@db.example:5433/hub?sslmode=require"
    with _libpq(url) as (dsn, env):
        assert dsn == "postgresql://hub@db.example:5433/hub?sslmode=require"
        assert "s3cr" not in dsn and "PGPASSWORD" not in env
        assert "s3cr" not in "".join(v for k, v in env.items() if k != "PGPASSFILE")
        pgpass = env["PGPASSFILE"]
        assert stat.S_IMODE(os.stat(pgpass).st_mode) == 0o600
        with open(pgpass) as f:
            assert f.read() == "db.example:5433:hub:hub:s3cr\\:t\n"
    assert not os.path.exists(pgpass)  # gone once pg_dump has run
    with _libpq("postgresql://hub@db/hub") as (dsn, env):  # no password: the account's ~/.pgpass
        assert dsn == "postgresql://hub@db:5432/hub" and "PGPASSFILE" not in env
