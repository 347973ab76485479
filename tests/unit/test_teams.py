"""Teams in course files: every mistake named by file, key and reason; the pure view of teams."""

import dataclasses
import json

import pytest
from traitlets.config import Config

from hub_config import names, roster, sync, teams
from hub_config.appliers.access import apply_groups_and_roles
from hub_config.appliers.team_folders import apply_team_folders
from hub_config.catalogue import CatalogueError, load_catalogue
from hub_config.schema import is_reserved

from .conftest import SITE, course

PEOPLE = ["ana", "ben", "cleo", "dan", "eve", "fay", "gus", "hal", "ivy", "jo"]


def team(name="vision", members=("ana", "ben", "cleo", "dan"), mentors=("prof",), **over):
    return {"name": name, "members": list(members), "mentors": list(mentors), **over}


def project(teams_=None, **over):
    base = course(kind="project-team", learners=PEOPLE, mentors=["mentor1"])
    base["teams"] = [team()] if teams_ is None else teams_
    base.update(over)
    return base


BAD_TEAMS = [
    # (what is wrong, course.yaml, site teams section, expected key, expected words in the reason)
    (
        "too few members for the site",
        project([team(members=["ana", "ben", "cleo"])]),
        {},
        "teams[0].members",
        "team vision has 3 members; the site allows 4 to 6 (teams.min_members, teams.max_members in unit.yaml)",
    ),
    (
        "too many members for the site",
        project([team(members=PEOPLE[:7])]),
        {},
        "teams[0].members",
        "has 7 members; the site allows 4 to 6",
    ),
    (
        "over the absolute bound",
        project([team(members=PEOPLE[:9])]),
        {"max_members": 8},
        "teams[0].members",
        "at most 8",
    ),
    (
        "a site bound out of range",
        project(),
        {"max_members": 9},
        "teams.max_members",
        "less than or equal to 8",
    ),
    (
        "site bounds reversed",
        project(),
        {"min_members": 5, "max_members": 4},
        "teams",
        "min_members (5) is more",
    ),
    (
        "duplicate team names",
        project([team(), team(members=PEOPLE[4:8])]),
        {},
        "teams",
        "team name vision used more than once",
    ),
    (
        "a learner in two teams",
        project([team(), team("nlp", members=["dan", "eve", "fay", "gus"])]),
        {},
        "teams",
        "dan is a member of both vision and nlp",
    ),
    (
        "a member who is no learner",
        project([team(members=["ana", "ben", "cleo", "zoe"])]),
        {},
        "teams[0].members",
        "zoe is not a learner of the course",
    ),
    (
        "an instructor as a member",
        project([team(members=["ana", "ben", "cleo", "prof"])]),
        {},
        "teams[0].members",
        "prof is not a learner",
    ),
    ("no mentor", project([team(mentors=[])]), {}, "teams[0].mentors", "at least 1"),
    (
        "an unknown mentor",
        project([team(mentors=["stranger"])]),
        {},
        "teams",
        "mentor stranger of team vision is neither an instructor of the course nor in its mentors list",
    ),
    ("a learner as a mentor", project([team(mentors=["eve"])]), {}, "teams", "mentor eve of team vision"),
    ("mentor and learner", project(mentors=["ana"]), {}, "mentors", "both mentor and learner"),
    (
        "member listed twice",
        project([team(members=["ana", "ana", "ben", "cleo"])]),
        {},
        "teams[0].members",
        "ana listed more than once",
    ),
    ("bad team name", project([team("Vision!")]), {}, "teams[0].name", "pattern"),
    ("team name too long", project([team("a" * 17)]), {}, "teams[0].name", "pattern"),
    (
        "a reserved member name",
        project([team(members=["ana", "ben", "cleo", "team-x"])]),
        {},
        "teams[0].members[3]",
        "system or service account",
    ),
    (
        "unknown team key",
        project([team(leader="ana")]),
        {},
        "teams[0].leader",
        "unknown key (allowed here: name, title",
    ),
]


@pytest.mark.parametrize(
    "content,section,key,words", [c[1:] for c in BAD_TEAMS], ids=[c[0] for c in BAD_TEAMS]
)
def test_bad_team_names_file_key_and_reason(write_catalogue, content, section, key, words):
    site = {**SITE, "teams": section} if section else SITE
    with pytest.raises(CatalogueError) as err:
        load_catalogue(write_catalogue(site=site, courses={"algo": content}))
    where = "unit.yaml" if key.startswith("teams.") or (key == "teams" and section) else "course.yaml"
    matching = [p for p in err.value.problems if p.key == key and words in p.reason]
    assert matching, err.value.problems
    assert matching[0].file.name == where


def test_a_valid_team_course_and_its_views(write_catalogue, tmp_path):
    content = project([team(), team("nlp", members=PEOPLE[4:8], mentors=["mentor1", "prof"])])
    catalogue = load_catalogue(write_catalogue(courses={"algo": content}))
    views = teams.teams_of(catalogue)
    assert [(v.name, v.members, v.mentors) for v in views] == [
        ("team-algo-vision", ("ana", "ben", "cleo", "dan"), ("prof",)),
        ("team-algo-nlp", ("eve", "fay", "gus", "hal"), ("mentor1", "prof")),
    ]
    assert views[0].folder == tmp_path / "data" / "teams" / "team-algo-vision"
    assert views[1].mentor_group == "mentors-algo-nlp" and views[1].link == "team-nlp"
    assert teams.team_of_account(catalogue, "team-algo-nlp") == views[1]
    assert teams.team_of_account(catalogue, "eve") is None
    assert [t.team for t in teams.teams_of_person(catalogue, "prof")] == ["vision", "nlp"]
    assert [t.team for t in teams.mentored_by(catalogue, "mentor1")] == ["nlp"]
    assert teams.teams_of_person(catalogue, "ivy") == []  # a learner outside every team
    # a course mentor is a person of the site: they may log in
    assert "mentor1" in catalogue.people()


def test_teams_dir_relative_to_the_site_file(write_catalogue, tmp_path):
    site = {**SITE, "teams": {"dir": "shared/teams", "min_members": 2}}
    catalogue = load_catalogue(
        write_catalogue(site=site, courses={"algo": project([team(members=["ana", "ben"])])})
    )
    assert teams.teams_of(catalogue)[0].folder == tmp_path / "shared" / "teams" / "team-algo-vision"


def test_a_member_from_a_cohort_counts_and_leaves_with_it(write_catalogue, tmp_path):
    content = project([team(members=["ana", "ben", "cleo", "tina"])])
    site_file = write_catalogue(courses={"algo": content})
    (tmp_path / "data" / "cohorts").mkdir(parents=True)
    cohort = tmp_path / "data" / "cohorts" / "algo.json"
    cohort.write_text(json.dumps({"trainees": [{"username": "tina"}]}))
    catalogue = load_catalogue(site_file)
    assert teams.teams_of(catalogue)[0].members == ("ana", "ben", "cleo", "tina")
    cohort.write_text(json.dumps({"trainees": []}))  # the sync reads rosters again without a reload
    later = dataclasses.replace(catalogue, sources=roster.read_sources(tmp_path / "data"))
    assert teams.teams_of(later)[0].members == ("ana", "ben", "cleo")


def test_one_team_name_in_two_courses_gets_distinct_home_links(write_catalogue):
    other = course("stats", kind="project-team", instructors=["prof"], learners=["ivy", "jo", "kim", "lou"])
    other["teams"] = [team(members=["ivy", "jo", "kim", "lou"])]
    catalogue = load_catalogue(write_catalogue(courses={"algo": project(), "stats": other}))
    assert sorted(teams.home_links(catalogue, "prof")) == ["team-algo-vision", "team-stats-vision"]
    assert sorted(teams.home_links(catalogue, "ana")) == ["team-vision"]


def test_long_names_fit_unix_and_team_names_are_reserved():
    slug = "a-very-long-course-slug-for-teams"
    name = names.team_name(slug, "computer-vision1")
    assert len(name) <= 32 and name.startswith("team-a-very-long")
    assert name != names.team_name(slug, "computer-vision2")
    assert is_reserved(name) and is_reserved(names.mentor_group(slug, "x"))


def test_the_sync_plans_team_groups_mentor_groups_and_team_accounts(write_catalogue):
    catalogue = load_catalogue(write_catalogue(courses={"algo": project()}))
    first = sync.plan(catalogue, set(), {})
    assert {"team-algo-vision", "mentors-algo-vision"} <= set(first.create_groups)
    assert "team-algo-vision" in first.create_users  # the account owning the team server
    assert first.add["team-algo-vision"] == ["ana", "ben", "cleo", "dan"]
    assert first.add["mentors-algo-vision"] == ["prof"]
    # the hub as the first sync left it, then: dan left the team, a team of the file is gone
    users = set(first.create_users)
    groups = {g: set(first.add.get(g, [])) for g in first.create_groups}
    groups["team-algo-vision"].add("eve")
    groups["team-algo-old"], groups["mentors-algo-old"] = {"fay"}, {"prof"}
    later = sync.plan(catalogue, users, groups)
    assert later.remove == {"team-algo-vision": ["eve"]} and later.add == {}
    assert later.delete_groups == ["mentors-algo-old", "team-algo-old"]
    assert later.create_users == [] and later.create_groups == []


def test_a_team_removed_from_the_file_loses_its_groups_server_and_hub_user_not_its_folder(
    write_catalogue, tmp_path
):
    site_file = write_catalogue(courses={"algo": project([team(), team("audio", PEOPLE[4:8])])})
    first = sync.plan(load_catalogue(site_file), set(), {})
    users = set(first.create_users)
    groups = {g: set(first.add.get(g, [])) for g in first.create_groups}
    (site_file.parent / "courses" / "algo" / "course.yaml").write_text(json.dumps(project([team()])))
    catalogue = load_catalogue(site_file)
    later = sync.plan(catalogue, users, groups, {"team-algo-audio": [""], "ana": [""]})
    assert later.delete_groups == ["mentors-algo-audio", "team-algo-audio"]
    folder = str(tmp_path / "data" / "teams" / "team-algo-audio")
    assert later.gone_teams == [sync.GoneTeam("team-algo-audio", folder, ("",))]
    assert later.lines()[-2:] == [
        "stopped server of team-algo-audio: its team is gone from the course files",
        f"delete team account team-algo-audio (its folder {folder} stays on disk)",
    ]
    # people, and the team still in the file, are never taken for a gone team
    assert "ana" in users and "team-algo-vision" in users
    # once it is gone from the hub, nothing more to do
    assert sync.plan(catalogue, users - {"team-algo-audio"}, groups).gone_teams == []


def test_the_applier_gives_spawners_each_persons_team_folders(write_catalogue, tmp_path):
    site_file = write_catalogue(courses={"algo": project()})
    c = Config()
    apply_team_folders(c, load_catalogue(site_file))
    folders = c.TeamLinks.team_folders
    assert folders("ana") == {
        "dir": str(tmp_path / "data" / "teams"),
        "links": {
            "team-vision": {
                "name": "team-algo-vision",
                "folder": str(tmp_path / "data" / "teams" / "team-algo-vision"),
                "people": ["ana", "ben", "cleo", "dan", "prof"],
            }
        },
    }
    assert folders("eve")["links"] == {}
    # and the start-up groups hold the teams, as the sync does
    c = Config()
    apply_groups_and_roles(c, load_catalogue(site_file))
    assert c.JupyterHub.load_groups["mentors-algo-vision"]["users"] == ["prof"]


def test_a_team_servers_oauth_client_names_its_account():
    from hub_config.team_servers import account_of_client

    assert account_of_client("jupyterhub-user-team-proj-red") == "team-proj-red"
    assert account_of_client("jupyterhub-user-ana%40x") == "ana@x"
    assert account_of_client("service-gallery") is None
