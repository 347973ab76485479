"""The gallery's kernels: preheated pages per demo, caps, and freeing kernels of gone pages.

Every kernel holds a slot from the moment it is asked for until it is shut down, so the caps
count kernels that are still starting too. A demo's pool holds pages already executed (the
notebook ran in its kernel, the HTML is ready): a visitor takes one and waits only for the
browser. A render that does not finish within ``render_timeout`` is given up (its kernel shut
down) and tried once more, so a page is either complete or an error, never a response that
stops half-way.

Stock Voilà never shuts a kernel down after a page closes: its page sends the shutdown beacon
with the ``_xsrf`` cookie's value, but Voilà's page handler never sets that cookie, so the
beacon is refused (403); and its culler is off and would spare connected kernels anyway. Here
the page handler sets the cookie, and a sweep frees what ``policy.to_free`` names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
from collections import defaultdict

from jupyter_core.utils import ensure_async
from voila.notebook_renderer import NotebookRenderer
from voila.utils import ENV_VARIABLE, get_page_config

from hub_config.schema import Gallery

from .demos import DemoEntry
from .policy import Caps, ServedKernel, may_start, refills, to_free


class Busy(Exception):
    """Above a cap: the visitor gets a 'busy, retry' page."""


class KernelDied(Exception):
    """The demo's kernel died while its notebook ran."""


class RenderFailed(Exception):
    """The demo's notebook could not be executed."""


# Voilà's lab template links Font Awesome from a CDN: a visitor's browser would call a third
# party for every demo, and on a closed network it waits for it. The demos use no icons.
_CDN_LINK = re.compile(r'<link rel="stylesheet" href="https://cdn\.jsdelivr\.net/[^"]*"[^>]*>\n?')


def without_cdn_links(html: str) -> str:
    return _CDN_LINK.sub("", html)


# ipywidgets' slider handles (role=slider) carry no accessible name (jupyter-widgets/ipywidgets#2650):
# a screen reader says "slider" for every one. Each handle is named by its widget's own label, as
# the widgets appear (they are drawn once the kernel connects).
SLIDER_NAMES = """<script>
(function () {
  function name() {
    document.querySelectorAll(".widget-slider").forEach(function (w) {
      var label = w.querySelector(".widget-label");
      var text = label ? (label.textContent || label.title || "").trim() : "";
      w.querySelectorAll("[role=slider]:not([aria-label])").forEach(function (h) {
        if (text) { h.setAttribute("aria-label", text); }
      });
    });
  }
  new MutationObserver(name).observe(document.documentElement, {childList: true, subtree: true});
  document.addEventListener("DOMContentLoaded", name);
})();
</script>
"""


def with_slider_names(html: str) -> str:
    """The page with SLIDER_NAMES before its </body> (a page without one is left as it is)."""
    at = html.rfind("</body>")
    return html if at < 0 else html[:at] + SLIDER_NAMES + html[at:]


@dataclasses.dataclass
class Rendered:
    kernel_id: str
    html: str


@dataclasses.dataclass
class _Served:
    demo: str
    served_at: float
    last_connected: float | None = None


class DemoKernels:
    def __init__(self, app, settings: Gallery, log):
        self.app = app
        self.km = app.kernel_manager
        self.settings = settings
        self.caps = Caps(settings.max_kernels, settings.max_kernels_per_demo)
        self.log = log
        self.slots: dict[str, int] = defaultdict(int)  # demo key -> kernels held (starting, pooled, served)
        self.owner: dict[str, str] = {}  # kernel id -> demo key
        self.pools: dict[str, list[asyncio.Task]] = defaultdict(list)  # demo key -> tasks giving Rendered
        self.served: dict[str, _Served] = {}
        self.entries: dict[str, DemoEntry] = {}
        self.paths: dict[str, str] = {}  # demo key -> notebook path under the gallery's root
        self.renders_given_up = 0

    # --- counts ----------------------------------------------------------------------

    @property
    def total(self) -> int:
        return sum(self.slots.values())

    def status(self) -> dict:
        return {
            "kernels": self.total,
            "served": len(self.served),
            "connected": sum(1 for k in self.served if self.km._kernel_connections.get(k, 0)),
            "pooled": {k: len(p) for k, p in self.pools.items() if p},
            "ready": {k: sum(t.done() for t in p) for k, p in self.pools.items() if p},
            "renders_given_up": self.renders_given_up,
        }

    # --- rendering -------------------------------------------------------------------

    def _renderer(self, entry: DemoEntry, notebook_path: str) -> NotebookRenderer:
        app = self.app
        page_config_kwargs = {
            "base_url": app.base_url,
            "settings": app.app.settings,
            "log": app.log,
            "voila_configuration": app.voila_configuration,
        }
        return NotebookRenderer(
            voila_configuration=app.voila_configuration,
            traitlet_config=app.config,
            notebook_path=notebook_path,
            template_paths=app.template_paths,
            config_manager=app.config_manager,
            contents_manager=app.contents_manager,
            base_url=app.base_url,
            kernel_spec_manager=app.kernel_spec_manager,
            page_config=get_page_config(**page_config_kwargs),
            mathjax_config=app.app.settings.get("mathjax_config"),
            mathjax_url=app.app.settings.get("mathjax_url"),
        )

    async def _render_once(self, entry: DemoEntry, notebook_path: str) -> Rendered:
        renderer = self._renderer(entry, notebook_path)
        await renderer.initialize()
        env = {
            # Demo code never sees the gallery's hub token (nor any JUPYTERHUB_* setting).
            **{k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")},
            ENV_VARIABLE.VOILA_PREHEAT: "False",
            ENV_VARIABLE.VOILA_BASE_URL: self.app.base_url,
            ENV_VARIABLE.VOILA_SERVER_URL: self.app.server_url,
            ENV_VARIABLE.VOILA_APP_PORT: str(self.app.port),
        }
        start = asyncio.ensure_future(
            ensure_async(
                self.km.start_kernel(
                    kernel_name=renderer.notebook.metadata.kernelspec.name,
                    path=os.path.dirname(notebook_path),
                    env=env,
                )
            )
        )
        try:
            kernel_id = await asyncio.shield(start)
        except asyncio.CancelledError:  # evicted while starting: shut it down once it has started
            start.add_done_callback(
                lambda t: (
                    t.exception() is None
                    and asyncio.ensure_future(self.km.shutdown_kernel(t.result(), now=True))
                )
            )
            raise
        self.owner[kernel_id] = entry.key
        task = None
        try:
            # Not asyncio.wait_for: nbclient turns the cancellation of a cell it waits on into
            # "kernel died" and the page goes on to the end, so wait_for would return that page.
            task = asyncio.ensure_future(
                renderer.generate_content_str(kernel_id, self.km.get_kernel(kernel_id))
            )
            done, _ = await asyncio.wait({task}, timeout=self.settings.render_timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise TimeoutError()
            html = task.result()
            alive = await ensure_async(self.km.get_kernel(kernel_id).is_alive())
        except BaseException:
            if task is not None:
                task.cancel()
            await self._shutdown(kernel_id, release=False)
            raise
        if not alive:  # the page would show "kernel died" and never answer a widget
            await self._shutdown(kernel_id, release=False)
            raise KernelDied(kernel_id)
        return Rendered(kernel_id, with_slider_names(without_cdn_links(html)))

    async def _render(self, entry: DemoEntry, notebook_path: str) -> Rendered:
        """Execute the demo in a new kernel (its slot already taken); release the slot on failure."""
        try:
            for attempt in (1, 2):
                try:
                    return await self._render_once(entry, notebook_path)
                except (TimeoutError, KernelDied) as err:
                    self.renders_given_up += 1
                    self.log.warning(
                        "Demo %s: %s (attempt %s); its kernel is shut down",
                        entry.key,
                        "kernel died"
                        if isinstance(err, KernelDied)
                        else f"not executed within {self.settings.render_timeout} s",
                        attempt,
                    )
            raise RenderFailed(f"{entry.key} could not be executed (twice)")
        except BaseException as err:
            self.slots[entry.key] -= 1
            if not isinstance(err, (RenderFailed, asyncio.CancelledError)):
                self.log.exception("Demo %s failed to render", entry.key)
                raise RenderFailed(f"{entry.key} failed to render: {err}") from err
            raise

    # --- pools -----------------------------------------------------------------------

    def fill(self, entry: DemoEntry, notebook_path: str) -> None:
        """Start kernels so the demo's pool holds `preheat` pages, as far as the caps allow."""
        self.entries[entry.key] = entry
        self.paths[entry.key] = notebook_path
        pool = self.pools[entry.key]
        count = refills(self.caps, self.settings.preheat, len(pool), self.total, self.slots[entry.key])
        for _ in range(count):
            self.slots[entry.key] += 1
            task = asyncio.ensure_future(self._render(entry, notebook_path))
            task.add_done_callback(lambda t, key=entry.key: self._drop_failed(key, t))
            pool.append(task)

    def _drop_failed(self, key: str, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None:
            if task in self.pools[key]:
                self.pools[key].remove(task)

    async def _evict_one_pooled(self, but: str) -> bool:
        """Free a pooled kernel of another demo (a ready one first, else one still rendering),
        to make room for a visitor: visitors come before preheating."""
        pooled = [(key, t) for key, pool in self.pools.items() if key != but for t in pool]
        pooled.sort(key=lambda kt: not kt[1].done())
        for key, task in pooled:
            self.pools[key].remove(task)
            if not task.done():
                task.cancel()  # _render shuts its kernel down and releases the slot
                await asyncio.gather(task, return_exceptions=True)
                return True
            if not task.cancelled() and task.exception() is None:
                await self._shutdown(task.result().kernel_id)
                return True
        return False

    async def page(self, entry: DemoEntry, notebook_path: str) -> Rendered:
        """A complete page for a visitor: from the pool, else rendered now; Busy above a cap."""
        pool = self.pools[entry.key]
        ready = [t for t in pool if t.done()]
        task = (ready or pool or [None])[0]
        if task is not None:
            pool.remove(task)
            try:
                rendered = await task
            except RenderFailed:
                rendered = None
            if rendered is not None:
                self._serve(entry, rendered)
                self.fill(entry, notebook_path)
                return rendered
        if not may_start(self.caps, self.total, self.slots[entry.key]):
            if self.slots[entry.key] >= self.caps.per_demo or not await self._evict_one_pooled(but=entry.key):
                raise Busy()
        self.slots[entry.key] += 1
        rendered = await self._render(entry, notebook_path)
        self._serve(entry, rendered)
        return rendered

    def _serve(self, entry: DemoEntry, rendered: Rendered) -> None:
        self.served[rendered.kernel_id] = _Served(entry.key, time.monotonic())

    # --- freeing ---------------------------------------------------------------------

    async def _shutdown(self, kernel_id: str, release: bool = True) -> None:
        key = self.owner.pop(kernel_id, None)
        self.served.pop(kernel_id, None)
        if key is None:
            return
        if release:
            self.slots[key] -= 1
        try:
            await ensure_async(self.km.shutdown_kernel(kernel_id, now=True))
        except Exception as err:  # already gone: nothing to free
            self.log.info("Kernel %s of %s was already gone: %s", kernel_id, key, err)
        else:
            self.log.info("Kernel %s of %s shut down", kernel_id, key)

    async def page_closed(self, kernel_id: str) -> bool:
        """The page's shutdown beacon: free its kernel at once (served kernels only)."""
        if kernel_id not in self.served:
            return False
        await self._shutdown(kernel_id)
        return True

    def served_kernels(self, now: float) -> list[ServedKernel]:
        out = []
        for kernel_id, s in self.served.items():
            connections = self.km._kernel_connections.get(kernel_id, 0)
            if connections:
                s.last_connected = now
            try:
                kernel = self.km.get_kernel(kernel_id)
                idle_for = time.time() - kernel.last_activity.timestamp()
            except KeyError:  # died on its own: free its slot
                idle_for = float("inf")
                connections = 0
                s.last_connected = None
            out.append(ServedKernel(kernel_id, s.served_at, connections, s.last_connected, now - idle_for))
        return out

    async def sweep(self) -> list[str]:
        now = time.monotonic()
        gone = to_free(
            self.served_kernels(now), now, self.settings.closed_page_timeout, self.settings.idle_timeout
        )
        for kernel_id in gone:
            await self._shutdown(kernel_id)
        # Pools emptied by failures or evictions fill again when there is room.
        for key, entry in list(self.entries.items()):
            self.fill(entry, self.paths[key])
        return gone

    async def shutdown_all(self) -> None:
        for pool in self.pools.values():
            for task in pool:
                task.cancel()
        for kernel_id in list(self.owner):
            await self._shutdown(kernel_id)
