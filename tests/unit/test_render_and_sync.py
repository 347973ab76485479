"""What `ailys render` prints, and what a sync would change, without a hub."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hub_config.cli import rendered_config
from hub_config.docs import REFERENCE, render
from hub_config.sync import all_pages, plan

ROOT = Path(__file__).parents[2]


def test_render_masks_every_secret(catalogue):
    rendered = rendered_config(catalogue)
    text = json.dumps(rendered)
    assert rendered["ConfigurableHTTPProxy"]["auth_token"] == "***"
    assert all(s.get("api_token", "***") == "***" for s in rendered["JupyterHub"]["services"])
    assert not (catalogue.data_dir / "secrets").exists()  # rendering creates no secret
    assert rendered["JupyterHub"]["load_groups"]["course-algo"]["users"] == ["ana", "ben"]
    assert "p" * 64 not in text


def test_ailys_render_of_the_shipped_local_site():
    out = subprocess.run(
        [sys.executable, "-m", "hub_config.cli", "render", "--site", "local"],
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(out.stdout)
    assert config["JupyterHub"]["spawner_class"] == "spawners.local.LocalSpawner"
    assert set(config["JupyterHub"]["load_groups"]) >= {"course-frugal-ml", "staff-frugal-ml"}


def test_ailys_validate_reports_every_problem_and_fails(tmp_path, write_catalogue):
    from .conftest import course

    site = write_catalogue(courses={"algo": course(kind="x", resources={"memory": "4 Go"})})
    out = subprocess.run(
        [sys.executable, "-m", "hub_config.cli", "validate", "--site", str(site)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "2 problems" in out.stderr and "resources.memory" in out.stderr and "kind" in out.stderr


def test_sync_plan_creates_adds_removes_and_deletes(catalogue):
    hub_users = {"ana", "prof", "old"}
    hub_groups = {
        "course-algo": {"ana", "old"},
        "staff-algo": {"prof"},
        "course-gone": {"old"},
        "other": {"x"},
    }
    p = plan(catalogue, hub_users, hub_groups)
    assert p.create_users == ["ben", "cleo", "prof2"]
    assert p.create_groups == ["course-stats", "staff-stats"]
    assert p.add == {"course-algo": ["ben"], "course-stats": ["cleo"], "staff-stats": ["prof2"]}
    assert p.remove == {"course-algo": ["old"]}
    assert p.delete_groups == ["course-gone"]  # groups not made by courses are left alone


def test_sync_plan_is_empty_when_the_hub_matches(catalogue):
    groups = {
        "course-algo": {"ana", "ben"},
        "staff-algo": {"prof"},
        "course-stats": {"cleo"},
        "staff-stats": {"prof2"},
    }
    assert not plan(catalogue, set(catalogue.people()), groups)


def test_sync_reads_every_page_of_a_hub_listing():
    people = [f"p{i:03}" for i in range(450)]
    asked = []

    def page_at(offset):  # as JupyterHub's paginated_model answers with its api_page_max_limit of 200
        asked.append(offset)
        nxt = {"offset": offset + 200, "limit": 200} if offset + 200 < len(people) else None
        return {
            "items": people[offset : offset + 200],
            "_pagination": {"offset": offset, "total": 450, "next": nxt},
        }

    assert all_pages(page_at) == people
    assert asked == [0, 200, 400]
    with pytest.raises(RuntimeError, match="does not advance past offset 0"):
        all_pages(lambda offset: {"items": [], "_pagination": {"next": {"offset": 0}}})


def test_reference_docs_are_generated_from_the_schema():
    assert REFERENCE.read_text() == render(), "docs/reference.md is stale: run `make docs`"
    assert "| `resources.memory` | `2G` |" in render()
