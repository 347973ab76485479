"""The exchange's route table (grading/exchange/routes.py): the service is built from it and serves
each route and nothing else; the client has one method per route and calls it where the service
answers. The network is httpx's in-memory transport, the service's routing tornado's own."""

import json
import logging

import httpx
import pytest
from nbgrader.exchange.abc.exchange import ExchangeError
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from grading.exchange import service
from grading.exchange.client import ExchangeAPI, ExchangeRefused
from grading.exchange.routes import ROUTES, Route
from hub_config.metrics import MetricsHandler

PREFIX = "/hub-a/services/exchange/"
SUB = "20261201T090000.000000Z"
ARGS = {"course": "algo", "assignment": "ps1", "learner": "ana", "submission": SUB}

# The API as it stands (learners' servers of every version speak it): method, path, query arguments.
API = {
    "courses": ("GET", "courses", ()),
    "course": ("GET", "courses/algo", ()),
    "assignments": ("GET", "courses/algo/assignments", ()),
    "fetch_assignment": ("GET", "courses/algo/assignments/ps1", ()),
    "release_assignment": ("PUT", "courses/algo/assignments/ps1", ()),
    "unrelease_assignment": ("DELETE", "courses/algo/assignments/ps1", ()),
    "submit": ("POST", "courses/algo/assignments/ps1/submissions", ()),
    "submissions": ("GET", "courses/algo/submissions", ("assignment", "student")),
    "collect": ("GET", f"courses/algo/submissions/ps1/ana/{SUB}", ()),
    "feedback": ("GET", "courses/algo/feedback", ("assignment", "student")),
    "release_feedback": ("PUT", "courses/algo/feedback/ps1/ana", ()),
    "fetch_feedback": ("GET", f"courses/algo/feedback/ps1/ana/{SUB}", ()),
    "accommodations": ("GET", "courses/algo/accommodations", ()),
    "set_accommodation": ("PUT", "courses/algo/accommodations/ana", ()),
    "remove_accommodation": ("DELETE", "courses/algo/accommodations/ana", ("assignment",)),
}

# How the client calls each route, and the JSON body it must send.
FILES = {"ps1.ipynb": "e30="}
STAMP = "2026-12-01 09:00:00.000000 UTC"
CALLS = {
    "courses": ((), None),
    "course": (("algo",), None),
    "assignments": (("algo",), None),
    "fetch_assignment": (("algo", "ps1"), None),
    "release_assignment": (("algo", "ps1", FILES, True), {"files": FILES, "force": True}),
    "unrelease_assignment": (("algo", "ps1"), None),
    "submit": (("algo", "ps1", FILES), {"files": FILES}),
    "submissions": (("algo", "ps1", "ana"), None),
    "collect": (("algo", "ps1", "ana", SUB), None),
    "feedback": (("algo", "ps1", "ana"), None),
    "release_feedback": (("algo", "ps1", "ana", STAMP, FILES), {"timestamp": STAMP, "files": FILES}),
    "fetch_feedback": (("algo", "ps1", "ana", SUB), None),
    "accommodations": (("algo",), None),
    "set_accommodation": (
        ("algo", "ana", "33%", "ps1", "2d"),
        {"extra_time": "33%", "assignment": "ps1", "extension": "2d"},
    ),
    "remove_accommodation": (("algo", "ana", "ps1"), None),
}


def resolve(app, method: str, path: str):
    """The handler tornado picks for ``method path``, as a request to the service would get it."""
    start = RequestStartLine(method, path, "HTTP/1.1")
    return app.find_handler(HTTPServerRequest(start_line=start, headers=HTTPHeaders(Host="127.0.0.1")))


def test_the_table_is_the_api():
    table = {r.name: (r.method, r.url(*(ARGS[p] for p in r.parts)), r.query) for r in ROUTES}
    assert table == API
    assert len(ROUTES) == len(table)  # one name a route


def test_the_service_serves_every_route_of_the_table_and_nothing_else():
    app = service.make_app(None, PREFIX)
    for route in ROUTES:
        found = resolve(app, route.method, f"{PREFIX}api/{API[route.name][1]}")
        assert found.handler_class is service.HANDLERS[route.name], route
        assert found.path_args == [ARGS[p].encode() for p in route.parts], route
        assert route.method in service.answered(found.handler_class), route
    paths = {r.pattern for r in ROUTES}
    assert len(app.wildcard_router.rules) == len(paths) + 1 == 13  # and <prefix>metrics
    assert resolve(app, "GET", f"{PREFIX}metrics").handler_class is MetricsHandler
    rules = {
        r.matcher.regex.pattern.removeprefix(f"{PREFIX}api/"): r.target
        for r in app.wildcard_router.rules
        if r.target is not MetricsHandler
    }
    for path in paths:  # every method a handler answers is a route of the table
        assert service.answered(rules[f"{path}$"]) == {r.method for r in ROUTES if r.pattern == path}
    assert resolve(app, "GET", f"{PREFIX}api/nowhere").handler_class is service.NotFoundHandler
    assert resolve(app, "GET", f"{PREFIX}api/courses/algo/x").handler_class is service.NotFoundHandler


def test_the_service_refuses_to_start_when_its_handlers_and_the_table_disagree(monkeypatch):
    monkeypatch.setitem(service.HANDLERS, "unrelease_assignment", service.AssignmentsHandler)
    with pytest.raises(RuntimeError, match="already AssignmentHandler's"):
        service.make_app(None, PREFIX)
    monkeypatch.setattr(service, "ROUTES", tuple(r for r in ROUTES if r.name != "unrelease_assignment"))
    with pytest.raises(RuntimeError, match=r"AssignmentHandler answers \['DELETE', 'GET', 'PUT'\]"):
        service.make_app(None, PREFIX)


class Recorder:
    """An exchange that answers ``status`` and ``reply`` to every request, and keeps them."""

    def __init__(self, status=200, reply=None):
        self.requests: list[httpx.Request] = []
        self.status, self.reply = status, reply or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.reply)


def api(answer, url=f"http://127.0.0.1:8082{PREFIX}") -> ExchangeAPI:
    return ExchangeAPI(url, "tok", 5, logging.getLogger("test"), transport=httpx.MockTransport(answer))


def test_the_client_calls_each_route_where_the_service_answers_it():
    lists = {"courses": [], "assignments": [], "submissions": [], "feedback": [], "accommodations": {}}
    app = service.make_app(None, PREFIX)
    for route in ROUTES:
        seen = Recorder(reply=lists)
        args, body = CALLS[route.name]
        getattr(api(seen), route.name)(*args)
        [request] = seen.requests
        method, path, query = API[route.name]
        assert (request.method, request.url.path) == (method, f"{PREFIX}api/{path}")
        assert request.headers["Authorization"] == "token tok"
        assert dict(request.url.params) == {k: v for k, v in zip(query, ("ps1", "ana"), strict=False)}
        assert (json.loads(request.content) if request.content else None) == body
        served = resolve(app, request.method, request.url.raw_path.decode()).handler_class
        assert served is service.HANDLERS[route.name]
    assert set(CALLS) == {r.name for r in ROUTES}


def test_the_client_leaves_out_empty_filters_and_quotes_each_part():
    seen = Recorder(reply={"submissions": []})
    api(seen).submissions("algo", "", "")
    api(seen).submissions("a/b")
    assert [str(r.url) for r in seen.requests] == [
        f"http://127.0.0.1:8082{PREFIX}api/courses/algo/submissions",
        f"http://127.0.0.1:8082{PREFIX}api/courses/a%2Fb/submissions",  # one level, refused by name
    ]
    route = Route("x", "GET", "courses/{course}")
    with pytest.raises(TypeError, match="takes course"):
        route.url()
    with pytest.raises(TypeError, match="takes no query"):
        api(seen).call("course", "algo", params={"student": "ana"})


def test_the_client_says_why_the_exchange_refused():
    problems = ["ps1.ipynb: not a notebook", "data.csv: 30 MB, over the course's limit"]
    refused = Recorder(422, {"error": "ps1 not submitted: 2 problems", "problems": problems})
    with pytest.raises(ExchangeRefused) as err:
        api(refused).submit("algo", "ps1", FILES)
    assert err.value.status == 422
    assert str(err.value) == "ps1 not submitted:\n  - " + "\n  - ".join(problems)
    staff_only = "only instructors of 'algo' may release assignments"
    with pytest.raises(ExchangeRefused, match=rf"^{staff_only} \(the exchange answered 403\)$"):
        api(Recorder(403, {"error": staff_only})).release_assignment("algo", "ps1", {}, force=False)


def test_the_client_says_where_it_could_not_reach_the_exchange():
    def down(request):
        raise httpx.ConnectError("connection refused", request=request)

    where = f"http://127.0.0.1:8082{PREFIX}"
    with pytest.raises(ExchangeError, match=rf"^Cannot reach the exchange at {where}: connection refused$"):
        api(down).courses()
