"""ReplyReader: replies in order, and a timeout: a
server that never answers fails the reply and the connection, which is never reused."""

from __future__ import annotations

import asyncio

import pytest

from toolkit.relay.replies import ReplyError, ReplyReader


async def _silent_server_reader() -> tuple[asyncio.AbstractServer, ReplyReader]:
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, reader = await loop.create_connection(lambda: ReplyReader(loop), "127.0.0.1", port)
    return server, reader


def test_a_reply_that_never_comes_times_out_and_spoils_the_connection() -> None:
    async def main() -> None:
        server, reader = await _silent_server_reader()
        try:
            with pytest.raises(ReplyError, match="timed out waiting for the server"):
                await reader.reply(0.05)
            assert not reader.usable
            with pytest.raises(ReplyError, match="timed out"):  # and stays failed
                await reader.reply(5)
        finally:
            server.close()

    asyncio.run(main())


def test_replies_in_order_and_multiline() -> None:
    async def main() -> None:
        server, reader = await _silent_server_reader()
        try:
            waiting = asyncio.ensure_future(reader.reply(5))
            await asyncio.sleep(0)
            reader.data_received(b"250-first\r\n250 second\r\n354 go on\r\n")
            assert await waiting == (250, "first\nsecond")
            assert await reader.reply(5) == (354, "go on")
            assert reader.usable
        finally:
            server.close()

    asyncio.run(main())
