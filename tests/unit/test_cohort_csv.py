"""Trainee CSVs as spreadsheets write them, every bad file with its line and reason, usernames
derived from names, and imports into a cohort file (hub_config/cohorts/)."""

from __future__ import annotations

import datetime as dt
import json
import stat

import pytest

from hub_config.catalogue import load_catalogue
from hub_config.cohorts import CohortError, CsvError, import_file
from hub_config.cohorts.invitations import look_up, new_invitations, use
from hub_config.cohorts.spreadsheet import parse_trainees
from hub_config.cohorts.store import import_trainees, read_cohort
from hub_config.cohorts.usernames import ascii_fold, unique_username
from hub_config.roster import read_sources
from tests.unit.conftest import course

HEADER = "email;prénom;nom;entreprise\n"


def csv(*rows: str, header: str = HEADER) -> bytes:
    return (header + "".join(r + "\n" for r in rows)).encode()


# --- good files ----------------------------------------------------------------------------------


def test_a_french_spreadsheet_with_a_bom_semicolons_and_accents():
    data = b"\xef\xbb\xbf" + "E-mail;Prénom;Nom;Société\r\nzoe@acme.fr;Zoé;Cohortine;Acmé SA\r\n".encode()
    (zoe,) = parse_trainees(data)
    assert (zoe.email, zoe.first_name, zoe.last_name, zoe.company) == (
        "zoe@acme.fr",
        "Zoé",
        "Cohortine",
        "Acmé SA",
    )


def test_english_headers_in_another_order_with_commas_and_quotes():
    data = b'Last Name,First name,Company,Email\n"Dupont, jr",Jean,"Acme, Inc",jean@acme.com\n\n'
    (jean,) = parse_trainees(data)
    assert (jean.last_name, jean.company, jean.line) == ("Dupont, jr", "Acme, Inc", 2)


def test_a_trainee_without_company_is_accepted():
    (t,) = parse_trainees(csv("solo@example.org;Solène;Seule;"))
    assert t.company == ""


# --- bad files: (bytes, line, words of the reason) -----------------------------------------------

BAD_FILES = {
    "empty file": (b"", 1, "file is empty"),
    "only blank lines": (b"\n  \n", 1, "file is empty"),
    "header only": (HEADER.encode(), 2, "header but no trainee"),
    "missing column": (b"email;prenom;nom\nzoe@acme.fr;Zoe;Cohortine\n", 1, "missing column company"),
    "unknown column": (
        b"email;prenom;nom;entreprise;telephone\na@b.fr;A;B;C;0600\n",
        1,
        "unknown column 'telephone'",
    ),
    "column given twice": (b"email;courriel;prenom;nom;entreprise\n", 1, "email (courriel) is given twice"),
    "duplicate e-mail": (
        csv("a@acme.fr;Ann;Able;Acme", "b@acme.fr;Bob;Bee;Acme", "a@acme.fr;Al;Able;Acme"),
        4,
        "already on line 2",
    ),
    "e-mail differing only by case": (
        csv("zoe@acme.fr;Zoé;C;Acme", "Zoe@ACME.fr;Zoé;C;Acme"),
        3,
        "already on line 2",
    ),
    "bad e-mail": (
        csv("ok@acme.fr;A;B;C", "zoe.acme.fr;Zoé;Cohortine;Acme"),
        3,
        "'zoe.acme.fr' is not an e-mail address",
    ),
    "e-mail without domain dot": (csv("zoe@acme;Zoé;Cohortine;Acme"), 2, "not an e-mail address"),
    "too many fields": (
        csv("ok@acme.fr;A;B;C", "zoe@acme.fr;Zoé;Cohortine;Acme;extra"),
        3,
        "5 fields where the header has 4",
    ),
    "too few fields": (csv("zoe@acme.fr;Zoé;Cohortine"), 2, "3 fields where the header has 4"),
    "blank first name": (csv("zoe@acme.fr; ;Cohortine;Acme"), 2, "empty first name (prénom)"),
    "blank e-mail and last name": (csv(";Zoé;;Acme"), 2, "empty email (courriel), last name (nom)"),
    "Latin-1 bytes": (
        HEADER.encode() + b"ok@acme.fr;Ana;B;C\nzoe@acme.fr;Zo\xe9;Cohortine;Acme\n",
        3,
        "not UTF-8 (byte 0xe9 at column 15",
    ),
    "unclosed quote": (csv('zoe@acme.fr;"Zoé;Cohortine;Acme'), 2, "cannot be read as CSV"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_file_names_its_line_and_reason(name):
    data, line, reason = BAD_FILES[name]
    with pytest.raises(CsvError) as caught:
        parse_trainees(data, "promo.csv")
    assert any(p.line == line and reason in p.reason for p in caught.value.problems), caught.value.problems
    assert f"promo.csv: line {line}: " in str(caught.value) and "nothing imported" in str(caught.value)


def test_latin1_says_to_save_as_utf8():
    with pytest.raises(CsvError, match="save it from the spreadsheet as 'CSV UTF-8'"):
        parse_trainees("email;prénom;nom;entreprise\n".encode("latin-1"))


def test_every_bad_line_is_listed_at_once():
    data = csv("bad;A;B;C", "ok@acme.fr;;B;C", "ok2@acme.fr;A;B;C;D", "fine@acme.fr;A;B;C")
    with pytest.raises(CsvError) as caught:
        parse_trainees(data)
    assert [p.line for p in caught.value.problems] == [2, 3, 4]


# --- usernames -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first, last, expected",
    [
        ("Zoé", "Cohortine", "zcohortine"),
        ("Élodie", "Le Gall-Œuvray", "elegalloeuvray"),
        ("Jean-Luc", "O'Brien", "jobrien"),
        ("Björn", "Straße", "bstrasse"),
        ("Łukasz", "Żółć", "lzolc"),
        ("李", "王", "trainee"),  # no Latin letter at all
        ("Anne", "2Pac", "a2pac"),
        ("", "007", "t007"),  # a Unix name starts with a letter
    ],
)
def test_usernames_are_ascii_lowercase_from_the_names(first, last, expected):
    assert unique_username(first, last, set()) == expected


def test_a_taken_name_gets_digits():
    taken = {"zcohortine", "zcohortine2"}
    assert unique_username("Zoë", "Cohortine", taken) == "zcohortine3"


def test_reserved_names_are_never_given():
    # Rémi Oot -> root, Sam Lurm -> slurm, Jean Upyterhub -> jupyterhub: system accounts
    assert unique_username("Rémi", "Oot", set()) == "root2"
    assert unique_username("Sam", "Lurm", set()) == "slurm2"
    assert unique_username("Jean", "Upyterhub", set()) == "jupyterhub2"


def test_long_names_are_cut_to_32_characters_digits_included():
    last = "Wolfeschlegelsteinhausenbergerdorff"
    name = unique_username("Hubert", last, set())
    assert name == ("h" + last.lower())[:32] and len(name) == 32
    second = unique_username("Hubert", last, {name})
    assert len(second) == 32 and second.endswith("2") and second[:31] == name[:31]


def test_ascii_fold_keeps_digits_and_drops_punctuation():
    assert ascii_fold("Çà 3-ème") == "ca3eme"


# --- importing into a cohort ---------------------------------------------------------------------

SHORT = course("cohort-unit", kind="short-course", learners=[], instructors=["prof-cohort"])


@pytest.fixture
def site(write_catalogue):
    return write_catalogue(courses={"cohort-unit": SHORT, "algo": course()})


def test_import_writes_a_private_cohort_file_that_the_roster_reads(site, tmp_path):
    catalogue = load_catalogue(site)
    path = tmp_path / "promo.csv"
    path.write_bytes(csv("zoe@acme.fr;Zoé;Cohortine;Acme", "ana@acme.fr;Ana;Ben;Acme"))
    imported = import_file(catalogue, "cohort-unit", path)
    assert [t["username"] for t in imported.added] == ["zcohortine", "aben"]
    cohort_file = catalogue.data_dir / "cohorts" / "cohort-unit.json"
    assert stat.S_IMODE(cohort_file.stat().st_mode) == 0o600
    trainee = json.loads(cohort_file.read_text())["trainees"][0]
    assert {"username", "email", "first_name", "last_name", "company", "imported"} <= trainee.keys()
    assert read_sources(catalogue.data_dir).trainees("cohort-unit") == {"zcohortine", "aben"}
    assert "zcohortine" in load_catalogue(site).learners(load_catalogue(site).course("cohort-unit"))


def test_a_reimport_keeps_usernames_and_adds_only_new_people(site, tmp_path):
    catalogue = load_catalogue(site)
    first = parse_trainees(csv("zoe@acme.fr;Zoé;Cohortine;Acme"))
    import_trainees(catalogue, "cohort-unit", first, accounts=set())
    again = parse_trainees(csv("ZOE@acme.fr;Zoé;Cohortine;Acme", "zed@acme.fr;Zed;Cohortine;Acme"))
    imported = import_trainees(load_catalogue(site), "cohort-unit", again, accounts=set())
    assert [t["username"] for t in imported.kept] == ["zcohortine"]
    assert [t["username"] for t in imported.added] == ["zcohortine2"]
    assert [t["username"] for t in read_cohort(catalogue.data_dir, "cohort-unit")["trainees"]] == [
        "zcohortine",
        "zcohortine2",
    ]


def test_names_of_people_and_host_accounts_are_taken(site):
    catalogue = load_catalogue(site)
    # "prof" teaches algo, "ana" learns there, "htname" is an account of this host
    trainees = parse_trainees(csv("p@acme.fr;Paul;Rof;Acme", "a@acme.fr;Alice;Na;X", "h@acme.fr;Hos;Tname;X"))
    imported = import_trainees(catalogue, "cohort-unit", trainees, accounts={"htname"})
    assert [t["username"] for t in imported.added] == ["prof2", "ana2", "htname2"]


def test_only_short_courses_take_a_cohort(site):
    catalogue = load_catalogue(site)
    with pytest.raises(CohortError, match="algo is of kind academic: only short courses"):
        import_trainees(catalogue, "algo", [])
    with pytest.raises(CohortError, match="no course 'nope'"):
        import_trainees(catalogue, "nope", [])


def test_a_bad_file_imports_nothing(site, tmp_path):
    catalogue = load_catalogue(site)
    path = tmp_path / "promo.csv"
    path.write_bytes(csv("zoe@acme.fr;Zoé;Cohortine;Acme", "bad;A;B;C"))
    with pytest.raises(CsvError):
        import_file(catalogue, "cohort-unit", path)
    assert not (catalogue.data_dir / "cohorts" / "cohort-unit.json").exists()


# --- invitations ---------------------------------------------------------------------------------


def test_an_invitation_is_stored_hashed_used_once_and_expires(site):
    catalogue = load_catalogue(site)
    import_trainees(
        catalogue, "cohort-unit", parse_trainees(csv("zoe@acme.fr;Zoé;Cohortine;Acme")), accounts=set()
    )
    now = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    (invitation,) = new_invitations(catalogue, "cohort-unit", now=now)
    text = (catalogue.data_dir / "cohorts" / "cohort-unit.json").read_text()
    assert invitation.token not in text and len(invitation.token) >= 40
    assert look_up(catalogue.data_dir, invitation.token, now).state == "valid"
    assert look_up(catalogue.data_dir, "x" * 43, now).state == "unknown"
    lifetime = dt.timedelta(seconds=catalogue.site.authentication.invitation_lifetime)
    assert look_up(catalogue.data_dir, invitation.token, now + lifetime).state == "expired"
    # a fresh link replaces the old one
    (fresh,) = new_invitations(catalogue, "cohort-unit", now=now)
    assert look_up(catalogue.data_dir, invitation.token, now).state == "unknown"
    assert use(catalogue.data_dir, fresh.token, now).state == "valid"
    assert use(catalogue.data_dir, fresh.token, now).state == "used"
    # a trainee with a password gets no new link, unless named (a forgotten password)
    assert new_invitations(catalogue, "cohort-unit", now=now) == []
    (again,) = new_invitations(catalogue, "cohort-unit", {"zcohortine"}, now=now)
    assert look_up(catalogue.data_dir, again.token, now).state == "valid"
    with pytest.raises(CohortError, match="not in the cohort of cohort-unit: nobody"):
        new_invitations(catalogue, "cohort-unit", {"nobody"}, now=now)
