"""A deploy of ansible/site.yml onto the test target, for tests/ansible and `make bench-deploy`.

The project comes from a git repository the test makes: a copy of this checkout's files (what
`git ls-files` lists, uncommitted work included), committed as version 1, mounted read-only in
the target and cloned from there by the hub role, as a production node clones the project's
URL. An upgrade is a new commit on it. The certificate nginx serves is signed by a CA the test
makes; its key reaches the node as a variable, as a vaulted one would. The inventory and
variables live in the test's folder, never in the repository.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.ansible.target import REPO, TARGET_HOST_CA, Target, wheelhouse
from tests.ansible.units import Launcher

PLAYBOOK = REPO / "ansible" / "site.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
SOURCE_IN_TARGET = "/srv/ailys-hub.git"
WHEELHOUSE_IN_TARGET = "/srv/wheelhouse"
HUB_USER = "d18-hub"
UNITS = ("ailys-proxy", "ailys-hub", "nginx")
SITE = {
    "name": "d18-target",
    "description": "The deploy test's service node",
    "authentication": {"kind": "local", "admin_users": ["hubadmin"], "demo_accounts": True},
    # The test site: learners' servers as local processes of the non-root hub (so all as its
    # account, the laptop-demo mode); the Slurm site's sudo rule is rendered and checked alone.
    "spawner": {"kind": "local"},
    "gallery": {"enabled": False},  # its preheated kernels: not what this test is about
}


@dataclasses.dataclass
class Run:
    returncode: int
    output: str
    seconds: float

    @property
    def changed(self) -> int:
        """changed= of the target's PLAY RECAP line."""
        found = re.findall(r"^\S+\s*:\s*ok=\d+\s+changed=(\d+)", self.output, re.M)
        assert found, f"no PLAY RECAP in the output:\n{self.output[-3000:]}"
        return int(found[-1])


def source_repo(folder: Path, message: str = "deploy test: version 1") -> Path:
    """A git repository holding this checkout's files (tracked and new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    git(folder, "init", "-q", "-b", "main")
    commit(folder, message)
    return folder


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=d18 deploy test", "-c", "user.email=d18@localhost", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def commit(folder: Path, message: str) -> str:
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "--allow-empty", "-m", message)
    return git(folder, "rev-parse", "HEAD")


def make_pki(folder: Path, names: list[str], days: int = 30) -> dict[str, Path]:
    """A CA, and a certificate it signs for ``names`` (host names or IP addresses)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def pem_key(key) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d18 deploy test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=61))
        .not_valid_after(now + dt.timedelta(days=max(days, 1) + 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=60))  # days < 0: one that has expired
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.pem", "cert": folder / "hub.pem", "key": folder / "hub.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(pem_key(key))
    paths["key"].chmod(0o600)
    return paths


class Deploy:
    """The target, its inventory and variables, and the playbook runs against it."""

    def __init__(self, work: Path):
        self.work = work
        self.src = source_repo(work / "src")
        self.target = Target(work / "target")
        self.launcher = Launcher(self.target)
        self.pki = make_pki(work / "pki", ["127.0.0.1", "localhost"])
        self.url = f"https://127.0.0.1:{self.target.https_port}"
        self.inventory = work / "inventory.yml"
        self.vars_file = work / "vars.json"
        self.runs: list[Run] = []

    def start(self) -> Deploy:
        self.target.start({self.src: SOURCE_IN_TARGET, wheelhouse(): WHEELHOUSE_IN_TARGET})
        self.inventory.write_text(
            json.dumps({"ailys_hub": {"hosts": {self.target.name: self.target.inventory_vars()}}})
        )
        self.write_vars()
        return self

    def write_vars(self, **more) -> None:
        values = {
            "hub_user": HUB_USER,
            "hub_source_repo": SOURCE_IN_TARGET,
            "hub_source_version": "main",
            "hub_site": SITE,
            # A site's package mirror, as hub_pip_env is for: here the test's wheelhouse, no index.
            "hub_pip_env": {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELHOUSE_IN_TARGET},
            "proxy_npm_env": {"NPM_CONFIG_CAFILE": TARGET_HOST_CA},
            # The sudo rule of the Slurm site, for the doctor's check (squeue answers --version with
            # a slurm.conf that names a cluster, none running); munge and a cluster are Mesolys' own.
            "slurm_client_enabled": True,
            "slurm_client_packages": ["slurm-client", "sudo"],
            "slurm_client_conf_content": "ClusterName=d18-target\nSlurmctldHost=localhost\n",
            "slurm_client_learners_group": "d18-learners",
            "nginx_server_name": "127.0.0.1 localhost",
            "nginx_public_https_port": self.target.https_port,
            "nginx_certificate_content": self.pki["cert"].read_text(),
            "nginx_certificate_key_content": self.pki["key"].read_text(),
            **more,
        }
        self.vars_file.write_text(json.dumps(values))
        self.vars_file.chmod(0o600)

    def play(self, *args: str, timeout: float = 1800) -> Run:
        """ansible-playbook -i INVENTORY ansible/site.yml with the test's variables; its output
        goes to play-N.log in the test's folder as it runs. The timeout is for a run from nothing
        on a loaded 2-core machine."""
        argv = [
            str(ANSIBLE_PLAYBOOK),
            "-i",
            str(self.inventory),
            "-e",
            f"@{self.vars_file}",
            *args,
            str(PLAYBOOK),
        ]
        log = self.work / f"play-{len(self.runs) + 1}.log"
        started = time.monotonic()
        with open(log, "w") as out:
            done = subprocess.run(
                argv,
                # profile_tasks: each task's time in the log, where a slow run is read.
                env={
                    **self.target.ansible_env(),
                    "ANSIBLE_FORCE_COLOR": "0",
                    "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_CALLBACKS_ENABLED": "profile_tasks",
                },
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        run = Run(done.returncode, log.read_text(), time.monotonic() - started)
        self.runs.append(run)
        return run

    def apply(self, *args: str) -> Run:
        """A playbook run, then what systemd would do with its handlers (tests/ansible/units.py)."""
        run = self.play(*args)
        assert run.returncode == 0, run.output[-6000:]
        if "--check" not in args:
            self.launcher.after_run(run.output, UNITS)
        return run

    def wait_for_hub(self, timeout: float = 180) -> httpx.Response:
        """The hub's API through nginx, over HTTPS checked against the test's CA."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{self.url}/hub/api/", verify=str(self.pki["ca"]), timeout=5)
                if answer.status_code == 200:
                    return answer
                last = f"HTTP {answer.status_code}"
            except httpx.HTTPError as err:
                last = repr(err)
            time.sleep(0.5)
        raise TimeoutError(
            f"the hub did not answer through nginx within {timeout} s ({last}); hub log:\n"
            f"{self.launcher.log('ailys-hub')}\nproxy log:\n{self.launcher.log('ailys-proxy')}"
        )

    def demo_password(self, name: str) -> str:
        for line in self.target.path("/var/lib/ailys-hub/secrets/demo-logins.txt").read_text().splitlines():
            user, _, password = line.partition(" ")
            if user == name:
                return password
        raise KeyError(name)

    def stop(self) -> None:
        self.target.stop()
