"""Trainee cohorts against a real hub and a real SMTP server: `ailys cohort import` a CSV, `ailys
cohort invite` mails the links, a trainee sets their password on the invitation page (with its
_xsrf) and logs in with it; a link works once, an expired one is refused, and a trainee whose
course has not opened yet sets a password but is shown the dates."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.services.hub import RunningHub, course, wait_until
from tests.services.smtp import SmtpServer

pytestmark = pytest.mark.hub

AILYS = str(Path(sys.executable).parent / "ailys")
NOW = dt.date.today()
SLUG, LATER = "cohort-invit", "cohort-invit-later"  # courses no other test uses
CSV = (
    "\ufeffE-mail;Prénom;Nom;Entreprise\r\n"
    "zoe.cohortine@acme.example;Zoé;Cohortine;Acmé\r\n"
    "wanda@acme.example;Wanda;Cohortexpire;Acmé\r\n"
)
LINK = re.compile(r"http://\S+/hub/invitation/[A-Za-z0-9_-]+")
PASSWORD = "pivoine-tulipe-42"


@pytest.fixture(scope="module")
def mail():
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def hub(mail):
    short = {
        "kind": "short-course",
        "start": NOW.isoformat(),
        "end": (NOW + dt.timedelta(days=1)).isoformat(),
    }
    later = {
        "kind": "short-course",
        "start": (NOW + dt.timedelta(days=30)).isoformat(),
        "end": (NOW + dt.timedelta(days=31)).isoformat(),
    }
    running = RunningHub(
        [course(SLUG, ["prof-cohortinv"], [], **short), course(LATER, ["prof-cohortinv"], [], **later)],
        site={
            "smtp": mail.site_settings(),
            "authentication": {"admin_users": ["hubadmin"], "demo_accounts": True},
        },
    )
    try:
        yield running.start()
    finally:
        running.stop()


def ailys(
    hub: RunningHub, *args: str, site: Path | None = None, ok: bool = True
) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [AILYS, "cohort", "--site", str(site or hub.site_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def import_csv(hub: RunningHub, slug: str, text: str) -> dict[str, str]:
    """Import through the CLI; the usernames it gave, by last name."""
    path = hub.root / f"{slug}.csv"
    path.write_text(text, encoding="utf-8")
    out = ailys(hub, "import", slug, str(path)).stdout
    return {last: name for name, last in re.findall(r"^added (\S+)\s+\S+ (\S+) <", out, re.M)}


def form_of(page: httpx.Response) -> str:
    match = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def set_password(client: httpx.Client, link: str, password: str, confirmation: str | None = None):
    page = client.get(link)
    assert page.status_code == 200, page.text
    return client.post(
        link, data={"_xsrf": form_of(page), "password": password, "confirmation": confirmation or password}
    )


def test_invited_by_mail_a_trainee_sets_a_password_once_and_logs_in(hub, mail):
    names = import_csv(hub, SLUG, CSV)
    zoe = names["Cohortine"]
    assert zoe.startswith("zcohortine")
    # a re-import adds nobody
    assert "0 added, 2 already" in ailys(hub, "import", SLUG, str(hub.root / f"{SLUG}.csv")).stdout

    sent = ailys(hub, "invite", SLUG, zoe).stdout
    assert f"invitation sent to {zoe} <zoe.cohortine@acme.example>" in sent
    message = mail.wait_for("zoe.cohortine@acme.example")
    body = message.get_content()
    assert "Bonjour Zoé," in body and "Hello Zoé," in body and zoe in body
    assert "Votre accès" in message["Subject"] and "Your access" in message["Subject"]
    (link,) = set(LINK.findall(body))
    assert link.startswith(hub.url)

    with httpx.Client(timeout=30, headers={"Accept-Language": "fr-FR,fr;q=0.9"}) as browser:
        form = browser.get(link)
        assert "Choisissez votre mot de passe" in form.text and zoe in form.text
        # without the _xsrf of the form: refused
        forged = browser.post(link, data={"password": PASSWORD, "confirmation": PASSWORD})
        assert forged.status_code == 403
        # the rules of local passwords
        differ = set_password(browser, link, PASSWORD, PASSWORD + "!")
        assert differ.status_code == 400 and "Les deux mots de passe diffèrent" in differ.text
        short = set_password(browser, link, "court")
        assert short.status_code == 400 and "trop court" in short.text
        common = set_password(browser, link, "1234567890")
        assert common.status_code == 400 and "plus courants" in common.text
        # the password is set and the trainee is logged in
        done = set_password(browser, link, PASSWORD)
        assert done.status_code == 302, done.text
        home = browser.get(f"{hub.url}/hub/home")
        assert home.status_code == 200 and zoe in home.text

    # the link works once
    again = httpx.get(link, timeout=30, headers={"Accept-Language": "en"})
    assert again.status_code == 410 and "already been used" in again.text
    # the password logs in from a fresh browser
    hub.login(zoe, PASSWORD).close()
    # no token in the hub's log
    assert link.rsplit("/", 1)[1] not in hub.log()
    # a trainee with a password gets no new link
    assert zoe not in ailys(hub, "invitations", SLUG).stdout


def test_an_expired_link_is_refused_and_says_whom_to_ask(hub):
    import_csv(hub, SLUG, CSV)  # imported by the test above, or now when run alone
    wanda = username_of(hub, SLUG, "wanda@acme.example")
    # the same site and folders, with links valid one second
    quick = hub.root / "quick.yaml"
    site = yaml.safe_load(hub.site_file.read_text())
    site["name"] = "quick"
    site["authentication"]["invitation_lifetime"] = "1s"
    quick.write_text(yaml.safe_dump(site))
    out = ailys(hub, "invitations", SLUG, wanda, site=quick).stdout
    (link,) = LINK.findall(out)
    cohort = json.loads((hub.data / "cohorts" / f"{SLUG}.json").read_text())
    expires = next(t for t in cohort["trainees"] if t["username"] == wanda)["invitation"]["expires"]
    wait_until(lambda: dt.datetime.now(dt.UTC) > dt.datetime.fromisoformat(expires), 10, "the link's expiry")
    page = httpx.get(link, timeout=30, headers={"Accept-Language": "en-GB"})
    assert page.status_code == 410
    assert "This invitation has expired" in page.text and "prof-cohortinv" in page.text
    # a fresh link from the site's lifetime works again
    (fresh,) = LINK.findall(ailys(hub, "invitations", SLUG, wanda).stdout)
    assert httpx.get(fresh, timeout=30).status_code == 200
    # a link that never existed
    unknown = httpx.get(f"{hub.url}/hub/invitation/{'A' * 43}", timeout=30)
    assert unknown.status_code == 404 and "n’est pas valable" in unknown.text  # French by default


def test_before_the_course_opens_the_password_is_set_and_the_dates_shown(hub):
    names = import_csv(
        hub, LATER, "email,first name,last name,company\nxavier@acme.example,Xavier,Cohortard,Acme\n"
    )
    xavier = names["Cohortard"]
    (link,) = LINK.findall(ailys(hub, "invitations", LATER).stdout)
    with httpx.Client(timeout=30, headers={"Accept-Language": "en-US,en"}) as browser:
        done = set_password(browser, link, PASSWORD)
        assert done.status_code == 403, done.text
        opens = NOW + dt.timedelta(days=27)  # 3 days before the start: the site's default access.before
        assert "Your password is set" in done.text and f"{opens:%-d %B %Y}" in done.text
    # and the login is refused with the dates, in the browser's language
    with httpx.Client(base_url=hub.url, timeout=30, headers={"Accept-Language": "en"}) as client:
        client.get("/hub/login")
        refused = client.post(
            "/hub/login", data={"username": xavier, "password": PASSWORD, "_xsrf": client.cookies["_xsrf"]}
        )
        assert refused.status_code == 403
        assert "Your access is open only around your course" in refused.text
        assert f"{opens:%-d %B %Y} at" in refused.text


def test_import_refuses_a_bad_file(hub):
    bad = hub.root / "bad.csv"
    bad.write_bytes("email;prénom;nom;entreprise\nzoe@acme.example;Zo\xe9;C;A\n".encode("latin-1"))
    done = ailys(hub, "import", SLUG, str(bad), ok=False)
    assert done.returncode == 1 and "line 2: not UTF-8" in done.stderr and "nothing imported" in done.stderr


def username_of(hub: RunningHub, slug: str, email: str) -> str:
    cohort = json.loads((hub.data / "cohorts" / f"{slug}.json").read_text())
    return next(t["username"] for t in cohort["trainees"] if t["email"] == email)
