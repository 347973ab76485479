"""Who may log in and how: local accounts, the Mesolys directory (LDAP), institutional single
sign-on (OIDC), trainees' access windows, invitations by e-mail and what is kept after a course.

Secrets (the LDAP service account's password, the OIDC client secret, the SMTP password) are
never values here: each is the path of a file the hub's account reads (mode 0600).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .types import Person, Seconds, Strict


class AccessWindow(Strict):
    """When trainees of a short course may log in: from ``before`` its start to ``after`` its end.
    Outside it login is refused with the dates; when it closes, the course sync stops their
    servers, revokes their tokens and ends their hub sessions."""

    before: Seconds = Field(
        3 * 86400, description="How long before the course's start its trainees may log in (3d)."
    )
    after: Seconds = Field(
        7 * 86400,
        description="How long after its end (7d: time to read feedback and take their files away).",
    )


class LdapSettings(Strict):
    """The Mesolys directory (jupyterhub-ldapauthenticator): people log in with their LDAP
    password; a course may take learners from a directory group (course: learners_from)."""

    uri: str = Field(
        pattern=r"^ldaps?://[^/\s]+/?$",
        description="Server, such as ldap://ldap.mesolys.example:389 or ldaps://ldap.mesolys.example.",
    )
    tls: Literal["starttls", "ldaps", "none"] = Field(
        "starttls",
        description="starttls: upgrade an ldap:// connection; ldaps: TLS from the first byte (ldaps://); "
        "none: clear text, for a directory on 127.0.0.1 only.",
    )
    ca_file: Path | None = Field(
        None,
        description="PEM file of the CA that signed the directory's certificate (default: the system's).",
    )
    user_base: str = Field(description="Where people are, such as ou=people,dc=mesolys,dc=fr.")
    user_attribute: str = Field("uid", description="The attribute that holds the login name.")
    bind_dn_template: str | None = Field(
        None,
        description="Bind straight as the person, such as uid={username},ou=people,dc=mesolys,dc=fr. "
        "Without it: search the person with the service account, then bind as what was found.",
    )
    service_dn: str | None = Field(
        None,
        description="DN of the read-only service account: it finds people (without bind_dn_template), "
        "checks active_filter at each auth refresh (without it, only at the next login) and reads the "
        "members of courses' learners_from.ldap_group at each course sync.",
    )
    service_password_file: Path | None = Field(
        None, description="File holding the service account's password (mode 0600), never this file."
    )
    group_base: str | None = Field(
        None,
        description="Where the groups courses may take learners from are, such as "
        "ou=groups,dc=mesolys,dc=fr: a course's learners_from.ldap_group outside it is not read (the "
        "sync says so). None: any group.",
    )
    active_filter: str = Field(
        "(|(!(shadowExpire=*))(shadowExpire>={today}))",
        description="LDAP filter an account must match to log in, checked at login and at each auth refresh; "
        "{today} is today in days since 1970 (shadowExpire's unit). The default refuses an account whose "
        "shadowExpire has passed.",
    )
    timeout: Seconds = Field(
        5,
        ge=1,
        description="Longest wait for the directory before 'identity service unavailable' at login; a "
        "refresh during an outage keeps the session, a course sync keeps the groups last read.",
    )

    @model_validator(mode="after")
    def _bind_or_search(self) -> LdapSettings:
        if not self.bind_dn_template and not (self.service_dn and self.service_password_file):
            raise ValueError("give bind_dn_template, or service_dn and service_password_file to search")
        if bool(self.service_dn) != bool(self.service_password_file):
            raise ValueError("service_dn and service_password_file go together")
        if self.tls == "ldaps" and not self.uri.startswith("ldaps://"):
            raise ValueError("tls: ldaps needs an ldaps:// uri")
        return self


class OidcSettings(Strict):
    """Institutional single sign-on (oauthenticator's GenericOAuthenticator, hub_config/login/oidc.py).
    Register at the provider a confidential client (code flow, PKCE) whose redirect URI is
    <hub URL>/hub/oauth_callback and whose post-logout redirect URI is <hub URL>/hub/login."""

    discovery_url: str = Field(
        pattern=r"^https?://\S+$",
        description="The provider's /.well-known/openid-configuration, read at start for its endpoints.",
    )
    client_id: str = Field(min_length=1, description="This hub's client id at the provider.")
    client_secret_file: Path = Field(description="File holding the client secret (mode 0600).")
    username_claim: str = Field(
        "preferred_username",
        description="Claim that gives the login name; mapped to a Unix name (lowercase, no domain), "
        "refused with a message if it cannot be or if two people map to one name.",
    )
    groups_claim: str | None = Field(
        None, description="Claim listing the person's groups, matched to courses' learners_from.oidc_group."
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email"], description="Scopes asked of the provider."
    )
    button_label: str = Field("Institution", description="Label of the single sign-on button.")


class Smtp(Strict):
    """Where invitations go out."""

    host: str = Field(description="SMTP server.")
    port: int = Field(587, ge=1, le=65535, description="Its port.")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (587), tls (465), none (a relay on 127.0.0.1)."
    )
    username: str | None = Field(None, description="Login, if the server wants one.")
    password_file: Path | None = Field(None, description="File holding its password (mode 0600).")
    sender: str = Field(
        pattern=r"^[^@\s]+@[^@\s]+$", description="From address, such as ailys-hub@mesolys.example."
    )


class Retention(Strict):
    """Trainees' files after their courses close: applied by the course sync and `ailys retention run`."""

    # A trainee: a person whose every course is a short course (hub_config/personal_data/retention.py).

    archive_after: Seconds = Field(
        30 * 86400,
        description="Time after the last window closes before the trainee's home, submissions and "
        "feedback are moved into <data_dir>/archives/<name>-<date>.tar.zst (mode 0600) and deleted.",
    )
    delete_after: Seconds = Field(
        365 * 86400,
        description="How long an archive is kept, from the day it was made; then it is deleted. A "
        "trainee's files are gone at most archive_after + delete_after after their window closes.",
    )


class Authentication(Strict):
    """Who logs in and how. local: passwords the hub keeps (bcrypt hashes in the hub database);
    ldap: the Mesolys directory; oidc: an institutional provider. Trainees of short courses always
    have local accounts, made by `ailys cohort import` and an invitation."""

    kind: Literal["local", "ldap", "oidc"] = Field(
        "local",
        description="local: passwords kept by the hub (NativeAuthenticator); ldap: the directory "
        "(section ldap); oidc: single sign-on (section oidc).",
    )
    local_accounts: bool = Field(
        True,
        description="With ldap or oidc: also offer local accounts (trainees, guests) on the same login page.",
    )
    ldap: LdapSettings | None = Field(None, description="Settings of the ldap kind.")
    oidc: OidcSettings | None = Field(None, description="Settings of the oidc kind.")
    admin_users: list[Person] = Field(
        default_factory=list,
        description="Site administrators. System account names are refused (spawner.min_uid).",
    )
    demo_accounts: bool = Field(
        False,
        description="Give every person of the catalogue, and the admins, a generated password at "
        "`ailys up` (printed once, kept in <data_dir>/secrets/demo-logins.txt). For demos only.",
    )
    minimum_password_length: int = Field(10, ge=8, description="Shortest password accepted.")
    allowed_failed_logins: int = Field(5, ge=0, description="Failed logins before a lockout (0: never).")
    lockout: Seconds = Field(600, description="How long a locked-out login waits.")
    trainee_access: AccessWindow = Field(
        default_factory=AccessWindow, description="Default access window of short courses' trainees."
    )
    invitation_lifetime: Seconds = Field(
        14 * 86400, description="How long an invitation link stays valid (used once)."
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s]+(/\S*)?$",
        description="The hub's address as people reach it (behind nginx), such as "
        "https://hub.ailys.example/, for invitation links. Default: the listen address.",
    )

    @model_validator(mode="after")
    def _kind_has_its_section(self) -> Authentication:
        for kind in ("ldap", "oidc"):
            if self.kind == kind and getattr(self, kind) is None:
                raise ValueError(f"authentication.kind {kind} needs an authentication.{kind} section")
        return self
