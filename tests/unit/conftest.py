"""Unit-test helpers: a catalogue written to a temporary folder, from plain dicts."""

import pytest
import yaml

from hub_config.catalogue import load_catalogue

SITE = {
    "name": "unit",
    "data_dir": "data",
    "courses_dir": "courses",
    "authentication": {"admin_users": ["root-admin"]},
}


def course(slug="algo", **over):
    base = {
        "slug": slug,
        "title": {"fr": "Algorithmique", "en": "Algorithms"},
        "kind": "academic",
        "instructors": ["prof"],
        "learners": ["ana", "ben"],
        "start": "2026-09-01",
        "end": "2027-01-31",
    }
    base.update(over)
    return base


@pytest.fixture
def write_catalogue(tmp_path):
    """write_catalogue(site=..., courses={folder: dict or raw text}) -> site file path."""

    def write(site=None, courses=None):
        (tmp_path / "courses").mkdir(exist_ok=True)
        for folder, content in (courses if courses is not None else {"algo": course()}).items():
            (tmp_path / "courses" / folder).mkdir()
            text = content if isinstance(content, str) else yaml.safe_dump(content)
            (tmp_path / "courses" / folder / "course.yaml").write_text(text)
        site_file = tmp_path / "unit.yaml"
        site_file.write_text(yaml.safe_dump(site or SITE) if not isinstance(site, str) else site)
        return site_file

    return write


@pytest.fixture
def catalogue(write_catalogue):
    return load_catalogue(
        write_catalogue(
            courses={"algo": course(), "stats": course("stats", instructors=["prof2"], learners=["cleo"])}
        )
    )
