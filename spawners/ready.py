"""Is a started server there yet? Shared by the spawners, whose start() returns only once it is,
so the hub's own check (0.2 s back-off, doubling) succeeds at once.

"Something accepts connections on the port" is not enough: the port was free when it was picked
(random_port binds port 0 and lets it go), but between then and the server's own bind a kernel's
ZMQ socket or another learner's server may take it, and the new server then fails to start while
the port answers. The hub would route the learner to someone else's process. ``serves`` asks the
server's own API under its own base URL, which only that server answers.
"""

import asyncio


async def answers(address: str, port: int, timeout: float = 2) -> bool:
    """True once something accepts TCP connections at address:port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def serves(address: str, port: int, base_url: str, timeout: float = 2) -> bool:
    """True once a Jupyter server answers at address:port under ``base_url`` (its /api: 200, or
    401/403 where it asks for a login). Another learner's server answers 404 there, a ZMQ socket
    nothing in HTTP."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
        path = base_url.rstrip("/") + "/api"
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {address}:{port}\r\n\r\n".encode())
        status = await asyncio.wait_for(reader.readline(), timeout)
    except (TimeoutError, OSError):
        return False
    finally:
        if writer is not None:
            writer.close()
    parts = status.split()
    return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1] in (b"200", b"401", b"403")
