"""A real PostgreSQL server on this machine, in a state folder of its own.

Debian's server (postgresql-15 or newer, /usr/lib/postgresql/<version>/bin) runs in the
foreground under this process: as the ``postgres`` account when we are root (PostgreSQL refuses
to run as root), as ourselves otherwise. Everything it uses is in the state folder
(``/dev/shm/ailys-pg-*``, or ``$TMPDIR/ailys-pg-*`` without a tmpfs there): data/ (the cluster,
with its postgresql.conf and pg_hba.conf), run/ (the Unix socket, mode 700) and postgres.log
(unless ``log=`` puts the log elsewhere).

It listens on 127.0.0.1 only, on a free port, with fsync off: a throwaway server for tests.
One role and one database for the hub, reached over TCP with a password (scram-sha-256); pg_hba
admits nothing else over TCP. The superuser ``postgres`` is reached only through the Unix socket
(peer authentication, for our own Unix account), for ``sql(..., admin=True)``.

    with PostgresServer() as server:
        hub = RunningHub(courses, site={"database_url": server.url})
        server.sql("SELECT name FROM users")

The empty cluster is made once per PostgreSQL version by initdb, kept in var/cache/postgres of
the checkout and copied for each server into memory (initdb takes 0.9 to 1.4 s here, the copy 0.1 s).
The server is stopped by the PID it was started with (fast shutdown, SIGINT, like
``pg_ctl stop -m fast``). A state folder whose test process died without stopping its server is
found and cleared by the next ``start()``.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from tests.services import free_port, log_tail

CHECKOUT = Path(__file__).resolve().parents[2]
CACHE = CHECKOUT / "var" / "cache" / "postgres"
STATE_PREFIX = "ailys-pg-"
SERVER_ACCOUNT = "postgres"  # the Unix account the server runs as when we are root
INITDB = (
    "--no-sync",
    "--encoding=UTF8",
    "--locale=C.UTF-8",
    "--username=postgres",
    "--wal-segsize=1",
    "--auth-local=peer",
    "--auth-host=scram-sha-256",
)
# A throwaway server: nothing is written for crash safety, little memory, nothing in the background
# that a test does not need.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "shared_buffers": "16MB",
    "max_connections": "40",
    "autovacuum": "off",
    "jit": "off",
    "huge_pages": "off",
    "ssl": "off",
    "password_encryption": "scram-sha-256",
    "logging_collector": "off",  # stderr, into our log file
    "log_destination": "stderr",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "timezone": "UTC",
}


class PostgresError(RuntimeError):
    """The test server did not start; the message ends with its log."""


def state_parent() -> Path:
    """Where state folders go: /dev/shm when it is a writable tmpfs (copying the cluster there takes
    0.08 s, 0.6 s on this machine's disk), else $TMPDIR."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        with contextlib.suppress(OSError):
            if any(line.split()[1:3] == [str(shm), "tmpfs"] for line in open("/proc/mounts")):
                return shm
    return Path(tempfile.gettempdir())


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL server's programs (Debian's layout), or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")]
    found = [d for d in found if (d / "initdb").exists()]
    if not found:
        return None
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


def driver():
    """The PostgreSQL driver module the tests use: psycopg (3) if installed, else psycopg2. Both have
    the same connect(), cursors, %s parameters, sql.SQL/Identifier and OperationalError."""
    for name in ("psycopg", "psycopg2"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(name)
    return None


def missing() -> str | None:
    """Why no test server can start here, or None."""
    if bin_dir() is None:
        return "PostgreSQL's server is not installed (apt-get install postgresql: /usr/lib/postgresql/*/bin)"
    if driver() is None:
        return "neither psycopg nor psycopg2 is installed in the virtual environment (pip install -e .)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            return f"no {SERVER_ACCOUNT} account to run the server as (it refuses to run as root)"
    return None


class PostgresServer:
    """A PostgreSQL server with one database and one password role for the hub.

    ``url`` is the SQLAlchemy/libpq URL the hub uses (postgresql://user:password@127.0.0.1:port/db);
    ``sql()`` runs a statement, as the hub's role over TCP or as the superuser over the socket.
    ``log``: where the server's log goes (default: postgres.log in the state folder, kept when the
    ``with`` block ends on an exception; otherwise the state folder is removed).
    """

    def __init__(
        self,
        *,
        database: str = "hub",
        user: str = "hub",
        log: Path | str | None = None,
        url_driver: str | None = None,
    ):
        self.url_driver = url_driver  # in the URL (postgresql+<driver>://); None: SQLAlchemy's default
        self.database = database
        self.user = user
        self.password = secrets.token_hex(16)
        self.port = free_port()
        self.root: Path | None = None
        self._log = Path(log) if log else None
        self._popen: subprocess.Popen | None = None
        self.timings: dict[str, float] = {}  # seconds from the start of start() to the end of each step

    # --- what tests use ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = f"postgresql+{self.url_driver}" if self.url_driver else "postgresql"
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def log_file(self) -> Path:
        return self._log or self.root / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def connect(self, *, admin: bool = False, database: str | None = None):
        """A DB-API connection (autocommit, psycopg or psycopg2): the hub's role over TCP with its
        password, or with ``admin`` the superuser over the Unix socket."""
        if admin:
            conn = driver().connect(
                host=str(self.socket_dir),
                port=self.port,
                user="postgres",
                dbname=database or self.database,
                connect_timeout=10,
            )
        else:
            conn = driver().connect(
                host="127.0.0.1",
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=database or self.database,
                connect_timeout=10,
            )
        conn.autocommit = True
        return conn

    def sql(
        self, statement: str, params=None, *, admin: bool = False, database: str | None = None
    ) -> list[tuple]:
        """Run one statement; return its rows ([] for a statement that returns none)."""
        with contextlib.closing(self.connect(admin=admin, database=database)) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    # --- start --------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """Start the server and return once the hub's role can connect; raise PostgresError if not."""
        reason = missing()
        if reason:
            raise PostgresError(reason)
        began = time.monotonic()

        def mark(step: str) -> None:
            self.timings[step] = round(time.monotonic() - began, 3)

        clear_stale_servers()
        try:
            self._prepare()
            mark("data folder")
            self._start_postmaster()
            self._wait("the server to accept connections", self._ready, 60)
            mark("accepting connections")
            self._create_hub_database()
            mark("hub database")
        except BaseException:
            self.stop(remove=False)
            raise
        return self

    def restart(self) -> None:
        """Stop the postmaster (fast shutdown: every client disconnected) and start it again on the
        same data and port, as an administrator's restart or a minor upgrade does."""
        running = psutil.Process(self._popen.pid) if self._popen and self._popen.poll() is None else None
        _stop_postmaster(running, self._popen)
        self._start_postmaster()
        self._wait("the server to accept connections again", self._ready, 60)

    def _as_server(self) -> dict:
        """Popen arguments that run a program as the server's account (we are root) or as us."""
        if os.geteuid() != 0:
            return {}
        return {"user": SERVER_ACCOUNT, "group": pwd.getpwnam(SERVER_ACCOUNT).pw_gid, "extra_groups": []}

    def _server_env(self) -> dict[str, str]:
        home = str(self.root)
        return {
            "PATH": f"{bin_dir()}:/usr/bin:/bin",
            "HOME": home,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PGTZ": "UTC",
        }

    def _prepare(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=STATE_PREFIX, dir=state_parent()))
        (self.root / "owner").write_text(f"{os.getpid()} {psutil.Process().create_time()}\n")
        subprocess.run(
            ["cp", "-a", str(self._template()), str(self.root / "data")], check=True, capture_output=True
        )
        (self.root / "run").mkdir(mode=0o700)
        # our Unix account may use the superuser through the socket (and the server's own, if not us)
        me = pwd.getpwuid(os.geteuid()).pw_name
        ident = "".join(f"admin {name} postgres\n" for name in dict.fromkeys([me, SERVER_ACCOUNT]))
        (self.root / "data" / "pg_ident.conf").write_text(ident)
        (self.root / "data" / "pg_hba.conf").write_text(
            "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
            "local   all  postgres  peer  map=admin\n"
            f"host    {self.database}  {self.user}  127.0.0.1/32  scram-sha-256\n"
        )
        settings = {
            **SETTINGS,
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "unix_socket_permissions": "0700",
        }
        with open(self.root / "data" / "postgresql.conf", "a") as conf:  # after initdb's: ours win
            conf.write("\n# --- AILyS test server (tests/services/postgres.py) ---\n")
            conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_ACCOUNT)
            for path in [self.root, *self.root.rglob("*")]:
                os.lchown(path, account.pw_uid, account.pw_gid)
        self.root.chmod(0o700)  # root still reads the log and reaches the socket
        (self.root / "data").chmod(0o700)  # the server checks it

    def _template(self) -> Path:
        """An empty cluster made by initdb, once per PostgreSQL version and initdb options."""
        version = subprocess.run(
            [str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True
        ).stdout
        key = hashlib.sha1(f"{version} {INITDB} {os.geteuid() == 0}".encode()).hexdigest()[:12]
        template = CACHE / f"data-{key}"
        if template.is_dir():
            return template
        CACHE.mkdir(parents=True, exist_ok=True)
        # initdb runs as the server's account, which may not reach the checkout: build in $TMPDIR
        building = Path(tempfile.mkdtemp(prefix=f"{STATE_PREFIX}initdb-"))
        try:
            if os.geteuid() == 0:
                os.chown(building, pwd.getpwnam(SERVER_ACCOUNT).pw_uid, pwd.getpwnam(SERVER_ACCOUNT).pw_gid)
            argv = [str(bin_dir() / "initdb"), f"--pgdata={building}/data", *INITDB]
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                cwd=building,
                timeout=120,
                stdin=subprocess.DEVNULL,
                env=self._server_env(),
                **self._as_server(),
            )
            if result.returncode != 0:
                output = result.stdout + result.stderr
                raise PostgresError(f"initdb failed (exit {result.returncode}):\n{output}")
            copy = Path(tempfile.mkdtemp(prefix="building-", dir=CACHE))
            try:
                subprocess.run(
                    ["cp", "-a", f"{building}/data", str(copy / "data")], check=True, capture_output=True
                )
                with contextlib.suppress(OSError):  # another process may have made it meanwhile
                    (copy / "data").rename(template)
            finally:
                shutil.rmtree(copy, ignore_errors=True)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        return template

    def _start_postmaster(self) -> None:
        argv = [str(bin_dir() / "postgres"), "-D", str(self.root / "data")]
        with open(self.log_file, "ab") as log:  # opened by us: the server needs no right on its folder
            self._popen = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                env=self._server_env(),
                start_new_session=True,
                **self._as_server(),
            )

    def _ready(self) -> bool:
        """The postmaster says "ready" in postmaster.pid (line 8) once it accepts connections."""
        try:
            lines = (self.root / "data" / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(self._popen.pid) and lines[7].strip() == "ready"

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self._popen.poll() is not None:
                raise PostgresError(
                    f"postgres exited with status {self._popen.returncode} while waiting for {what}:\n"
                    f"--- {self.log_file} ---\n{log_tail(self.log_file)}"
                )
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"timed out after {timeout} s waiting for {what}:\n"
                    f"--- {self.log_file} ---\n{log_tail(self.log_file)}"
                )
            time.sleep(0.02)

    def _create_hub_database(self) -> None:
        sql = importlib.import_module(f"{driver().__name__}.sql")
        with contextlib.closing(self.connect(admin=True, database="postgres")) as conn, conn.cursor() as cur:
            # a literal, not a parameter: psycopg 3 binds parameters on the server, where a utility
            # statement such as CREATE ROLE takes none
            role = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
            cur.execute(role.format(sql.Identifier(self.user), sql.Literal(self.password)))
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.database), sql.Identifier(self.user)
                )
            )
        self.sql("SELECT 1")  # the hub's way in: TCP, password

    # --- stop ---------------------------------------------------------------------------------

    def stop(self, remove: bool = True) -> None:
        """Stop the server by its PID (fast shutdown: clients are disconnected), SIGQUIT then SIGKILL
        if it lingers; then remove the state folder, or with ``remove=False`` keep it (and its log)."""
        if self._popen is not None:
            running = psutil.Process(self._popen.pid) if self._popen.poll() is None else None
            _stop_postmaster(running, self._popen)
            self._popen = None
        if self.root is None:
            return
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            print(f"PostgreSQL test server: state and log kept in {self.root} (log: {self.log_file})")

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, exc_type, *exc) -> None:
        self.stop(remove=exc_type is None)


def _stop_postmaster(process: psutil.Process | None, popen: subprocess.Popen | None = None) -> None:
    """SIGINT (fast shutdown) to the postmaster, then SIGQUIT (immediate), then SIGKILL to it and its
    children; wait until it is reaped (our child) or gone."""
    if process is None:
        if popen is not None:
            popen.wait()
        return
    try:
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for sig, timeout in ((signal.SIGINT, 30), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(sig)
        if sig == signal.SIGKILL:
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=timeout)
                break
        else:
            gone, _ = psutil.wait_procs([process], timeout=timeout)
            if gone:
                break
    psutil.wait_procs(children, timeout=5)


def clear_stale_servers() -> None:
    """Stop the servers of state folders whose test process is gone (killed before it could stop its
    server), and remove those folders."""
    parents = dict.fromkeys([state_parent(), Path(tempfile.gettempdir())])
    for owner in [o for parent in parents for o in parent.glob(f"{STATE_PREFIX}*/owner")]:
        root = owner.parent
        try:
            pid, created = owner.read_text().split()
            if abs(psutil.Process(int(pid)).create_time() - float(created)) <= 0.01:
                continue  # its test process still runs
        except psutil.NoSuchProcess:
            pass
        except (OSError, ValueError):
            continue
        with contextlib.suppress(OSError, ValueError, IndexError, psutil.NoSuchProcess):
            lines = (root / "data" / "postmaster.pid").read_text().splitlines()
            process = psutil.Process(int(lines[0]))
            # the same process: started when postmaster.pid says, on this data folder
            if abs(process.create_time() - int(lines[2])) <= 2 and str(root / "data") in process.cmdline():
                _stop_postmaster(process)
        shutil.rmtree(root, ignore_errors=True)
