"""`make bench-faults`: faults under load. One scenario so far, the exchange under a kill:

fault-exchange: a course whose quiz is graded on submit (and whose ps1 is not), N learners each
submitting K times (the quiz in the rounds `--practice-rounds` names, every round by default; ps1 in
the others), the N*K submissions spread over `--window` seconds by concurrent clients (nbgrader's client class,
grading/exchange/client.py, with its retries and idempotency keys), while the exchange service is
killed with SIGKILL `--kills` times mid-burst and restarted by the hub's own service management.
Then: every submission the clients sent is recorded exactly once (lost, duplicated), none is
half-written (each file as its record says), and every quiz submission is graded on submit (its
feedback released), however many kills it took.

    .venv/bin/python -m tests.bench.faults [--learners 20] [--each 5] [--window 60] [--kills 1] [--practice-rounds 0,2]

Prints `bench: fault-exchange lost=… duplicated=… recovered_s=… graded=…/… graded_s=…`.
Root only (the grading account runs the graded kernels). tests/integration/test_exchange_idempotent.py
runs the same scenario and asserts on it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil

from grading.exchange.client import ExchangeAPI, new_key
from grading.exchange.storage import ExchangeStore

SLUG, PROF, QUIZ, PS1, GRADER = "m17-burst", "m17-prof", "quiz", "ps1", "m17-grader"
log = logging.getLogger("bench.faults")


def learners(n: int) -> list[str]:
    return [f"m17-l{i:03d}" for i in range(n)]


@dataclasses.dataclass
class ExchangeFault:
    sent: int  # submissions the clients made
    answered: int  # of which the client got a record back (after its retries)
    recorded: int  # submissions the exchange holds
    lost: int  # sent, not recorded (or the client gave up)
    duplicated: int  # recorded more than once
    half_written: int  # recorded with a file that is not as its record says
    practice: int  # recorded submissions of the quiz (graded on submit)
    graded: int  # of which with their feedback released
    recovered_s: list[float]  # per kill: from the kill to the exchange answering again
    graded_s: float  # from the first submission to the last feedback

    def line(self) -> str:
        worst = max(self.recovered_s, default=0.0)
        return (
            f"bench: fault-exchange lost={self.lost} duplicated={self.duplicated} recovered_s={worst:.1f} "
            f"half_written={self.half_written} graded={self.graded}/{self.practice} graded_s={self.graded_s:.0f} "
            f"n={self.sent} kills={len(self.recovered_s)}"
        )


def exchange_processes(site_file) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "grading.exchange.service" in cmd and str(site_file) in cmd:
            found.append(p)
    return found


def answers(url: str) -> bool:
    try:
        return httpx.get(url + "api/courses", timeout=2).status_code == 401
    except httpx.HTTPError:
        return False


def answer_quiz(files: dict[str, str]) -> dict[str, str]:
    """The released quiz with its answer cell filled in, as a learner would save it."""
    nb = json.loads(base64.b64decode(files[f"{QUIZ}.ipynb"]))
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "answer":
            cell["source"] = "x = 42"
    return {**files, f"{QUIZ}.ipynb": base64.b64encode(json.dumps(nb).encode()).decode()}


def run_exchange_fault(
    site_file,
    data_dir,
    url: str,
    tokens: dict[str, str],
    each: int,
    window: float,
    kills: int,
    grade_timeout: float,
    practice_rounds: set[int] | None = None,
) -> ExchangeFault:
    """The scenario on a started hub whose course SLUG has QUIZ and PS1 released; ``tokens``: each
    learner's token; ``practice_rounds``: the rounds (0 to each - 1) that submit QUIZ (None: all)."""
    quiet = logging.getLogger("bench.faults.client")
    quiet.setLevel(logging.ERROR)  # each retry warns: hundreds of lines during a kill

    def api(name: str) -> ExchangeAPI:
        return ExchangeAPI(url, tokens[name], 60, quiet, retry_for=180)

    files = answer_quiz(api(next(iter(tokens))).fetch_assignment(SLUG, QUIZ)["files"])
    plan = [
        (name, QUIZ if practice_rounds is None or k in practice_rounds else PS1)
        for k in range(each)
        for name in tokens
    ]
    total = len(plan)
    sent = threading.Semaphore(0)
    results: dict[str, dict | Exception] = {}
    started = time.monotonic()

    def submit(index: int) -> None:
        name, assignment = plan[index]
        time.sleep(max(0.0, started + window * index / total - time.monotonic()))
        key = new_key()
        sent.release()
        try:
            results[key] = {"learner": name, **api(name).submit(SLUG, assignment, files, key=key)}
        except Exception as err:  # noqa: BLE001 (a client that gave up: counted as lost)
            results[key] = err

    recovered: list[float] = []

    def killer() -> None:
        for _kill in range(kills):
            for _ in range(total // (kills + 1)):  # evenly inside the burst
                sent.acquire()
            [victim] = exchange_processes(site_file)
            victim.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            while victim.is_running() and victim.status() != psutil.STATUS_ZOMBIE:  # not our child: no wait()
                time.sleep(0.05)
            while not (exchange_processes(site_file) and answers(url)):
                if time.monotonic() - killed > 150:
                    raise TimeoutError("the hub did not restart the exchange within 150 s")
                time.sleep(0.2)
            recovered.append(time.monotonic() - killed)
            log.info("exchange killed and back in %.1f s", recovered[-1])

    kill_thread = threading.Thread(target=killer, daemon=True)
    kill_thread.start()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(submit, range(total)))
    kill_thread.join(200)

    store = ExchangeStore(data_dir / "exchange", tidy=False)  # beside the running exchange
    records = store.submissions(SLUG)
    by_key: dict[str, list[dict]] = {}
    for meta in records:
        by_key.setdefault(meta.get("idempotency_key"), []).append(meta)
    answered = {k: r for k, r in results.items() if isinstance(r, dict)}
    lost = sum(1 for key in results if key not in by_key) + sum(
        1 for key, r in answered.items() if key in by_key and r["id"] not in {m["id"] for m in by_key[key]}
    )
    duplicated = sum(len(v) - 1 for v in by_key.values()) + sum(1 for key in by_key if key not in results)
    half = 0
    for meta in records:
        with contextlib.suppress(Exception):
            got = store.submission_files(SLUG, meta["assignment_id"], meta["student_id"], meta["id"])
            if {p: hashlib.sha256(d).hexdigest() for p, d in got.items()} == {
                p: f["sha256"] for p, f in meta["files"].items()
            }:
                continue
        half += 1
    practice = [meta for meta in records if meta["assignment_id"] == QUIZ]

    def graded() -> int:
        done = {(fb["student_id"], fb["submission_id"]) for fb in store.feedback(SLUG, QUIZ)}
        return sum(1 for meta in practice if (meta["student_id"], meta["id"]) in done)

    deadline = time.monotonic() + grade_timeout
    while graded() < len(practice) and time.monotonic() < deadline:
        time.sleep(1)
    return ExchangeFault(
        sent=total,
        answered=len(answered),
        recorded=len(records),
        lost=lost,
        duplicated=duplicated,
        half_written=half,
        practice=len(practice),
        graded=graded(),
        recovered_s=recovered,
        graded_s=time.monotonic() - started,
    )


@contextlib.contextmanager
def burst_hub(n: int, grader: str = GRADER):
    """A started hub with the course SLUG (``n`` learners, QUIZ graded on submit, released), its
    exchange URL and a token per learner that reaches the exchange only; ``grader``: the grading account. Without the gallery and
    the footprint service, which this scenario does not use (a loaded machine starts them slowly)."""
    from tests.integration.test_exchange import exchange_url, user_token
    from tests.integration.test_grading_formgrader import Instructor, grading_hub
    from tests.services import free_port
    from tests.services.hub import course

    assignments = [{"name": QUIZ, "autograde_on_submit": True}, {"name": PS1}]
    practice = course(SLUG, [PROF], learners(n), assignments=assignments)
    # every learner's password is hashed (bcrypt) at the hub's start, and the grading service imports
    # nbgrader: minutes on a loaded 2-core machine (waits for a condition, not delays)
    site = {
        "gallery": {"enabled": False},
        "energy": {"service": {"enabled": False}},
        "services_start_timeout": "5m",
    }
    started = grading_hub(
        [practice], grader, {SLUG: QUIZ}, free_port(), "fault-exchange", site=site, start_timeout=600
    )
    with started as hub:
        prof = Instructor(hub, PROF, SLUG)
        prof.post(f"assignment/{QUIZ}/assign")
        prof.post(f"assignment/{QUIZ}/release")
        # ps1, not graded on submit: released through the exchange with an instructor's token
        staff = ExchangeAPI(exchange_url(hub), user_token(hub, PROF), 60, log)
        staff.release_assignment(SLUG, PS1, staff.fetch_assignment(SLUG, QUIZ)["files"], force=False)
        with ThreadPoolExecutor(max_workers=4) as pool:
            tokens = dict(
                zip(learners(n), pool.map(lambda name: user_token(hub, name), learners(n)), strict=True)
            )
        yield hub, exchange_url(hub), tokens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=20)
    parser.add_argument("--each", type=int, default=5, help="submissions per learner")
    parser.add_argument("--window", type=float, default=60, help="seconds the submissions are spread over")
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument(
        "--practice-rounds",
        default="",
        help="rounds (0-based, comma-separated) that submit the quiz; default all",
    )
    parser.add_argument("--grade-timeout", type=float, default=900)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if os.geteuid() != 0:
        raise SystemExit("bench-faults: run as root (the grading account runs the graded kernels)")
    with burst_hub(args.learners, grader="m17-bgrader") as (hub, url, tokens):  # not the test's
        rounds = {int(k) for k in args.practice_rounds.split(",")} if args.practice_rounds else None
        figures = run_exchange_fault(
            hub.site_file,
            hub.data,
            url,
            tokens,
            args.each,
            args.window,
            args.kills,
            args.grade_timeout,
            rounds,
        )
    print(json.dumps(dataclasses.asdict(figures), indent=1))
    print(figures.line())


if __name__ == "__main__":
    main()
