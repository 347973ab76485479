"""A real AILyS hub and proxy on free loopback ports, in a folder of its own.

The hub is started the way `ailys up` starts it (hub_config.launch), from a site file and
course folders the test writes. Everything is stopped by PID at the end, and Unix accounts
created for the test's learners are removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import json
import os
import pwd
import re
import secrets as secrets_module
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import yaml

from hub_config.catalogue import load_catalogue
from hub_config.launch import hub_launch, hub_url, proxy_launch, start, wait_for_hub
from hub_config.secrets import ensure_demo_logins, load_secrets
from spawners.local import ACCOUNT_COMMENT
from tests.services import free_port, free_ports


def project_course(
    slug: str, red_now: list[str], red: list[str], blue: list[str], outside: str, mentor: str, prof: str
) -> dict:
    """A project course file of two teams: red (its members now: ``red_now``; ``red`` at the start),
    mentored by ``mentor``, and blue, mentored by ``prof``; ``outside`` is in no team."""
    return {
        "slug": slug,
        "title": {"fr": "Projets", "en": "Projects"},
        "kind": "project-team",
        "instructors": [prof],
        "mentors": [mentor],
        "learners": [*red, *blue, outside],
        "start": "2026-09-01",
        "end": "2027-06-30",
        "teams": [
            {"name": "red", "members": red_now, "mentors": [mentor]},
            {"name": "blue", "members": blue, "mentors": [prof]},
        ],
    }


def course(slug: str, instructors: list[str], learners: list[str], **extra) -> dict:
    return {
        "slug": slug,
        "title": {"fr": f"Cours {slug}", "en": f"Course {slug}"},
        "kind": "academic",
        "instructors": instructors,
        "learners": learners,
        "start": "2026-09-01",
        "end": "2027-06-30",
        **extra,
    }


def _left_by_a_test(account: pwd.struct_passwd) -> bool:
    """An account our spawner made for an earlier test run that died before cleaning up."""
    return account.pw_gecos == ACCOUNT_COMMENT and account.pw_dir.startswith(
        f"{tempfile.gettempdir()}/ailys-test-"
    )


def hub_xsrf(client: httpx.Client) -> dict:
    """The hub's XSRF header. A client that has opened its server also holds that server's
    _xsrf cookie (path /user/<name>/), so the name alone is ambiguous."""
    found = [c for c in client.cookies.jar if c.name == "_xsrf" and not c.path.startswith("/user/")]
    return {"X-XSRFToken": found[0].value if found else ""}


def server_xsrf(client: httpx.Client, name: str) -> dict:
    """The XSRF header of ``name``'s own server (its cookie lives under /user/<name>/)."""
    found = [c for c in client.cookies.jar if c.name == "_xsrf" and c.path.rstrip("/") == f"/user/{name}"]
    return {"X-XSRFToken": found[0].value if found else ""}


def wait_until(condition, timeout: float, what: str, every: float = 0.1):
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class RunningHub:
    def __init__(
        self,
        courses: list[dict],
        *,
        culler: dict | None = None,
        materials: dict | None = None,
        site: dict | None = None,
        run_as: str | None = None,
        start_timeout: float = 120,
    ):
        """``site``: more keys of the site file (database_url, ...). ``run_as``: a Unix account (it must
        exist) that the hub and the proxy run as, owner of the data folder; None: this process's."""
        self.run_as = run_as
        # A wait for a condition, not a delay: generous, since a loaded 2-core machine starts the
        # gallery's kernels and each course's grading service (its gradebook) slowly.
        self.start_timeout = start_timeout
        # Learners' processes must traverse this folder to reach their homes.
        self.root = Path(tempfile.mkdtemp(prefix="ailys-test-"))
        self.root.chmod(0o711)
        (self.root / "courses").mkdir()
        for c in courses:
            folder = self.root / "courses" / c["slug"]
            folder.mkdir()
            (folder / "course.yaml").write_text(yaml.safe_dump(c, sort_keys=False))
            for name, text in (materials or {}).get(c["slug"], {}).items():
                (folder / "material").mkdir(exist_ok=True)
                (folder / "material" / name).write_text(text, encoding="utf-8")
        site = {
            "name": "test",
            "listen": {"port": free_port(), "hub_port": free_port(), "proxy_api_port": free_port()},
            "data_dir": "data",
            "courses_dir": "courses",
            "courses_sync_every": "5m",
            "authentication": {"admin_users": ["hubadmin"], "demo_accounts": True},
            "culler": culler or {"enabled": False},
            "exchange": {"port": free_port()},
            **(site or {}),
        }
        site["gallery"] = {"port": free_port(), **site.get("gallery", {})}  # the demo gallery service
        energy = site.get("energy", {})  # the footprint service
        site["energy"] = {**energy, "service": {"port": free_port(), **energy.get("service", {})}}
        site["teams"] = {"mentors_port": free_port(), **site.get("teams", {})}  # the mentor page
        # one formgrader per course with assignments, on consecutive ports from this one
        site["formgraders"] = {"port": free_ports(max(1, len(courses))), **site.get("formgraders", {})}
        self.site_file = self.root / "test.yaml"
        self.site_file.write_text(yaml.safe_dump(site))
        self.catalogue = load_catalogue(self.site_file)
        self.data = self.catalogue.data_dir
        self.data.mkdir(mode=0o711)
        self.secrets = load_secrets(self.data)
        self.passwords = ensure_demo_logins(self.secrets, self.catalogue.people())
        # A read-only observer token for the tests, added through the drop-in folder.
        self.observer_token = secrets_module.token_hex(32)
        drop_ins = self.data / "jupyterhub_config.d"
        drop_ins.mkdir()
        (drop_ins / "50-test-observer.py").write_text(
            f"c.JupyterHub.services.append({{'name': 'test-observer', 'api_token': {self.observer_token!r}}})\n"
            "c.JupyterHub.load_roles.append({'name': 'test-observer', 'services': ['test-observer'], "
            "'scopes': ['list:users', 'read:users', 'read:servers', 'list:groups', 'read:groups']})\n"
        )
        self.url = hub_url(self.catalogue).rstrip("/")
        for stale in filter(_left_by_a_test, pwd.getpwall()):
            # A crashed earlier run: its whole test folder is gone. Not just the home: a team
            # account made by a running hub's sync has no home until its server first starts.
            root = (
                Path(tempfile.gettempdir()) / Path(stale.pw_dir).relative_to(tempfile.gettempdir()).parts[0]
            )
            if os.geteuid() == 0 and not root.exists():
                subprocess.run(["userdel", stale.pw_name], capture_output=True)
        self.proxy: subprocess.Popen | None = None
        self.hub: subprocess.Popen | None = None

    # --- processes ---------------------------------------------------------------------

    def start(self) -> RunningHub:
        if self.run_as:  # the data folder (database, secrets, logs...) is the hub account's
            (self.data / "logs").mkdir(exist_ok=True)
            account = pwd.getpwnam(self.run_as)
            for folder, _, files in os.walk(self.data):
                for path in [folder, *(os.path.join(folder, f) for f in files)]:
                    os.chown(path, account.pw_uid, account.pw_gid)
        self.proxy = start(self._as_run_as(proxy_launch(self.catalogue, self.secrets)))
        try:
            self.start_hub()
        except BaseException:
            print(self.log()[-3000:])  # shown by pytest with the failure
            self.stop()
            raise
        return self

    def start_hub(self) -> None:
        self.hub = start(self._as_run_as(hub_launch(self.catalogue)))
        wait_for_hub(
            self.catalogue, self.secrets, timeout=self.start_timeout, alive=lambda: self.hub.poll() is None
        )

    def _as_run_as(self, launch):
        return dataclasses.replace(launch, user=self.run_as) if self.run_as else launch

    def stop_hub(self, sig=signal.SIGTERM) -> None:
        self.hub.send_signal(sig)
        # JupyterHub stops its services one after another, each given up to 20 s (SIGINT, SIGTERM,
        # SIGKILL): a hub with six or seven of them on a loaded machine may take over a minute.
        self.hub.wait(timeout=150)
        for child in psutil.process_iter(["cmdline"]):  # its services (culler, sync) go with it
            if str(self.site_file) in " ".join(child.info["cmdline"] or []) or (
                "jupyterhub_idle_culler" in " ".join(child.info["cmdline"] or [])
                and child.ppid() == self.hub.pid
            ):
                child.kill()

    def learner_processes(self) -> list[psutil.Process]:
        homes = str(self.data / "homes")
        found = []
        for p in psutil.process_iter(["cwd", "cmdline"]):
            try:
                if (p.info["cwd"] or "").startswith(homes):
                    found.append(p)
            except psutil.Error:
                continue
        return found

    def stop(self) -> None:
        for proc in (self.hub, self.proxy):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for p in psutil.process_iter(["cmdline"]):
            # its services: started with its site file, or in its folder (a course's formgrader),
            # left running when the hub died or never finished starting
            if f"{self.root}/" in " ".join(p.info["cmdline"] or []):
                with contextlib.suppress(psutil.Error):
                    p.kill()
        learners = self.learner_processes()
        for p in learners:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        # userdel refuses an account that still has a process ("currently used by process N"),
        # and a SIGKILL is not instantaneous: wait for them to be gone.
        psutil.wait_procs(learners, timeout=10)
        if os.geteuid() == 0:  # only the accounts our spawner made for this hub's learners
            for account in pwd.getpwall():
                if account.pw_gecos == ACCOUNT_COMMENT and account.pw_dir.startswith(f"{self.root}/"):
                    subprocess.run(["userdel", account.pw_name], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return (self.data / "logs" / "hub.log").read_text(errors="replace")

    # --- clients -------------------------------------------------------------------------

    def login(self, name: str, password: str | None = None) -> httpx.Client:
        """A browser-like client logged in through the login form."""
        client = httpx.Client(base_url=self.url, timeout=30)
        client.get("/hub/login")
        r = client.post(
            "/hub/login",
            data={
                "username": name,
                "password": password or self.passwords[name],
                "_xsrf": client.cookies["_xsrf"],
            },
        )
        if r.status_code != 302:
            raise AssertionError(f"login of {name} answered {r.status_code}")
        return client

    def admin_api(self) -> httpx.Client:
        """A read-only view of the hub's users, servers and groups."""
        return httpx.Client(
            base_url=f"{self.url}/hub/api",
            headers={"Authorization": f"token {self.observer_token}"},
            timeout=30,
        )

    def spawn(self, client: httpx.Client, name: str, timeout: float = 60) -> None:
        """Start ``name``'s server as that user would, and complete the server's OAuth login."""
        client.post(f"/hub/api/users/{name}/server", headers=hub_xsrf(client))
        wait_until(lambda: self.server_ready(name), timeout, f"{name}'s server")
        r = client.get(f"/user/{name}/lab", follow_redirects=True)
        assert r.status_code == 200, f"{name}'s JupyterLab answered {r.status_code}"

    def wait_for_gallery(self, demos: int, timeout: float) -> None:
        """Until the gallery has preheated a kernel for each of its ``demos`` demos."""

        def ready():
            try:
                s = httpx.get(f"{self.url}/services/gallery/api/status", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return False
            return len(s["ready"]) == demos and all(s["ready"].values())

        wait_until(ready, timeout, "the gallery's preheated demos")

    def server_ready(self, name: str) -> bool:
        user = self.admin_api().get(f"/users/{name}").json()
        server = (user.get("servers") or {}).get("")
        return bool(server and server.get("ready"))

    def open_server(self, client: httpx.Client, name: str) -> httpx.Response:
        """Open ``name``'s JupyterLab as the client's user would, accepting the hub's
        "authorize access to another user's server" page when it is shown."""
        r = client.get(f"/user/{name}/lab", follow_redirects=True)
        if r.status_code == 200 and "/hub/api/oauth2/authorize" in str(r.url):
            fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', r.text))
            scopes = re.findall(r'<input[^>]*name="scopes"[^>]*value="([^"]*)"', r.text)
            data = {**fields, "scopes": scopes}
            r = client.post(str(r.url), data=data, follow_redirects=True)
        return r


def one_cell_notebook(source: str) -> str:
    """A notebook (nbformat 4.5 JSON) with one code cell of ``source``, on the python3 kernel."""
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "c1",
        "metadata": {},
        "outputs": [],
        "source": source,
    }
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return json.dumps(
        {"cells": [cell], "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    )


def make_team_folder(folder: Path, group: str, files: dict[str, str]) -> bool:
    """A team's folder as the course sync makes it (group ``group``, mode 2770), with ``files`` in
    it, for tests that run before it did. True if the Unix group was made here (to delete)."""
    made = False
    try:
        grp.getgrnam(group)
    except KeyError:
        subprocess.run(["groupadd", group], check=True, capture_output=True)
        made = True
    folder.mkdir(parents=True, exist_ok=True)
    shutil.chown(folder, group=group)
    folder.chmod(0o2770)
    for name, text in files.items():
        if not (folder / name).exists():
            (folder / name).write_text(text)
            shutil.chown(folder / name, group=group)
            (folder / name).chmod(0o660)
    return made
