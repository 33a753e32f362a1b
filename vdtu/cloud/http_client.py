"""A small HTTP/1.1 JSON client on asyncio streams (h11), for the credential step.

One request per connection: ``post_json`` connects, sends the request, reads the
response and closes. It never blocks the loop and gives up after ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import h11


class HttpError(Exception):
    """The request could not be made or the answer could not be read."""


async def post_json(url: str, body: object, *, timeout_s: float = 10.0) -> tuple[int, Any]:
    """POST ``body`` as JSON to ``url``; returns (status, decoded JSON body or None).

    Raises:
        HttpError: connection refused or lost, timeout, or a malformed response.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise HttpError(f"only http://host[:port]/path URLs are supported, not {url!r}")
    try:
        return await asyncio.wait_for(
            _exchange(parts.hostname, parts.port or 80, parts, body), timeout_s
        )
    except TimeoutError:
        raise HttpError(f"no answer from {url} within {timeout_s} s") from None
    except (OSError, h11.ProtocolError) as exc:
        raise HttpError(f"{url}: {exc}") from exc


async def _exchange(host: str, port: int, parts: Any, body: object) -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        connection = h11.Connection(h11.CLIENT)
        payload = json.dumps(body).encode()
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [
            ("host", f"{host}:{port}"),
            ("content-type", "application/json"),
            ("content-length", str(len(payload))),
            ("connection", "close"),
        ]
        writer.write(
            connection.send(h11.Request(method="POST", target=target, headers=headers)) or b""
        )
        writer.write(connection.send(h11.Data(data=payload)) or b"")
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        status = 0
        content = bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        try:
            decoded = json.loads(content) if content else None
        except json.JSONDecodeError:
            decoded = None
        return status, decoded
    finally:
        writer.close()
