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

from tests.services.hub import RunningHub, course, wait_until

pytestmark = pytest.mark.hub

SLUG = "t15a-hub"
RED, BLUE = ["t15a-h1", "t15a-h2"], ["t15a-h3", "t15a-h4"]
OUTSIDE, MENTOR, PROF = "t15a-h5", "t15a-hm", "t15a-hp"
TEAM_RED, TEAM_BLUE = f"team-{SLUG}-red", f"team-{SLUG}-blue"


def project(red: list[str]) -> dict:
    return course(
        SLUG,
        [PROF],
        [*RED, *BLUE, OUTSIDE],
        kind="project-team",
        mentors=[MENTOR],
        teams=[
            {"name": "red", "title": {"fr": "Rouge", "en": "Red"}, "members": red, "mentors": [MENTOR]},
            {"name": "blue", "members": BLUE, "mentors": [PROF]},
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
