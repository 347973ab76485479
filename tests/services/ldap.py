"""A real OpenLDAP directory on this machine: Debian's slapd, in a state folder of its own.

What it holds is built by the test: a base ``dc=mesolys,dc=test`` with people under ``ou=people``
(inetOrgPerson + posixAccount + shadowAccount, {SSHA} password hashes), groups under ``ou=groups``
and a read-only service account under ``ou=services``. Groups are groupOfNames (``member`` holds
people's DNs) by default, or posixGroup (``memberUid`` holds their uids) with ``posix=True``: the
hub reads both (hub_config/directory.py).

slapd runs in the foreground under this process (``-d stats``, its log in the state folder), from
a slapd.conf (Debian's schema files, the mdb backend) with the data loaded by slapadd before the
start. It listens on 127.0.0.1 on two free ports (``uri``: ldap:// for StartTLS; ``ldaps_uri``:
TLS from the first byte, the same certificate), and refuses a simple bind (a password) on a
connection that is not encrypted: clients upgrade with StartTLS, trusting the CA the test made
with ``cryptography`` (``ca_file``); the server's certificate names 127.0.0.1 and localhost.
Anonymous binds are refused; the service account reads everything but passwords; a person reads
their own entry.

    with SlapdServer(people=[LdapPerson("ld-ana", "pw")], groups={"m2-ia": ["ld-ana"]}) as ldap:
        site = {"authentication": {"kind": "ldap", "ldap": ldap.site_section()}}
        ldap.disable("ld-ana")                # shadowExpire in the past
        ldap.stop_daemon(); ldap.start_daemon()  # the directory down, then back with its data
        with ldap.frozen(): ...               # a directory that accepts connections, never answers

Changes at run time go through ldap3 as the directory's root DN (``add``, ``modify``). slapd is
stopped by the PID it was started with (SIGTERM, then SIGKILL). A state folder whose test process
died is found and cleared by the next ``start()``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
from pathlib import Path

import psutil

from tests.services import free_port, log_tail

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
STATE_PREFIX = "ailys-ldap-"
BASE = "dc=mesolys,dc=test"
START_TIMEOUT = 30


class SlapdError(RuntimeError):
    """The test directory did not start; the message ends with its log."""


def missing() -> str | None:
    """Why no test directory can start here, or None."""
    for program in (SLAPD, SLAPADD):
        if not os.access(program, os.X_OK):
            return f"{program} is not installed (apt-get install slapd)"
    for name in ("core", "cosine", "nis", "inetorgperson"):
        if not (SCHEMA / f"{name}.schema").exists():
            return f"{SCHEMA}/{name}.schema is missing (Debian's slapd package ships it)"
    if not (MODULES / "back_mdb.so").exists():
        return f"{MODULES}/back_mdb.so is missing (Debian's slapd package ships it)"
    return None


@dataclasses.dataclass
class LdapPerson:
    uid: str
    password: str
    given_name: str = "Test"
    surname: str = ""
    shadow_expire: int | None = None  # days since 1970; None: never expires


def ssha(password: str) -> str:
    """An OpenLDAP {SSHA} hash: SHA-1 of the password and a random salt, then the salt."""
    salt = secrets.token_bytes(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def today() -> int:
    """Today in days since 1970 (shadowExpire's unit)."""
    return (dt.date.today() - dt.date(1970, 1, 1)).days


def _ldif(dn: str, attrs: dict[str, str | list[str]]) -> str:
    lines = [f"dn: {dn}"]
    for key, values in attrs.items():
        for value in [values] if isinstance(values, str) else values:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n\n"


def _certificates(folder: Path) -> None:
    """A CA and a server certificate it signed, for 127.0.0.1 and localhost, valid a day."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("AILyS test directory CA"))
        .issuer_name(name("AILyS test directory CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(server.public_bytes(pem))
    key_file = folder / "server.key"
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)


class SlapdServer:
    """A slapd with the people and groups given; see the module's docstring."""

    def __init__(
        self,
        people: list[LdapPerson] = (),
        groups: dict[str, list[str]] | None = None,
        *,
        posix: bool = False,
        log: Path | str | None = None,
    ):
        self.people = list(people)
        self.groups = dict(groups or {})
        self.posix = posix
        self.port = free_port()  # ldap:// (StartTLS)
        self.ldaps_port = free_port()  # ldaps:// (TLS from the first byte), same certificate
        self.root: Path | None = None
        self._log = Path(log) if log else None
        self._popen: subprocess.Popen | None = None
        self.admin_password = secrets.token_urlsafe(16)
        self.service_password = secrets.token_urlsafe(24)

    # --- names ---------------------------------------------------------------------------

    base = BASE
    people_base = f"ou=people,{BASE}"
    groups_base = f"ou=groups,{BASE}"
    admin_dn = f"cn=admin,{BASE}"
    service_dn = f"uid=hub-reader,ou=services,{BASE}"

    def person_dn(self, uid: str) -> str:
        return f"uid={uid},{self.people_base}"

    def group_dn(self, cn: str) -> str:
        return f"cn={cn},{self.groups_base}"

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    @property
    def service_password_file(self) -> Path:
        return self.root / "service-password"

    @property
    def log_file(self) -> Path:
        return self._log or self.root / "slapd.log"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen and self._popen.poll() is None else None

    def site_section(self, **over) -> dict:
        """The site file's authentication.ldap section for this directory (search then bind)."""
        return {
            "uri": self.uri,
            "tls": "starttls",
            "ca_file": str(self.ca_file),
            "user_base": self.people_base,
            "service_dn": self.service_dn,
            "service_password_file": str(self.service_password_file),
            "group_base": self.groups_base,
            "timeout": "3s",
            **over,
        }

    # --- data ----------------------------------------------------------------------------

    def _person_attrs(self, person: LdapPerson, number: int) -> dict:
        attrs = {
            "objectClass": ["inetOrgPerson", "posixAccount", "shadowAccount"],
            "uid": person.uid,
            "cn": f"{person.given_name} {person.surname or person.uid}",
            "givenName": person.given_name,
            "sn": person.surname or person.uid,
            "uidNumber": str(number),
            "gidNumber": "20000",
            "homeDirectory": f"/home/{person.uid}",
            "loginShell": "/bin/bash",
            "userPassword": ssha(person.password),
        }
        if person.shadow_expire is not None:
            attrs["shadowExpire"] = str(person.shadow_expire)
        return attrs

    def _group_attrs(self, cn: str, uids: list[str], number: int) -> dict:
        if self.posix:
            return {"objectClass": "posixGroup", "cn": cn, "gidNumber": str(number), "memberUid": uids}
        # groupOfNames needs a member: an empty group holds the group's own DN, as directories do
        return {
            "objectClass": "groupOfNames",
            "cn": cn,
            "member": [self.person_dn(u) for u in uids] or [self.group_dn(cn)],
        }

    def ldif(self) -> str:
        out = _ldif(BASE, {"objectClass": ["dcObject", "organization"], "dc": "mesolys", "o": "Mesolys test"})
        for ou in ("people", "groups", "services"):
            out += _ldif(f"ou={ou},{BASE}", {"objectClass": "organizationalUnit", "ou": ou})
        out += _ldif(
            self.service_dn,
            {
                "objectClass": ["account", "simpleSecurityObject"],
                "uid": "hub-reader",
                "userPassword": ssha(self.service_password),
            },
        )
        for number, person in enumerate(self.people, start=30000):
            out += _ldif(self.person_dn(person.uid), self._person_attrs(person, number))
        for number, (cn, uids) in enumerate(self.groups.items(), start=30000):
            out += _ldif(self.group_dn(cn), self._group_attrs(cn, uids, number))
        return out

    def _conf(self) -> str:
        schemas = "".join(
            f"include {SCHEMA}/{n}.schema\n" for n in ("core", "cosine", "nis", "inetorgperson")
        )
        return (
            f"{schemas}"
            f"modulepath {MODULES}\nmoduleload back_mdb\n"
            f"pidfile {self.root}/slapd.pid\nargsfile {self.root}/slapd.args\n"
            f"TLSCACertificateFile {self.root}/ca.pem\n"
            f"TLSCertificateFile {self.root}/server.pem\n"
            f"TLSCertificateKeyFile {self.root}/server.key\n"
            "disallow bind_anon\n"
            "require authc\n"
            # a password only over an encrypted connection (128: any real cipher)
            "security simple_bind=128\n"
            "database mdb\n"
            "maxsize 67108864\n"
            f'suffix "{BASE}"\n'
            f'rootdn "{self.admin_dn}"\n'
            f"rootpw {ssha(self.admin_password)}\n"
            f"directory {self.root}/data\n"
            "access to attrs=userPassword by self =xw by anonymous auth by * none\n"
            f'access to * by dn.exact="{self.service_dn}" read by self read by * none\n'
        )

    # --- start and stop ------------------------------------------------------------------

    def start(self) -> SlapdServer:
        """Make the state folder, load the data, start slapd; raise SlapdError if it does not answer."""
        reason = missing()
        if reason:
            raise SlapdError(reason)
        clear_stale_servers()
        self.root = Path(tempfile.mkdtemp(prefix=STATE_PREFIX))
        (self.root / "owner").write_text(f"{os.getpid()} {psutil.Process().create_time()}\n")
        (self.root / "data").mkdir(mode=0o700)
        try:
            _certificates(self.root)
            self.service_password_file.write_text(self.service_password + "\n")
            self.service_password_file.chmod(0o600)
            (self.root / "slapd.conf").write_text(self._conf())
            (self.root / "data.ldif").write_text(self.ldif())
            loaded = subprocess.run(
                [SLAPADD, "-f", str(self.root / "slapd.conf"), "-l", str(self.root / "data.ldif")],
                capture_output=True,
                text=True,
            )
            if loaded.returncode:
                raise SlapdError(f"slapadd refused the test data:\n{loaded.stderr}")
            self.start_daemon()
        except BaseException:
            self.stop(remove=False)
            raise
        return self

    def start_daemon(self) -> None:
        """Start slapd on its port with the data it has; return once the service account can bind."""
        log = open(self.log_file, "ab")
        argv = [
            SLAPD,
            "-f",
            str(self.root / "slapd.conf"),
            "-h",
            f"{self.uri}/ {self.ldaps_uri}/",
            "-d",
            "stats",
        ]
        self._popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        from tests.services.hub import wait_until

        try:
            wait_until(self._answers, START_TIMEOUT, f"slapd on {self.uri}")
        except TimeoutError as err:
            raise SlapdError(f"{err}; slapd's log:\n{log_tail(self.log_file)}") from None

    def _answers(self) -> bool:
        if self._popen.poll() is not None:
            raise SlapdError(f"slapd exited with {self._popen.returncode}:\n{log_tail(self.log_file)}")
        from ldap3.core.exceptions import LDAPException

        try:
            self.connect(self.service_dn, self.service_password).unbind()
            return True
        except LDAPException:  # not listening yet
            return False

    def stop_daemon(self) -> None:
        """Stop slapd by its PID (SIGTERM, SIGKILL if it lingers); the data stays for start_daemon."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait(timeout=10)
        self._popen = None

    @contextlib.contextmanager
    def frozen(self):
        """slapd stopped by SIGSTOP: connections are accepted by the kernel, never answered (a
        directory that hangs), until SIGCONT at the end of the block."""
        self._popen.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._popen.send_signal(signal.SIGCONT)

    def stop(self, remove: bool = True) -> None:
        self.stop_daemon()
        if self.root is None:
            return
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            print(f"slapd test server: state and log kept in {self.root} (log: {self.log_file})")

    def __enter__(self) -> SlapdServer:
        return self.start()

    def __exit__(self, exc_type, *exc) -> None:
        self.stop(remove=exc_type is None)

    # --- changes at run time ---------------------------------------------------------------

    def connect(self, dn: str, password: str):
        """An ldap3 connection bound as ``dn`` after StartTLS, checking the test CA."""
        import ldap3

        tls = ldap3.Tls(ca_certs_file=str(self.ca_file), validate=ssl.CERT_REQUIRED)
        server = ldap3.Server("127.0.0.1", port=self.port, tls=tls, connect_timeout=5, get_info=ldap3.NONE)
        return ldap3.Connection(
            server, dn, password, auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND, receive_timeout=10
        )

    def _admin(self, what: str, call) -> None:
        conn = self.connect(self.admin_dn, self.admin_password)
        try:
            if not call(conn):
                raise RuntimeError(f"slapd refused to {what}: {conn.result}")
        finally:
            conn.unbind()

    def add(self, dn: str, attrs: dict) -> None:
        attrs = dict(attrs)
        classes = attrs.pop("objectClass")
        self._admin(f"add {dn}", lambda conn: conn.add(dn, classes, attrs))

    def modify(self, dn: str, changes: dict) -> None:
        """``changes``: {attribute: (ldap3.MODIFY_REPLACE or ..., [values])}."""
        self._admin(f"modify {dn}", lambda conn: conn.modify(dn, {k: [v] for k, v in changes.items()}))

    def add_person(self, person: LdapPerson) -> None:
        self.people.append(person)
        self.add(self.person_dn(person.uid), self._person_attrs(person, 30000 + len(self.people)))

    def add_to_group(self, cn: str, uid: str) -> None:
        import ldap3

        attr, value = ("memberUid", uid) if self.posix else ("member", self.person_dn(uid))
        self.modify(self.group_dn(cn), {attr: (ldap3.MODIFY_ADD, [value])})

    def disable(self, uid: str) -> None:
        """Expire the account (shadowExpire yesterday), as Mesolys staff do when someone leaves."""
        import ldap3

        self.modify(self.person_dn(uid), {"shadowExpire": (ldap3.MODIFY_REPLACE, [str(today() - 1)])})


def clear_stale_servers() -> None:
    """Stop the slapd of state folders whose test process is gone, and remove those folders."""
    for owner in Path(tempfile.gettempdir()).glob(f"{STATE_PREFIX}*/owner"):
        root = owner.parent
        try:
            pid, created = owner.read_text().split()
            if abs(psutil.Process(int(pid)).create_time() - float(created)) <= 0.01:
                continue  # its test process still runs
        except psutil.NoSuchProcess:
            pass
        except (OSError, ValueError):
            continue
        with contextlib.suppress(OSError, ValueError, psutil.NoSuchProcess):
            process = psutil.Process(int((root / "slapd.pid").read_text()))
            if str(root / "slapd.conf") in process.cmdline():  # the same slapd, not a reused PID
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def serving(passwords: dict[str, str], groups: dict[str, list[str]], log_dir: Path, prefix: str = ""):
    """A test module's directory: a person per (uid, password), surnamed after the uid without
    ``prefix``, the groups given, slapd's log in ``log_dir``; skipped (failed in CI) without slapd."""
    from tests.conftest import need

    need(missing() is None, missing() or "")
    people = [LdapPerson(uid, pw, surname=uid.removeprefix(prefix)) for uid, pw in passwords.items()]
    server = SlapdServer(people, groups)
    log_dir.mkdir(parents=True, exist_ok=True)
    server._log = log_dir / "slapd.log"
    with server:
        yield server
