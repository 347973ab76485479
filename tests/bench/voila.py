"""`make bench-voila`: a demo's first render in Chromium, our gallery against stock Voilà.

Ours is the gallery behind a real hub and proxy (tests.services.hub.RunningHub), serving the
frugal-ml k-NN demo (its plot sits in an Output widget) with the site's defaults: one
preheated kernel per demo. Stock is `voila decision-boundary.ipynb`, started cold (a fresh
process) for each load, as a course would run it. Loads alternate between the two in one run.

First render: in Debian's Chromium, from `page.goto` until the first widget is visible and the
plot (an <img> in the Output widget) is drawn. Requests to any host but 127.0.0.1 are refused
at once in both (the network rule; stock Voilà's template links a CDN). Our page is closed with
its beforeunload beacon, which frees its kernel.

Stalls: 50 plain page requests each (ours through the proxy; stock cold, one process each);
a page is incomplete if it is not a 200 ending with </html> within the timeout. A first render
that fails (no page, no plot, a Voilà that does not start) is counted, not timed:
`bench: voila-first-render ... n=<runs> failures_ours=0 failures_stock=0`.

Accessibility: axe-core on the first rendered demo page of each (tests/e2e/a11y.py), the nodes of
serious or critical violations counted: `bench: a11y-violations ours=... stock=... pages=demo`
(the demo page only: stock JupyterHub's pages would take a second hub).

    .venv/bin/python -m tests.bench.voila [--runs 10] [--stalls 50] [--timeout 30]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from tests.e2e.a11y import audit
from tests.e2e.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.services import free_port
from tests.services.hub import RunningHub, course, wait_until

DEMO = Path(__file__).resolve().parents[2] / "courses" / "frugal-ml" / "demos" / "decision-boundary.ipynb"
VOILA = Path(sys.executable).parent / "voila"
SLUG = "bench"


def say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


class Ours:
    name = "ours"

    def __init__(self):
        demos = [{"notebook": DEMO.name, "title": {"fr": "k-NN", "en": "k-NN"}, "public": True}]
        self.hub = RunningHub([course(SLUG, ["bench-prof"], [], demos=demos)])
        folder = self.hub.root / "courses" / SLUG / "demos"
        folder.mkdir()
        shutil.copy(DEMO, folder / DEMO.name)
        self.hub.start()
        self.url = f"{self.hub.url}/services/gallery/demo/{SLUG}/{DEMO.stem}"
        wait_until(self.ready, 180, "the gallery's preheated kernel")

    def status(self) -> dict:
        return httpx.get(f"{self.hub.url}/services/gallery/api/status", timeout=10).json()

    def ready(self) -> bool:
        try:
            s = self.status()
        except (httpx.HTTPError, ValueError):
            return False
        return s["served"] == 0 and all(s["ready"].values()) and bool(s["ready"])

    def page_url(self, quiet: bool = True) -> str:
        if quiet:  # a visitor arriving on a quiet gallery: its preheated kernel is ready
            wait_until(self.ready, 120, "a preheated kernel")
        return self.url

    def done(self) -> None:
        pass

    def stop(self) -> None:
        self.hub.stop()


class Stock:
    name = "stock"

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="bench-voila-"))
        shutil.copy(DEMO, self.folder / DEMO.name)
        self.process: subprocess.Popen | None = None

    def page_url(self, quiet: bool = True) -> str:
        """A fresh `voila <demo>.ipynb`, answering, with no kernel yet (cold)."""
        port = free_port()
        self.process = subprocess.Popen(
            [str(VOILA), DEMO.name, "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/"

        def answers() -> bool:
            try:
                return httpx.get(url + "voila/static/voila.js", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, 60, "stock Voilà")
        return url

    def done(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def loopback_only(route) -> None:
    if urlparse(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def first_render(browser, target, timeout: float, violations: dict[str, int] | None = None) -> float | None:
    """Seconds to the first widget and plot; with ``violations``, the page is audited afterwards."""
    context = page = None
    try:
        url = target.page_url()  # inside: a Voilà that never answers is a failed render, not the bench's end
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.route("**/*", loopback_only)
        page = context.new_page()
        start = time.monotonic()
        page.goto(url, wait_until="commit", timeout=timeout * 1000)
        page.locator(".widget-slider").first.wait_for(state="visible", timeout=timeout * 1000)
        page.locator(".widget-output img").first.wait_for(state="visible", timeout=timeout * 1000)
        seconds = time.monotonic() - start
    except Exception as err:  # a stalled page: counted, not timed
        say(f"  {target.name}: no first render within {timeout} s ({type(err).__name__})")
        return None
    else:
        if violations is not None:  # after the clock: the audit is not part of the render
            found = audit(page, f"bench-demo-{target.name}")
            violations[target.name] = sum(len(v["nodes"]) for v in found)
        return seconds
    finally:
        if page:
            page.close(run_before_unload=True)
        if context:
            context.close()
        target.done()


def page_complete(target, timeout: float) -> bool:
    """One plain page request. Stock Voilà sends a heartbeat every 10 s while a page waits, so
    a read timeout never fires: the deadline is on the whole page."""
    try:
        url = target.page_url(quiet=False)
        start = time.monotonic()
        with httpx.Client(timeout=timeout) as client:
            with client.stream("GET", url) as r:
                text = ""
                for chunk in r.iter_text():
                    text += chunk
                    if time.monotonic() - start > timeout:
                        say(f"  {target.name}: page incomplete after {timeout} s")
                        return False
            ok = r.status_code == 200 and text.rstrip().endswith("</html>")
            if ok and target.name == "ours":  # leave like a closed page: the beacon frees the kernel
                kernel = text.split('"kernelId": "', 1)[1].split('"', 1)[0]
                client.post(
                    url.split("/demo/")[0] + f"/voila/api/shutdown/{kernel}",
                    data={"_xsrf": client.cookies["_xsrf"]},
                )
            return ok
    except (httpx.HTTPError, TimeoutError):  # TimeoutError: a Voilà that never answered
        return False
    finally:
        target.done()


def table(title: str, rows: dict[str, list[float]]) -> None:
    print(f"\n{title} (s)")
    print(f"  {'':8}{'median':>10}{'min':>10}{'max':>10}{'n':>5}")
    for name, values in rows.items():
        cells = (
            [f"{statistics.median(values):.2f}", f"{min(values):.2f}", f"{max(values):.2f}"]
            if values
            else ["-"] * 3
        )
        print(f"  {name:8}" + "".join(f"{c:>10}" for c in cells) + f"{len(values):>5}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--stalls", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=30, help="seconds before a page counts as stalled")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    say("starting our hub and gallery...")
    ours, stock = Ours(), Stock()
    targets = [ours, stock]
    renders: dict[str, list[float]] = {"ours": [], "stock": []}
    incomplete = {"ours": 0, "stock": 0}
    violations: dict[str, int] = {}  # serious and critical nodes of the first rendered page
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                for i in range(args.runs):
                    for target in targets if i % 2 == 0 else targets[::-1]:
                        audited = None if target.name in violations else violations
                        seconds = first_render(browser, target, args.timeout, audited)
                        if seconds is not None:
                            renders[target.name].append(seconds)
                        say(f"  first render {i + 1}/{args.runs} {target.name}: {seconds}")
            finally:
                browser.close()
        for i in range(args.stalls):
            for target in targets if i % 2 == 0 else targets[::-1]:
                if not page_complete(target, args.timeout):
                    incomplete[target.name] += 1
            if (i + 1) % 10 == 0:
                say(f"  {i + 1}/{args.stalls} requests each: incomplete {incomplete}")
        given_up = ours.status()["renders_given_up"]
    finally:
        for target in targets:
            target.stop()

    table("first render in Chromium: page opened until first widget and plot drawn", renders)
    print(
        f"\nincomplete pages of {args.stalls} requests: ours {incomplete['ours']}, stock {incomplete['stock']}"
    )
    print(f"(ours: {given_up} background renders given up and retried before any visitor saw them)")
    o, s = (statistics.median(renders[k]) if renders[k] else math.nan for k in ("ours", "stock"))
    failed = " ".join(f"failures_{k}={args.runs - len(renders[k])}" for k in ("ours", "stock"))
    ratio = o / s if s else math.nan
    print(f"bench: voila-first-render ours={o:.2f} stock={s:.2f} ratio={ratio:.2f} n={args.runs} {failed}")
    print(f"bench: voila-stalls ours={incomplete['ours']} stock={incomplete['stock']}")
    o, s = (violations.get(k, "none") for k in ("ours", "stock"))
    print(f"bench: a11y-violations ours={o} stock={s} pages=demo")


if __name__ == "__main__":
    main()
