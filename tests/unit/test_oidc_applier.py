"""authentication.kind oidc: the applier on an empty Config (no secret in it, no network), the
claim -> Unix name mapping, the groups and names files, and the ID token checks."""

import datetime as dt
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from traitlets.config import Config

from hub_config.appliers.auth import apply_auth
from hub_config.appliers.oidc import SINGLE_SIGN_ON, WITH_LOCAL_ACCOUNTS, apply_oidc
from hub_config.catalogue import load_catalogue
from hub_config.cli import rendered_config
from hub_config.login.oidc import (
    Refused,
    UnmappableName,
    check_id_token,
    claim_name,
    groups_in,
    holder_of,
    read_secret,
    record_groups,
    unix_name,
    with_memberships,
)
from hub_config.roster import read_sources

from .conftest import SITE
from .test_appliers import secrets

SECRET = "the-client-secret-never-in-config"


def oidc_site(**oidc):
    settings = {
        "discovery_url": "https://sso.univ.example/.well-known/openid-configuration",
        "client_id": "ailys-hub",
        "client_secret_file": "secrets/oidc-client-secret",
        "groups_claim": "groups",
        **oidc,
    }
    auth = {**SITE["authentication"], "kind": "oidc", "oidc": settings}
    return {**SITE, "authentication": auth}


@pytest.fixture
def oidc_catalogue(write_catalogue, tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "oidc-client-secret").write_text(SECRET + "\n")
    return load_catalogue(write_catalogue(site=oidc_site()))


def test_oidc_on_an_empty_config(oidc_catalogue, tmp_path):
    c = Config()
    apply_oidc(c, oidc_catalogue)
    assert c.JupyterHub.authenticator_class == WITH_LOCAL_ACCOUNTS  # local_accounts defaults to true
    assert c.SingleSignOn.discovery_url == "https://sso.univ.example/.well-known/openid-configuration"
    # relative to the site file's folder; the file is read by the hub at start, not here
    assert c.SingleSignOn.client_secret_file == str(tmp_path / "secrets" / "oidc-client-secret")
    assert c.SingleSignOn.groups_claim == "groups"
    assert c.GenericOAuthenticator.client_id == "ailys-hub"
    assert c.GenericOAuthenticator.username_claim == "preferred_username"
    assert c.GenericOAuthenticator.scope == ["openid", "profile", "email"]
    assert c.GenericOAuthenticator.enable_pkce is True
    assert c.GenericOAuthenticator.manage_groups is False  # JupyterHub's groups are the courses'
    assert set(c) == {"JupyterHub", "SingleSignOn", "GenericOAuthenticator"}
    # no endpoint is guessed or fetched here: the authenticator reads the discovery document
    assert "authorize_url" not in c.GenericOAuthenticator and "token_url" not in c.GenericOAuthenticator


def test_without_local_accounts_single_sign_on_alone(write_catalogue, tmp_path):
    site = oidc_site()
    site["authentication"]["local_accounts"] = False
    c = Config()
    apply_oidc(c, load_catalogue(write_catalogue(site=site)))
    assert c.JupyterHub.authenticator_class == SINGLE_SIGN_ON


def test_the_secret_is_in_no_config_nor_render(oidc_catalogue):
    c = Config()
    apply_auth(c, oidc_catalogue, secrets())
    assert SECRET not in json.dumps(c, default=str)
    assert "client_secret" not in c.GenericOAuthenticator
    assert SECRET not in json.dumps(rendered_config(oidc_catalogue), default=str)


def test_an_unreadable_secret_names_the_file_and_setting(tmp_path):
    with pytest.raises(ValueError, match=r"authentication.oidc.client_secret_file: cannot read .*missing"):
        read_secret(str(tmp_path / "missing"), "authentication.oidc.client_secret_file")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_secret(str(tmp_path / "empty"), "authentication.oidc.client_secret_file")


@pytest.mark.parametrize(
    ("claim", "name"),
    [
        ("ada", "ada"),
        ("Ada.Lovelace@univ-lyon1.fr", "ada-lovelace"),
        ("  Jérôme Müller ", "jerome-muller"),
        ("o'brien", "o-brien"),
        ("under_score-ok", "under_score-ok"),
        ("12345678", "u12345678"),  # student numbers
        ("x" * 32, "x" * 32),
    ],
)
def test_claims_become_unix_names(claim, name):
    assert unix_name(claim) == name


@pytest.mark.parametrize(
    ("claim", "reason"),
    [("@univ.example", "no letter or digit"), ("日本語", "no letter or digit"), ("x" * 33, "longer than")],
)
def test_claims_that_cannot_be_mapped_say_why(claim, reason):
    with pytest.raises(UnmappableName, match=reason):
        unix_name(claim)


def test_a_name_belongs_to_its_first_subject(tmp_path):
    assert claim_name(tmp_path, "ada", "sub-1") is None
    assert claim_name(tmp_path, "ada", "sub-1") is None  # the same person again
    assert claim_name(tmp_path, "ada", "sub-2") == "sub-1"  # another person: refused
    assert holder_of(tmp_path, "ada") == "sub-1"
    assert holder_of(tmp_path, "ben") is None
    assert (tmp_path / "rosters" / "oidc-names.json").stat().st_mode & 0o077 == 0


def test_groups_change_for_that_person_only():
    groups = {"ml": ["ada", "ben"], "stats": ["ada"]}
    assert with_memberships(groups, "ada", ["ml", "physics"]) == {
        "ml": ["ada", "ben"],
        "physics": ["ada"],
    }  # stats is empty without her, so gone
    assert with_memberships(groups, "ben", []) == {"ml": ["ada"], "stats": ["ada"]}


def test_recorded_groups_are_a_roster_source(tmp_path):
    assert record_groups(tmp_path, "ada", ["ml"]) is True
    assert record_groups(tmp_path, "ben", ["ml", "stats"]) is True
    assert record_groups(tmp_path, "ben", ["ml", "stats"]) is False  # unchanged
    assert read_sources(tmp_path).groups["oidc"] == {"ml": {"ada", "ben"}, "stats": {"ben"}}


def test_a_returning_person_costs_a_stat_and_a_changed_file_is_read_at_once(tmp_path, monkeypatch):
    import hub_config.roster as roster

    assert claim_name(tmp_path, "ada", "sub-1") is None
    assert record_groups(tmp_path, "ada", ["ml"]) is True
    parsed = []
    real = roster.read_json
    monkeypatch.setattr(roster, "read_json", lambda path, missing: parsed.append(path) or real(path, missing))
    for _ in range(3):  # three logins of the same person: her name and groups as they were
        assert holder_of(tmp_path, "ada") == "sub-1"
        assert record_groups(tmp_path, "ada", ["ml"]) is False
    assert len(parsed) <= 2  # each file parsed once at most, then only stat'ed
    assert claim_name(tmp_path, "ben", "sub-2") is None  # a write (this process or another): seen at once
    assert holder_of(tmp_path, "ben") == "sub-2"
    assert record_groups(tmp_path, "ada", ["stats"]) is True
    assert read_sources(tmp_path).groups["oidc"] == {"stats": {"ada"}}


def test_a_groups_claim_is_a_list_of_names():
    assert groups_in(None) == []
    assert groups_in("ml") == ["ml"]
    assert groups_in(["ml", "stats"]) == ["ml", "stats"]
    with pytest.raises(Refused, match="not a list of names"):
        groups_in({"ml": True})


# --- the ID token ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return key, jwt.PyJWKSet.from_dict({"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]})


def id_token(key, **over):
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": "https://sso.example",
        "aud": "ailys-hub",
        "sub": "s1",
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
    }
    return jwt.encode({**claims, **over}, key, algorithm="RS256", headers={"kid": "k1"})


CHECK = {"issuer": "https://sso.example", "client_id": "ailys-hub", "leeway": 0}


def test_a_good_id_token(provider_key):
    key, keys = provider_key
    assert check_id_token(id_token(key), keys, **CHECK)["sub"] == "s1"


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"aud": "another-app"}, "issued for another application"),
        ({"exp": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)}, "has expired"),
        ({"iss": "https://evil.example"}, "not issued by https://sso.example"),
    ],
)
def test_id_tokens_refused(provider_key, over, reason):
    key, keys = provider_key
    with pytest.raises(Refused, match=reason):
        check_id_token(id_token(key, **over), keys, **CHECK)


def test_an_id_token_signed_by_another_key_is_refused(provider_key):
    _, keys = provider_key
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Refused, match="not valid"):
        check_id_token(id_token(other), keys, **CHECK)


def test_an_id_token_signed_with_the_client_secret_is_refused(provider_key):
    _, keys = provider_key
    forged = jwt.encode({"sub": "s1"}, SECRET, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(Refused, match="'HS256', not an algorithm we accept"):
        check_id_token(forged, keys, **CHECK)


# --- the authenticator without its provider ---------------------------------------------------


async def test_a_provider_down_at_start_is_said_and_tried_again(oidc_catalogue, tmp_path, caplog):
    from hub_config.login.oidc import SingleSignOn

    down = "http://127.0.0.1:9/.well-known/openid-configuration"  # discard port: nothing listens
    sso = SingleSignOn(
        site_file=str(oidc_catalogue.site_file),
        discovery_url=down,
        client_secret_file=str(tmp_path / "secrets" / "oidc-client-secret"),
        discovery_timeout=2,
    )
    assert sso.client_secret == SECRET  # read from its file
    assert sso.issuer == ""  # no endpoints yet; the hub starts anyway
    with pytest.raises(Refused) as refused:
        await sso.discover()  # what a click on the button does
    assert refused.value.status_code == 503
    assert f"Identity provider unavailable ({down}" in refused.value.jupyterhub_message


def test_an_unreadable_secret_stops_the_start_naming_the_file(oidc_catalogue, tmp_path):
    from hub_config.login.oidc import SingleSignOn

    with pytest.raises(ValueError, match="authentication.oidc.client_secret_file: cannot read"):
        SingleSignOn(
            site_file=str(oidc_catalogue.site_file),
            discovery_url="http://127.0.0.1:9/",
            client_secret_file=str(tmp_path / "nowhere"),
        )
