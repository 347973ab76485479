"""The running hub's catalogue: parsed again only when a file changes, appears or goes."""

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from hub_config.catalogue import LiveCatalogue, UnknownCourse, load_catalogue

from .conftest import course


class Counting:
    """load_catalogue, counting its calls (LiveCatalogue's ``load`` hook)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, site_file):
        self.calls += 1
        return load_catalogue(site_file)


def settle(root):
    """Every file of the catalogue last modified a minute ago, as on a deployed hub."""
    old = time.time() - 60
    for path in [root / "unit.yaml", *root.glob("courses/*/course.yaml")]:
        os.utime(path, (old, old))


@pytest.fixture
def live(write_catalogue):
    site_file = write_catalogue(courses={"algo": course(), "stats": course("stats")})
    settle(site_file.parent)
    load = Counting()
    live = LiveCatalogue(site_file, logging.getLogger("test"), load=load)
    assert [c.slug for c in live.current().courses] == ["algo", "stats"]
    return live, load, site_file.parent


def slugs(live):
    return [c.slug for c in live.current().courses]


def test_an_unchanged_catalogue_is_parsed_once(live):
    live, load, _ = live
    for _ in range(50):
        live.current()
    assert load.calls == 1


def test_only_the_files_stat_is_looked_at(live):
    """An edit that keeps size, inode and modification time is not seen: no parse happened."""
    live, load, root = live
    path = root / "courses" / "algo" / "course.yaml"
    st = path.stat()
    text = path.read_text()
    edited = text.replace("learners:\n- ana\n- ben", "learners:\n- ana\n- bob")
    assert edited != text and len(edited) == len(text)
    path.write_text(edited)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert live.current().course("algo").learners == ["ana", "ben"] and load.calls == 1


def test_a_changed_course_file_is_seen_at_once(live):
    live, load, root = live
    path = root / "courses" / "algo" / "course.yaml"
    path.write_text(yaml.safe_dump(course(learners=["ana", "bob"])))  # same size, new mtime
    assert live.current().course("algo").learners == ["ana", "bob"]
    assert load.calls == 2


def test_a_changed_site_file_is_seen_at_once(live):
    live, _, root = live
    site = yaml.safe_load((root / "unit.yaml").read_text())
    site["authentication"]["admin_users"] = ["other-admin"]
    (root / "unit.yaml").write_text(yaml.safe_dump(site))
    assert live.current().site.authentication.admin_users == ["other-admin"]


def test_an_added_or_removed_course_folder_is_seen_at_once(live):
    live, _, root = live
    (root / "courses" / "new").mkdir()
    (root / "courses" / "new" / "course.yaml").write_text(yaml.safe_dump(course("new")))
    os.utime(root / "courses" / "new" / "course.yaml", (0, 0))  # an old file moved in
    assert slugs(live) == ["algo", "new", "stats"]
    (root / "courses" / "stats" / "course.yaml").unlink()
    (root / "courses" / "stats").rmdir()
    assert slugs(live) == ["algo", "new"]


def test_threads_asking_at_once_after_a_change_parse_it_once(live):
    live, load, root = live
    (root / "courses" / "algo" / "course.yaml").write_text(yaml.safe_dump(course(learners=["zoe"])))
    settle(root)
    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda _: live.current().course("algo").learners, range(32)))
    assert seen == [["zoe"]] * 32 and load.calls == 2


def test_a_file_written_just_now_is_parsed_again_until_it_settles(write_catalogue):
    """Two writes within one tick of the file system's clock would look the same to a stat."""
    load = Counting()
    live = LiveCatalogue(write_catalogue(), logging.getLogger("test"), load=load)
    live.current()
    live.current()
    assert load.calls == 2


def test_an_invalid_change_keeps_the_last_valid_catalogue_and_is_logged_once(live, caplog):
    live, load, root = live
    path = root / "courses" / "stats" / "course.yaml"
    path.write_text("slug: stats\nkind: [broken\n")
    settle(root)
    with caplog.at_level(logging.ERROR):
        assert slugs(live) == ["algo", "stats"]
        assert slugs(live) == ["algo", "stats"]
    assert caplog.text.count("keeping the previous one") == 1 and "not valid YAML" in caplog.text
    assert load.calls == 2  # the broken state is not parsed again at each login
    path.write_text(yaml.safe_dump(course("stats", learners=["cleo"])))
    assert live.current().course("stats").learners == ["cleo"]


def test_an_unknown_course_is_named_with_the_known_ones(catalogue):
    with pytest.raises(UnknownCourse) as err:
        catalogue.course("nope")
    assert isinstance(err.value, LookupError) and err.value.slug == "nope"
    assert str(err.value) == f"no course 'nope' in {catalogue.courses_dir} (courses: algo, stats)"


def test_the_grading_commands_name_an_unknown_course_and_the_known_ones(write_catalogue):
    from click.testing import CliRunner

    from grading.export import grades

    site = write_catalogue()
    result = CliRunner().invoke(grades, ["export", "nope", "--site", str(site)])
    assert (
        result.exit_code == 2 and "no course 'nope'" in result.output and "(courses: algo)" in result.output
    )


def test_a_roster_change_is_seen_at_once_without_parsing_the_courses_again(live):
    """The course sync writes a directory group, an import a cohort: the next login sees the new
    learners, and no course file is parsed again, however fresh the roster file is."""
    from hub_config import roster

    live, load, root = live
    data_dir = live.current().data_dir
    assert "zed" not in live.current().people()
    roster.write_json(data_dir / roster.COHORTS / "stats.json", {"trainees": [{"username": "zed"}]})
    assert "zed" in live.current().learners(live.current().course("stats"))
    roster.write_groups(data_dir, "ldap", {"cn=m2,ou=groups": ["yann"]})
    assert "yann" not in live.current().people()  # no course takes that group
    for _ in range(20):
        live.current()
    assert load.calls == 1
    (data_dir / roster.COHORTS / "stats.json").write_text("not json")  # by hand, broken
    assert "zed" in live.current().people()  # the last rosters read stay in force
