"""What systemd would do with the rendered units, on a target whose PID 1 is not systemd.

The test container has no systemd, so the roles' handlers (systemd_service, only where
``ansible_facts.service_mgr`` is systemd) are skipped there. This launcher, a test's alone and
never part of the roles, reads the units the playbook rendered in the container and runs their
ExecStart lines as systemd would: as User=/Group= (setpriv, with the account's groups), in
WorkingDirectory=, with only Environment= (env -i). A restart stops the main process alone, as
KillMode=process does, and starts ExecStart again; nginx's reload is its ExecReload. Which
handlers a run notified is read from the playbook's output (RUNNING HANDLER lines), so a run
restarts exactly what it would restart under systemd.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from tests.ansible.target import Target

UNIT_DIRS = ("etc/systemd/system", "lib/systemd/system")
RUN_DIR = "/var/lib/ailys-test"  # on the root file system, which this machine reads (/run is a tmpfs)
# The roles' handlers and what systemd does for each (ansible/roles/*/handlers/main.yml).
HANDLERS = {
    "hub : Restart hub": ("restart", "ailys-hub"),
    "proxy : Restart proxy": ("restart", "ailys-proxy"),
    "services : Restart podman API": ("restart", "ailys-podman"),
    "nginx : Reload nginx now": ("reload", "nginx"),
}


@dataclasses.dataclass
class Unit:
    name: str
    exec_start: list[str]
    exec_reload: list[str]
    kind: str  # Type=
    user: str
    group: str
    workdir: str
    env: dict[str, str]
    kill_mode: str


def parse_unit(name: str, text: str) -> Unit:
    """The [Service] settings this launcher honours; anything else is systemd's alone."""
    keys: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            keys.setdefault(key.strip(), []).append(value.strip())
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    for value in keys.get("Environment", []):
        for pair in shlex.split(value):
            k, _, v = pair.partition("=")
            env[k] = v

    def command(key: str) -> list[str]:
        values = keys.get(key, [])
        return shlex.split(values[-1].lstrip("-@+!")) if values else []

    user = keys.get("User", ["root"])[-1]
    return Unit(
        name=name,
        exec_start=command("ExecStart"),
        exec_reload=command("ExecReload"),
        kind=keys.get("Type", ["simple"])[-1],
        user=user,
        group=keys.get("Group", [user])[-1],
        workdir=keys.get("WorkingDirectory", ["/"])[-1],
        env=env,
        kill_mode=keys.get("KillMode", ["control-group"])[-1],
    )


def handlers_run(output: str) -> list[tuple[str, str]]:
    """(action, unit) of each handler a playbook run notified, in order, once each."""
    seen = []
    for title in re.findall(r"^RUNNING HANDLER \[(.+?)\]", output, re.M):
        action = HANDLERS.get(title)
        if action and action not in seen:
            seen.append(action)
    return seen


class Launcher:
    def __init__(self, target: Target):
        self.target = target

    def unit(self, name: str) -> Unit:
        for folder in UNIT_DIRS:
            path = self.target.path(f"{folder}/{name}.service")
            if path.is_file():
                return parse_unit(name, path.read_text())
        raise FileNotFoundError(f"no unit {name}.service in the target")

    def main_pid(self, name: str) -> int | None:
        path = self.target.path(f"{RUN_DIR}/{name}.pid")
        try:
            pid = int(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self._alive(pid) else None

    def _alive(self, pid: int) -> bool:
        return self.target.run(["kill", "-0", str(pid)]).returncode == 0

    def start(self, name: str) -> None:
        unit = self.unit(name)
        if unit.kind == "forking":  # nginx: the command daemonizes and returns
            done = self.target.run(["env", "-i", *self._env(unit), *unit.exec_start])
            if done.returncode:
                raise RuntimeError(f"{name}: {unit.exec_start} failed: {done.stderr.strip()}")
            return
        # The shell's PID is the main PID: setpriv, env and `ailys serve` each exec the next.
        log = f"{RUN_DIR}/{name}.log"
        script = (
            f"mkdir -p {RUN_DIR} && echo $$ > {RUN_DIR}/{name}.pid && cd {shlex.quote(unit.workdir)} && "
            f"exec setpriv --reuid={unit.user} --regid={unit.group} --init-groups -- "
            f"env -i {' '.join(shlex.quote(e) for e in self._env(unit))} "
            f"{shlex.join(unit.exec_start)} >> {log} 2>&1"
        )
        done = self.target.podman.podman("exec", "--detach", self.target.name, "/bin/sh", "-c", script)
        if done.returncode:
            raise RuntimeError(f"{name}: podman exec: {done.stderr.strip()}")
        deadline = time.monotonic() + 30
        while self.main_pid(name) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; its log:\n{self.log(name)}")
            time.sleep(0.1)

    @staticmethod
    def _env(unit: Unit) -> list[str]:
        return [f"{k}={v}" for k, v in unit.env.items()]

    def stop(self, name: str, timeout: float = 120) -> None:
        """SIGTERM to the main process only (KillMode=process), and wait until it has gone."""
        unit = self.unit(name)
        assert unit.kill_mode == "process", f"{name}.service has KillMode={unit.kill_mode}"
        pid = self.main_pid(name)
        if pid is None:
            return
        self.target.run(["kill", "-TERM", str(pid)])
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} (PID {pid}) still runs {timeout} s after SIGTERM")
            time.sleep(0.2)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def reload(self, name: str) -> None:
        unit = self.unit(name)
        done = self.target.run(["env", "-i", *self._env(unit), *unit.exec_reload])
        if done.returncode:
            raise RuntimeError(f"{name}: reload failed: {done.stderr.strip()}")

    def running(self, name: str) -> bool:
        if name == "nginx":
            return self.target.run(["pgrep", "-x", "nginx"]).returncode == 0
        return self.main_pid(name) is not None

    def after_run(self, output: str, units: tuple[str, ...]) -> list[tuple[str, str]]:
        """What systemd would do after a playbook run: each notified handler's action on a
        running unit, then start (enabled, state=started) what is not running."""
        done = []
        for action, name in handlers_run(output):
            if name in units and self.running(name):
                getattr(self, action)(name)
                done.append((action, name))
        for name in units:
            if not self.running(name):
                self.start(name)
                done.append(("start", name))
        return done

    def log(self, name: str) -> str:
        try:
            return self.target.path(f"{RUN_DIR}/{name}.log").read_text(errors="replace")[-5000:]
        except FileNotFoundError:
            return "(no log)"


def systemd_verify(units: dict[str, str], root: Path) -> subprocess.CompletedProcess:
    """`systemd-analyze verify` of unit files (name -> text) in a scratch root holding them, this
    machine's own units (sysinit.target...) and each ExecStart program (an empty script): a
    target without systemd has neither. verify exits 0 on a misspelt key, which it only warns
    about: a caller checks stderr too."""
    shutil.copytree(
        "/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True
    )
    for name, text in units.items():
        path = root / "etc/systemd/system" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        program = root / parse_unit(name, text).exec_start[0].lstrip("/")
        program.parent.mkdir(parents=True, exist_ok=True)
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    argv = ["systemd-analyze", f"--root={root}", "verify", *(f"/etc/systemd/system/{n}" for n in units)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)
