"""Debian's Chromium for the browser tests (never a downloaded browser), and JupyterLab helpers."""

from __future__ import annotations

import contextlib
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Quiet on a closed network: no update, sync or background traffic (only loopback is reachable).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def dismiss_first_run_prompts(page) -> None:
    """Answer JupyterLab's prompts that may cover what the test clicks, whenever they show up.

    Playwright runs a handler just before an action when its locator is visible, so a prompt
    that appears late (the news toast comes a few seconds after the lab) cannot steal a click.
    """
    news = page.locator(".Toastify__toast").filter(has_text="Jupyter news")
    page.add_locator_handler(news, lambda toast: toast.get_by_role("button", name="No", exact=True).click())
    # Only if a notebook's kernel were unknown; ours name python3, so not expected.
    kernel_dialog = page.locator(".jp-Dialog").filter(has_text="Select Kernel")
    page.add_locator_handler(
        kernel_dialog, lambda dialog: dialog.locator(".jp-Dialog-footer button.jp-mod-accept").click()
    )


@contextlib.contextmanager
def lab_page(
    browser, hub, output_dir: Path, timeout: float = 30, name: str = "browser", locale: str = "en-US"
):
    """A fresh browser page for one test, with JupyterLab's first-run prompts answered. On the way
    out: a screenshot if the test failed, the browser console (files named after ``name``, for
    tests with several people's pages) and the hub log in output_dir. ``locale``: the browser's
    language (its Accept-Language)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(timeout * 1000)
    console = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    dismiss_first_run_prompts(page)
    try:
        yield page
    except Exception:
        try:
            page.screenshot(path=output_dir / f"failure-{name}.png")
        except Exception as e:  # never hide the test's own failure behind this one
            print(f"no failure screenshot: {e}")
        raise
    finally:
        (output_dir / f"{name}-console.log").write_text("\n".join(console) + "\n")
        (output_dir / "hub.log").write_text(hub.log())
        context.close()


def log_in(page, hub, name: str) -> None:
    """The hub's login form, as a person fills it."""
    page.goto(f"{hub.url}/hub/login")
    page.locator("#username_input").fill(name)
    page.locator("#password_input").fill(hub.passwords[name])
    page.locator("#login_submit").click()
