"""Per-person disk quotas (site `quotas:`): the exchange refuses a submission over a learner's
quota and keeps what they submitted before; a person's usage against each quota."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import yaml

from grading.exchange.storage import ExchangeProblem, ExchangeStore, Limits
from hub_config.catalogue import load_catalogue
from hub_config.quotas import exchange_used, folder_size, person_usage
from tests.unit.conftest import SITE
from tests.unit.test_exchange_storage import LIMITS, T0, notebook


@pytest.fixture
def store(tmp_path):
    s = ExchangeStore(tmp_path / "exchange")
    for course in ("algo", "stats"):
        s.release(course, "ps1", {"ps1.ipynb": notebook()}, "prof", T0)
    return s


def test_a_submission_over_the_exchange_quota_is_refused_and_earlier_ones_are_kept(store):
    limits = dataclasses.replace(LIMITS, quota=6_000)
    first = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook(), "a.csv": b"1" * 2_000}, limits, T0)
    used = exchange_used(store.root, "ana")
    assert 2_000 < used < 6_000
    later = T0 + dt.timedelta(minutes=1)
    # in another course: the quota is of all their submissions
    with pytest.raises(ExchangeProblem) as refused:
        store.submit("stats", "ps1", "ana", {"ps1.ipynb": notebook(), "b.csv": b"2" * 3_000}, limits, later)
    assert refused.value.status == 422
    message = refused.value.message
    assert "over your exchange quota" in message and "of 5.9K" in message, message
    assert "earlier submissions are kept" in message
    assert [s["id"] for s in store.submissions("algo", "ps1", "ana")] == [first["id"]]
    assert store.submissions("stats", "ps1", "ana") == []
    assert exchange_used(store.root, "ana") == used
    # another learner has a quota of their own
    store.submit("stats", "ps1", "ben", {"ps1.ipynb": notebook(), "b.csv": b"2" * 3_000}, limits, later)
    # no quota: no limit but the course's
    store.submit("stats", "ps1", "ana", {"ps1.ipynb": notebook(), "b.csv": b"2" * 3_000}, LIMITS, later)


def test_folder_size_counts_files_not_what_links_point_to(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "a.txt").write_bytes(b"x" * 1000)
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "b.bin").write_bytes(b"y" * 50_000)
    (tmp_path / "home" / "team-x").symlink_to(tmp_path / "big")  # a team folder: not theirs alone
    assert folder_size(tmp_path / "home") == 1000
    assert folder_size(tmp_path / "nowhere") == 0


def test_a_persons_usage_against_each_quota_the_site_sets(tmp_path):
    (tmp_path / "courses").mkdir()

    def site(quotas, spawner=None):
        body = {**SITE, "quotas": quotas, **({"spawner": spawner} if spawner else {})}
        (tmp_path / "unit.yaml").write_text(yaml.safe_dump(body))
        return load_catalogue(tmp_path / "unit.yaml")

    catalogue = site({"home": "1K", "exchange": "1M"})
    home = catalogue.data_dir / "homes" / "ana"
    home.mkdir(parents=True)
    (home / "notes.txt").write_bytes(b"z" * 600)
    [(what, usage), (what2, usage2)] = person_usage(catalogue, "ana")
    assert (what, usage.used, usage.limit, usage.over) == ("home", 600, 1024, False)
    assert (what2, usage2.used, usage2.over) == ("exchange", 0, False)
    (home / "more.txt").write_bytes(b"z" * 600)
    assert person_usage(catalogue, "ana")[0][1].over
    assert person_usage(site({}), "ana") == []  # no quota set: nothing shown
    with pytest.raises(ValueError, match="is not a person's username"):
        person_usage(catalogue, "../etc")


def test_quotas_need_a_unit():
    from pydantic import ValidationError

    from hub_config.schema import Site

    with pytest.raises(ValidationError, match="quotas.home"):
        Site.model_validate({**SITE, "quotas": {"home": "2"}})
    assert Site.model_validate({**SITE, "quotas": {"exchange": "200M"}}).quotas.exchange == 200 * 2**20
    assert Limits(1, 1, 1).quota is None
