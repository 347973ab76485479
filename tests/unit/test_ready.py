"""spawners/ready.py against real sockets on loopback: a Jupyter-like server under the right base
URL serves, one under another base URL does not, nor does a socket that accepts and never speaks."""

import asyncio

from spawners.ready import answers, serves


async def _http_server(prefix: str):
    async def handle(reader, writer):
        line = await reader.readline()
        path = line.split()[1].decode()
        status = "200 OK" if path == prefix + "api" else "404 Not Found"
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\n{{}}".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_only_the_server_of_that_base_url_serves():
    async def check():
        server = await _http_server("/user/ana/")
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, says nothing
        port, quiet = server.sockets[0].getsockname()[1], silent.sockets[0].getsockname()[1]
        async with server, silent:
            assert await serves("127.0.0.1", port, "/user/ana/")
            assert not await serves("127.0.0.1", port, "/user/bob/")  # another learner's server: 404
            assert await answers("127.0.0.1", quiet)  # a TCP check takes it for a server...
            assert not await serves("127.0.0.1", quiet, "/user/ana/", timeout=0.3)  # ...this does not

    asyncio.run(check())


def test_nothing_listening_does_not_serve():
    async def check():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        assert not await serves("127.0.0.1", port, "/user/ana/")

    asyncio.run(check())
