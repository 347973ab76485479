"""The gallery's metrics, served at <prefix>metrics to a token with hub_config/metrics.py's scope:
its kernels (read from kernels.py when scraped) and the "busy, retry" pages it answered."""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

BUSY_PAGES = Counter(
    "ailys_gallery_busy_pages_total",
    "Demo pages answered 'busy, retry' (503) at a kernel cap, by course",
    ["course"],
)


class KernelsCollector:
    """Gauges of the demo kernels now, from DemoKernels.status()."""

    def __init__(self, kernels):
        self.kernels = kernels

    def collect(self):
        status = self.kernels.status()
        for name, key, text in (
            ("ailys_gallery_kernels", "kernels", "Demo kernels holding a slot (served, preheated, starting)"),
            ("ailys_gallery_kernels_served", "served", "Demo kernels given to a page"),
            ("ailys_gallery_kernels_connected", "connected", "Served demo kernels with a page connected now"),
        ):
            yield GaugeMetricFamily(name, text, value=status[key])
        ready = GaugeMetricFamily(
            "ailys_gallery_kernels_preheated", "Preheated pages ready, by demo", labels=["demo"]
        )
        for demo, count in status["ready"].items():
            ready.add_metric([demo], count)
        yield ready
