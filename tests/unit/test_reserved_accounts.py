"""System accounts are never people of the hub: the schema refuses their names, the authenticator
refuses them at login, and the spawners get the site's min_uid to refuse any account below it."""

import pwd

import pytest
from jupyterhub import orm
from traitlets.config import Config

from hub_config.appliers.spawner import apply_spawner
from hub_config.catalogue import CatalogueError, load_catalogue
from hub_config.login.local import LocalLogin
from hub_config.schema import RESERVED_ACCOUNTS, is_reserved
from spawners.accounts import system_account_reason
from spawners.local import LocalSpawner
from spawners.slurm import SlurmSpawner

from .conftest import SITE, course

RESERVED = [
    "root",
    "daemon",
    "bin",
    "nobody",
    "www-data",
    "munge",
    "slurm",
    "postgres",
    "mysql",
    "sshd",
    "messagebus",
    "systemd-network",
    "systemd-timesync",
    "_apt",
    "jupyterhub",
    "ailys-grader",
]
# Names that only look like reserved ones: people may have them.
ORDINARY = ["ana", "root-admin", "rooty", "slurmer", "mail2", "systemd", "bin-li", "prof_x", "nobody2"]

PLACES = [
    # (where, the site and the course with the name, expected key)
    ("learners", lambda n: (None, course(learners=["ana", n])), "learners[1]"),
    ("instructors", lambda n: (None, course(instructors=[n])), "instructors[0]"),
    (
        "admin_users",
        lambda n: ({**SITE, "authentication": {"admin_users": [n]}}, course()),
        "authentication.admin_users[0]",
    ),
    (
        "grades.emails",
        lambda n: (None, course(grades={"emails": {n: "x@example.org"}})),
        "grades.emails.{n}[key]",
    ),
]


@pytest.mark.parametrize("name", RESERVED)
@pytest.mark.parametrize("where, files, key", PLACES, ids=[p[0] for p in PLACES])
def test_a_reserved_name_is_refused_naming_file_key_and_reason(write_catalogue, name, where, files, key):
    site, algo = files(name)
    site_file = write_catalogue(site=site, courses={"algo": algo})
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(site_file)
    key = key.format(n=name)
    problem = next((p for p in caught.value.problems if p.key == key), None)
    assert problem, caught.value.problems
    course_file = site_file.parent / "courses" / "algo" / "course.yaml"
    assert problem.file == (site_file if where == "admin_users" else course_file)
    assert f"{name!r} is the name of a system or service account" in problem.reason
    assert f": {key}: '{name}' is the name" in str(caught.value)


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_names_are_people(write_catalogue, name):
    site = {**SITE, "authentication": {"admin_users": [name]}}
    catalogue = load_catalogue(write_catalogue(site=site, courses={"algo": course(learners=[name])}))
    assert name in catalogue.people()


def test_service_accounts_keep_their_own_rules(write_catalogue):
    """gallery.run_as and grading.user are system accounts on purpose."""
    site = {**SITE, "gallery": {"run_as": "www-data"}, "grading": {"user": "_grader"}}
    catalogue = load_catalogue(write_catalogue(site=site))
    assert (catalogue.site.gallery.run_as, catalogue.site.grading.user) == ("www-data", "_grader")


def test_the_defaults_of_service_accounts_are_reserved_names_and_valid(catalogue):
    # nobody and ailys-grader could never be learners, yet stay the services' defaults.
    assert catalogue.site.gallery.run_as == "nobody" and is_reserved("nobody")
    assert catalogue.site.grading.user == "ailys-grader" and is_reserved("ailys-grader")


def test_the_reserved_list_covers_debians_static_accounts():
    base_passwd = "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats"
    base_passwd += " nobody"
    assert all(is_reserved(n) for n in base_passwd.split())
    assert len(set(RESERVED_ACCOUNTS)) == len(RESERVED_ACCOUNTS)


@pytest.mark.parametrize("value, words", [(0, "greater than or equal to 1"), ("lots", "valid integer")])
def test_min_uid_must_be_a_positive_uid(write_catalogue, value, words):
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(write_catalogue(site={**SITE, "spawner": {"min_uid": value}}))
    assert [p.key for p in caught.value.problems] == ["spawner.min_uid"]
    assert words in caught.value.problems[0].reason


@pytest.mark.parametrize("kind, spawner_class", [("local", LocalSpawner), ("slurm", SlurmSpawner)])
@pytest.mark.parametrize("setting, expected", [({}, 1000), ({"min_uid": 5000}, 5000)])
def test_the_applier_gives_the_spawner_min_uid(write_catalogue, kind, spawner_class, setting, expected):
    c = Config()
    apply_spawner(c, load_catalogue(write_catalogue(site={**SITE, "spawner": {"kind": kind, **setting}})))
    assert c[spawner_class.__name__].min_uid == expected
    assert spawner_class(config=c).min_uid == expected  # the traitlet the spawner reads
    assert spawner_class.class_traits()["min_uid"].default_value == 1000  # the same default as the schema


def account(uid: int, gid: int | None = None, name: str = "someone") -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", uid, uid if gid is None else gid, "", f"/home/{name}", "/bin/sh"))


@pytest.mark.parametrize(
    "uid, gid, min_uid, words",
    [
        (0, 0, 1000, "uid 0 is below the site's min_uid (1000)"),
        (998, 998, 1000, "uid 998 is below the site's min_uid (1000)"),
        (1500, 1500, 2000, "uid 1500 is below the site's min_uid (2000)"),
        (65534, 65534, 1000, "nobody account"),
        (1001, 0, 1000, "primary group is root"),
        (1000, 1000, 1000, ""),
        (1001, 100, 1000, ""),  # a shared "users" group is common for people
    ],
)
def test_which_accounts_a_learners_server_may_run_as(uid, gid, min_uid, words):
    reason = system_account_reason(account(uid, gid), min_uid)
    assert (words in reason) if words else reason == ""


async def test_a_reserved_name_cannot_log_in_even_with_a_password(write_catalogue, tmp_path):
    """Whatever gives a system account's name a password (an old demo-logins line, a drop-in), the
    authenticator refuses it; an ordinary learner with the same kind of line logs in."""
    logins = tmp_path / "demo-logins.txt"
    logins.write_text("root secret-root-1\nana secret-ana-11\n")
    db = orm.new_session_factory("sqlite://")()
    auth = LocalLogin(db=db, site_file=str(write_catalogue()), demo_logins_file=str(logins))
    assert await auth.get_authenticated_user(None, {"username": "ana", "password": "secret-ana-11"})
    assert await auth.get_authenticated_user(None, {"username": "root", "password": "secret-root-1"}) is None
    assert not auth.check_blocked_users("root") and not auth.check_blocked_users("systemd-network")
    assert not await auth.check_allowed("root") and auth.check_blocked_users("ana")
