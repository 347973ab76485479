"""Where the exchange keeps released assignments, submissions and feedback: plain folders
under one root that only the hub's account can read (0700).

    <root>/<course>/released/<assignment>/files/...             what learners fetch
    <root>/<course>/released/<assignment>/release.json          who released it, when, its notebooks
    <root>/<course>/submissions/<assignment>/<learner>/<id>/files/...
    <root>/<course>/submissions/<assignment>/<learner>/<id>/submission.json
    <root>/<course>/feedback/<assignment>/<learner>/<id>/<notebook>.html (+ feedback.json)

Every write is built in <root>/<course>/.tmp/ and moved into place with one rename, so a
reader sees a whole release, submission or feedback or none of it. A submission is never
overwritten: each one gets a new folder named by its UTC time of arrival. Its files are
fsynced before the rename and the folder after it, so a kill -9 or a power cut leaves the
submission whole or absent (the .tmp/ left behind is removed at the next start).

A submission may carry the client's idempotency key (one per attempt to submit, resent by each
retry): a second request with that key gets the first one's record back, never a second copy.
A submission to an assignment graded on submit holds the marker ``autograde.pending`` from the
start (written before the rename): the autograde queue is these markers, so it survives the
service (practice.py resumes them) and a marker never names a submission that is not there.
Nothing here knows about users or HTTP: the service (service.py) decides who may call what.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
from pathlib import Path, PurePosixPath

import nbformat

from hub_config.units import format_size

# nbgrader's own timestamp format (nbgrader.exchange.abc.Exchange.timestamp_format), always UTC:
# nbgrader.utils.parse_utc reads it back, and collect writes it to timestamp.txt.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_ID = re.compile(r"^\d{8}T\d{6}\.\d{6}Z(-\d+)?$")
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # a client's idempotency key: random, URL-safe
MAX_DEPTH = 10
PENDING = "autograde.pending"  # in a submission's folder while it waits to be graded on submit


class ExchangeProblem(Exception):
    """A request the exchange refuses; ``status`` is the HTTP status the service answers."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


@dataclasses.dataclass(frozen=True)
class Limits:
    """Of one submission, from the course's `submission` settings."""

    max_file_size: int
    max_total_size: int
    max_files: int
    quota: int | None = None  # the site's quotas.exchange: all of a learner's submissions, every course


def check_name(kind: str, name: str) -> str:
    """A course, assignment, learner or submission id, safe as one path component."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise ExchangeProblem(400, f"{kind} {name!r} is not a valid name")
    return name


def check_relpath(path: str) -> str:
    """A file path inside an assignment: relative, no '..', no backslash, not too deep."""
    parts = PurePosixPath(path).parts if isinstance(path, str) else ()
    if (
        not parts
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or len(parts) > MAX_DEPTH
        or any(p in (".", "..") or len(p) > 255 for p in parts)
        or str(PurePosixPath(*parts)) != path
    ):
        raise ExchangeProblem(400, f"{path!r} is not a valid file path inside an assignment")
    return path


def utc_timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def notebooks_of(files) -> list[str]:
    return sorted(p for p in files if p.endswith(".ipynb"))


def submission_problems(files: dict[str, bytes], limits: Limits, released_notebooks: list[str]) -> list[str]:
    """Everything wrong with a submission, one line per file: empty when it is accepted."""
    problems = []
    if len(files) > limits.max_files:
        problems.append(f"{len(files)} files: more than the course's limit of {limits.max_files}")
    for path in notebooks_of(released_notebooks):
        if path not in files:
            problems.append(
                f"{path}: missing (a notebook of the assignment; fetch it again if you deleted it)"
            )
    total = 0
    for path, data in sorted(files.items()):
        total += len(data)
        if len(data) > limits.max_file_size:
            problems.append(
                f"{path}: {human_size(len(data))}, over the course's limit of {human_size(limits.max_file_size)} a file"
            )
        elif path.endswith(".ipynb"):
            reason = notebook_problem(data)
            if reason:
                problems.append(f"{path}: not a valid notebook: {reason}")
    if total > limits.max_total_size:
        problems.append(
            f"all files: {human_size(total)} in total, over the course's limit of {human_size(limits.max_total_size)}"
        )
    return problems


def folder_size(folder: Path) -> int:
    """The bytes of every file under ``folder``, links not followed; 0 if it does not exist."""
    total = 0
    for top, dirs, files in os.walk(folder):
        for name in files:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:  # removed while we looked
                continue
            total += st.st_size if not os.path.islink(os.path.join(top, name)) else 0
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
    return total


def exchange_used(exchange_root: Path, learner: str) -> int:
    """Bytes of ``learner``'s submissions in every course of the exchange (the layout of
    grading/exchange/storage.py: <course>/submissions/<assignment>/<learner>/)."""
    return sum(folder_size(f) for f in Path(exchange_root).glob(f"*/submissions/*/{learner}"))


def quota_problems(root: Path, learner: str, files: dict[str, bytes], quota: int) -> list[str]:
    """The line that refuses a submission over the learner's exchange quota; none when it fits."""
    used, size = exchange_used(root, learner), sum(len(d) for d in files.values())
    if used + size <= quota:
        return []
    return [
        f"all files: {human_size(size)}, over your exchange quota: your submissions in every course "
        f"already use {human_size(used)} of {human_size(quota)} (ask your instructor if you need more)"
    ]


def notebook_problem(data: bytes) -> str | None:
    """Why ``data`` is not a notebook nbgrader can read, in a line; None when it is one."""
    try:
        json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except ValueError as err:
        return f"invalid JSON ({err})"  # says the line and column
    try:
        nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as err:  # noqa: BLE001 (nbformat raises many kinds: a missing key, a version...)
        text = str(err).strip().splitlines()
        return (text[0] if text else type(err).__name__)[:200]
    return None


def human_size(n: int) -> str:
    return format_size(n, exact=False)  # the one size formatter (hub_config/units.py)


def check_key(key: str | None) -> str | None:
    """An idempotency key, as the client sends it (Idempotency-Key header); None if not given."""
    if key is not None and not _KEY.match(key):
        raise ExchangeProblem(400, "the Idempotency-Key header must be 16 to 64 of [A-Za-z0-9_-]")
    return key


def _write_bytes(path: Path, data: bytes, durable: bool) -> None:
    with open(path, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict, durable: bool = False) -> None:
    _write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(), durable)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _write_files(folder: Path, files: dict[str, bytes], durable: bool = False) -> dict[str, dict]:
    listing = {}
    folders = {folder}
    for path, data in files.items():
        target = folder / check_relpath(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        folders.add(target.parent)
        _write_bytes(target, data, durable)
        listing[path] = {"size": len(data), "sha256": sha256(data)}
    for made in sorted(folders, reverse=True) if durable else ():
        _fsync_dir(made)  # their entries too, deepest first
    return listing


def read_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


class ExchangeStore:
    """The exchange's folders. Every method takes names already checked by ``check_name``."""

    def __init__(self, root: Path | str, tidy: bool = True):
        """``tidy``: remove what writes cut short left (the service, at its start); False for a
        reader beside a running service (a test, a bench), whose writes under way it would break."""
        self.root = Path(root)
        self._locks: dict[Path, threading.Lock] = {}  # one per learner's folder: a key is looked up once
        self._locks_lock = threading.Lock()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)  # learners must not read it, whatever the umask was
        for stale in self.root.glob("*/.tmp") if tidy else ():  # writes cut short: never visible, now gone
            shutil.rmtree(stale, ignore_errors=True)

    # --- building blocks ---------------------------------------------------------------

    def _course(self, course: str) -> Path:
        return self.root / check_name("course", course)

    def _staging(self, course: str) -> Path:
        """A fresh folder on the same file system as the course, for an atomic rename."""
        tmp = self._course(course) / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return Path(os.path.realpath(_mkdtemp(tmp)))

    def _swap_in(self, course: str, built: Path, target: Path) -> None:
        """Put ``built`` at ``target``, replacing what was there; readers see old or new, whole."""
        target.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if target.exists():
            old = self._staging(course) / "old"
            target.rename(old)
        built.rename(target)
        if old is not None:
            shutil.rmtree(old.parent)

    # --- released assignments ------------------------------------------------------------

    def _released(self, course: str, assignment: str) -> Path:
        return self._course(course) / "released" / check_name("assignment", assignment)

    def release(
        self,
        course: str,
        assignment: str,
        files: dict[str, bytes],
        by: str,
        now: dt.datetime,
        force: bool = False,
    ) -> dict:
        target = self._released(course, assignment)
        for path in files:
            check_relpath(path)  # all of them before anything is written
        if target.exists() and not force:
            raise ExchangeProblem(
                409,
                f"assignment {assignment} of {course} is already released; release again with force to replace it",
            )
        if not notebooks_of(files):
            raise ExchangeProblem(400, f"assignment {assignment} has no notebook to release")
        built = self._staging(course)
        listing = _write_files(built / "files", files)
        meta = {
            "course_id": course,
            "assignment_id": assignment,
            "released_at": utc_timestamp(now),
            "released_by": by,
            "notebooks": notebooks_of(files),
            "files": listing,
        }
        _write_json(built / "release.json", meta)
        self._swap_in(course, built, target)
        return meta

    def unrelease(self, course: str, assignment: str) -> None:
        """Learners can no longer list or fetch it; their submissions and feedback stay."""
        target = self._released(course, assignment)
        if not target.exists():
            raise ExchangeProblem(404, f"assignment {assignment} of {course} is not released")
        gone = self._staging(course) / "gone"
        target.rename(gone)
        shutil.rmtree(gone.parent)

    def released(self, course: str) -> list[dict]:
        folder = self._course(course) / "released"
        if not folder.is_dir():
            return []
        return [
            _read_json(p / "release.json") for p in sorted(folder.iterdir()) if (p / "release.json").is_file()
        ]

    def release_of(self, course: str, assignment: str) -> dict:
        meta = self._released(course, assignment) / "release.json"
        if not meta.is_file():
            raise ExchangeProblem(404, f"assignment {assignment} of {course} is not released")
        return _read_json(meta)

    def released_files(self, course: str, assignment: str) -> dict[str, bytes]:
        self.release_of(course, assignment)
        return read_files(self._released(course, assignment) / "files")

    # --- submissions ---------------------------------------------------------------------

    def _submissions(self, course: str, assignment: str) -> Path:
        return self._course(course) / "submissions" / check_name("assignment", assignment)

    def _learner_lock(self, folder: Path) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(folder, threading.Lock())

    def submit(
        self,
        course: str,
        assignment: str,
        learner: str,
        files: dict[str, bytes],
        limits: Limits,
        now: dt.datetime,
        due: dt.datetime | None = None,
        key: str | None = None,
        autograde: bool = False,
    ) -> dict:
        """Keep a new submission, or raise with every problem; earlier submissions are never touched.

        ``key``: the client's idempotency key; if a submission of this learner already has it, its
        record comes back (``replayed`` true) and nothing is written. ``autograde``: mark it pending
        for autograde on submit, in the same rename."""
        check_key(key)
        released = self.release_of(course, assignment)
        for path in files:
            check_relpath(path)  # all of them before anything is written
        parent = self._submissions(course, assignment) / check_name("learner", learner)
        # The quota counts every course: one lock per learner too, so two submissions at once in
        # two courses cannot both pass it.
        quota_lock = self._learner_lock(self.root / ".quota" / learner) if limits.quota else None
        with self._learner_lock(parent), quota_lock or contextlib.nullcontext():
            if key is not None:
                earlier = self._with_key(parent, key)
                if earlier is not None:
                    if {p: f["sha256"] for p, f in earlier["files"].items()} != {
                        p: sha256(d) for p, d in files.items()
                    }:
                        raise ExchangeProblem(
                            409,
                            "this Idempotency-Key was already used for other files; submit with a new one",
                        )
                    return {**earlier, "replayed": True}
            return self._submit_new(
                course, assignment, learner, files, limits, now, due, key, autograde, released
            )

    def _with_key(self, parent: Path, key: str) -> dict | None:
        for meta in parent.glob("*/submission.json") if parent.is_dir() else ():
            data = _read_json(meta)
            if data.get("idempotency_key") == key:
                return data
        return None

    def _submit_new(
        self, course, assignment, learner, files, limits, now, due, key, autograde, released
    ) -> dict:
        problems = submission_problems(files, limits, released["notebooks"])
        if not problems and limits.quota is not None:
            problems = quota_problems(self.root, learner, files, limits.quota)
        if problems:
            raise ExchangeProblem(
                422,
                f"{assignment} not submitted (nothing was stored; earlier submissions are kept): "
                + "; ".join(problems),
                problems,
            )
        now = now.astimezone(dt.UTC)
        stage = self._staging(course)
        built = stage / "new"
        built.mkdir()
        listing = _write_files(built / "files", files, durable=True)
        meta = {
            "course_id": course,
            "assignment_id": assignment,
            "student_id": learner,
            "timestamp": utc_timestamp(now),
            "submitted_at": now.isoformat(),
            "due": due.astimezone(dt.UTC).isoformat() if due else None,
            "late": bool(due and now > due),
            "seconds_late": max(0.0, (now - due).total_seconds()) if due else 0.0,
            "files": listing,
            "notebooks": notebooks_of(files),
            "idempotency_key": key,
        }
        if autograde:
            _write_bytes(built / PENDING, b"", durable=True)
        parent = self._submissions(course, assignment) / check_name("learner", learner)
        parent.mkdir(parents=True, exist_ok=True)
        base = now.strftime("%Y%m%dT%H%M%S.%fZ")
        for n in range(100):
            meta["id"] = base if n == 0 else f"{base}-{n}"
            _write_json(built / "submission.json", meta, durable=True)
            _fsync_dir(built)
            try:
                # rename(2) onto an existing non-empty folder fails: never overwrites
                built.rename(parent / meta["id"])
                break
            except OSError:
                continue
        else:
            raise ExchangeProblem(503, "too many submissions at the same instant; submit again")
        _fsync_dir(parent)  # the rename itself survives a power cut
        shutil.rmtree(stage, ignore_errors=True)
        return meta

    # --- autograde on submit: the durable queue ----------------------------------------------

    def pending_autograde(self) -> list[dict]:
        """Records of the submissions still waiting to be graded on submit, oldest first."""
        found = [
            _read_json(p.parent / "submission.json") for p in self.root.glob(f"*/submissions/*/*/*/{PENDING}")
        ]
        return sorted(found, key=lambda m: (m["submitted_at"], m["id"]))

    def autograded(self, course: str, assignment: str, learner: str, sub_id: str) -> None:
        """Take a submission off the queue (graded, or left for the instructor)."""
        marker = self._submission(course, assignment, learner, sub_id) / PENDING
        marker.unlink(missing_ok=True)

    def submissions(
        self, course: str, assignment: str | None = None, learner: str | None = None
    ) -> list[dict]:
        """Metadata of submissions, oldest first per learner; filtered by assignment and learner."""
        root = self._course(course) / "submissions"
        for kind, name in (("assignment", assignment), ("learner", learner)):
            if name is not None:
                check_name(kind, name)
        found = []
        pattern = f"{assignment or '*'}/{learner or '*'}/*/submission.json"
        for meta in root.glob(pattern) if root.is_dir() else []:
            found.append(_read_json(meta))
        return sorted(found, key=lambda m: (m["assignment_id"], m["student_id"], m["submitted_at"], m["id"]))

    def _submission(self, course: str, assignment: str, learner: str, sub_id: str) -> Path:
        if not _ID.match(sub_id or ""):
            raise ExchangeProblem(400, f"submission id {sub_id!r} is not valid")
        folder = self._submissions(course, assignment) / check_name("learner", learner) / sub_id
        if not (folder / "submission.json").is_file():
            raise ExchangeProblem(404, f"no submission {sub_id} of {learner} for {assignment} in {course}")
        return folder

    def submission_files(self, course: str, assignment: str, learner: str, sub_id: str) -> dict[str, bytes]:
        return read_files(self._submission(course, assignment, learner, sub_id) / "files")

    def submission_at(self, course: str, assignment: str, learner: str, timestamp: str) -> dict:
        """The submission with nbgrader's ``timestamp`` (as in the collected timestamp.txt)."""
        for meta in self.submissions(course, assignment, learner):
            if meta["timestamp"] == timestamp.strip():
                return meta
        raise ExchangeProblem(
            404, f"no submission of {learner} for {assignment} in {course} at {timestamp!r}"
        )

    # --- feedback --------------------------------------------------------------------------

    def _feedback(self, course: str, assignment: str, learner: str, sub_id: str) -> Path:
        if not _ID.match(sub_id or ""):
            raise ExchangeProblem(400, f"submission id {sub_id!r} is not valid")
        return (
            self._course(course)
            / "feedback"
            / check_name("assignment", assignment)
            / check_name("learner", learner)
            / sub_id
        )

    def release_feedback(
        self,
        course: str,
        assignment: str,
        learner: str,
        timestamp: str,
        files: dict[str, bytes],
        by: str,
        now: dt.datetime,
    ) -> dict:
        """Feedback (HTML files) for one submission, replacing earlier feedback for it."""
        sub = self.submission_at(course, assignment, learner, timestamp)
        bad = [p for p in files if not p.endswith(".html") or "/" in p]
        if bad or not files:
            raise ExchangeProblem(
                400, f"feedback must be one or more <notebook>.html files, got {sorted(files)}"
            )
        built = self._staging(course)
        meta = {
            "course_id": course,
            "assignment_id": assignment,
            "student_id": learner,
            "submission_id": sub["id"],
            "timestamp": sub["timestamp"],
            "released_at": utc_timestamp(now),
            "released_by": by,
            "files": _write_files(built, files),
        }
        _write_json(built / "feedback.json", meta)
        self._swap_in(course, built, self._feedback(course, assignment, learner, sub["id"]))
        return meta

    def feedback(self, course: str, assignment: str | None = None, learner: str | None = None) -> list[dict]:
        root = self._course(course) / "feedback"
        for kind, name in (("assignment", assignment), ("learner", learner)):
            if name is not None:
                check_name(kind, name)
        pattern = f"{assignment or '*'}/{learner or '*'}/*/feedback.json"
        found = [_read_json(p) for p in root.glob(pattern)] if root.is_dir() else []
        return sorted(found, key=lambda m: (m["assignment_id"], m["student_id"], m["timestamp"]))

    def feedback_files(self, course: str, assignment: str, learner: str, sub_id: str) -> dict[str, bytes]:
        folder = self._feedback(course, assignment, learner, sub_id)
        if not (folder / "feedback.json").is_file():
            raise ExchangeProblem(
                404, f"no feedback for submission {sub_id} of {learner} for {assignment} in {course}"
            )
        return {p.name: p.read_bytes() for p in sorted(folder.glob("*.html"))}


def _mkdtemp(parent: Path) -> str:
    path = parent / secrets.token_hex(8)
    path.mkdir(mode=0o700)
    return str(path)
