"""The Mesolys directory (LDAP) as the hub reads it: who a login name is, whether the account is
still active, who the members of a group are. The authenticator (hub_config/login/ldap.py) and
the course sync (hub_config/sync.py) both go through ``Directory``.

Every connection is encrypted unless the site says ``tls: none`` (StartTLS or LDAPS, the server's
certificate checked against ``ca_file`` or the system's CAs, and its name against the URI's host),
and waits at most ``timeout`` seconds. A directory that cannot be reached (refused, timed out, TLS
failure, the service account refused) raises ``DirectoryUnavailable``: callers tell it apart from
a wrong password, which is an answer.

The service account's password is read from its file at each connection, never kept in a
setting: the file may be replaced (rotated) while the hub runs.

Groups: groupOfNames and groupOfUniqueNames (``member``/``uniqueMember`` hold people's DNs) and
posixGroup (``memberUid`` holds login names) are all read; a member DN that is not a person under
``user_base`` (a nested group, the group itself) is skipped.

ldap3 is synchronous: the hub calls these from a thread, never on its event loop.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ssl
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import (
    LDAPBindError,
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from . import roster
from .catalogue import Catalogue, load_catalogue
from .schema import LdapSettings

TLS_MODES = ("starttls", "ldaps", "none")
MEMBER_ATTRIBUTES = ("member", "uniqueMember", "memberUid")


class DirectoryUnavailable(Exception):
    """The directory could not answer; the message says why (never a password)."""


def days_since_epoch(day: dt.date | None = None) -> int:
    """shadowExpire's unit: ``{today}`` in an active filter."""
    return ((day or dt.date.today()) - dt.date(1970, 1, 1)).days


def active_filter_for(template: str, day: int) -> str:
    """The active filter of a day. Only ``{today}`` is replaced: an LDAP filter may hold other
    braces, which str.format would take for fields."""
    return template.replace("{today}", str(day))


def host_and_port(uri: str) -> tuple[str, int]:
    """ldap://host[:port] or ldaps://host[:port], with LDAP's default ports."""
    parts = urlsplit(uri)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise ValueError(f"{uri!r} is not an ldap:// or ldaps:// URI")
    return parts.hostname, parts.port or (636 if parts.scheme == "ldaps" else 389)


def read_password(path: str | Path) -> str:
    """The first line of a secret file; DirectoryUnavailable naming the file if it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise DirectoryUnavailable(f"the service account's password file {path}: {err.strerror}") from None
    password = text.splitlines()[0] if text.strip() else ""
    if not password:
        raise DirectoryUnavailable(f"the service account's password file {path} is empty")
    return password


def member_uids(attributes: dict, user_attribute: str, user_base: str) -> tuple[set[str], list[str]]:
    """A group entry's members as login names (lowercase, as the hub names users): memberUid values
    as they are; member/uniqueMember DNs whose first RDN is ``user_attribute`` under ``user_base``
    directly. Returns (names, the other DNs, which need a lookup)."""
    names = {str(v).lower() for v in attributes.get("memberUid", []) if str(v).strip()}
    lookup = []
    base = _normal_dn(user_base)
    for key in ("member", "uniqueMember"):
        for dn in attributes.get(key, []):
            dn = str(dn).split("#")[0]  # uniqueMember may carry "#'bits'B"
            try:
                rdns = parse_dn(dn)
            except LDAPException:
                continue
            attr, value, _ = rdns[0]
            if attr.lower() == user_attribute.lower() and under(dn, user_base) and _normal_dn(dn) != base:
                names.add(value.lower())
            else:
                lookup.append(dn)
    return names, lookup


def under(dn: str, base: str | None) -> bool:
    """Whether ``dn`` is ``base`` or below it (DNs compared without case or spaces); any with no base."""
    if not base:
        return True
    dn, base = _normal_dn(dn), _normal_dn(base)
    return dn == base or dn.endswith("," + base)


def _normal_dn(dn: str) -> str:
    try:
        return ",".join(f"{a.lower()}={v.lower()}" for a, v, _ in parse_dn(dn))
    except LDAPException:
        return dn.lower()


@dataclasses.dataclass(frozen=True)
class Directory:
    host: str
    port: int
    tls: str  # starttls, ldaps, none
    user_base: str
    user_attribute: str = "uid"
    ca_file: str | None = None
    timeout: int = 5  # seconds; ldap3 packs its receive timeout as an integer (SO_RCVTIMEO)
    service_dn: str | None = None
    service_password_file: str | None = None

    @classmethod
    def from_settings(cls, settings: LdapSettings) -> Directory:
        host, port = host_and_port(settings.uri)
        return cls(
            host=host,
            port=port,
            tls=settings.tls,
            user_base=settings.user_base,
            user_attribute=settings.user_attribute,
            ca_file=str(settings.ca_file) if settings.ca_file else None,
            timeout=settings.timeout,
            service_dn=settings.service_dn,
            service_password_file=str(settings.service_password_file)
            if settings.service_password_file
            else None,
        )

    @property
    def has_service_account(self) -> bool:
        return bool(self.service_dn and self.service_password_file)

    # --- connections ---------------------------------------------------------------------

    def _server(self) -> ldap3.Server:
        tls = None
        if self.tls != "none":
            tls = ldap3.Tls(ca_certs_file=self.ca_file, validate=ssl.CERT_REQUIRED)
        return ldap3.Server(
            self.host,
            port=self.port,
            use_ssl=self.tls == "ldaps",
            tls=tls,
            connect_timeout=self.timeout,
            get_info=ldap3.NONE,  # no schema read at each connection
        )

    def connect(self, dn: str, password: str) -> ldap3.Connection | None:
        """A connection bound as ``dn``; None if the directory refuses these credentials."""
        bind = ldap3.AUTO_BIND_TLS_BEFORE_BIND if self.tls == "starttls" else ldap3.AUTO_BIND_NO_TLS
        try:
            return ldap3.Connection(
                self._server(),
                user=dn,
                password=password,
                auto_bind=bind,
                read_only=True,
                receive_timeout=int(self.timeout),
            )
        except LDAPBindError as err:
            if "invalidCredentials" in str(err) or "invalid credentials" in str(err).lower():
                return None
            raise DirectoryUnavailable(f"{self.host}:{self.port} refused the bind of {dn}: {err}") from None
        except (LDAPCommunicationError, LDAPResponseTimeoutError, LDAPStartTLSError, OSError) as err:
            raise DirectoryUnavailable(f"{self.host}:{self.port}: {err}") from None
        except LDAPException as err:  # TLS certificate, configuration
            raise DirectoryUnavailable(f"{self.host}:{self.port}: {type(err).__name__}: {err}") from None

    def service(self) -> ldap3.Connection:
        """A connection bound as the service account."""
        if not self.has_service_account:
            raise DirectoryUnavailable("no service account is configured (service_dn, service_password_file)")
        conn = self.connect(self.service_dn, read_password(self.service_password_file))
        if conn is None:
            raise DirectoryUnavailable(
                f"the directory refused the service account {self.service_dn}: "
                f"check the password in {self.service_password_file}"
            )
        return conn

    # --- questions -----------------------------------------------------------------------

    def _search(self, conn: ldap3.Connection, base: str, scope, filter_: str, attributes) -> list:
        try:
            conn.search(base, filter_, search_scope=scope, attributes=list(attributes))
        except (LDAPCommunicationError, LDAPResponseTimeoutError, OSError) as err:
            raise DirectoryUnavailable(f"{self.host}:{self.port}: {err}") from None
        return list(conn.entries)

    def find(self, conn: ldap3.Connection, username: str) -> str | None:
        """The DN of the one person whose login attribute is ``username``; None if none or several."""
        filter_ = f"({self.user_attribute}={escape_filter_chars(username)})"
        entries = self._search(conn, self.user_base, ldap3.SUBTREE, filter_, [])
        return entries[0].entry_dn if len(entries) == 1 else None

    def is_active(self, conn: ldap3.Connection, dn: str, active_filter: str, day: int | None = None) -> bool:
        """Whether the entry ``dn`` matches the active filter of ``day`` (today by default)."""
        filter_ = active_filter_for(active_filter, days_since_epoch() if day is None else day)
        return len(self._search(conn, dn, ldap3.BASE, filter_, [])) == 1

    def group_members(
        self, conn: ldap3.Connection, group_dns: Iterable[str]
    ) -> tuple[dict[str, set[str]], list[str]]:
        """The login names of each group's members, and the groups the directory does not hold."""
        groups, missing = {}, []
        for group in dict.fromkeys(group_dns):
            entries = self._search(conn, group, ldap3.BASE, "(objectClass=*)", MEMBER_ATTRIBUTES)
            if not entries:
                missing.append(group)
                continue
            names, others = member_uids(
                entries[0].entry_attributes_as_dict, self.user_attribute, self.user_base
            )
            for dn in others:
                found = self._search(
                    conn, dn, ldap3.BASE, f"({self.user_attribute}=*)", [self.user_attribute]
                )
                if found and under(found[0].entry_dn, self.user_base):
                    names.update(
                        str(v).lower() for v in found[0].entry_attributes_as_dict[self.user_attribute][:1]
                    )
            groups[group] = names
        return groups, missing


def course_groups(settings: LdapSettings, group_dns: Iterable[str]) -> tuple[dict[str, set[str]], list[str]]:
    """Members of the directory groups courses take learners from, read with the service account
    (the course sync); DirectoryUnavailable if the directory cannot answer."""
    directory = Directory.from_settings(settings)
    conn = directory.service()
    try:
        return directory.group_members(conn, group_dns)
    finally:
        conn.unbind()


def refresh_course_groups(catalogue: Catalogue, warn=None) -> Catalogue:
    """Before a sync plans: read the members of the groups courses take learners from, write them
    to <data_dir>/rosters/ldap.json, and return the catalogue as it now reads. The directory down:
    the groups last written stay, a warning says so, and the catalogue is returned as it was."""
    warn = warn or (lambda line: print(f"course-sync: {line}", file=sys.stderr, flush=True))
    settings = catalogue.site.authentication.ldap
    wanted = []
    for course in catalogue.courses:
        group = course.learners_from.ldap_group
        if group and not under(group, settings.group_base):
            warn(
                f"{course.slug}: learners_from.ldap_group {group} is not under ldap.group_base {settings.group_base}: not read"
            )
        elif group:
            wanted.append(group)
    try:
        groups, missing = course_groups(settings, wanted) if wanted else ({}, [])
    except DirectoryUnavailable as err:
        warn(f"directory unavailable, keeping the group members last read: {err}")
        return catalogue
    for group in missing:
        courses = ", ".join(c.slug for c in catalogue.courses if c.learners_from.ldap_group == group)
        warn(
            f"the directory has no group {group} (learners_from.ldap_group of {courses}): no learners from it"
        )
    if not roster.write_groups(catalogue.data_dir, "ldap", groups):
        return catalogue
    return load_catalogue(catalogue.site_file)
