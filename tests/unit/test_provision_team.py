"""The pure checks of ``ailys-provision-trainee team`` (hub_config/provision_team.py), its settings
in the schema, and what the Slurm applier gives the spawner. The command itself runs as root on a
real cluster in tests/integration/test_slurm_teams.py."""

import os
import pwd
import re
import stat

import pytest
from pydantic import ValidationError
from traitlets.config import Config

from hub_config.appliers.spawner import apply_spawner
from hub_config.catalogue import load_catalogue
from hub_config.names import team_name
from hub_config.provision import Refused, free_uid, sudoers_arguments
from hub_config.provision_team import (
    folder_problem,
    team_account_problem,
    team_hub_command,
    team_members,
    team_name_problem,
    team_slurm_account,
    teams_settings_problem,
    the_team,
)
from hub_config.schema import TeamAccounts

from .conftest import SITE, course

SETTINGS = {"learners": "mesolys-learners", "slurm_accounts": ["projets", "partner-x"]}
MEMBERS = ["ana", "ben", "cleo", "dan"]


def settings(**over) -> TeamAccounts:
    return TeamAccounts(**{**SETTINGS, **over})


def site(home_root, **over):
    return {
        **SITE,
        "spawner": {"kind": "slurm", "slurm": {"teams": {**SETTINGS, "home_root": str(home_root), **over}}},
    }


def project(**over):
    return course(
        "serre",
        kind="project-team",
        learners=[*MEMBERS, "eve"],
        mentors=["mentor1"],
        teams=[{"name": "vision", "members": MEMBERS, "mentors": ["mentor1"]}],
        **over,
    )


@pytest.fixture
def catalogue(write_catalogue, tmp_path):
    return load_catalogue(write_catalogue(site=site(tmp_path), courses={"serre": project()}))


def account(name="team-serre-vision", uid=80000, gid=80000, shell="/usr/sbin/nologin"):
    return pwd.struct_passwd((name, "x", uid, gid, "AILyS team", f"/home/{name}", shell))


# --- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["team-serre-vision", team_name("a-very-long-course-slug-here", "vision")])
def test_a_team_account_name_is_accepted(name):
    assert team_name_problem(name) == ""


@pytest.mark.parametrize(
    "name", ["root", "ana", "team-", "team-x;id", "team-$(id)", "team-a b", "team-" + "a" * 28, "team-x-"]
)
def test_anything_but_a_team_account_name_is_refused(name):
    assert "is not a team account name" in team_name_problem(name)


def test_a_name_no_team_of_the_files_has_is_refused(catalogue):
    assert the_team(catalogue, "team-serre-vision").members == tuple(MEMBERS)
    with pytest.raises(Refused, match="no team of the course files has the account team-serre-other"):
        the_team(catalogue, "team-serre-other")


# --- settings -----------------------------------------------------------------------------------------


def test_the_default_settings_make_a_nologin_account_of_its_own_group_in_the_learners_group():
    s = settings()
    assert (s.uid_min, s.uid_max, s.shell) == (80000, 80999, "/usr/sbin/nologin")
    useradd = s.create[0]
    assert useradd[0] == "useradd" and "--user-group" in useradd
    assert useradd[useradd.index("--groups") + 1] == "{learners}"
    assert s.members == [["gpasswd", "--members", "{members}", "{username}"]]


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"uid_min": 80500, "uid_max": 80000}, "uid_max (80000) is below uid_min (80500)"),
        ({"home_root": "homes"}, "home_root must be an absolute path"),
        ({"command": "sudo /x/ailys-provision-trainee"}, "command must contain {site}"),
        ({"create": [["useradd", "{password}"]]}, "names password; known: username, uid, learners"),
        ({"slurm_accounts": []}, "at least 1 item"),
    ],
)
def test_bad_team_settings_are_refused_with_the_reason(over, reason):
    with pytest.raises(ValidationError, match=re.escape(reason)):
        settings(**over)


def test_a_site_without_team_settings_is_refused_naming_the_key(write_catalogue):
    catalogue = load_catalogue(
        write_catalogue(site={**SITE, "spawner": {"kind": "slurm"}}, courses={"serre": project()})
    )
    assert teams_settings_problem(catalogue).endswith(
        "unit.yaml: spawner.slurm.teams is not set: this site does not provision teams"
    )


def test_a_team_range_below_the_spawners_min_uid_is_refused(write_catalogue, tmp_path):
    low = site(tmp_path, uid_min=1500)
    low["spawner"]["min_uid"] = 2000
    catalogue = load_catalogue(write_catalogue(site=low, courses={"serre": project()}))
    assert "spawner.slurm.teams.uid_min (1500) is below spawner.min_uid (2000)" in teams_settings_problem(
        catalogue
    )


def test_a_team_range_overlapping_the_trainees_is_refused(write_catalogue, tmp_path):
    both = site(tmp_path, uid_min=70500, uid_max=71000)
    both["spawner"]["slurm"]["trainees"] = {"group": "mesolys-learners", "slurm_accounts": ["formation"]}
    catalogue = load_catalogue(write_catalogue(site=both, courses={"serre": project()}))
    assert "the range 70500-71000 overlaps the trainees' 70000-79999" in teams_settings_problem(catalogue)


def test_a_missing_home_root_is_named(write_catalogue, tmp_path):
    catalogue = load_catalogue(write_catalogue(site=site(tmp_path / "nowhere"), courses={"serre": project()}))
    assert f"spawner.slurm.teams.home_root: {tmp_path / 'nowhere'} is not a folder" in teams_settings_problem(
        catalogue
    )


# --- accounts and members -----------------------------------------------------------------------------


def test_a_new_team_or_its_own_account_may_be_provisioned():
    groups = {80000: "team-serre-vision"}.get
    assert team_account_problem(None, settings(), groups) == ""
    assert team_account_problem(account(), settings(), groups) == ""


@pytest.mark.parametrize(
    ("existing", "reason"),
    [
        (account(uid=0, gid=0), "team-serre-vision is already an account (uid 0) outside the team range"),
        (account(uid=1001, gid=1001), "(uid 1001) outside the team range 80000-80999: not a team's"),
        (account(uid=80003, gid=100), "has primary group 100, not its own group team-serre-vision"),
    ],
)
def test_an_account_that_is_not_the_teams_is_never_taken_over(existing, reason):
    groups = {0: "root", 1001: "someone", 100: "users", 80000: "team-serre-vision"}.get
    assert reason in team_account_problem(existing, settings(), groups)


def test_members_are_those_with_an_account_and_never_a_system_one():
    accounts = {"ana": account("ana", 1001), "ben": account("ben", 1002), "sys": account("sys", 104)}
    assert team_members(["ben", "ana", "cleo"], accounts.get, 1000) == (["ana", "ben"], ["cleo"])
    with pytest.raises(Refused, match=r"sys is a system account \(uid 104\): never a team member"):
        team_members(["ana", "sys"], accounts.get, 1000)


def test_the_first_free_uid_of_the_team_range_is_taken():
    s = settings(uid_min=80000, uid_max=80001)
    assert free_uid(s, [80000], "team") == 80001
    with pytest.raises(Refused, match="no free uid left in the team range 80000-80001"):
        free_uid(s, [80000, 80001], "team")


def test_the_slurm_account_is_the_sites_unless_the_course_names_an_allowed_one():
    assert team_slurm_account(settings(), None, "serre") == "projets"
    assert team_slurm_account(settings(), "partner-x", "serre") == "partner-x"
    with pytest.raises(Refused, match=r"course serre charges Slurm account vip, which is not one of"):
        team_slurm_account(settings(), "vip", "serre")


def test_a_team_folder_that_is_a_link_or_a_file_is_refused(tmp_path):
    assert folder_problem(tmp_path / "team-serre-vision") == ""  # missing: made
    (tmp_path / "plain").mkdir()
    assert folder_problem(tmp_path / "plain") == ""
    (tmp_path / "link").symlink_to("/etc")
    assert folder_problem(tmp_path / "link") == f"{tmp_path / 'link'} exists and is not a folder"
    (tmp_path / "file").write_text("")
    assert "is not a folder" in folder_problem(tmp_path / "file")
    assert stat.S_ISLNK(os.lstat(tmp_path / "link").st_mode)


# --- the hub's side -------------------------------------------------------------------------------------


def test_the_slurm_applier_gives_the_spawner_the_team_command(catalogue):
    c = Config()
    apply_spawner(c, catalogue)
    assert c.SlurmSpawner.team_provision_command == [
        "sudo",
        "-n",
        "/usr/local/sbin/ailys-provision-trainee",
        "--site",
        str(catalogue.site_file),
        "team",
        "{username}",
    ]
    assert "provision_command" not in c.SlurmSpawner  # no trainees' settings: no trainee's provisioning


def test_hub_command_formats_only_the_site():
    command = team_hub_command(settings(command="sudo -n /opt/x/provision --site {site}"), "/s.yaml")
    assert command == ["sudo", "-n", "/opt/x/provision", "--site", "/s.yaml", "team", "{username}"]


def test_the_sudoers_rule_allows_a_team_account_name_and_nothing_else(tmp_path):
    site_file = tmp_path / "mesolys.yaml"
    pattern = re.compile(sudoers_arguments(site_file))
    assert pattern.fullmatch(f"--site {site_file} team team-serre-vision")
    for argv in (
        "team team-serre-vision extra",
        "team ana",
        "team team-x;id",
        "team team-$(id)",
        "team " + "team-" + "a" * 28,
    ):
        assert not pattern.fullmatch(f"--site {site_file} {argv}"), argv
