"""The exchange's API as one table: each route's name, HTTP method, path and query arguments.
The service (service.py) is built from it and the client (client.py) makes its URLs from it.

Paths are under <prefix>api/; JSON in and out, file contents base64-encoded. Standard library
only: the client runs in learners' servers and containers, where only grading/ is importable.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import quote

_PART = re.compile(r"\{(\w+)\}")


@dataclasses.dataclass(frozen=True)
class Route:
    name: str  # the client's method for it, and the key of its handler in the service
    method: str
    path: str  # with {part} for each path argument, in the order the handler takes them
    query: tuple[str, ...] = ()

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(_PART.findall(self.path))

    @property
    def pattern(self) -> str:
        """The path as a tornado rule: one positional group per part."""
        return _PART.sub("([^/]+)", self.path)

    def url(self, *values: str) -> str:
        """The path with ``values`` in its parts, each quoted whole (a '/' cannot add a level)."""
        if len(values) != len(self.parts):
            raise TypeError(f"{self.name} takes {', '.join(self.parts) or 'no parts'}, not {values!r}")
        given = iter(values)
        return _PART.sub(lambda _: quote(str(next(given)), safe=""), self.path)


FILTERS = ("assignment", "student")  # a learner's answer holds their own only, whatever they ask

ROUTES = (
    # the caller's courses and role in each
    Route("courses", "GET", "courses"),
    # the caller's role, the submission limits, the deadlines
    Route("course", "GET", "courses/{course}"),
    # released assignments
    Route("assignments", "GET", "courses/{course}/assignments"),
    # a released assignment's files (fetch)
    Route("fetch_assignment", "GET", "courses/{course}/assignments/{assignment}"),
    # staff: {files, force}; 409 if already released and not forced
    Route("release_assignment", "PUT", "courses/{course}/assignments/{assignment}"),
    # staff
    Route("unrelease_assignment", "DELETE", "courses/{course}/assignments/{assignment}"),
    # learner: {files}; 422 with one problem per refused file
    Route("submit", "POST", "courses/{course}/assignments/{assignment}/submissions"),
    # submissions' records, without their files
    Route("submissions", "GET", "courses/{course}/submissions", FILTERS),
    # a submission's files (collect)
    Route("collect", "GET", "courses/{course}/submissions/{assignment}/{learner}/{submission}"),
    # released feedback's records
    Route("feedback", "GET", "courses/{course}/feedback", FILTERS),
    # staff: {timestamp, files}, the timestamp.txt of the submission it is about
    Route("release_feedback", "PUT", "courses/{course}/feedback/{assignment}/{learner}"),
    # a feedback's files
    Route("fetch_feedback", "GET", "courses/{course}/feedback/{assignment}/{learner}/{submission}"),
    # staff: every learner's extra time and extensions (grading/accommodations.py)
    Route("accommodations", "GET", "courses/{course}/accommodations"),
    # staff: {extra_time, assignment, extension}; 422 naming the field and the reason
    Route("set_accommodation", "PUT", "courses/{course}/accommodations/{learner}"),
    # staff: all of a learner's accommodations, or one assignment's extension
    Route("remove_accommodation", "DELETE", "courses/{course}/accommodations/{learner}", ("assignment",)),
)
BY_NAME = {route.name: route for route in ROUTES}
