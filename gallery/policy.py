"""Pure decisions about kernels: may a page start one, may a pool refill, which to free.

Kept apart from the asyncio code that acts on them, so the rules are unit-tested as plain
functions of counts and times.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Caps:
    total: int
    per_demo: int


def may_start(caps: Caps, total: int, of_demo: int) -> bool:
    """A new kernel for a demo that has ``of_demo`` kernels, ``total`` in the gallery."""
    return total < caps.total and of_demo < caps.per_demo


def refills(caps: Caps, preheat: int, pooled: int, total: int, of_demo: int) -> int:
    """How many kernels to start now so the demo's pool holds ``preheat``, within the caps."""
    room = min(caps.total - total, caps.per_demo - of_demo, preheat - pooled)
    return max(room, 0)


@dataclasses.dataclass(frozen=True)
class ServedKernel:
    """A kernel handed to a page. Times are seconds on one monotonic clock."""

    kernel_id: str
    served_at: float
    connections: int
    last_connected: float | None  # last time a page was seen connected
    last_activity: float  # last message from the kernel (a widget moved, a cell ran)


def to_free(
    kernels: list[ServedKernel], now: float, closed_page_timeout: float, idle_timeout: float
) -> list[str]:
    """Kernels whose page is gone (no connection for closed_page_timeout, counted from the
    later of being served and last seen connected) or abandoned (connected, but no activity
    for idle_timeout)."""
    gone = []
    for k in kernels:
        if k.connections == 0:
            since = max(k.served_at, k.last_connected or k.served_at)
            if now - since >= closed_page_timeout:
                gone.append(k.kernel_id)
        elif now - max(k.last_activity, k.served_at) >= idle_timeout:
            gone.append(k.kernel_id)
    return gone
