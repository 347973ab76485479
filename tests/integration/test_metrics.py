"""Metrics scraped by a real Prometheus (tests/services/prometheus.py) from a real hub and its
exchange, with the one token the hub gives Prometheus: values checked against what the test did
(3 submissions, a refusal, a server started), and each /metrics closed to any other token."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import nbformat
import pytest

from grading.exchange.client import ExchangeAPI, ExchangeRefused
from hub_config.metrics import METRICS_SCOPE
from tests.conftest import need
from tests.integration.test_exchange import exchange_url, user_token, wait_for_exchange
from tests.services import prometheus
from tests.services.hub import RunningHub, course

pytestmark = pytest.mark.hub

SLUG, PROF, LEARNER = "m17-met", "m17-mprof", "m17-mann"


@pytest.fixture(scope="module")
def hub():
    # generous like the grading hubs: a loaded machine starts the hub's five services slowly
    running = RunningHub(
        [course(SLUG, [PROF], [LEARNER])],  # no assignment declared: no grading service to start
        site={
            "energy": {"service": {"enabled": False}},
            "services_start_timeout": "5m",
        },  # footprint: not scraped
        start_timeout=180,
    )
    try:
        running.start()
        wait_for_exchange(running)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def prom(hub):
    need(prometheus.available(), "Debian's prometheus is not installed (make test-deps)")
    targets = {
        "hub": f"{hub.url}/hub/metrics",
        "exchange": exchange_url(hub) + "metrics",
        "gallery": gallery_url(hub) + "metrics",
    }
    with prometheus.Prometheus(targets, hub.secrets.prometheus_token) as running:
        yield running


def gallery_url(hub: RunningHub) -> str:
    return f"http://127.0.0.1:{hub.catalogue.site.gallery.port}/services/gallery/"


def notebook() -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", id="c1")])
    return base64.b64encode(nbformat.writes(nb).encode()).decode()


def test_prometheus_reads_what_the_exchange_and_the_hub_did(hub, prom):
    for job in ("hub", "exchange", "gallery"):
        prom.wait_for(f'up{{job="{job}"}}', lambda v: v == 1, 60)
    assert prom.value("ailys_gallery_kernels") == 0  # no course of this hub has a demo
    log = logging.getLogger("test")
    prof = ExchangeAPI(exchange_url(hub), user_token(hub, PROF), 30, log)
    ann = ExchangeAPI(exchange_url(hub), user_token(hub, LEARNER), 30, log)
    prof.release_assignment(SLUG, "ps1", {"ps1.ipynb": notebook()}, force=False)
    before = prom.value(f'ailys_exchange_submissions_total{{course="{SLUG}"}}') or 0
    for _ in range(3):
        ann.submit(SLUG, "ps1", {"ps1.ipynb": notebook()})
    with pytest.raises(ExchangeRefused):
        ann.release_assignment(SLUG, "ps1", {"ps1.ipynb": notebook()}, force=True)  # a learner: 403
    prom.wait_for(f'ailys_exchange_submissions_total{{course="{SLUG}"}}', lambda v: v == before + 3, 30)
    prom.wait_for('ailys_exchange_refusals_total{reason="forbidden"}', lambda v: v >= 1, 30)
    prom.wait_for('sum(ailys_exchange_request_duration_seconds_count{route="submit"})', lambda v: v >= 3, 30)
    # the hub: its own metrics and our spawn counter, after a learner starts a server
    client = hub.login(LEARNER)
    hub.spawn(client, LEARNER)
    prom.wait_for('ailys_spawns_total{kind="local"}', lambda v: v == 1, 30)
    assert prom.value('ailys_spawn_failures_total{kind="local"}') in (None, 0.0)
    prom.wait_for("jupyterhub_running_servers", lambda v: v >= 1, 30)


def test_metrics_are_read_with_the_metrics_scope_only(hub):
    url = exchange_url(hub) + "metrics"
    assert httpx.get(url).status_code == 401
    learner = user_token(hub, LEARNER)  # holds access:services!service=exchange, not the metrics scope
    r = httpx.get(url, headers={"Authorization": f"token {learner}"})
    assert r.status_code == 403 and METRICS_SCOPE in r.text
    token = {"Authorization": f"Bearer {hub.secrets.prometheus_token}"}
    assert "ailys_exchange_submissions_total" in httpx.get(url, headers=token).text
    assert "ailys_gallery_kernels" in httpx.get(gallery_url(hub) + "metrics", headers=token).text
    assert (
        httpx.get(gallery_url(hub) + "metrics", headers={"Authorization": f"token {learner}"}).status_code
        == 403
    )
    assert httpx.get(f"{hub.url}/hub/metrics", headers=token).status_code == 200
    # Prometheus's token reads metrics and nothing else: not the users, not the exchange's API
    assert httpx.get(f"{hub.url}/hub/api/users", headers=token).status_code == 403
    r = httpx.get(exchange_url(hub) + "api/courses", headers=token)
    assert r.status_code == 403, r.text
    assert json.loads(r.text)["error"] == "this token lacks the scope access:services!service=exchange"
    assert (
        httpx.get(f"{hub.url}/hub/metrics", headers={"Authorization": f"token {learner}"}).status_code == 403
    )
