"""The course sync against a real hub with more people and groups than one page of its API (200)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from hub_config.sync import hub_api_for
from tests.services.hub import RunningHub, course

pytestmark = pytest.mark.hub

LEARNERS = [f"sync-l{i:03}" for i in range(450)]
PAGED = {"Accept": "application/jupyterhub-pagination+json"}


def courses_sync(hub: RunningHub) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "hub_config.cli", "courses", "--site", str(hub.site_file), "sync"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def every_page(hub: RunningHub, path: str) -> list[dict]:
    """A listing read page by page with the test's own token, independently of the sync's code."""
    api, items, offset = hub.admin_api(), [], 0
    while offset is not None:
        page = api.get(path, params={"offset": offset, "limit": 200}, headers=PAGED).json()
        items += page["items"]
        offset = (page["_pagination"]["next"] or {}).get("offset")
    return items


def test_a_course_of_450_learners_is_synced_whole_and_a_second_sync_changes_nothing():
    # The hub commits each new user on its own: a database in memory (tmpfs) halves the test's time.
    memory = Path(tempfile.mkdtemp(prefix="ailys-test-sync-", dir="/dev/shm"))
    site = {"database_url": f"sqlite:///{memory}/jupyterhub.sqlite"}
    hub = RunningHub([course("sync-small", ["sync-prof"], ["sync-one"])], site=site)
    # The sync under test is the only one: the hub's own course-sync service, started with the hub,
    # would otherwise race it on the new folder. It keeps its token and role, as `ailys courses sync` uses.
    (hub.data / "jupyterhub_config.d" / "60-no-sync-service.py").write_text(
        "for s in c.JupyterHub.services:\n    if s['name'] == 'course-sync':\n        s.pop('command')\n"
    )
    try:
        hub.start()
        # 250 groups of something else first, so that the new course's groups come after the first page.
        clubs = hub_api_for(hub.catalogue).client.post(
            "groups", json={"groups": [f"club-{i:03}" for i in range(250)]}
        )
        assert clubs.status_code == 201, clubs.text
        folder = hub.root / "courses" / "sync-big"
        folder.mkdir()
        (folder / "course.yaml").write_text(yaml.safe_dump(course("sync-big", ["sync-prof"], LEARNERS)))

        first = courses_sync(hub)
        assert first.returncode == 0, first.stderr
        assert "create group course-sync-big" in first.stdout.splitlines()
        again = courses_sync(hub)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == ["already up to date"]

        users = {u["name"]: set(u["groups"]) for u in every_page(hub, "/users")}
        assert all("course-sync-big" in users[name] for name in LEARNERS)
        groups = {g["name"]: g["users"] for g in every_page(hub, "/groups")}
        assert {"club-249", "course-sync-small", "staff-sync-small"} <= set(groups)
        assert sorted(groups["course-sync-big"]) == LEARNERS and groups["staff-sync-big"] == ["sync-prof"]
    finally:
        hub.stop()
        shutil.rmtree(memory)
