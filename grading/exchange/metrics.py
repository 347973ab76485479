"""The exchange's metrics (served at <prefix>metrics by service.py, hub_config/metrics.py's scope):
submissions, refusals by reason, request latency, and the autograde-on-submit queue."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SUBMISSIONS = Counter(
    "ailys_exchange_submissions_total",
    "Submissions recorded (retries answered from the first not counted)",
    ["course"],
)
REPLAYS = Counter(
    "ailys_exchange_submission_replays_total",
    "Retried submissions answered with the record of the first (same idempotency key)",
    ["course"],
)
# reason: unauthenticated 401, forbidden 403, not_found 404, conflict 409, refused_submission 422,
# bad_request 400, too_large 413, unavailable 503
REASONS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "refused_submission",
    503: "unavailable",
}
REFUSALS = Counter("ailys_exchange_refusals_total", "Requests the exchange refused, by reason", ["reason"])
LATENCY = Histogram(
    "ailys_exchange_request_duration_seconds",
    "Time to answer a request, by route",
    ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
QUEUE_DEPTH = Gauge(
    "ailys_autograde_queue_depth", "Submissions waiting to be graded on submit, by course", ["course"]
)
GRADED = Counter("ailys_autograde_runs_total", "Submissions graded on submit, by course", ["course"])
GRADE_FAILURES = Counter(
    "ailys_autograde_failures_total",
    "Submissions graded on submit that could not be graded (left to the instructor), by course",
    ["course"],
)
WAIT = Histogram(
    "ailys_autograde_wait_seconds",
    "From a submission's arrival to its feedback's release (or its failure)",
    ["course"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)


def reason_of(status: int) -> str:
    return REASONS.get(status, f"http_{status}")
