"""The pure checks of ailys-provision-trainee (hub_config/provision.py), its settings in the schema,
and what the Slurm applier gives the spawner. The command itself runs in
tests/integration/test_slurm_sudo.py, through a real sudo rule on a real cluster."""

import datetime as dt
import json
import os
import pwd
import re
import stat

import pytest
from pydantic import ValidationError
from traitlets.config import Config

from hub_config import provision
from hub_config.appliers.spawner import apply_spawner
from hub_config.catalogue import load_catalogue
from hub_config.provision import (
    Refused,
    account_problem,
    commands,
    free_uid,
    hub_command,
    name_problem,
    settings_problem,
    slug_problem,
    slurm_account,
    sudoers_arguments,
    trainee_problem,
    trust_problem,
)
from hub_config.schema import TraineeAccounts

from .conftest import SITE, course

NOW = dt.datetime(2027, 3, 10, 12, tzinfo=dt.UTC)
TRAINEES = {"group": "mesolys-learners", "slurm_accounts": ["formation", "partner-x"]}


def trainees(**over) -> TraineeAccounts:
    return TraineeAccounts(**{**TRAINEES, **over})


def site(home_root, **over):
    return {
        **SITE,
        "spawner": {
            "kind": "slurm",
            "slurm": {"trainees": {**TRAINEES, "home_root": str(home_root), "uid_min": 70000, **over}},
        },
    }


COURSES = {
    "ia-industrie": course(
        "ia-industrie",
        kind="short-course",
        instructors=["prof"],
        learners=["tina"],
        start="2027-03-09",
        end="2027-03-11",
    ),
    "ia-partner": course(
        "ia-partner",
        kind="short-course",
        instructors=["prof"],
        learners=["tina", "ana"],
        start="2027-03-09",
        end="2027-03-11",
        resources={"account": "partner-x"},
    ),
    "algo": course(),  # academic: prof teaches, ana and ben learn
}


@pytest.fixture
def catalogue(write_catalogue, tmp_path):
    site_file = write_catalogue(site=site(tmp_path), courses=COURSES)
    cohorts = tmp_path / "data" / "cohorts"
    cohorts.mkdir(parents=True)
    (cohorts / "ia-industrie.json").write_text(json.dumps({"trainees": [{"username": "ulla"}]}))
    return load_catalogue(site_file)


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tina", "pv-tina", "x_1", "a" * 32, "tina-2"])
def test_a_trainee_name_is_a_plain_unix_name(name):
    assert name_problem(name) == ""


@pytest.mark.parametrize(
    "name",
    ["tina;id", "tina id", "$(id)", "`id`", "../etc", "-rf", "Tina", "a" * 33, "", "tina\n", "ti*", "é"],
)
def test_a_name_a_shell_or_a_tool_would_read_is_refused(name):
    assert "is not a Unix account name" in name_problem(name)


@pytest.mark.parametrize(
    "name", ["root", "daemon", "slurm", "munge", "jupyterhub", "ailys-grader", "_apt", "nobody"]
)
def test_a_system_or_service_account_name_is_refused(name):
    assert name_problem(name) == f"{name!r} is the name of a system or service account"


def test_a_course_argument_is_a_slug():
    assert slug_problem("ia-industrie") == ""
    assert "is not a course slug" in slug_problem("ia;id")


# --- what root trusts ---------------------------------------------------------------------------------


def fake_lstat(entries):
    """lstat over a table {path: (uid, mode)}; missing paths raise FileNotFoundError."""

    def lstat(path):
        if path not in entries:
            raise FileNotFoundError(2, "No such file or directory", path)
        uid, mode = entries[path]
        return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))

    return lstat


ROOT_DIRS = {"/": (0, stat.S_IFDIR | 0o755), "/etc": (0, stat.S_IFDIR | 0o755)}


def test_a_root_owned_site_file_is_trusted():
    entries = {
        **ROOT_DIRS,
        "/etc/ailys-hub": (0, stat.S_IFDIR | 0o755),
        "/etc/ailys-hub/site.yaml": (0, stat.S_IFREG | 0o644),
    }
    assert trust_problem("/etc/ailys-hub/site.yaml", fake_lstat(entries)) == ""


def test_a_root_owned_sticky_folder_above_is_trusted():
    entries = {
        "/": (0, stat.S_IFDIR | 0o755),
        "/tmp": (0, stat.S_IFDIR | stat.S_ISVTX | 0o777),
        "/tmp/t": (0, stat.S_IFDIR | 0o711),
        "/tmp/t/site.yaml": (0, stat.S_IFREG | 0o644),
    }
    assert trust_problem("/tmp/t/site.yaml", fake_lstat(entries)) == ""


@pytest.mark.parametrize(
    ("where", "entry", "reason"),
    [
        ("/etc/ailys-hub/site.yaml", (1001, stat.S_IFREG | 0o644), "belongs to uid 1001, not root"),
        ("/etc/ailys-hub/site.yaml", (0, stat.S_IFREG | 0o664), "writable by others than root (mode 664)"),
        ("/etc/ailys-hub", (1001, stat.S_IFDIR | 0o755), "/etc/ailys-hub belongs to uid 1001"),
        ("/etc/ailys-hub", (0, stat.S_IFDIR | 0o777), "/etc/ailys-hub is writable by others"),
        ("/etc/ailys-hub/site.yaml", (0, stat.S_IFLNK | 0o777), "is a symbolic link"),
    ],
)
def test_a_site_file_another_account_could_change_is_refused(where, entry, reason):
    entries = {
        **ROOT_DIRS,
        "/etc/ailys-hub": (0, stat.S_IFDIR | 0o755),
        "/etc/ailys-hub/site.yaml": (0, stat.S_IFREG | 0o644),
    }
    entries[where] = entry
    assert reason in trust_problem("/etc/ailys-hub/site.yaml", fake_lstat(entries))


def test_a_missing_site_file_is_named():
    assert (
        trust_problem("/etc/nope.yaml", fake_lstat(ROOT_DIRS)) == "/etc/nope.yaml: No such file or directory"
    )


# --- settings ------------------------------------------------------------------------------------------


def test_a_site_without_trainee_settings_is_refused_naming_the_key(write_catalogue):
    catalogue = load_catalogue(write_catalogue(site=SITE, courses=COURSES))
    assert settings_problem(catalogue) == (
        f"{catalogue.site_file}: spawner.slurm.trainees is not set: this site does not provision trainees"
    )


def test_trainee_settings_are_checked_against_the_host_and_the_spawner(write_catalogue, tmp_path):
    missing = tmp_path / "no-such-folder"
    catalogue = load_catalogue(write_catalogue(site=site(missing), courses=COURSES))
    assert settings_problem(catalogue).endswith(
        f"spawner.slurm.trainees.home_root: {missing} is not a folder"
    )


def test_a_trainee_range_below_the_spawners_min_uid_is_refused(write_catalogue, tmp_path):
    low = site(tmp_path, uid_min=5000)
    low["spawner"]["min_uid"] = 10000
    catalogue = load_catalogue(write_catalogue(site=low, courses=COURSES))
    assert "uid_min (5000) is below spawner.min_uid (10000)" in settings_problem(catalogue)


def test_the_default_settings_make_a_nologin_account_in_the_learners_group():
    t = trainees()
    assert (t.uid_min, t.uid_max, t.shell) == (70000, 79999, "/usr/sbin/nologin")
    values = {
        "username": "tina",
        "uid": "70000",
        "group": "mesolys-learners",
        "home": "/home/tina",
        "shell": t.shell,
        "comment": provision.COMMENT,
        "course": "ia-industrie",
    }
    [useradd] = commands(t.create, values)
    assert useradd[0] == "useradd" and useradd[-1] == "tina"
    for option, value in (
        ("--uid", "70000"),
        ("--gid", "mesolys-learners"),
        ("--shell", "/usr/sbin/nologin"),
    ):
        assert useradd[useradd.index(option) + 1] == value
    assert "HOME_MODE=0700" in useradd and "--no-user-group" in useradd
    assert commands(t.remove, values) == [["userdel", "--remove", "tina"]]


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"create": [["mkuser", "{name}"]]}, "'{name}' names name; known: username, uid"),
        ({"remove": [["rm", "-rf", "{home"]]}, "'{home': "),
        ({"remove": [[]]}, "at least 1 item"),
        ({"uid_min": 80000, "uid_max": 79000}, "uid_max (79000) is below uid_min (80000)"),
        ({"uid_min": 500}, "greater than or equal to 1000"),
        ({"home_root": "homes"}, "home_root must be an absolute path, not homes"),
        ({"command": "sudo -n /usr/local/sbin/ailys-provision-trainee"}, "command must contain {site}"),
        ({"slurm_accounts": []}, "at least 1 item"),
        ({"group": "learners;id"}, "should match pattern"),
    ],
)
def test_bad_trainee_settings_are_refused_with_the_reason(over, reason):
    with pytest.raises(ValidationError) as raised:
        trainees(**over)
    assert reason in str(raised.value)


def test_an_unknown_trainee_setting_is_refused():
    with pytest.raises(ValidationError, match="uid_mni"):
        trainees(uid_mni=70000)


# --- who is a trainee ---------------------------------------------------------------------------------


def test_a_trainee_of_a_short_course_may_be_provisioned(catalogue):
    assert trainee_problem(catalogue, "tina", "ia-industrie", NOW) == ""
    assert trainee_problem(catalogue, "ulla", "ia-industrie", NOW) == ""  # from the cohort file


@pytest.mark.parametrize(
    ("name", "slug", "reason"),
    [
        ("tina", "algo", "course algo is academic, not a short course"),
        ("ben", "ia-industrie", "ben is not a trainee of ia-industrie"),
        ("ghost", "ia-industrie", "ghost is not a trainee of ia-industrie"),
        (
            "ana",
            "ia-partner",
            "ana is also a learner of algo (academic): their account comes from the directory",
        ),
        ("tina", "nope", "no course 'nope'"),
    ],
)
def test_anyone_but_a_trainee_is_refused_with_the_reason(catalogue, name, slug, reason):
    assert reason in trainee_problem(catalogue, name, slug, NOW)


def test_an_instructor_or_admin_listed_as_a_trainee_is_refused(write_catalogue, tmp_path):
    courses = {
        **COURSES,
        "ia-industrie": {**COURSES["ia-industrie"], "learners": ["tina", "root-admin"]},
        "algo": course(instructors=["tina"]),
    }
    catalogue = load_catalogue(write_catalogue(site=site(tmp_path), courses=courses))
    assert trainee_problem(catalogue, "tina", "ia-industrie", NOW) == "tina teaches algo"
    assert (
        trainee_problem(catalogue, "root-admin", "ia-industrie", NOW) == "root-admin is an admin of the site"
    )


def test_a_trainee_outside_their_access_window_is_refused(catalogue):
    later = NOW + dt.timedelta(days=30)  # window: 3 days before the start to 7 days after the end
    assert trainee_problem(catalogue, "tina", "ia-industrie", later) == (
        "the access window of tina's courses is closed"
    )


# --- accounts -----------------------------------------------------------------------------------------


def account(name="tina", uid=70000, gid=4242):
    return pwd.struct_passwd((name, "x", uid, gid, "AILyS trainee", f"/home/{name}", "/usr/sbin/nologin"))


def test_a_new_name_or_a_trainees_own_account_may_be_provisioned():
    assert account_problem(None, trainees(), 4242) == ""
    assert account_problem(account(), trainees(), 4242) == ""  # already made: add is idempotent


@pytest.mark.parametrize(
    ("existing", "reason"),
    [
        (account("root", 0, 0), "root is already an account (uid 0) outside the trainees' range 70000-79999"),
        (account("munge", 104, 106), "munge is already an account (uid 104) outside"),
        (account("ada", 1001, 1001), "ada is already an account (uid 1001) outside the trainees' range"),
        (account("tina", 80000, 4242), "not a trainee's, never taken over"),
        (
            account("tina", 70005, 100),
            "tina (uid 70005) is not in the trainees' group mesolys-learners (gid 100)",
        ),
    ],
)
def test_an_account_that_is_not_a_trainees_is_never_taken_over(existing, reason):
    assert reason in account_problem(existing, trainees(), 4242)


def test_the_first_free_uid_of_the_range_is_taken():
    t = trainees(uid_min=70000, uid_max=70003)
    assert free_uid(t, [1000, 70000, 70001, 70003]) == 70002
    with pytest.raises(Refused, match="no free uid left in the trainees' range 70000-70003"):
        free_uid(t, range(70000, 70004))


def test_the_slurm_account_is_the_sites_unless_the_course_names_an_allowed_one():
    t = trainees()
    assert slurm_account(t, None, "ia-industrie") == "formation"
    assert slurm_account(t, "partner-x", "ia-partner") == "partner-x"
    with pytest.raises(Refused, match=r"course ia-vip charges Slurm account vip, which is not one of"):
        slurm_account(t, "vip", "ia-vip")


# --- the hub's side -------------------------------------------------------------------------------------


def test_the_slurm_applier_gives_the_spawner_the_provisioning_command(catalogue):
    c = Config()
    apply_spawner(c, catalogue)
    assert c.SlurmSpawner.provision_command == [
        "sudo",
        "-n",
        "/usr/local/sbin/ailys-provision-trainee",
        "--site",
        str(catalogue.site_file),
        "add",
        "{username}",
        "{course}",
    ]


def test_a_site_without_trainee_settings_provisions_nobody(write_catalogue):
    catalogue = load_catalogue(write_catalogue(site={**SITE, "spawner": {"kind": "slurm"}}, courses=COURSES))
    c = Config()
    apply_spawner(c, catalogue)
    assert "provision_command" not in c.SlurmSpawner


def test_the_sudoers_arguments_fix_the_site_file_and_the_names(tmp_path):
    site_file = tmp_path / "mesolys.site.yaml"
    pattern = re.compile(sudoers_arguments(site_file))  # POSIX ERE; Python's re agrees on this subset
    assert r"mesolys\.site\.yaml" in pattern.pattern
    for argv in (["add", "tina", "ia-industrie"], ["remove", "tina"]):
        assert pattern.fullmatch(" ".join(["--site", str(site_file), *argv]))
    for argv in (
        ["--site", str(site_file), "add", "tina;id", "ia-industrie"],
        ["--site", str(site_file), "add", "tina", "ia-industrie", "extra"],
        ["--site", str(site_file), "add", "$(id)", "ia-industrie"],
        ["--site", str(site_file), "remove", "tina", "--force"],
        ["--site", str(tmp_path / "mesolysXsiteXyaml"), "remove", "tina"],
        ["--site", "/home/jupyterhub/evil.yaml", "add", "tina", "ia-industrie"],
        ["add", "tina", "ia-industrie"],
    ):
        assert not pattern.fullmatch(" ".join(argv)), argv


def test_hub_command_formats_only_the_site():
    assert hub_command(
        trainees(command="sudo -n /opt/x/ailys-provision-trainee --site {site}"), "/s.yaml"
    ) == [
        "sudo",
        "-n",
        "/opt/x/ailys-provision-trainee",
        "--site",
        "/s.yaml",
        "add",
        "{username}",
        "{course}",
    ]
