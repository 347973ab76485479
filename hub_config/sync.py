"""Bring the hub's groups and memberships up to date with the course folders, and lock out
trainees whose access window has closed.

``plan`` is pure: from the catalogue, what the hub reports and the time it computes the changes.
``sync`` applies them through the hub's REST API with the course-sync service's token.
An invalid catalogue changes nothing. Run as a hub-managed service (``python -m
hub_config.sync SITE --every N``) it also picks up new course folders by itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from urllib.parse import quote

import click
import httpx

from . import names, teams
from .appliers.access import course_groups
from .catalogue import Catalogue, CatalogueError, load_catalogue
from .roster import Closed
from .secrets import ensure_demo_logins, load_secrets
from .team_folders import sync_team_folders

# Hub group of the people the sync has locked out because their access window closed: its
# membership marks "servers stopped and tokens revoked", so the tokens are listed once per closing,
# not at every sync; leaving it (window open again) is the plan's ``reopen``.
LOCKED_OUT = "access-closed"


@dataclasses.dataclass(frozen=True)
class Retirement:
    """A hub user whose every course's access window is closed, and what the sync takes away."""

    name: str
    why: str  # "access window of ia-industrie closed 2026-12-26 00:00"
    servers: tuple[str, ...] = ()  # their active servers to stop ("" is the default one)
    revoke: bool = False  # not locked out yet: revoke every token of theirs, then join LOCKED_OUT


@dataclasses.dataclass(frozen=True)
class GoneTeam:
    """A team account whose team is no longer in the course files (docs/teams.md, "A team removed"):
    its servers stop, its Unix group is emptied, then its hub user goes; its folder stays on disk."""

    name: str
    folder: str  # <teams.dir>/<name>, kept
    servers: tuple[str, ...] = ()  # its active servers, stopped first


@dataclasses.dataclass(frozen=True)
class Plan:
    create_users: list[str]
    create_groups: list[str]
    add: dict[str, list[str]]  # group -> users to add
    remove: dict[str, list[str]]  # group -> users to remove
    delete_groups: list[str]  # groups of courses (and teams) whose folder (or entry) is gone
    retire: list[Retirement] = dataclasses.field(default_factory=list)
    reopen: list[str] = dataclasses.field(default_factory=list)  # locked out, window open again
    host: list[str] = dataclasses.field(default_factory=list)  # what changed in team Unix groups
    gone_teams: list[GoneTeam] = dataclasses.field(default_factory=list)
    not_yet: list[str] = dataclasses.field(default_factory=list)  # gone team accounts still stopping

    def __bool__(self) -> bool:
        return any(dataclasses.astuple(self))

    def lines(self) -> list[str]:
        out = [f"create user {u}" for u in self.create_users]
        out += [f"create group {g}" for g in self.create_groups]
        out += [f"add {', '.join(u)} to {g}" for g, u in self.add.items()]
        out += [f"remove {', '.join(u)} from {g}" for g, u in self.remove.items()]
        for r in self.retire:
            out += [f"stopped {_server(s)} of {r.name}: {r.why}" for s in r.servers]
            if r.revoke:
                out.append(f"revoked the tokens of {r.name}: {r.why}")
        out += [f"let {u} in again: access window open" for u in self.reopen]
        out += [f"delete group {g}" for g in self.delete_groups]
        for t in self.gone_teams:
            out += [
                f"stopped {_server(s)} of {t.name}: its team is gone from the course files" for s in t.servers
            ]
            if t.name not in self.not_yet:
                out.append(f"delete team account {t.name} (its folder {t.folder} stays on disk)")
        out += [f"team account {n} still stopping: deleted at the next pass" for n in self.not_yet]
        return out + self.host


def _server(name: str) -> str:
    return f"server {name!r}" if name else "server"


def closed_reason(closed: Closed, now: dt.datetime) -> str:
    """Each window of the person's courses, as the sync's output says why it locked them out."""
    return "; ".join(
        f"access window of {slug} "
        + (f"opens {opens:%Y-%m-%d %H:%M}" if now < opens else f"closed {closes:%Y-%m-%d %H:%M}")
        for slug, opens, closes in closed.windows
    )


def plan(
    catalogue: Catalogue,
    hub_users: set[str],
    hub_groups: dict[str, set[str]],
    hub_servers: dict[str, list[str]] | None = None,
    now: dt.datetime | None = None,
) -> Plan:
    """The changes that bring the hub to what the catalogue says at ``now`` (default: the current
    time). ``hub_servers``: each hub user's active servers, by name ("" the default one)."""
    now = now or dt.datetime.now(dt.UTC)
    wanted: dict[str, set[str]] = {}
    for course in catalogue.courses:
        groups = course_groups(course, catalogue.learners(course))
        wanted.update({name: set(g["users"]) for name, g in groups.items()})
    wanted.update({name: set(g["users"]) for name, g in teams.team_groups(catalogue).items()})
    people = set().union(*wanted.values()) if wanted else set()
    accounts = {t.name for t in teams.teams_of(catalogue)}
    people |= accounts  # team accounts: owners of team servers
    add, remove = {}, {}
    for group, users in sorted(wanted.items()):
        have = hub_groups.get(group, set())
        if users - have:
            add[group] = sorted(users - have)
        if have - users:
            remove[group] = sorted(have - users)
    # Closed trainees keep their hub user and memberships (their files, submissions and grades
    # stay theirs and their instructors'): only what lets them in goes.
    locked = hub_groups.get(LOCKED_OUT, set())
    trainees = {n for c in catalogue.courses if c.kind == "short-course" for n in catalogue.learners(c)}
    retire, still_locked = [], set()
    for name in sorted(trainees & hub_users):  # only a short course's learner has a window
        closed = catalogue.closed_for(name, now)
        if closed is None:
            continue
        still_locked.add(name)
        servers = tuple(sorted((hub_servers or {}).get(name, ())))
        if servers or name not in locked:
            retire.append(Retirement(name, closed_reason(closed, now), servers, name not in locked))
    create_groups = set(wanted) - set(hub_groups)
    if retire and LOCKED_OUT not in hub_groups:
        create_groups.add(LOCKED_OUT)
    return Plan(
        create_users=sorted(people - hub_users),
        create_groups=sorted(create_groups),
        add=add,
        remove=remove,
        delete_groups=sorted(
            g for g in hub_groups if (names.course_of_group(g) or teams.is_team_group(g)) and g not in wanted
        ),
        retire=retire,
        reopen=sorted(locked - still_locked),
        gone_teams=gone_teams(catalogue, hub_users - accounts, hub_servers or {}),
    )


def gone_teams(catalogue: Catalogue, others: set[str], hub_servers: dict[str, list[str]]) -> list[GoneTeam]:
    """The hub users of ``others`` that are team accounts (their names are reserved: no person has
    one) of teams no longer in the course files, with their active servers."""
    root = teams.teams_dir(catalogue)
    return [
        GoneTeam(name, str(root / name), tuple(sorted(hub_servers.get(name, ()))))
        for name in sorted(others)
        if name.startswith(names.TEAM) and not name.startswith(names.TEAM_SERVER)
    ]


# With this media type the hub answers {items, _pagination}; without it, a silently truncated list.
PAGED = {"Accept": "application/jupyterhub-pagination+json"}


def all_pages(page_at: Callable[[int], dict]) -> list:
    """Every item of a paged hub listing; ``page_at(offset)`` is one page as the hub answers it."""
    items, offset = [], 0
    while True:
        page = page_at(offset)
        items += page["items"]
        after = (page.get("_pagination") or {}).get("next")
        if not after:
            return items
        if after["offset"] <= offset:
            raise RuntimeError(f"hub API paging does not advance past offset {offset}")
        offset = after["offset"]


class HubAPI:
    """The few hub REST calls sync needs."""

    def __init__(self, url: str, token: str):
        self.client = httpx.Client(
            base_url=url.rstrip("/") + "/", headers={"Authorization": f"token {token}"}, timeout=30
        )

    def _call(self, method: str, path: str, json=None, **request):
        r = self.client.request(method, path, json=json, **request)
        if r.status_code >= 400:
            raise RuntimeError(f"hub API {method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def _listing(self, path: str) -> list[dict]:
        # The hub caps the limit at its api_page_max_limit (200 by default): ask for more, take pages.
        return all_pages(
            lambda offset: self._call("GET", path, params={"offset": offset, "limit": 1000}, headers=PAGED)
        )

    def state(self) -> tuple[set[str], dict[str, set[str]], dict[str, list[str]]]:
        """Hub users, groups with their members, and each user's active servers (plan's arguments)."""
        listed = self._listing("users")
        users = {u["name"] for u in listed}
        # A server already stopping is left to finish (its model says pending "stop").
        servers = {
            u["name"]: [name for name, s in u["servers"].items() if s.get("pending") != "stop"]
            for u in listed
            if u.get("servers")
        }
        groups = {g["name"]: set(g["users"]) for g in self._listing("groups")}
        return users, groups, servers

    def retire(self, r: Retirement) -> None:
        """Stop the servers, then revoke the tokens (what a stop leaves: tokens made on the token
        page or through the API, and OAuth tokens of the hub's own pages)."""
        user = f"users/{quote(r.name)}"
        for server in r.servers:
            # 202: the stop goes on in the hub; the next sync sees whether it finished
            self._call("DELETE", f"{user}/servers/{quote(server)}" if server else f"{user}/server")
        if not r.revoke:
            return
        for token in self._call("GET", f"{user}/tokens")["api_tokens"]:
            # Deleting one OAuth token deletes every token of its client: a later one may be gone.
            path = f"{user}/tokens/{quote(token['id'])}"
            answer = self.client.delete(path)
            if answer.status_code >= 400 and answer.status_code != 404:
                raise RuntimeError(f"hub API DELETE {path}: {answer.status_code} {answer.text[:300]}")
        # Last: a failure above leaves them out of the group, so the next sync tries again.
        self._call("POST", f"groups/{LOCKED_OUT}/users", {"users": [r.name]})

    def apply(self, p: Plan) -> None:
        if p.create_users:
            self._call("POST", "users", {"usernames": p.create_users})
        for g in p.create_groups:
            self._call("POST", f"groups/{quote(g)}")
        for g, users in p.add.items():
            self._call("POST", f"groups/{quote(g)}/users", {"users": users})
        for g, users in p.remove.items():
            self._call("DELETE", f"groups/{quote(g)}/users", {"users": users})
        for r in p.retire:
            self.retire(r)
        if p.reopen:
            self._call("DELETE", f"groups/{LOCKED_OUT}/users", {"users": p.reopen})
        for g in p.delete_groups:
            self._call("DELETE", f"groups/{quote(g)}")
        for t in p.gone_teams:  # stopped first: the server writes what it holds into the folder
            for server in t.servers:
                user = f"users/{quote(t.name)}"
                self._call("DELETE", f"{user}/servers/{quote(server)}" if server else f"{user}/server")

    def delete_team_accounts(self, gone: list[GoneTeam]) -> list[str]:
        """Delete the hub users of gone teams (the hub stops a server still running first); the
        names of those whose server is still stopping (the hub answers 400): the next pass."""
        not_yet = []
        for t in gone:
            answer = self.client.delete(f"users/{quote(t.name)}")
            if answer.status_code == 400 and "stopping" in answer.text:
                not_yet.append(t.name)
            elif answer.status_code >= 400 and answer.status_code != 404:
                raise RuntimeError(f"hub API DELETE users/{t.name}: {answer.status_code} {answer.text[:300]}")
        return not_yet


def hub_api_for(catalogue: Catalogue) -> HubAPI:
    """Inside a hub service the hub gives URL and token; elsewhere they come from the site."""
    if "JUPYTERHUB_API_TOKEN" in os.environ and "JUPYTERHUB_API_URL" in os.environ:
        return HubAPI(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    listen = catalogue.site.listen
    url = f"http://127.0.0.1:{listen.hub_port}{listen.base_url}hub/api/"
    return HubAPI(url, load_secrets(catalogue.data_dir).sync_token)


def sync(catalogue: Catalogue, api: HubAPI) -> Plan:
    if catalogue.site.authentication.kind == "ldap":  # courses' directory groups, read now
        from .directory import refresh_course_groups  # ldap3 only where the directory is used

        catalogue = refresh_course_groups(catalogue)
    if catalogue.site.authentication.demo_accounts:
        ensure_demo_logins(load_secrets(catalogue.data_dir), catalogue.people())
    p = plan(catalogue, *api.state())
    api.apply(p)
    # Team accounts, folders and Unix group members (on the hub's host, or the cluster's); a gone
    # team's group emptied before its hub user goes, so a failure here is tried again next pass.
    host = sync_team_folders(catalogue, [t.name for t in p.gone_teams])
    return dataclasses.replace(p, host=host, not_yet=api.delete_team_accounts(p.gone_teams))


def retention(catalogue: Catalogue) -> None:
    """The site's retention policy, each period (hub_config/personal_data/retention.py); a failure
    is logged and tried again at the next period, never stops the sync."""
    from .personal_data import run_retention

    try:
        for line in run_retention(catalogue).lines():
            print(f"course-sync: retention: {line}", flush=True)
    except (OSError, ValueError) as err:
        print(f"course-sync: retention: {err}", file=sys.stderr, flush=True)


@click.command()
@click.argument("site_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--every", type=int, default=0, help="Seconds between syncs; 0: once.")
def main(site_file: str, every: int) -> None:
    """The course-sync hub service."""
    while True:
        catalogue = None
        try:
            catalogue = load_catalogue(site_file)
            for line in sync(catalogue, hub_api_for(catalogue)).lines():
                print(f"course-sync: {line}", flush=True)
        except CatalogueError as err:
            print(f"course-sync: catalogue invalid, hub left as it is:\n{err}", file=sys.stderr, flush=True)
        except (httpx.HTTPError, RuntimeError) as err:
            print(f"course-sync: {err}", file=sys.stderr, flush=True)
        if catalogue is not None:  # a valid catalogue only: its windows say whose data is due
            retention(catalogue)
        if not every:
            return
        time.sleep(every)


if __name__ == "__main__":
    main()
