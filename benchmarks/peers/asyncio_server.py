"""
The greeting protocol on asyncio's Protocol API (the fast one, not streams),
TCP and UDP on one port; C{--uvloop} runs it on uvloop.

Run: C{python asyncio_server.py --port PORT [--host 127.0.0.1] [--uvloop]}; with
port 0 it picks one (TCP and UDP the same) and prints C{listening PORT}.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, cast

from _seed import GREETING, answer, datagram_reply, raise_nofile


class Greeting(asyncio.Protocol):
    """
    One TCP connection: greet, then answer each read.
    """

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(GREETING)

    def data_received(self, data: bytes) -> None:
        replies, close = answer(data)
        if replies:
            self.transport.write(replies)
        if close:
            self.transport.close()


class Datagrams(asyncio.DatagramProtocol):
    """
    Every datagram M gets C{Hello, M!}.
    """

    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(datagram_reply(data), addr)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Greeting, host, port, backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    await loop.create_datagram_endpoint(Datagrams, local_addr=(host, port))
    print(f"listening {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    raise_nofile()
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.host, args.port))
    else:
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
