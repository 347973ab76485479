"""Teams on a real local hub: the course sync makes each team's hub groups and account and follows
the file without a restart; a member's server starts with team-<team>/ in their home; the mentor
page shows a mentor their team, who works now and last activities, and answers 403 to anyone else."""

from __future__ import annotations

import grp
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.services.hub import RunningHub, course, hub_xsrf, server_xsrf, wait_until

pytestmark = pytest.mark.hub

SLUG = "t15a-hub"
RED, BLUE = ["t15a-h1", "t15a-h2"], ["t15a-h3", "t15a-h4"]
OUTSIDE, MENTOR, PROF = "t15a-h5", "t15a-hm", "t15a-hp"
TEAM_RED, TEAM_BLUE = f"team-{SLUG}-red", f"team-{SLUG}-blue"


def project(red: list[str], blue: bool = True) -> dict:
    return course(
        SLUG,
        [PROF],
        [*RED, *BLUE, OUTSIDE],
        kind="project-team",
        mentors=[MENTOR],
        teams=[
            {"name": "red", "title": {"fr": "Rouge", "en": "Red"}, "members": red, "mentors": [MENTOR]},
            *([{"name": "blue", "members": BLUE, "mentors": [PROF]}] if blue else []),
        ],
    )


@pytest.fixture(scope="module")
def hub():
    running = RunningHub([project(RED)], site={"teams": {"min_members": 2}})
    # The sync under test is the only one (as in test_course_sync.py): the hub's own service would race it.
    (running.data / "jupyterhub_config.d" / "60-no-sync-service.py").write_text(
        "for s in c.JupyterHub.services:\n    if s['name'] == 'course-sync':\n        s.pop('command')\n"
    )
    running.start()
    yield running
    running.stop()
    for team in (TEAM_RED, TEAM_BLUE):  # userdel keeps a group that still lists members
        subprocess.run(["groupdel", team], capture_output=True)


def courses_sync(hub: RunningHub) -> str:
    command = [sys.executable, "-m", "hub_config.cli", "courses", "--site", str(hub.site_file), "sync"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def groups(hub: RunningHub) -> dict[str, set[str]]:
    listed = hub.admin_api().get("/groups").json()
    return {g["name"]: set(g["users"]) for g in listed}


def mentor_page(client, path: str = ""):
    return client.get(f"/services/mentors/{path}", follow_redirects=True)


def test_the_sync_makes_team_groups_and_accounts_and_follows_the_file(hub):
    courses_sync(hub)
    now = groups(hub)
    assert now[TEAM_RED] == set(RED) and now[f"mentors-{SLUG}-red"] == {MENTOR}
    assert now[TEAM_BLUE] == set(BLUE) and now[f"mentors-{SLUG}-blue"] == {PROF}
    users = {u["name"] for u in hub.admin_api().get("/users").json()}
    assert {TEAM_RED, TEAM_BLUE} <= users  # the accounts of the team servers
    started = hub.hub.pid
    (hub.root / "courses" / SLUG / "course.yaml").write_text(yaml.safe_dump(project([*RED, OUTSIDE])))
    out = courses_sync(hub)
    assert f"add {OUTSIDE} to {TEAM_RED}" in out
    assert groups(hub)[TEAM_RED] == {*RED, OUTSIDE} and hub.hub.pid == started  # no restart
    (hub.root / "courses" / SLUG / "course.yaml").write_text(yaml.safe_dump(project(RED)))
    assert f"remove {OUTSIDE} from {TEAM_RED}" in courses_sync(hub)


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="team folders need root")
def test_a_members_server_has_the_team_folder_and_the_mentor_sees_them_working(hub):
    courses_sync(hub)
    member = hub.login(RED[0])
    hub.spawn(member, RED[0])
    link = hub.catalogue.data_dir / "homes" / RED[0] / "team-red"
    assert link.is_symlink() and link.resolve() == Path(hub.catalogue.data_dir / "teams" / TEAM_RED)
    assert RED[0] in grp.getgrnam(TEAM_RED).gr_mem

    mentor = hub.login(MENTOR)
    seen = []

    def shows_working():
        seen[:] = [mentor_page(mentor)]
        return seen[0].status_code == 200 and f'data-name="{RED[0]}" data-working="yes"' in seen[0].text

    try:
        wait_until(shows_working, 60, "the mentor page to show the member working")
    except TimeoutError:
        raise AssertionError(f"{seen[0].status_code} {seen[0].url}: {seen[0].text[:2000]}") from None
    page = seen[0]
    assert f'id="team-{TEAM_RED}"' in page.text and "Rouge" in page.text or "Red" in page.text
    assert f'data-name="{RED[1]}" data-working="no"' in page.text
    assert f'id="team-{TEAM_BLUE}"' not in page.text  # not their team
    assert mentor_page(mentor, f"team/{TEAM_RED}").status_code == 200


@pytest.mark.parametrize(
    "who, path",
    [(RED[0], ""), (OUTSIDE, ""), (PROF, f"team/{TEAM_RED}"), (BLUE[0], f"team/{TEAM_BLUE}")],
    ids=["a member", "a learner outside the teams", "another team's mentor", "a member of that team"],
)
def test_the_mentor_page_is_refused_to_anyone_else(hub, who, path):
    r = mentor_page(hub.login(who), path)
    assert r.status_code == 403 and 'id="mentors-refused"' in r.text


def test_a_site_admin_sees_every_team(hub):
    r = mentor_page(hub.login("hubadmin"))
    assert r.status_code == 200 and f'id="team-{TEAM_RED}"' in r.text and f'id="team-{TEAM_BLUE}"' in r.text


def server_of(hub: RunningHub, name: str) -> dict | None:
    user = hub.admin_api().get(f"/users/{name}")
    return (user.json().get("servers") or {}).get("") if user.status_code == 200 else None


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="team servers need root")
def test_a_team_removed_from_the_file_leaves_the_hub_and_its_folder_stays(hub):
    """What an administrator expects when a team goes from course.yaml: at the next course sync its
    groups go, its running team server is stopped and its hub user deleted, its Unix group loses
    its members; its folder stays on disk with its files; a former member's link goes at their
    next start, and the team server's URL no longer leads anywhere for them."""
    courses_sync(hub)
    member = hub.login(BLUE[0])
    hub.spawn(member, BLUE[0])
    link = hub.catalogue.data_dir / "homes" / BLUE[0] / "team-blue"
    assert link.is_symlink()
    r = member.get(f"/hub/spawn/{TEAM_BLUE}", follow_redirects=False)  # the team's one course: started
    assert r.status_code in (302, 303), r.text
    wait_until(lambda: (server_of(hub, TEAM_BLUE) or {}).get("ready"), 90, "the team server")
    assert hub.open_server(member, TEAM_BLUE).status_code == 200
    made = member.put(
        f"/user/{TEAM_BLUE}/api/contents/kept.txt",
        json={"type": "file", "format": "text", "content": "the team's work\n"},
        headers=server_xsrf(member, TEAM_BLUE),
    )
    assert made.status_code in (200, 201), made.text
    r = member.delete(f"/hub/api/users/{BLUE[0]}/server", headers=hub_xsrf(member))
    assert r.status_code in (202, 204), r.text
    wait_until(lambda: server_of(hub, BLUE[0]) is None, 60, "the member's own server to stop")

    course_yaml = hub.root / "courses" / SLUG / "course.yaml"
    course_yaml.write_text(yaml.safe_dump(project(RED, blue=False)))
    try:
        out = courses_sync(hub)
        if "still stopping" in out:  # the hub stops it in the background: deleted at the next pass
            wait_until(lambda: server_of(hub, TEAM_BLUE) is None, 60, "the team server to stop")
            out += courses_sync(hub)
        folder = hub.catalogue.data_dir / "teams" / TEAM_BLUE
        assert f"stopped server of {TEAM_BLUE}: its team is gone from the course files" in out
        assert f"delete team account {TEAM_BLUE} (its folder {folder} stays on disk)" in out
        assert f"emptied Unix group {TEAM_BLUE}" in out
        now = groups(hub)
        assert TEAM_BLUE not in now and f"mentors-{SLUG}-blue" not in now and TEAM_RED in now
        assert hub.admin_api().get(f"/users/{TEAM_BLUE}").status_code == 404
        assert subprocess.run(["pgrep", "-u", TEAM_BLUE], capture_output=True).returncode == 1  # none left
        assert (folder / "kept.txt").read_text() == "the team's work\n"  # nothing lost
        assert grp.getgrnam(TEAM_BLUE).gr_mem == []  # the kept group grants the folder to nobody
        # A former member: the team server's URL leads nowhere (JupyterHub answers 404 for a
        # server one may not reach, 403 only from a running server), nor can they start it.
        for path in (f"/user/{TEAM_BLUE}/lab", f"/hub/spawn/{TEAM_BLUE}"):
            r = member.get(path, follow_redirects=True)
            assert r.status_code in (403, 404), (path, r.status_code, str(r.url))
        r = member.post(f"/hub/api/users/{TEAM_BLUE}/server", headers=hub_xsrf(member))
        assert r.status_code in (403, 404), r.text
        # Their link goes at their next start; the other team's is untouched.
        hub.spawn(member, BLUE[0])
        assert not os.path.lexists(link) and BLUE[0] not in grp.getgrnam(TEAM_BLUE).gr_mem
        assert (hub.catalogue.data_dir / "homes" / RED[0] / "team-red").is_symlink()
    finally:
        course_yaml.write_text(yaml.safe_dump(project(RED)))
        courses_sync(hub)
    # Put back in the file, the team gets its account, members and folder (with its files) again.
    assert hub.admin_api().get(f"/users/{TEAM_BLUE}").status_code == 200
    assert grp.getgrnam(TEAM_BLUE).gr_mem == [BLUE[0]]  # the others have no account before their first spawn
    assert (hub.catalogue.data_dir / "teams" / TEAM_BLUE / "kept.txt").is_file()
