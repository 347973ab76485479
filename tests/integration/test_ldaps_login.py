"""Mesolys accounts over LDAPS with a bind template (no service account), against a real slapd and
a real hub: the other way a site may configure authentication.kind ldap than test_ldap_login.py's
StartTLS search-then-bind.

The hub binds straight as ``uid={username},ou=people,...`` on ldaps:// (TLS from the first byte),
checking the directory's certificate against the test's CA; a certificate from another CA is
refused on either kind of TLS.
"""

from __future__ import annotations

import httpx
import pytest

from hub_config.directory import Directory, DirectoryUnavailable
from tests.conftest import OUTPUT
from tests.services import ldap as slapd
from tests.services.hub import RunningHub, course

pytestmark = [pytest.mark.ldap, pytest.mark.hub]

LOGS = OUTPUT / "test_ldaps_login"
SLUG = "lds-ia"
PASSWORDS = {
    "lds-ana": "Ana-ldaps-pw-1",
    "lds-ben": "Ben-ldaps-pw-2",  # disabled by a test
    "lds-prof": "Prof-ldaps-pw-3",
}


@pytest.fixture(scope="module")
def directory():
    with slapd.serving(PASSWORDS, {}, LOGS, "lds-") as server:
        yield server


@pytest.fixture(scope="module")
def hub(directory):
    ldap = {
        "uri": directory.ldaps_uri,
        "tls": "ldaps",
        "ca_file": str(directory.ca_file),
        "user_base": directory.people_base,
        "bind_dn_template": f"uid={{username}},{directory.people_base}",
        "timeout": "3s",
    }
    c = course(SLUG, ["lds-prof"], ["lds-ana", "lds-ben"])
    running = RunningHub([c], site={"authentication": {"kind": "ldap", "ldap": ldap, "admin_users": []}})
    running.passwords.update(PASSWORDS)
    try:
        running.start()
        yield running
    finally:
        if running.hub is not None:
            LOGS.mkdir(parents=True, exist_ok=True)
            (LOGS / "hub.log").write_text(running.log())
        running.stop()


def _post_login(hub: RunningHub, name: str, password: str) -> httpx.Response:
    client = httpx.Client(base_url=hub.url, timeout=30, headers={"Accept-Language": "en"})
    client.get("/hub/login")
    form = {"username": name, "password": password, "_xsrf": client.cookies["_xsrf"]}
    return client.post("/hub/login", data=form)


def test_a_learner_logs_in_over_ldaps_through_the_bind_template(hub):
    client = hub.login("lds-ana", PASSWORDS["lds-ana"])
    home = client.get("/hub/home")
    assert home.status_code == 200 and "lds-ana" in home.text
    assert "LDAP without a service account" in hub.log()  # the hub said what it cannot do


def test_a_wrong_password_an_unknown_name_and_a_dn_in_the_name_are_refused(hub):
    for name, password in [
        ("lds-ana", "not-her-password"),
        ("lds-nobody", "whatever-password"),
        (f"lds-ana,{slapd.BASE}", PASSWORDS["lds-ana"]),  # never a DN of its own making
    ]:
        r = _post_login(hub, name, password)
        assert r.status_code == 403 and "Invalid username or password" in r.text, name


def test_a_disabled_account_is_refused_at_login_without_a_service_account(hub, directory):
    directory.disable("lds-ben")
    r = _post_login(hub, "lds-ben", PASSWORDS["lds-ben"])
    assert r.status_code == 403 and "disabled" in r.text


@pytest.mark.parametrize("tls", ["ldaps", "starttls"])
def test_a_certificate_signed_by_another_ca_is_refused(directory, tmp_path, tls):
    slapd._certificates(tmp_path)  # another CA, the same names
    port = directory.ldaps_port if tls == "ldaps" else directory.port
    dn, password = directory.person_dn("lds-ana"), PASSWORDS["lds-ana"]

    def connect(ca_file):
        return Directory(
            host="127.0.0.1",
            port=port,
            tls=tls,
            user_base=directory.people_base,
            ca_file=str(ca_file),
            timeout=3,
        ).connect(dn, password)

    with pytest.raises(DirectoryUnavailable, match="certificate|CERTIFICATE|verify"):
        connect(tmp_path / "ca.pem")
    conn = connect(directory.ca_file)  # the directory's own CA: bound as her
    assert conn is not None and conn.bound
    conn.unbind()
