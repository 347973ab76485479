"""The gallery's run folders (gallery/runtime.py): a killed gallery's folder is removed by the
next start, a running one's never, nor anything that is not a run folder of that account."""

import os
import subprocess
import sys
import tempfile

import pytest

from gallery.runtime import PREFIX, make_run_folder, sweep_stale


@pytest.fixture
def tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def folder_of(pid_line: str, tmp) -> os.PathLike:
    folder = tmp / f"{PREFIX}made"
    folder.mkdir()
    (folder / "owner").write_text(pid_line)
    return folder


def test_a_running_gallerys_folder_is_kept_and_a_killed_ones_removed(tmp):
    mine = make_run_folder(os.getuid(), os.getgid())
    assert (mine / "home").is_dir() and oct(mine.stat().st_mode & 0o777) == "0o700"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = folder_of(f"{gone.pid} 1.00\n", tmp)
    (dead / "home").mkdir()
    (dead / "home" / "kernel.json").write_text("{}")
    assert sweep_stale(os.getuid()) == [dead]
    assert mine.is_dir() and not dead.exists()


def test_a_reused_pid_is_not_the_gallery_that_made_the_folder(tmp):
    reused = folder_of(f"{os.getpid()} 12.34\n", tmp)  # this process, started at another time
    assert sweep_stale(os.getuid()) == [reused]


def test_what_is_not_a_run_folder_of_that_account_is_left_alone(tmp):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "owner").write_text(f"{gone.pid} 1.00\n")
    (tmp / f"{PREFIX}link").symlink_to(elsewhere)  # a link, not a folder
    (tmp / f"{PREFIX}plain").mkdir()  # no owner file
    other_account = folder_of(f"{gone.pid} 1.00\n", tmp)
    assert sweep_stale(os.getuid() + 1) == []  # another account's galleries
    assert sweep_stale(os.getuid()) == [other_account]  # only the real, stale one of this account
    assert elsewhere.is_dir() and (tmp / f"{PREFIX}plain").is_dir()
