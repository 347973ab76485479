"""Team folders with real Unix accounts on the hub's host (local and container sites): members of a
team read and write each other's files, a mentor too; another team's member and a learner of the
course outside every team get permission denied; one removed from the file loses the group."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from hub_config import teams
from hub_config.catalogue import load_catalogue
from hub_config.team_folders import TeamFolders, sync_team_folders
from spawners.docker.container import plan_container
from spawners.teams import TeamHomes
from tests.services import remove_unix_user, unix_user
from tests.services.hub import project_course
from tests.services.podman import podman_for_tests

SLUG = "t15a-proj"
RED, BLUE = ["t15a-a1", "t15a-a2", "t15a-a3"], ["t15a-b1", "t15a-b2"]
OUTSIDE, MENTOR, PROF = "t15a-out", "t15a-m1", "t15a-prof"
PEOPLE = [*RED, *BLUE, OUTSIDE, MENTOR, PROF]
DENIED = 13  # what the child exits with on PermissionError

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true",
    reason="team folders need root: Unix accounts, groups and setfacl (run the suite as root)",
)


def course_file(red: list[str]) -> dict:
    return project_course(SLUG, red, RED, BLUE, OUTSIDE, MENTOR, PROF)


def as_user(name: str, code: str) -> subprocess.CompletedProcess:
    """``code`` (Python, stdlib) run as ``name`` with the groups /etc/group gives it now, as a new
    server's process gets them; umask 022, Debian's default, so the ACL is what keeps files shared."""
    wrapped = f"import os, sys\nos.umask(0o022)\ntry:\n    {code}\nexcept PermissionError:\n    sys.exit({DENIED})\n"
    argv = ["setpriv", "--reuid", name, "--regid", name, "--init-groups", "/usr/bin/python3", "-c", wrapped]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")


@pytest.fixture
def site():
    root = Path(tempfile.mkdtemp(prefix="t15a-teams-"))
    root.chmod(0o755)  # the accounts walk down to their homes and the team folders
    (root / "courses" / SLUG).mkdir(parents=True)
    (root / "courses" / SLUG / "course.yaml").write_text(yaml.safe_dump(course_file(RED)))
    site_file = root / "t15a.yaml"
    site_file.write_text(
        yaml.safe_dump(
            {
                "name": "t15a",
                "data_dir": "data",
                "courses_dir": "courses",
                "teams": {"min_members": 2},
                "spawner": {"kind": "local"},
            }
        )
    )
    (root / "data" / "homes").mkdir(parents=True)
    (root / "data").chmod(0o755)
    remove_accounts()
    for name in PEOPLE:
        unix_user(name, root / "data" / "homes")
    yield site_file
    remove_accounts()
    shutil.rmtree(root)


def remove_accounts() -> None:
    """The test's people, then the team accounts and groups (also those a killed run left)."""
    for name in PEOPLE:
        with contextlib.suppress(KeyError):
            remove_unix_user(pwd.getpwnam(name))
    for team in (f"team-{SLUG}-red", f"team-{SLUG}-blue"):  # 6: not there
        assert subprocess.run(["userdel", team], capture_output=True).returncode in (0, 6)
        assert subprocess.run(["groupdel", team], capture_output=True).returncode in (0, 6)


def link_homes(site_file: Path) -> None:
    """What each person's next spawn does (LearnerHome._prepare_home, as root)."""
    catalogue = load_catalogue(site_file)
    homes = TeamHomes(team_folders=TeamFolders(site_file))
    for name in PEOPLE:
        account = pwd.getpwnam(name)
        homes.link_teams(account, Path(account.pw_dir), catalogue.data_dir / "homes", 1000)


def test_members_share_files_mentors_reach_them_and_others_are_refused(site):
    catalogue = load_catalogue(site)
    lines = sync_team_folders(catalogue)
    assert f"add {', '.join(RED)}, {MENTOR} to Unix group team-{SLUG}-red" in lines
    red = teams.teams_of(catalogue)[0].folder
    info = red.stat()
    assert stat.S_IMODE(info.st_mode) == 0o2770 and red.owner() == red.group() == f"team-{SLUG}-red"
    link_homes(site)
    home = Path(f"{catalogue.data_dir}/homes")
    assert (home / RED[0] / "team-red").resolve() == red
    assert (home / MENTOR / "team-red").resolve() == red
    assert not (home / BLUE[0] / "team-red").exists() and (home / BLUE[0] / "team-blue").is_symlink()

    notes = home / RED[0] / "team-red" / "notes.txt"
    made = as_user(RED[0], f"open({str(notes)!r}, 'w').write('from a1\\n')")
    assert made.returncode == 0, made.stderr
    # Another member writes into it through their own link, and so does the mentor.
    other = home / RED[1] / "team-red" / "notes.txt"
    assert as_user(RED[1], f"open({str(other)!r}, 'a').write('from a2\\n')").returncode == 0
    assert as_user(MENTOR, f"open({str(red / 'notes.txt')!r}, 'a').write('from m1\\n')").returncode == 0
    assert (red / "notes.txt").read_text() == "from a1\nfrom a2\nfrom m1\n"
    # A folder one member makes is the team's too: another member writes in it.
    assert as_user(RED[2], f"os.mkdir({str(red / 'data')!r})").returncode == 0
    assert as_user(RED[0], f"open({str(red / 'data' / 'x.csv')!r}, 'w').write('1')").returncode == 0

    for stranger in (BLUE[0], OUTSIDE):
        assert as_user(stranger, f"os.listdir({str(red)!r})").returncode == DENIED
        assert as_user(stranger, f"open({str(red / 'notes.txt')!r})").returncode == DENIED
        assert as_user(stranger, f"open({str(red / 'mine.txt')!r}, 'w')").returncode == DENIED


def test_a_member_removed_from_the_file_leaves_the_group_and_loses_the_link(site):
    catalogue = load_catalogue(site)
    sync_team_folders(catalogue)
    link_homes(site)
    red = teams.teams_of(catalogue)[0].folder
    assert as_user(RED[2], f"os.listdir({str(red)!r})").returncode == 0

    (site.parent / "courses" / SLUG / "course.yaml").write_text(yaml.safe_dump(course_file(RED[:2])))
    lines = sync_team_folders(load_catalogue(site))
    assert lines == [f"remove {RED[2]} from Unix group team-{SLUG}-red"]
    assert as_user(RED[2], f"os.listdir({str(red)!r})").returncode == DENIED
    link_homes(site)
    assert not os.path.lexists(catalogue.data_dir / "homes" / RED[2] / "team-red")
    assert sync_team_folders(load_catalogue(site)) == []  # nothing left to change


@pytest.fixture(scope="module")
def podman():
    yield from podman_for_tests()


def in_container(podman, site: Path, name: str, code: str) -> subprocess.CompletedProcess:
    """``code`` as ``name`` in a container made as the docker site makes a member's
    (spawners/docker/container.py: the home and team folders bound, the team groups added)."""
    account = pwd.getpwnam(name)
    mounts = TeamHomes(team_folders=TeamFolders(site)).team_mounts(account)
    plan = plan_container(
        image="unused",
        course=SLUG,
        environment="python-ml",
        cpus=1,
        memory=1024**3,
        account=account,
        username=name,
        pids_limit=64,
        tmp_size=2**20,
        teams=mounts,
    )
    root, options = podman.rootfs((name, account.pw_uid, account.pw_gid, account.pw_dir), [])
    for host, bind in plan.volumes.items():
        (root / bind["bind"].lstrip("/")).mkdir(parents=True, exist_ok=True)
        options += ["-v", f"{host}:{bind['bind']}:{bind['mode']}"]
    options += [f"--group-add={gid}" for gid in plan.host.get("group_add", [])]
    wrapped = f"import os, sys\nos.umask(0o022)\ntry:\n    {code}\nexcept OSError:\n    sys.exit({DENIED})\n"
    user = plan.create["user"]
    return podman.run(f"t15a-{name}", root, ["--user", user, *options], ["/usr/bin/python3", "-c", wrapped])


@pytest.mark.podman
def test_a_members_container_sees_the_team_folder_and_another_teams_does_not(site, podman):
    catalogue = load_catalogue(site)
    sync_team_folders(catalogue)
    link_homes(site)
    red = teams.teams_of(catalogue)[0].folder
    home = catalogue.data_dir / "homes"
    made = in_container(
        podman, site, RED[0], f"open({str(home / RED[0] / 'team-red' / 'c.txt')!r}, 'w').write('in')"
    )
    assert made.returncode == 0, made.stderr
    # made in a container, writable by another member on the host
    assert as_user(RED[1], f"open({str(red / 'c.txt')!r}, 'a').write('+')").returncode == 0
    assert (red / "c.txt").read_text() == "in+"
    seen = in_container(podman, site, BLUE[0], f"print(sorted(os.listdir({str(home / BLUE[0])!r})))")
    assert seen.returncode == 0 and "'team-blue'" in seen.stdout and "team-red" not in seen.stdout
    assert in_container(podman, site, BLUE[0], f"os.listdir({str(red)!r})").returncode == DENIED
