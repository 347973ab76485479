"""A real Slurm cluster on this machine, in a state folder of its own.

munged, MariaDB, slurmdbd, slurmctld and several slurmd (one per 127.0.0.x address) are started
as root from Debian's packages, each in the foreground under this process, on free loopback
ports. Every file they use (configuration, munge key and socket, database, spool, state, logs,
pid files) is in the state folder, and every client reaches the cluster through the SLURM_CONF
of ``SlurmCluster.env``, so several clusters, and the system's own, never mix.

    with slurm_cluster(tmp_path) as cluster:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.env)

By hand (``make slurm-up`` / ``make slurm-down``), in var/slurm of the checkout:

    python -m tests.services.slurm up|down|status [--state-dir DIR] [--site SITE_FILE]

With ``--site`` (``make up SITE=slurm``), `up` also gives every person of that site's courses a Unix
account (home under the site's data_dir, mode 700) and a Slurm association, as the administrators of
a real cluster do for theirs.

Each daemon is stopped by the PID recorded when it was started (run/daemons.json), so `down`
works from another process; the logs stay in log/ of the state folder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import psutil

from tests.services import free_port, log_tail, unix_user

TEMPLATES = Path(__file__).parent / "slurm_templates"
CHECKOUT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = CHECKOUT / "var" / "slurm"

# Daemons and the commands the fixture runs; `SlurmCluster.missing_programs()` names absent ones.
PROGRAMS = (
    "munged",
    "munge",
    "mariadb-install-db",
    "mariadbd",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sbatch",
    "squeue",
    "sinfo",
    "scontrol",
    "scancel",
    "sacct",
    "sacctmgr",
)
# A throwaway database: small files, no fsync (mariadb-install-db then takes 0.6 s, not 3 to 10 s),
# made once per MariaDB version in MARIADB_CACHE and copied into each cluster's state folder.
MARIADB_INSTALL = (
    "--no-defaults",
    "--user=root",
    "--auth-root-authentication-method=socket",
    "--skip-test-db",
    "--skip-name-resolve",
    "--innodb-log-file-size=4M",
    "--innodb-buffer-pool-size=32M",
    "--innodb-data-file-path=ibdata1:4M:autoextend",
    "--innodb-autoextend-increment=1",
    "--innodb-flush-method=nosync",
    "--skip-innodb-doublewrite",
    "--innodb-flush-log-at-trx-commit=0",
)
MARIADB_CACHE = CHECKOUT / "var" / "cache" / "mariadb"
# Variables that would point a Slurm client at another cluster or change what it prints.
_CLIENT_VARIABLE = re.compile(r"^(SLURM|SBATCH|SALLOC|SRUN|SQUEUE|SINFO|SACCT|SACCTMGR|SCONTROL|SCANCEL)_")


def open_fuse_to_users() -> None:
    """/dev/fuse readable and writable by everyone, as Debian's udev rule makes it (fuse3's
    60-fuse.rules): learners' jobs run the course image with ch-run, which mounts its SquashFS
    through /dev/fuse as the learner (spawners/slurm/container.py). These machines run no udev, so
    /dev/fuse stays 0600 root until this."""
    fuse = Path("/dev/fuse")
    if fuse.exists() and stat.S_IMODE(fuse.stat().st_mode) != 0o666:
        fuse.chmod(0o666)


class SlurmClusterError(RuntimeError):
    """A daemon of the test cluster did not start; the message ends with its log."""


@dataclass(frozen=True)
class Node:
    name: str
    address: str  # where slurmctld (and a hub) reach it: 127.0.0.2, 127.0.0.3, ...
    port: int
    cpus: int
    memory_mb: int
    gpus: int = 0
    gpu_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Partition:
    name: str
    nodes: tuple[str, ...]
    default: bool = False
    max_cpus_per_node: int | None = None  # None: the node's CPUs
    max_mem_per_node_mb: int | None = None  # None: the node's RealMemory
    gpus_per_node: int = 0
    max_time: str = "INFINITE"


@dataclass
class _Daemon:
    name: str
    pid: int
    create_time: float
    log: str
    popen: subprocess.Popen | None = field(default=None, repr=False)


class SlurmCluster:
    """A Slurm cluster with accounting, started in ``root`` (created if needed).

    ``nodes`` slurmd run on 127.0.0.2, 127.0.0.3, ..., each with ``cpus`` CPUs and ``memory_mb`` of
    memory as Slurm sees them. Two partitions:

    - ``cpu``: every node, the default;
    - ``gpu``: the last node only, which has 2 GPUs (fake devices, counted and allocated by Slurm),
      at most ``gpu_max_cpus`` CPUs and ``gpu_max_mem_mb`` of memory per node for a job; a request
      over these is refused by sbatch (EnforcePartLimits=ALL).

    ``accounts`` are created in slurmdbd; with ``enforce`` (AccountingStorageEnforce) set, a user can
    submit only after ``add_user(name)``; root can always.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        cluster_name: str = "mesolys",
        nodes: int = 2,
        cpus: int = 8,
        memory_mb: int = 4096,
        gpus: int = 2,
        gpu_max_cpus: int = 4,
        gpu_max_mem_mb: int = 2048,
        accounts: tuple[str, ...] = ("ailys",),
        enforce: str = "associations,limits,qos",
        enforce_part_limits: str = "ALL",
        slurmd_timeout: int = 30,
        extra_config: str = "",
    ):
        self.root = Path(root).resolve()
        self.cluster_name = cluster_name
        self.accounts = tuple(accounts)
        # Free on every address: the Slurm daemons listen on all of them, whatever their conf says.
        self.ports = {"mariadb": free_port(""), "slurmdbd": free_port(""), "slurmctld": free_port("")}
        gpu_files = tuple(str(self.root / "dev" / f"gpu{i}") for i in range(gpus))
        self.nodes: list[Node] = [
            Node(
                name=f"node{i}",
                address=f"127.0.0.{i + 1}",
                port=free_port(""),
                cpus=cpus,
                memory_mb=memory_mb,
                gpus=gpus if i == nodes else 0,
                gpu_files=gpu_files if i == nodes else (),
            )
            for i in range(1, nodes + 1)
        ]
        self.partitions: dict[str, Partition] = {
            "cpu": Partition("cpu", tuple(n.name for n in self.nodes), default=True, gpus_per_node=0),
            "gpu": Partition(
                "gpu",
                (self.nodes[-1].name,),
                max_cpus_per_node=gpu_max_cpus,
                max_mem_per_node_mb=gpu_max_mem_mb,
                gpus_per_node=gpus,
            ),
        }
        self.default_partition = "cpu"
        self._settings = {
            "enforce": enforce,
            "enforce_part_limits": enforce_part_limits,
            "slurmd_timeout": slurmd_timeout,
            "def_mem_per_cpu": 256,
            "extra": extra_config,
        }
        self.db_name = "slurm_acct_db"
        self.db_user = "slurm"
        self._daemons: list[_Daemon] = []
        self.timings: dict[str, float] = {}  # seconds from the start of start() to the end of each step

    # --- what later code needs ---------------------------------------------------------------

    @property
    def slurm_conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def env(self) -> dict[str, str]:
        """The environment for Slurm commands (sbatch, squeue, scancel, sacct...) on this cluster."""
        env = {k: v for k, v in os.environ.items() if not _CLIENT_VARIABLE.match(k)}
        env["SLURM_CONF"] = str(self.slurm_conf)
        return env

    @property
    def node_addresses(self) -> dict[str, str]:
        """Node name (as squeue and scontrol report it) to the address where it is reached."""
        return {n.name: n.address for n in self.nodes}

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def run(
        self,
        *argv: str,
        user: str | None = None,
        check: bool = True,
        timeout: float = 30,
        input: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a command with this cluster's environment, as ``user`` (through runuser) if given."""
        command = list(argv) if user is None else ["runuser", "-u", user, "--", *argv]
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, input=input
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, command, result.stdout, result.stderr)
        return result

    def sacctmgr(self, *commands: str) -> None:
        """Run sacctmgr commands (one per string, e.g. "add user bob account=ailys") in one session."""
        self.run("sacctmgr", "-i", input="\n".join(commands) + "\n")

    def add_user(self, name: str, account: str | None = None) -> None:
        """Let Unix user ``name`` submit jobs, under ``account`` (the first of ``accounts`` by default)."""
        self.sacctmgr(f"add user {name} account={account or self.accounts[0]}")

    def spawner_site(self, **slurm: object) -> dict:
        """A site file's `spawner:` of the slurm kind on this cluster (``slurm``: more of its
        `spawner.slurm` keys)."""
        return {
            "kind": "slurm",
            "start_timeout": "2m",
            "slurm": {
                "slurm_conf": str(self.slurm_conf),
                "default_partition": "cpu",
                "node_addresses": self.node_addresses,
                **slurm,
            },
        }

    def sbatch(self, *args: str, user: str | None = None) -> str:
        """Submit a batch job (``args`` as for sbatch, e.g. "-p", "gpu", "--wrap", "hostname"), as
        ``user`` if given; return its job id. A refusal raises CalledProcessError with sbatch's stderr."""
        return self.run("sbatch", "--parsable", *args, user=user).stdout.strip().split(";")[0]

    def job(self, job_id: str | int) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, NumCPUs, TRES, BatchHost, Reason...)."""
        text = self.run("scontrol", "show", "job", "--oneliner", str(job_id)).stdout
        return dict(re.findall(r"(\S+?)=(\S*)", text))

    def wait_job(self, job_id: str | int, states: set[str] | str, timeout: float = 60) -> dict[str, str]:
        """Poll until the job is in one of ``states`` (JobState words: RUNNING, COMPLETED...)."""
        wanted = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        while True:
            info = self.job(job_id)
            if info.get("JobState") in wanted:
                return info
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} still {info.get('JobState')} (reason: {info.get('Reason')}) "
                    f"after {timeout} s, not {' or '.join(sorted(wanted))}"
                )
            time.sleep(0.05)

    # --- start --------------------------------------------------------------------------------

    @staticmethod
    def missing_programs() -> list[str]:
        path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
        return [p for p in PROGRAMS if not shutil.which(p, path=path)]

    def start(self) -> SlurmCluster:
        """Start every daemon and return once every node is idle; raise SlurmClusterError if not."""
        if os.geteuid() != 0:
            raise SlurmClusterError("the test cluster's daemons run as root (SlurmUser=root)")
        self._check_reachable()
        began = time.monotonic()

        def mark(step: str) -> None:
            self.timings[step] = round(time.monotonic() - began, 3)

        try:
            self._prepare()
            self._start_daemon(
                "munged",
                [
                    "munged",
                    "--foreground",
                    f"--socket={self.munge_socket}",
                    f"--key-file={self.root}/munge/munge.key",
                    f"--pid-file={self.root}/run/munged.pid",
                    f"--seed-file={self.root}/munge/munged.seed",
                ],
                log="munged.out",  # in the foreground, munged logs to stderr
            )
            shutil.copytree(self._mariadb_template(), self.root / "db" / "data", symlinks=True)
            mark("mariadb datadir")
            self._start_daemon(
                "mariadbd", ["mariadbd", f"--defaults-file={self.root}/etc/mariadb.cnf"], log="mariadbd.log"
            )
            self._wait("munged", lambda: self._unix_socket_answers(self.munge_socket), 10)
            self._wait("mariadbd", lambda: "ready for connections" in self._read_log("mariadbd.log"), 60)
            mark("mariadbd")
            self._start_daemon("slurmdbd", ["slurmdbd", "-D"], log="slurmdbd.log")
            self._wait("slurmdbd", lambda: self._listening(self.ports["slurmdbd"]), 30)
            mark("slurmdbd")
            self._start_daemon("slurmctld", ["slurmctld", "-D", "-i"], log="slurmctld.log")
            self._wait("slurmctld", lambda: self._listening(self.ports["slurmctld"]), 30)
            mark("slurmctld")
            for node in self.nodes:
                self._start_daemon(
                    f"slurmd-{node.name}", ["slurmd", "-D", "-N", node.name], log=f"slurmd-{node.name}.log"
                )
            self._add_accounts()
            mark("accounts")
            self.wait_for_nodes_idle(60)
            mark("nodes idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _add_accounts(self) -> None:
        commands = [
            f"add account {a} cluster={self.cluster_name} description={a} organization=ailys"
            for a in self.accounts
        ]
        try:
            self.sacctmgr(*commands)
        except subprocess.CalledProcessError as error:
            raise SlurmClusterError(
                f"sacctmgr could not add the accounts: {error.stderr}\n" + self._log_tails(["slurmdbd.log"])
            ) from error

    def _check_reachable(self) -> None:
        """Learners' sbatch must read slurm.conf and reach the munge socket: every parent folder
        of the state folder has to let other users through."""
        for folder in [*reversed(self.root.parents)]:
            mode = folder.stat().st_mode if folder.exists() else 0o755
            if not mode & stat.S_IXOTH:
                raise SlurmClusterError(
                    f"{folder} is not traversable by other users (mode {oct(mode & 0o777)}), "
                    f"so learners could not reach {self.root}: choose another state folder"
                )

    def _prepare(self) -> None:
        if (self.root / "db" / "data").exists():
            raise SlurmClusterError(f"{self.root} already holds a cluster: stop it and remove the folder")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for sub, mode in [
            ("etc", 0o755),
            ("munge", 0o755),
            ("db", 0o700),
            ("log", 0o755),
            ("run", 0o755),
            ("state", 0o755),
            ("state/slurmctld", 0o700),
            ("state/slurmd", 0o755),
            ("dev", 0o755),
            ("home", 0o755),
        ]:
            (self.root / sub).mkdir(exist_ok=True)
            (self.root / sub).chmod(mode)
        for node in self.nodes:
            (self.root / "state" / "slurmd" / node.name).mkdir(mode=0o755, exist_ok=True)
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(secrets.token_bytes(128))
        key.chmod(0o400)
        self._make_gpu_devices()
        open_fuse_to_users()
        db_password = secrets.token_hex(16)
        context = {
            "root": self.root,
            "cluster_name": self.cluster_name,
            "controller_host": socket.gethostname().split(".")[0],
            "ports": self.ports,
            "munge_socket": self.munge_socket,
            "nodes": self.nodes,
            "partitions": self.partitions.values(),
            "db_name": self.db_name,
            "db_user": self.db_user,
            "db_password": db_password,
            **self._settings,
        }
        templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        for template, target, mode in [
            ("slurm.conf.j2", "etc/slurm.conf", 0o644),
            ("gres.conf.j2", "etc/gres.conf", 0o644),
            ("slurmdbd.conf.j2", "etc/slurmdbd.conf", 0o600),
            ("mariadb.cnf.j2", "etc/mariadb.cnf", 0o600),
        ]:
            path = self.root / target
            path.write_text(templates.get_template(template).render(context))
            path.chmod(mode)
        init = self.root / "db" / "init.sql"
        init.write_text(
            f"CREATE DATABASE IF NOT EXISTS {self.db_name};\n"
            f"CREATE OR REPLACE USER '{self.db_user}'@'127.0.0.1' IDENTIFIED BY '{db_password}';\n"
            f"GRANT ALL ON {self.db_name}.* TO '{self.db_user}'@'127.0.0.1';\n"
        )
        init.chmod(0o600)
        self._save_daemons()

    def _make_gpu_devices(self) -> None:
        """Device files for gres.conf: Slurm drops a GPU without one, and refuses a regular file.
        A symbolic link to /dev/null is a character device to it, and needs no CAP_MKNOD."""
        for node in self.nodes:
            for path in map(Path, node.gpu_files):
                if not path.is_symlink():
                    path.symlink_to("/dev/null")

    def _mariadb_template(self) -> Path:
        """An empty MariaDB data folder, made once by mariadb-install-db and copied for each cluster:
        a copy takes some 50 ms, mariadb-install-db 0.6 s, and up to 9 s on a loaded machine."""
        version = subprocess.run(["mariadbd", "--version"], capture_output=True, text=True).stdout
        key = hashlib.sha1(f"{version} {MARIADB_INSTALL}".encode()).hexdigest()[:12]
        template = MARIADB_CACHE / f"datadir-{key}"
        if template.is_dir():
            return template
        MARIADB_CACHE.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix="building-", dir=MARIADB_CACHE))
        try:
            log = self.log_dir / "mariadb-install-db.out"
            argv = ["mariadb-install-db", f"--datadir={building}/data", *MARIADB_INSTALL]
            with open(log, "wb") as out:
                status = subprocess.run(
                    argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120
                ).returncode
            if status != 0:
                raise SlurmClusterError(f"mariadb-install-db failed (exit {status}):\n{log_tail(log)}")
            with contextlib.suppress(OSError):  # another process may have made it meanwhile
                (building / "data").rename(template)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        return template

    def _start_daemon(self, name: str, argv: list[str], log: str) -> None:
        with open(self.log_dir / f"{name}.out", "ab") as out:
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.root,
                start_new_session=True,
            )
        self._daemons.append(_Daemon(name, popen.pid, psutil.Process(popen.pid).create_time(), log, popen))
        self._save_daemons()

    def _save_daemons(self) -> None:
        records = [
            {"name": d.name, "pid": d.pid, "create_time": d.create_time, "log": d.log} for d in self._daemons
        ]
        (self.root / "run" / "daemons.json").write_text(json.dumps(records, indent=1))

    def _read_log(self, name: str) -> str:
        try:
            return (self.log_dir / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait(self, what: str, ready, timeout: float, logs: list[str] | None = None) -> None:
        """Poll ``ready`` while every daemon started so far is alive."""
        deadline = time.monotonic() + timeout
        while not ready():
            for daemon in self._daemons:
                if daemon.popen is not None and daemon.popen.poll() is not None:
                    raise SlurmClusterError(
                        f"{daemon.name} exited with status {daemon.popen.returncode} "
                        f"while waiting for {what}:\n" + self._log_tails([daemon.log, f"{daemon.name}.out"])
                    )
            if time.monotonic() > deadline:
                raise SlurmClusterError(
                    f"timed out after {timeout} s waiting for {what}:\n"
                    + self._log_tails(logs or [self._daemons[-1].log, f"{self._daemons[-1].name}.out"])
                )
            time.sleep(0.02)

    def _log_tails(self, names: list[str]) -> str:
        return "\n".join(f"--- {self.log_dir / n} ---\n{log_tail(self.log_dir / n)}" for n in names)

    @staticmethod
    def _listening(port: int) -> bool:
        """Whether a TCP socket listens on ``port``, read from /proc: connecting to probe would make
        slurmctld log an error for the empty message."""
        wanted = f":{port:04X} "
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(FileNotFoundError), open(table) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A" and (fields[1] + " ").endswith(wanted):
                        return True
        return False

    @staticmethod
    def _unix_socket_answers(path: Path) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            return s.connect_ex(str(path)) == 0

    def node_states(self) -> dict[str, str]:
        """Node name to its state as sinfo reports it (idle, mixed, alloc, down*, ...)."""
        out = self.run("sinfo", "--noheader", "--Node", "--format=%N %t", check=False, timeout=10).stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def _nodes_idle(self) -> bool:
        states = self.node_states()
        return all(states.get(n.name) == "idle" for n in self.nodes)

    def wait_for_nodes_idle(self, timeout: float = 60) -> None:
        logs = [f"slurmd-{n.name}.log" for n in self.nodes]
        self._wait("the nodes to be idle", self._nodes_idle, timeout, logs=logs)

    # --- controller outages, for the tests of a hub that must survive them ---------------------

    def stop_controller(self) -> None:
        """Stop slurmctld; jobs keep running on the nodes. Meanwhile squeue, sinfo and sbatch fail
        with "Unable to contact slurm controller" after about 9 s of retries; `scontrol ping` says
        DOWN at once."""
        controller = [d for d in self._daemons if d.name == "slurmctld"]
        self._stop_daemons(controller)
        self._daemons = [d for d in self._daemons if d not in controller]
        self._save_daemons()

    def start_controller(self, timeout: float = 30) -> None:
        """Start slurmctld again from its saved state; wait until it answers and every node has
        registered again (idle, mixed or allocated: not unknown, down or not responding)."""
        self._start_daemon("slurmctld", ["slurmctld", "-D"], log="slurmctld.log")
        self._wait("slurmctld", lambda: self._listening(self.ports["slurmctld"]), timeout)

        def nodes_back() -> bool:
            states = self.node_states()
            return all(
                states.get(n.name, "unk").rstrip("*") in {"idle", "mix", "alloc"}
                and not states[n.name].endswith("*")
                for n in self.nodes
            )

        self._wait("the nodes to register again", nodes_back, timeout, logs=["slurmctld.log"])

    # --- stop -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every daemon by its PID and reap it (the nodes, the controller, slurmdbd, then
        MariaDB and munged), then kill what is left of this cluster's jobs:
        slurmstepd outlives slurmd. (Cancelling the jobs first would make slurmd and slurmctld
        take 5 to 15 s to stop, busy with the kill.)"""
        if not self._daemons:
            self._load_daemons()
        # slurmd before slurmctld: stopped together, they sometimes hang until SIGKILL
        for group in (("slurmd-",), ("slurmctld",), ("slurmdbd",), ("mariadbd", "munged")):
            self._stop_daemons([d for d in self._daemons if d.name.startswith(group)])
        self._daemons = []
        self._save_daemons()
        self._end_leftover_jobs()

    def _stop_daemons(self, daemons: list[_Daemon], timeout: float = 15) -> None:
        """SIGTERM to each daemon that is still the process we started, SIGKILL after ``timeout``;
        wait for each to be reaped (or, when not our child, to be gone or a zombie)."""
        running = []
        for daemon in daemons:
            try:
                process = psutil.Process(daemon.pid)
                if abs(process.create_time() - daemon.create_time) > 0.01:
                    continue  # the PID was reused: not ours
            except psutil.NoSuchProcess:
                if daemon.popen is not None:
                    daemon.popen.wait()
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon.pid, signal.SIGTERM)
            running.append((daemon, process))
        deadline = time.monotonic() + timeout
        for daemon, process in running:
            if not self._reaped(daemon, process, max(0.0, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(daemon.pid, signal.SIGKILL)
                self._reaped(daemon, process, 10)

    @staticmethod
    def _reaped(daemon: _Daemon, process: psutil.Process, timeout: float) -> bool:
        if daemon.popen is None:  # not our child: started by another process (make slurm-up)
            return SlurmCluster._gone(process, timeout)
        try:
            daemon.popen.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    @staticmethod
    def _gone(process: psutil.Process, timeout: float) -> bool:
        """Wait until a process that is not our child is gone, or a zombie for its parent to reap."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def _end_leftover_jobs(self) -> None:
        """Kill what is left of this cluster's jobs, once its daemons are stopped: slurmstepd outlives
        slurmd (it keeps slurmd's working directory, the state folder; its environment is empty),
        and proctrack/linuxproc can lose a job's process whose parent died first (seen once: the
        `sleep` of a cancelled `--wrap "sleep 300"` went on running). A job's processes carry
        SLURM_CONF and SLURM_JOB_ID in their environment."""
        spared = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
        doomed: dict[int, psutil.Process] = {}
        for process in psutil.process_iter(["name", "cwd"]):
            if process.pid in spared:
                continue
            try:
                cwd = process.info["cwd"] or ""
                in_state_folder = cwd == str(self.root) or cwd.startswith(f"{self.root}/")
                if process.info["name"] == "slurmstepd" and in_state_folder:
                    doomed.update((p.pid, p) for p in [process, *process.children(recursive=True)])
                    continue
                env = process.environ()
                if env.get("SLURM_CONF") == str(self.slurm_conf) and "SLURM_JOB_ID" in env:
                    doomed[process.pid] = process
            except psutil.Error:
                continue
        for process in doomed.values():
            with contextlib.suppress(psutil.Error):
                process.kill()
        for process in doomed.values():  # not our children: gone, or a zombie until PID 1 reaps it
            self._gone(process, 5)

    def _load_daemons(self) -> None:
        path = self.root / "run" / "daemons.json"
        if path.exists():
            self._daemons = [_Daemon(**record) for record in json.loads(path.read_text())]

    def running_daemons(self) -> dict[str, int]:
        """Daemon name to PID, for the recorded daemons that are alive (from this or another process)."""
        if not self._daemons:
            self._load_daemons()
        alive = {}
        for d in self._daemons:
            with contextlib.suppress(psutil.NoSuchProcess):
                p = psutil.Process(d.pid)
                if abs(p.create_time() - d.create_time) <= 0.01 and p.status() != psutil.STATUS_ZOMBIE:
                    alive[d.name] = d.pid
        return alive

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def slurm_cluster(root: Path | str, **options):
    """A started cluster for the duration of a ``with`` block (or a pytest fixture's yield)."""
    cluster = SlurmCluster(root, **options)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


# --- by hand: make slurm-up / make slurm-down ------------------------------------------------------


def _describe(cluster: SlurmCluster) -> str:
    lines = [f"cluster {cluster.cluster_name} in {cluster.root}", f"export SLURM_CONF={cluster.slurm_conf}"]
    lines += [f"  {name}: pid {pid}" for name, pid in cluster.running_daemons().items()]
    return "\n".join(lines)


def enroll_people(cluster: SlurmCluster, site_file: Path) -> list[str]:
    """Unix accounts and Slurm associations for the people of a site's courses; returns the new accounts."""
    from hub_config.catalogue import load_catalogue  # only the by-hand path needs the hub's models

    catalogue = load_catalogue(site_file)
    homes = catalogue.data_dir / "homes"
    homes.mkdir(parents=True, exist_ok=True)
    for folder in (catalogue.data_dir, homes):
        folder.chmod(0o711)  # learners' jobs reach their homes through these
    created = []
    for name in sorted(catalogue.people()):
        try:
            pwd.getpwnam(name)
        except KeyError:
            unix_user(name, homes)
            created.append(name)
    known = set(
        cluster.run("sacctmgr", "--noheader", "--parsable2", "list", "users", "format=user").stdout.split()
    )
    missing = sorted(set(catalogue.people()) - known)
    if missing:
        cluster.sacctmgr(*(f"add user {name} account={cluster.accounts[0]}" for name in missing))
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.services.slurm", description=__doc__.split(".")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--site", type=Path, help="with up: give the people of this site's courses accounts")
    args = parser.parse_args(argv)
    code = _main(args)
    if code == 0 and args.action == "up" and args.site:
        cluster = SlurmCluster(args.state_dir.resolve())
        created = enroll_people(cluster, args.site)
        print(
            f"accounts of {args.site.name}'s people: ready"
            + (f" (created {', '.join(created)})" if created else "")
        )
    return code


def _main(args: argparse.Namespace) -> int:
    state = args.state_dir.resolve()
    previous = SlurmCluster(state)  # ports unused: only to find the recorded daemons
    running = previous.running_daemons()
    if args.action == "status":
        if not running:
            print(f"no Slurm test cluster is running in {state}")
            return 1
        conf = state / "etc" / "slurm.conf"
        print(f"daemons of {state}: " + ", ".join(f"{n} ({p})" for n, p in running.items()))
        print(f"export SLURM_CONF={conf}")
        env = {**previous.env, "SLURM_CONF": str(conf)}
        return subprocess.run(["sinfo"], env=env).returncode
    if args.action == "down":
        previous.stop()
        print(f"stopped the Slurm test cluster in {state} (logs in {state / 'log'})")
        return 0
    recorded = {d.name for d in previous._daemons}
    if running and set(running) == recorded:
        print(f"a Slurm test cluster already runs in {state}: " + ", ".join(running))
        print(f"export SLURM_CONF={state / 'etc' / 'slurm.conf'}")
        return 0
    if running:  # some daemons died: start again from scratch
        stopped = ", ".join(sorted(recorded - set(running)))
        print(f"restarting the Slurm test cluster in {state}: {stopped} had stopped")
        previous.stop()
    shutil.rmtree(state, ignore_errors=True)  # a fresh cluster: configuration, database and logs
    started = time.monotonic()
    cluster = SlurmCluster(state)
    try:
        cluster.start()
    except SlurmClusterError as error:
        print(f"the Slurm test cluster did not start: {error}", file=sys.stderr)
        return 1
    print(f"Slurm test cluster up in {time.monotonic() - started:.1f} s")
    print(_describe(cluster))
    subprocess.run(["sinfo"], env=cluster.env)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def need_cluster() -> None:
    """Skip loudly on a machine that cannot start the cluster; fail in CI."""
    from tests.conftest import need

    missing = SlurmCluster.missing_programs()
    need(not missing, f"the Slurm test cluster needs {', '.join(missing)} (make test-deps installs them)")
    need(os.geteuid() == 0, "the Slurm test cluster runs its daemons as root")


def cluster_for_tests(request, **options):
    """The body of a module-scoped pytest fixture: a fresh cluster, or a loud skip (a failure in
    CI) where it cannot start. If a test of the module failed, the daemons' logs and the jobs'
    logs are kept in test-output/<module>-slurm-logs/."""
    from tests.conftest import OUTPUT

    need_cluster()
    root = Path(tempfile.mkdtemp(prefix="ailys-slurm-"))
    failed_before = request.session.testsfailed
    started = False
    try:
        with slurm_cluster(root, **options) as running:
            started = True
            yield running
    finally:
        failed = not started or request.session.testsfailed > failed_before
        if failed and (root / "log").is_dir():
            kept = OUTPUT / f"{request.module.__name__.rsplit('.', 1)[-1]}-slurm-logs"
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(root / "log", kept, dirs_exist_ok=True)
            for home in (root / "home").glob("*"):
                for log in home.glob(".ailys-hub-slurm-*.log"):
                    shutil.copy(log, kept / f"{home.name}-{log.name.lstrip('.')}")
        shutil.rmtree(root, ignore_errors=True)
