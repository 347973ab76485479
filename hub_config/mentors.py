"""The `mentors` hub service (hub_config/appliers/mentors.py starts it): a mentor's page of their
teams, who of each team is working now (a server running) and each member's last activity.

A hub service rather than a page of the hub: it needs only a read token (MENTOR_SCOPES) and OAuth,
like footprint/service.py, and a failure here never touches logins or spawns (docs/teams.md). Every
user may log in to it; what they see is decided here, from the course files: a team's page is for
its mentors and the site's admins only, anyone else gets 403.

    python -m hub_config.mentors SITE_FILE
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from urllib.parse import quote

import httpx
import tornado.web
from jupyterhub.services.auth import HubOAuth
from tornado.ioloop import IOLoop

from .catalogue import LiveCatalogue
from .service_pages import ServiceOAuthCallback, ServicePage
from .teams import TeamView, teams_of

SERVICE = "mentors"
# What the page reads of the hub: names, last activity and servers of the teams' people.
MENTOR_SCOPES = ["read:users:name", "read:users:activity", "read:servers"]
log = logging.getLogger("mentors")


def visible_teams(teams: list[TeamView], who: str, admin: bool) -> list[TeamView]:
    """The teams ``who`` may see: those they mentor; every team for a site admin."""
    return list(teams) if admin else [t for t in teams if who in t.mentors]


def _moment(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def working(user: dict) -> bool:
    """A server of theirs is running (started and answering)."""
    return any(s.get("ready") for s in (user.get("servers") or {}).values())


def team_rows(team: TeamView, users: dict[str, dict]) -> dict:
    """One team as the page shows it: each member's state, and the team server's."""
    members = []
    for name in team.members:
        user = users.get(name) or {}
        members.append({"name": name, "working": working(user), "last": _moment(user.get("last_activity"))})
    return {
        "team": team,
        "members": members,
        "server": working(users.get(team.name) or {}),
        "working": sum(m["working"] for m in members),
    }


class MentorsApp:
    def __init__(self, site_file: str, base_url: str):
        self.catalogue = LiveCatalogue(site_file, log)
        self.base_url = base_url
        self.hub = httpx.AsyncClient(
            base_url=os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api").rstrip("/") + "/",
            headers={"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"},
            timeout=30,
        )

    async def users(self, names: set[str]) -> dict[str, dict]:
        """The hub's model of each of ``names`` (those it does not know yet are left out)."""
        found = {}
        for name in sorted(names):
            r = await self.hub.get(f"users/{quote(name)}")
            if r.status_code == 404:
                continue
            r.raise_for_status()
            found[name] = r.json()
        return found

    def make_app(self) -> tornado.web.Application:
        base = self.base_url
        return tornado.web.Application(
            [
                (base, TeamsHandler),
                (rf"{base}team/([^/]+)", TeamHandler),
                (f"{base}oauth_callback", OAuthCallback),
            ],
            mentors=self,
            hub_auth=HubOAuth(api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""), cache_max_age=60),
            base_url=base,
            hub_url=os.environ.get("JUPYTERHUB_BASE_URL", "/"),
            cookie_secret=os.urandom(32),
        )


class Page(ServicePage):
    @property
    def app(self) -> MentorsApp:
        return self.settings["mentors"]

    def write_error(self, status_code: int, **kwargs) -> None:
        self.page("mentors.html", status_code, teams=[], refused=status_code, now=dt.datetime.now(dt.UTC))

    async def show(self, teams: list[TeamView]) -> None:
        people = {n for t in teams for n in (*t.members, t.name)}
        users = await self.app.users(people)
        rows = [team_rows(t, users) for t in teams]
        self.page("mentors.html", teams=rows, refused=None, now=dt.datetime.now(dt.UTC))

    def mine(self) -> list[TeamView]:
        user = self.current_user
        return visible_teams(teams_of(self.app.catalogue.current()), user["name"], bool(user.get("admin")))


class TeamsHandler(Page):
    @tornado.web.authenticated
    async def get(self):
        teams = self.mine()
        if not teams and not self.current_user.get("admin"):  # mentors of no team
            raise tornado.web.HTTPError(403)
        await self.show(teams)


class TeamHandler(Page):
    @tornado.web.authenticated
    async def get(self, name: str):
        teams = [t for t in self.mine() if t.name == name]
        if not teams:  # not theirs, or no such team: the same answer, which names nobody
            raise tornado.web.HTTPError(403)
        await self.show(teams)


OAuthCallback = ServiceOAuthCallback


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mentors %(levelname)s %(message)s")
    site_file = sys.argv[1]
    app = MentorsApp(site_file, os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE}/"))
    port = app.catalogue.current().site.teams.mentors_port
    app.make_app().listen(port, "127.0.0.1")
    log.info("mentors: listening on 127.0.0.1:%d", port)
    IOLoop.current().start()


if __name__ == "__main__":
    main()
