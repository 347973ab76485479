"""Is a started server there yet? Shared by the spawners, whose start() returns only once it is,
so the hub's own check (0.2 s back-off, doubling) succeeds at once."""

import asyncio


async def answers(address: str, port: int, timeout: float = 2) -> bool:
    """True once something accepts TCP connections at address:port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True
