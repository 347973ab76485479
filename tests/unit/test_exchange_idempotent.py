"""Submissions that survive retries: one record per idempotency key, the autograde-on-submit queue
on disk (storage.py), the client's retries with one key per attempt (client.py). A kill -9 mid-write
and under load: tests/integration/test_exchange_idempotent.py."""

import datetime as dt
import logging
import time

import httpx
import nbformat
import pytest

from grading.exchange.client import ExchangeAPI
from grading.exchange.practice import next_batch
from grading.exchange.storage import ExchangeProblem, ExchangeStore, Limits

T0 = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
LIMITS = Limits(max_file_size=50_000_000, max_total_size=60_000_000, max_files=5)
KEY = "k" * 24


def notebook(text="x = 1") -> bytes:
    return nbformat.writes(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text, id="c1")])
    ).encode()


@pytest.fixture
def store(tmp_path):
    s = ExchangeStore(tmp_path / "exchange")
    s.release("algo", "ps1", {"ps1.ipynb": notebook()}, "prof", T0)
    return s


def test_a_retry_with_the_same_key_gets_the_first_record_and_stores_nothing(store):
    first = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0, key=KEY)
    again = store.submit(
        "algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0 + dt.timedelta(seconds=9), key=KEY
    )
    assert again["replayed"] and {**again, "replayed": None} == {**first, "replayed": None}
    assert [m["id"] for m in store.submissions("algo", "ps1", "ana")] == [first["id"]]
    # another attempt (a new key) is another submission; the same key for other files is refused
    store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0, key="n" * 24)
    assert len(store.submissions("algo", "ps1", "ana")) == 2
    with pytest.raises(ExchangeProblem, match="already used for other files") as err:
        store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook("x = 2")}, LIMITS, T0, key=KEY)
    assert err.value.status == 409
    # a key is the learner's own: bob's same key is bob's first submission
    assert not store.submit("algo", "ps1", "bob", {"ps1.ipynb": notebook()}, LIMITS, T0, key=KEY).get(
        "replayed"
    )
    with pytest.raises(ExchangeProblem, match="Idempotency-Key"):
        store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0, key="../x")


def test_the_autograde_queue_is_markers_on_disk(store):
    a = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0, autograde=True)
    store.submit("algo", "ps1", "bob", {"ps1.ipynb": notebook()}, LIMITS, T0)  # not graded on submit
    b = store.submit(
        "algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0 + dt.timedelta(1), autograde=True
    )
    reopened = ExchangeStore(store.root)  # what a restarted service sees
    assert [m["id"] for m in reopened.pending_autograde()] == [a["id"], b["id"]]
    reopened.autograded("algo", "ps1", "ana", a["id"])
    assert [m["id"] for m in reopened.pending_autograde()] == [b["id"]]
    assert store.submission_files("algo", "ps1", "ana", b["id"]) == {
        "ps1.ipynb": notebook()
    }  # not a file of it


def test_a_batch_takes_one_submission_per_learner_of_one_assignment():
    w = [
        {"assignment_id": "q", "student_id": "ana", "id": "1"},
        {"assignment_id": "q", "student_id": "ana", "id": "2"},
        {"assignment_id": "p", "student_id": "bob", "id": "3"},
        {"assignment_id": "q", "student_id": "bob", "id": "4"},
    ]
    assert [m["id"] for m in next_batch(w)] == ["1", "4"]
    assert next_batch([]) == []


class Flaky:
    """An exchange that is down for the first ``down`` requests (refused, then 503), then answers."""

    def __init__(self, down: int):
        self.down, self.requests = down, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) <= self.down:
            if len(self.requests) % 2:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(503, json={"error": "restarting"})
        return httpx.Response(201, json={"timestamp": "t", "id": "1"})


def client(answer, retry_for) -> ExchangeAPI:
    transport = httpx.MockTransport(answer)
    return ExchangeAPI("http://127.0.0.1:1/x/", "tok", 5, logging.getLogger("t"), transport, retry_for, 0.01)


def test_the_client_retries_a_submission_with_one_key_per_attempt():
    flaky = Flaky(down=3)
    client(flaky, retry_for=10).submit("algo", "ps1", {"ps1.ipynb": "e30="})
    keys = {r.headers["Idempotency-Key"] for r in flaky.requests}
    assert len(flaky.requests) == 4 and len(keys) == 1 and len(keys.pop()) >= 16
    second = Flaky(down=0)
    client(second, retry_for=10).submit("algo", "ps1", {"ps1.ipynb": "e30="})
    assert second.requests[0].headers["Idempotency-Key"] not in {
        r.headers["Idempotency-Key"] for r in flaky.requests
    }


def test_the_client_gives_up_after_retry_for_and_never_retries_an_unkeyed_write():
    down = Flaky(down=10**6)
    started = time.monotonic()
    with pytest.raises(Exception, match="Cannot reach the exchange|answered 503"):
        client(down, retry_for=0.3).courses()
    assert time.monotonic() - started < 3 and len(down.requests) > 1
    once = Flaky(down=10**6)
    with pytest.raises(Exception, match="Cannot reach the exchange"):
        client(once, retry_for=10).unrelease_assignment("algo", "ps1")
    assert len(once.requests) == 1
