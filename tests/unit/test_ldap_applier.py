"""Authentication kind ldap on an empty Config (apply_ldap, through apply_auth), and the pure parts
of reading the directory (hub_config/directory.py)."""

import json
from pathlib import Path

import pytest
from traitlets.config import Config

from hub_config.appliers import apply_all
from hub_config.appliers.auth import apply_auth
from hub_config.catalogue import CatalogueError, load_catalogue
from hub_config.cli import rendered_config
from hub_config.directory import (
    Directory,
    active_filter_for,
    days_since_epoch,
    host_and_port,
    member_uids,
    refresh_course_groups,
    under,
)
from hub_config.login.ldap import DirectoryLogin
from hub_config.secrets import Secrets

from .conftest import SITE

SERVICE_PASSWORD = "s3rvice-Pa55-do-not-print"
PEOPLE = "ou=people,dc=mesolys,dc=fr"


def secrets() -> Secrets:
    return Secrets(Path("/s"), proxy_token="p" * 64, sync_token="s" * 64, cli_token="c" * 64)


def ldap_site(tmp_path, **ldap) -> dict:
    password_file = tmp_path / "ldap-service-password"
    password_file.write_text(SERVICE_PASSWORD + "\n")
    section = {
        "uri": "ldap://ldap.mesolys.example:1389",
        "ca_file": "/etc/ailys/mesolys-ca.pem",
        "user_base": PEOPLE,
        "service_dn": "uid=hub-reader,ou=services,dc=mesolys,dc=fr",
        "service_password_file": str(password_file),
        "group_base": "ou=groups,dc=mesolys,dc=fr",
        **ldap,
    }
    return {**SITE, "authentication": {**SITE["authentication"], "kind": "ldap", "ldap": section}}


@pytest.fixture
def ldap_catalogue(write_catalogue, tmp_path):
    return load_catalogue(write_catalogue(site=ldap_site(tmp_path)))


def test_ldap_search_then_bind_with_the_service_account(ldap_catalogue):
    c = Config()
    apply_auth(c, ldap_catalogue, secrets())
    assert c.JupyterHub.authenticator_class == "hub_config.login.ldap.DirectoryLogin"
    ldap = c.LDAPAuthenticator
    assert (ldap.server_address, ldap.server_port) == ("ldap.mesolys.example", 1389)
    assert ldap.tls_strategy == "before_bind"  # StartTLS, the schema's default
    assert ldap.tls_kwargs == {"ca_certs_file": "/etc/ailys/mesolys-ca.pem"}
    assert ldap.lookup_dn is True and "bind_dn_template" not in ldap
    assert ldap.user_search_base == PEOPLE and ldap.user_attribute == "uid"
    assert ldap.lookup_dn_search_user == "uid=hub-reader,ou=services,dc=mesolys,dc=fr"
    assert "lookup_dn_search_password" not in ldap
    assert c.DirectoryLogin.service_password_file.endswith("ldap-service-password")
    assert c.DirectoryLogin.active_filter == "(|(!(shadowExpire=*))(shadowExpire>={today}))"
    assert c.DirectoryLogin.timeout == 5
    assert c.DirectoryLogin.local_accounts is True  # trainees' local accounts on the same form
    # what every kind shares stays: the catalogue's rules and roles
    assert c.CatalogueRules.site_file == str(ldap_catalogue.site_file)
    assert c.Authenticator.manage_roles is True


def test_ldap_bind_template_and_ldaps(write_catalogue, tmp_path):
    site = ldap_site(
        tmp_path,
        uri="ldaps://ldap.mesolys.example",
        tls="ldaps",
        bind_dn_template="uid={username},ou=people,dc=mesolys,dc=fr",
        service_dn=None,
        service_password_file=None,
        ca_file=None,
    )
    site["authentication"]["local_accounts"] = False
    c = Config()
    apply_auth(c, load_catalogue(write_catalogue(site=site)), secrets())
    ldap = c.LDAPAuthenticator
    assert ldap.server_port == 636 and ldap.tls_strategy == "on_connect"
    assert ldap.bind_dn_template == ["uid={username},ou=people,dc=mesolys,dc=fr"]
    assert "lookup_dn" not in ldap and "tls_kwargs" not in ldap  # the system's CAs
    assert "lookup_dn_search_user" not in ldap and "service_password_file" not in c.DirectoryLogin
    assert c.DirectoryLogin.local_accounts is False


def test_the_service_password_is_nowhere_in_the_config_nor_in_ailys_render(ldap_catalogue):
    config = apply_all(Config(), ldap_catalogue, secrets())
    assert SERVICE_PASSWORD not in json.dumps(config, default=str)
    assert SERVICE_PASSWORD not in json.dumps(rendered_config(ldap_catalogue), default=str)


def test_the_authenticator_built_from_the_config_reaches_the_directory_the_site_names(ldap_catalogue):
    c = apply_all(Config(), ldap_catalogue, secrets())
    c.DirectoryLogin.local_accounts = False  # local accounts need the hub's database
    directory = DirectoryLogin(config=c).directory()
    assert directory == Directory.from_settings(ldap_catalogue.site.authentication.ldap)
    assert directory.has_service_account
    # the password is read from its file when a connection is made, not held by the authenticator
    assert SERVICE_PASSWORD not in repr(vars(DirectoryLogin(config=c)))


@pytest.mark.parametrize(
    "ldap, reason",
    [
        ({"service_password_file": None}, "give bind_dn_template, or service_dn and service_password_file"),
        (
            {"service_password_file": None, "bind_dn_template": "uid={username},ou=people,dc=mesolys,dc=fr"},
            "service_dn and service_password_file go together",
        ),
        ({"uri": "ldap://ldap.mesolys.example", "tls": "ldaps"}, "tls: ldaps needs an ldaps:// uri"),
        ({"uri": "http://ldap.mesolys.example"}, "should match pattern"),
        ({"service_password": "x"}, "unknown key"),
    ],
)
def test_bad_ldap_sections_are_refused_naming_the_key(write_catalogue, tmp_path, ldap, reason):
    with pytest.raises(CatalogueError) as err:
        load_catalogue(write_catalogue(site=ldap_site(tmp_path, **ldap)))
    assert "authentication.ldap" in str(err.value) and reason in str(err.value)


# --- reading the directory: pure parts -------------------------------------------------------------


def test_host_and_port():
    assert host_and_port("ldap://ldap.mesolys.example") == ("ldap.mesolys.example", 389)
    assert host_and_port("ldaps://ldap.mesolys.example/") == ("ldap.mesolys.example", 636)
    assert host_and_port("ldap://127.0.0.1:1389") == ("127.0.0.1", 1389)
    with pytest.raises(ValueError, match="not an ldap:// or ldaps:// URI"):
        host_and_port("https://ldap.mesolys.example")


def test_active_filter_replaces_only_today():
    assert active_filter_for("(shadowExpire>={today})", 20000) == "(shadowExpire>=20000)"
    assert active_filter_for("(&(cn={x})(shadowExpire>={today}))", 1) == "(&(cn={x})(shadowExpire>=1))"
    assert days_since_epoch(__import__("datetime").date(1970, 1, 11)) == 10


def test_member_uids_of_posix_groups_and_groups_of_names():
    names, lookup = member_uids(
        {
            "memberUid": ["Ana", "ben"],
            "member": [
                f"uid=cleo,{PEOPLE}",
                "UID=Dan,OU=People,DC=mesolys,DC=fr",  # DNs compare without case
                "cn=m2-ia,ou=groups,dc=mesolys,dc=fr",  # a nested group: looked up, not a name
                "uid=hub-reader,ou=services,dc=mesolys,dc=fr",  # not under user_base
            ],
            "uniqueMember": [f"uid=eve,{PEOPLE}#'0101'B"],
        },
        "uid",
        PEOPLE,
    )
    assert names == {"ana", "ben", "cleo", "dan", "eve"}
    assert lookup == ["cn=m2-ia,ou=groups,dc=mesolys,dc=fr", "uid=hub-reader,ou=services,dc=mesolys,dc=fr"]


def test_under_compares_dns_without_case():
    assert under("cn=m2-ia,OU=Groups,dc=mesolys,dc=fr", "ou=groups,dc=mesolys,dc=fr")
    assert not under("cn=staff,ou=admins,dc=mesolys,dc=fr", "ou=groups,dc=mesolys,dc=fr")
    assert under("cn=anything,dc=x", None)


# --- the course sync's read of the groups -----------------------------------------------------------


def _with_group(write_catalogue, tmp_path, group, **ldap):
    from .conftest import course

    site_file = write_catalogue(
        site=ldap_site(tmp_path, **ldap), courses={"algo": course(learners_from={"ldap_group": group})}
    )
    return load_catalogue(site_file)


def test_the_directory_down_at_a_sync_keeps_the_groups_last_read(write_catalogue, tmp_path):
    from hub_config import roster
    from tests.services import free_port

    group = "cn=m2-ia,ou=groups,dc=mesolys,dc=fr"
    # nothing listens there: the connection is refused, as by a directory that is down
    catalogue = _with_group(write_catalogue, tmp_path, group, uri=f"ldap://127.0.0.1:{free_port()}")
    roster.write_groups(catalogue.data_dir, "ldap", {group: ["zoe"]})
    catalogue = load_catalogue(catalogue.site_file)
    warnings = []
    assert refresh_course_groups(catalogue, warnings.append) is catalogue
    assert catalogue.learners(catalogue.course("algo")) == ("ana", "ben", "zoe")
    assert len(warnings) == 1 and "directory unavailable, keeping the group members last read" in warnings[0]
    assert roster.read_sources(catalogue.data_dir).groups["ldap"] == {group: frozenset({"zoe"})}


def test_a_group_outside_group_base_is_not_read(write_catalogue, tmp_path):
    from hub_config import roster

    catalogue = _with_group(write_catalogue, tmp_path, "cn=staff,ou=admins,dc=mesolys,dc=fr")
    warnings = []
    refresh_course_groups(catalogue, warnings.append)  # no other group: the directory is not asked
    assert warnings == [
        "algo: learners_from.ldap_group cn=staff,ou=admins,dc=mesolys,dc=fr is not under "
        "ldap.group_base ou=groups,dc=mesolys,dc=fr: not read"
    ]
    assert roster.read_sources(catalogue.data_dir).groups["ldap"] == {}
