"""`make bench-catalogue`: the running hub's catalogue, cached on its files against parsed each time.

Every login, auth refresh, launch form and gallery page asks ``LiveCatalogue.current()``. Ours
looks at the files (a listing of the courses folder, a stat per file) and parses only when one
changed; stock is what it did before: ``load_catalogue`` (every YAML file parsed and validated) at
each call. The site is written to a temporary folder with N course folders, each a copy of
courses/frugal-ml/course.yaml (its own slug, 30 learners), last modified a minute before the run,
as on a deployed hub. Rounds alternate ours and stock; each figure is the median over rounds of the
µs per call. With 100 courses too, to show that the cached path stays far below one parse.

    .venv/bin/python -m tests.bench.catalogue [--courses 10 100] [--rounds 15] [--calls 400]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from hub_config.catalogue import LiveCatalogue, load_catalogue

COURSE = Path(__file__).resolve().parents[2] / "courses" / "frugal-ml" / "course.yaml"


def write_site(root: Path, courses: int) -> Path:
    template = yaml.safe_load(COURSE.read_text())
    for i in range(courses):
        slug = f"course-{i:03d}"
        learners = [f"l{i:03d}-{j:02d}" for j in range(30)]
        data = {**template, "slug": slug, "learners": learners, "instructors": [f"prof{i:03d}"]}
        data["grades"] = {**template["grades"], "emails": {n: f"{n}@example.org" for n in learners}}
        (root / "courses" / slug).mkdir(parents=True)
        (root / "courses" / slug / "course.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    site = root / "bench.yaml"
    site.write_text(yaml.safe_dump({"name": "bench", "data_dir": "data", "courses_dir": "courses"}))
    old = time.time() - 60
    for path in [site, *root.glob("courses/*/course.yaml")]:
        os.utime(path, (old, old))
    return site


def per_call_us(call, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


def bench(courses: int, rounds: int, calls: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench-catalogue-") as tmp:
        site = write_site(Path(tmp), courses)
        live = LiveCatalogue(site, logging.getLogger("bench"))
        assert len(live.current().courses) == courses
        stock_calls = max(3, calls // 100)  # a parse costs milliseconds: fewer calls, same rounds
        rows: dict[str, list[float]] = {"ours": [], "stock": []}
        for _ in range(rounds):
            rows["ours"].append(per_call_us(live.current, calls))
            rows["stock"].append(per_call_us(lambda: load_catalogue(site), stock_calls))
        rows["calls"] = [rounds * calls, rounds * stock_calls]
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=400, help="calls of ours per round")
    args = parser.parse_args()
    results = {n: bench(n, args.rounds, args.calls) for n in args.courses}
    print(f"\nLiveCatalogue.current(), µs per call (median of {args.rounds} alternating rounds)")
    print(
        f"  {'courses':>8}{'ours':>10}{'min':>10}{'max':>10}{'stock':>12}{'min':>12}{'max':>12}{'ratio':>8}"
    )
    for n, rows in results.items():
        ours = [f"{f(rows['ours']):>10.1f}" for f in (statistics.median, min, max)]
        stock = [f"{f(rows['stock']):>12.1f}" for f in (statistics.median, min, max)]
        ratio = statistics.median(rows["ours"]) / statistics.median(rows["stock"])
        print(f"  {n:>8}{''.join(ours)}{''.join(stock)}{ratio:>8.4f}")
    for n, rows in results.items():
        ours, stock = statistics.median(rows["ours"]), statistics.median(rows["stock"])
        name = "catalogue-current" if n == 10 else f"catalogue-current-{n}-courses"
        n_ours, n_stock = rows["calls"]
        print(
            f"bench: {name} ours={ours:.1f} stock={stock:.1f} ratio={ours / stock:.4f} n={n_ours} n_stock={n_stock}"
        )


if __name__ == "__main__":
    main()
