"""Per-person quotas on a real hub: a submission over the learner's exchange quota is refused
with a message in their JupyterLab assignment list (what they submitted before stays), and their
footprint page shows their home's usage against its quota, with a message once over."""

from __future__ import annotations

import pytest

from tests.integration.test_exchange import Learner
from tests.integration.test_grading_formgrader import Instructor, grading_hub
from tests.services import free_port
from tests.services.hub import course

pytestmark = pytest.mark.hub

SLUG, PROF, LEARNER, GRADER = "bk-quota", "bk-qprof", "bk-quinn", "bk-qgrader"


def submissions(learner: Learner) -> list[str]:
    listed = learner.action("fetch_feedback", SLUG)["value"]
    return sorted(s["timestamp"] for a in listed if a["status"] == "submitted" for s in a["submissions"])


def test_the_exchange_quota_refuses_with_a_message_and_the_home_quota_is_shown():
    model = course(SLUG, [PROF], [LEARNER], assignments=[{"name": "ps1"}])
    site = {"quotas": {"home": "1M", "exchange": "10K"}}
    with grading_hub([model], GRADER, {SLUG: "ps1"}, free_port(), "test_quotas", site) as hub:
        prof = Instructor(hub, PROF, SLUG)
        prof.post("assignment/ps1/assign")
        prof.post("assignment/ps1/release")
        quinn = Learner(hub, LEARNER)
        quinn.action("fetch", SLUG)
        assert quinn.action("submit", SLUG)["success"]
        [first] = submissions(quinn)

        quinn.save_text(f"{SLUG}/ps1/data.csv", "1," * 4096)  # 8K more: over 10K with the first
        refused = quinn.action("submit", SLUG)
        assert refused["success"] is False
        assert "over your exchange quota" in refused["value"], refused["value"][-1500:]
        assert "of 10.0K" in refused["value"] and "earlier submissions are kept" in refused["value"]
        assert submissions(quinn) == [first]

        page = quinn.client.get("/services/footprint/?lang=en", follow_redirects=True)
        assert page.status_code == 200
        assert 'id="disk"' in page.text and "your home" in page.text and "1.0M" in page.text
        assert "over its quota" not in page.text
        quinn.save_text("big.txt", "z" * 1536 * 1024)  # the learner fills their home
        page = quinn.client.get("/services/footprint/?lang=en", follow_redirects=True)
        assert "Your home uses 1.5M, over its quota of 1.0M" in page.text, page.text[-2000:]
        page = quinn.client.get("/services/footprint/?lang=fr", follow_redirects=True)
        assert "au-delà de son quota de 1.0M" in page.text
