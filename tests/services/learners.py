"""Simulated learners for the load bench (tests/bench/load.py) and the fault tests (tests/chaos/):
each one does over HTTP and the kernel's websocket what a person does in a lecture.

A learner opens the login page and posts the form, starts their server, waits for it on the hub's
progress stream, opens JupyterLab (the OAuth round trip of the server's login), starts a kernel and
runs a cell, stays idle a while, may fetch and submit an assignment as the Assignments panel does,
and logs out. With ``retry``, a step that meets a hub or a proxy that is down (connection refused,
a 5xx, a progress stream cut short) is tried again a second later, as a person reloads the page;
a learner sent back to the login page logs in again, and that is counted (``relogins``): after a
proxy restart nobody should be logged out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid

import httpx
import psutil
import websockets

RETRY_EVERY = 1.0  # seconds between a person's reloads of a page that did not answer


@dataclasses.dataclass
class Outcome:
    name: str
    ready: float | None = None  # seconds from the login page to the cell's reply
    step: str = "login"  # the step it was in when it gave up (or "done")
    error: str = ""
    submitted: bool = False
    retries: int = 0  # steps tried again after the hub or the proxy did not answer
    relogins: int = 0  # times the learner found themself logged out and logged in again


class LearnerFailed(Exception):
    """A step failed for good (a refusal, not an outage)."""


class Outage(Exception):
    """The hub or the proxy did not answer: worth a reload when retrying."""


def cookie_header(jar: httpx.Cookies, path: str) -> str:
    """The Cookie header a browser sends to ``path``: the cookies whose path is a prefix of it."""
    return "; ".join(f"{c.name}={c.value}" for c in jar.jar if path.startswith(c.path or "/"))


def checked(r: httpx.Response, what: str, ok: tuple[int, ...]) -> httpx.Response:
    if r.status_code in ok:
        return r
    if r.status_code >= 500:
        raise Outage(f"{what} answered {r.status_code}")
    raise LearnerFailed(f"{what} answered {r.status_code} {r.text[:200]}")


async def run_cell(url: str, cookies: str, code: str, timeout: float) -> dict:
    """Run ``code`` on the kernel whose URL is ``url`` (its channels websocket), as JupyterLab
    sends it; the execute_reply's content."""
    session, msg_id = uuid.uuid4().hex, uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "session": session,
            "username": "",
            "msg_type": "execute_request",
            "version": "5.3",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {}},
        "buffers": [],
        "channel": "shell",
    }
    async with asyncio.timeout(timeout):
        async with websockets.connect(
            f"{url}/channels?session_id={session}", additional_headers={"Cookie": cookies}, max_size=2**24
        ) as ws:
            await ws.send(json.dumps(request))
            async for raw in ws:
                msg = json.loads(raw)
                if (
                    msg.get("parent_header", {}).get("msg_id") == msg_id
                    and msg.get("msg_type") == "execute_reply"
                ):
                    return msg["content"]
    raise Outage("the kernel's websocket closed before the reply")


class Learner:
    def __init__(
        self,
        url: str,
        name: str,
        password: str,
        *,
        course: str = "bench",
        assignment: str | None = None,
        retry: bool = False,
    ):
        self.url, self.name, self.password = url.rstrip("/"), name, password
        self.course, self.assignment, self.retry = course, assignment, retry
        self.server = f"/user/{name}/"
        self.outcome: Outcome | None = None

    async def session(self, idle: float, submit: bool, timeout: float) -> Outcome:
        """One lecture, given up after ``timeout`` seconds; never raises."""
        out = self.outcome = Outcome(self.name)  # read by a test while the session runs
        try:
            async with asyncio.timeout(timeout):
                async with httpx.AsyncClient(
                    base_url=self.url, timeout=httpx.Timeout(120, connect=10)
                ) as http:
                    await self._session(http, out, idle, submit)
            out.step = "done"
        except TimeoutError:
            out.error = f"gave up after {timeout:.0f} s"
        except (LearnerFailed, Outage, httpx.HTTPError, websockets.WebSocketException, OSError) as err:
            out.error = f"{type(err).__name__}: {err}"[:300]
        return out

    async def _again(self, out: Outcome, step, *args):
        """``step`` until it succeeds; an outage is retried a second later when retrying."""
        while True:
            try:
                return await step(*args)
            except (Outage, httpx.TransportError, websockets.WebSocketException, OSError):
                if not self.retry:
                    raise
                out.retries += 1
                await asyncio.sleep(RETRY_EVERY)

    async def _session(self, http: httpx.AsyncClient, out: Outcome, idle: float, submit: bool) -> None:
        t0 = time.perf_counter()
        await self._again(out, self.login, http)
        out.step = "spawn"
        await self._again(out, self.ensure_server, http, out)
        out.step = "lab"
        await self._again(out, self.open_lab, http, out)
        out.step = "kernel"
        kernel = await self._again(out, self.run_a_cell, http)
        out.ready = time.perf_counter() - t0
        out.step = "idle"
        await asyncio.sleep(idle)  # the lecture: a person reading, not a condition to await
        if submit and self.assignment:
            out.step = "submit"
            for action in ("fetch", "submit"):
                await self._again(out, self.assignments_action, http, action)
            out.submitted = True
        out.step = "logout"
        with contextlib.suppress(httpx.HTTPError):
            await http.delete(f"{self.server}api/kernels/{kernel}", headers=self.lab_xsrf(http))
        await self._again(out, http.get, "/hub/logout")

    async def login(self, http: httpx.AsyncClient) -> None:
        checked(await http.get("/hub/login"), "the login page", (200,))
        form = {"username": self.name, "password": self.password, "_xsrf": http.cookies.get("_xsrf", "")}
        checked(await http.post("/hub/login", data=form), "the login form", (302,))

    def hub_xsrf(self, http: httpx.AsyncClient) -> dict:
        return {"X-XSRFToken": http.cookies.get("_xsrf", path="/hub/") or ""}

    def lab_xsrf(self, http: httpx.AsyncClient) -> dict:
        return {"X-XSRFToken": http.cookies.get("_xsrf", path=self.server) or ""}

    async def ensure_server(self, http: httpx.AsyncClient, out: Outcome) -> None:
        """The learner's server ready: started if it is not, awaited if it is starting."""
        r = await http.get(f"/hub/api/users/{self.name}", headers=self.hub_xsrf(http))
        if r.status_code in (401, 403):  # logged out (the hub forgot the login): log in again
            out.relogins += 1
            await self.login(http)
            raise Outage("logged out")
        server = (checked(r, "the user's model", (200,)).json().get("servers") or {}).get("")
        if server and server.get("ready"):
            return
        if not server:
            r = await http.post(f"/hub/api/users/{self.name}/server", headers=self.hub_xsrf(http))
            checked(r, "starting the server", (201, 202, 400))  # 400: already starting
            if r.status_code == 201:
                return
        async with http.stream(
            "GET", f"/hub/api/users/{self.name}/server/progress", headers=self.hub_xsrf(http)
        ) as stream:
            checked(stream, "the spawn's progress", (200,))
            async for line in stream.aiter_lines():
                event = json.loads(line[5:]) if line.startswith("data:") else {}
                if event.get("failed"):
                    raise LearnerFailed(f"the spawn failed: {event.get('message')}")
                if event.get("ready"):
                    return
        raise Outage("the progress stream ended without a ready event")

    async def open_lab(self, http: httpx.AsyncClient, out: Outcome) -> None:
        r = await http.get(f"{self.server}lab", follow_redirects=True)
        if "/hub/login" in str(r.url):
            out.relogins += 1
            await self.login(http)
            raise Outage("sent to the login page")
        if r.status_code in (404, 424, 503) and self.retry:  # the proxy has no route yet: the hub's page
            raise Outage(f"JupyterLab answered {r.status_code}")
        checked(r, "JupyterLab", (200,))

    async def run_a_cell(self, http: httpx.AsyncClient) -> str:
        r = await http.post(
            f"{self.server}api/kernels", json={"name": "python3"}, headers=self.lab_xsrf(http)
        )
        if r.status_code != 201 and "text/html" in r.headers.get("content-type", "") and self.retry:
            # a page of the hub, not the server's JSON: the proxy had no route to the server (it was
            # restarted), so the hub answered in its place; JupyterLab shows an error, the person retries
            raise Outage(f"starting a kernel reached the hub ({r.status_code}), not the server")
        kernel = checked(r, "starting a kernel", (201,)).json()["id"]
        ws_url = self.url.replace("http", "ws", 1) + f"{self.server}api/kernels/{kernel}"
        reply = await run_cell(ws_url, cookie_header(http.cookies, self.server), "sum(range(10**5))", 120)
        if reply.get("status") != "ok":
            raise LearnerFailed(f"the cell answered {reply}")
        return kernel

    async def assignments_action(self, http: httpx.AsyncClient, action: str) -> None:
        r = await http.post(
            f"{self.server}assignments/{action}",
            json={"course_id": self.course, "assignment_id": self.assignment},
            headers=self.lab_xsrf(http),
        )
        if not checked(r, f"the Assignments panel's {action}", (200,)).json().get("success"):
            raise LearnerFailed(f"the Assignments panel's {action}: {r.text[:200]}")


async def arrive(learners: list[Learner], window: float, idle: float, submit_every: int, timeout: float):
    """Every learner's session, the i-th starting at i/N of ``window``: their outcomes, in order."""
    n = len(learners)

    async def one(i: int, learner: Learner) -> Outcome:
        await asyncio.sleep(i * window / n)  # the arrival schedule, not a wait for a condition
        return await learner.session(idle, submit_every > 0 and i % submit_every == 0, timeout)

    return list(await asyncio.gather(*(one(i, learner) for i, learner in enumerate(learners))))


def memory_of(proc: psutil.Process) -> int:
    try:
        return proc.memory_full_info().pss
    except (psutil.AccessDenied, AttributeError):
        return proc.memory_info().rss


def server_processes(users: set[str]) -> dict[str, list[psutil.Process]]:
    """Each user's jupyterhub-singleuser processes on this machine (as root: any account's)."""
    found: dict[str, list[psutil.Process]] = {}
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if "jupyterhub-singleuser" in " ".join(p.info["cmdline"] or []):
                user = p.environ().get("JUPYTERHUB_USER")
                if user in users:
                    found.setdefault(user, []).append(p)
    return found
