# nbgrader in learners' (and instructors') servers: every exchange operation goes to the hub's
# exchange service (grading/exchange/) with the server's own JupyterHub token, never to a shared
# folder. The service URL comes from $AILYS_EXCHANGE_URL, which the hub sets for every server.
c = get_config()  # noqa: F821 (provided by nbgrader's config loader)

for step, cls in {
    "exchange": "HubExchange",
    "fetch_assignment": "ExchangeFetchAssignment",
    "fetch_feedback": "ExchangeFetchFeedback",
    "release_assignment": "ExchangeReleaseAssignment",
    "release_feedback": "ExchangeReleaseFeedback",
    "list": "ExchangeList",
    "submit": "ExchangeSubmit",
    "collect": "ExchangeCollect",
}.items():
    setattr(c.ExchangeFactory, step, f"grading.exchange.client.{cls}")

# Assignments go to ~/<course>/<assignment>, beside the course's starter material: two courses
# may both have a "ps1".
c.HubExchange.path_includes_course = True
