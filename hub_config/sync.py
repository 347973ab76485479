"""Bring the hub's groups and memberships up to date with the course folders.

``plan`` is pure: from the catalogue and what the hub reports it computes the changes.
``sync`` applies them through the hub's REST API with the course-sync service's token.
An invalid catalogue changes nothing. Run as a hub-managed service (``python -m
hub_config.sync SITE --every N``) it also picks up new course folders by itself.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from urllib.parse import quote

import click
import httpx

from . import names
from .appliers.access import course_groups
from .catalogue import Catalogue, CatalogueError, load_catalogue
from .secrets import ensure_demo_logins, load_secrets


@dataclasses.dataclass(frozen=True)
class Plan:
    create_users: list[str]
    create_groups: list[str]
    add: dict[str, list[str]]  # group -> users to add
    remove: dict[str, list[str]]  # group -> users to remove
    delete_groups: list[str]  # groups of courses whose folder is gone

    def __bool__(self) -> bool:
        return any(dataclasses.astuple(self))

    def lines(self) -> list[str]:
        out = [f"create user {u}" for u in self.create_users]
        out += [f"create group {g}" for g in self.create_groups]
        out += [f"add {', '.join(u)} to {g}" for g, u in self.add.items()]
        out += [f"remove {', '.join(u)} from {g}" for g, u in self.remove.items()]
        out += [f"delete group {g}" for g in self.delete_groups]
        return out


def plan(catalogue: Catalogue, hub_users: set[str], hub_groups: dict[str, set[str]]) -> Plan:
    wanted: dict[str, set[str]] = {}
    for course in catalogue.courses:
        groups = course_groups(course, catalogue.learners(course))
        wanted.update({name: set(g["users"]) for name, g in groups.items()})
    people = set().union(*wanted.values()) if wanted else set()
    add, remove = {}, {}
    for group, users in sorted(wanted.items()):
        have = hub_groups.get(group, set())
        if users - have:
            add[group] = sorted(users - have)
        if have - users:
            remove[group] = sorted(have - users)
    return Plan(
        create_users=sorted(people - hub_users),
        create_groups=sorted(set(wanted) - set(hub_groups)),
        add=add,
        remove=remove,
        delete_groups=sorted(g for g in hub_groups if names.course_of_group(g) and g not in wanted),
    )


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

    def state(self) -> tuple[set[str], dict[str, set[str]]]:
        users = {u["name"] for u in self._listing("users")}
        groups = {g["name"]: set(g["users"]) for g in self._listing("groups")}
        return users, groups

    def apply(self, p: Plan) -> None:
        if p.create_users:
            self._call("POST", "users", {"usernames": p.create_users})
        for g in p.create_groups:
            self._call("POST", f"groups/{quote(g)}")
        for g, users in p.add.items():
            self._call("POST", f"groups/{quote(g)}/users", {"users": users})
        for g, users in p.remove.items():
            self._call("DELETE", f"groups/{quote(g)}/users", {"users": users})
        for g in p.delete_groups:
            self._call("DELETE", f"groups/{quote(g)}")


def hub_api_for(catalogue: Catalogue) -> HubAPI:
    """Inside a hub service the hub gives URL and token; elsewhere they come from the site."""
    if "JUPYTERHUB_API_TOKEN" in os.environ and "JUPYTERHUB_API_URL" in os.environ:
        return HubAPI(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    listen = catalogue.site.listen
    url = f"http://127.0.0.1:{listen.hub_port}{listen.base_url}hub/api/"
    return HubAPI(url, load_secrets(catalogue.data_dir).sync_token)


def sync(catalogue: Catalogue, api: HubAPI) -> Plan:
    if catalogue.site.authentication.demo_accounts:
        ensure_demo_logins(load_secrets(catalogue.data_dir), catalogue.people())
    p = plan(catalogue, *api.state())
    api.apply(p)
    return p


@click.command()
@click.argument("site_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--every", type=int, default=0, help="Seconds between syncs; 0: once.")
def main(site_file: str, every: int) -> None:
    """The course-sync hub service."""
    while True:
        try:
            catalogue = load_catalogue(site_file)
            for line in sync(catalogue, hub_api_for(catalogue)).lines():
                print(f"course-sync: {line}", flush=True)
        except CatalogueError as err:
            print(f"course-sync: catalogue invalid, hub left as it is:\n{err}", file=sys.stderr, flush=True)
        except (httpx.HTTPError, RuntimeError) as err:
            print(f"course-sync: {err}", file=sys.stderr, flush=True)
        if not every:
            return
        time.sleep(every)


if __name__ == "__main__":
    main()
