"""A small HTTP/1.1 client on asyncio streams (h11): one request per connection.

``request`` connects, sends one request with ``Connection: close``, reads the whole
response and closes; ``post_json`` is ``request`` with a JSON body and a JSON answer.
Nothing blocks the loop, and the whole exchange gives up after ``timeout_s``.

A request carries ``Content-Length`` whenever it has a body (and for an empty POST,
PUT or PATCH, which servers expect to be framed); h11 then rejects a body of another
length. h11 also knows that the answer to HEAD has no body, whatever its
``Content-Length`` says. The answer's body is limited to ``max_body`` bytes, so a
broken or hostile server cannot make the process buffer without end, and
``post_json`` decodes it within ``vdtu.json_limits`` (an answer that is not JSON
within them is ``None``, never an exception).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

import h11

from vdtu.json_limits import JsonLimits, decode

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
"""The methods ``request`` sends."""

_FRAMED_WHEN_EMPTY = frozenset({"POST", "PUT", "PATCH"})
"""Methods whose empty body still gets ``Content-Length: 0``."""

MAX_RESPONSE_BODY = 1024 * 1024
"""The default limit for a response body, in bytes."""


ANSWER_LIMITS = JsonLimits(max_bytes=MAX_RESPONSE_BODY, max_string=MAX_RESPONSE_BODY)
"""How much JSON ``post_json`` reads from an answer (depth 32, 32 digits a number)."""


class HttpError(Exception):
    """The request could not be made or the answer could not be read."""


async def request(
    method: str,
    url: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    timeout_s: float = 10.0,
    max_body: int = MAX_RESPONSE_BODY,
) -> tuple[int, bytes]:
    """Make one HTTP/1.1 request and read the whole answer.

    Args:
        method: one of ``METHODS``.
        url: ``http://host[:port]/path[?query]``.
        body: the request body (sent with ``Content-Length``).
        headers: extra request headers; a ``Host`` given here replaces the one made
            from the URL (for a URL rewritten to another address).
        timeout_s: the limit for the whole exchange, from connecting to the last byte.
        max_body: the largest response body accepted, in bytes.

    Returns:
        The status code and the response body (empty for HEAD).

    Raises:
        ValueError: ``method`` is not one of ``METHODS``.
        HttpError: a URL that is not ``http://``, connection refused or lost, timeout,
            a malformed or oversized response.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, not {method!r}")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise HttpError(f"only http://host[:port]/path URLs are supported, not {url!r}")
    try:
        port = parts.port or 80
    except ValueError:
        raise HttpError(f"the port of {url!r} is not a number in 0..65535") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        head = h11.Request(
            method=method,
            target=target,
            headers=_request_headers(method, parts, port, body, headers or {}),
        )
        async with asyncio.timeout(timeout_s):
            return await _exchange(parts.hostname, port, head, body, max_body)
    except TimeoutError:
        raise HttpError(f"no answer from {url} within {timeout_s} s") from None
    except (OSError, h11.ProtocolError) as exc:
        raise HttpError(f"{url}: {exc}") from exc


async def post_json(url: str, body: object, *, timeout_s: float = 10.0) -> tuple[int, Any]:
    """POST ``body`` as JSON to ``url``; returns (status, decoded JSON body or None).

    The answer is ``None`` when it is empty or not JSON within ``ANSWER_LIMITS``.

    Raises:
        HttpError: connection refused or lost, timeout, or a malformed response.
    """
    status, content = await request(
        "POST",
        url,
        json.dumps(body).encode(),
        {"content-type": "application/json"},
        timeout_s=timeout_s,
    )
    try:
        decoded = decode(content, ANSWER_LIMITS) if content else None
    except ValueError:  # not UTF-8, not JSON, or over a limit: all ValueErrors
        decoded = None
    return status, decoded


def _request_headers(
    method: str, parts: SplitResult, port: int, body: bytes, extra: Mapping[str, str]
) -> list[tuple[str, str]]:
    names = {name.lower() for name in extra}
    headers: list[tuple[str, str]] = []
    if "host" not in names:
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        headers.append(("host", f"{host}:{port}"))
    headers.extend(
        (name, value)
        for name, value in extra.items()
        if name.lower() not in ("content-length", "connection", "transfer-encoding")
    )
    if body or method in _FRAMED_WHEN_EMPTY:
        headers.append(("content-length", str(len(body))))
    headers.append(("connection", "close"))
    return headers


async def _exchange(
    host: str, port: int, head: h11.Request, body: bytes, max_body: int
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        connection = h11.Connection(h11.CLIENT)
        writer.write(connection.send(head) or b"")
        if body:
            writer.write(connection.send(h11.Data(data=body)) or b"")
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        return await _read_response(connection, reader, max_body)
    finally:
        writer.close()


async def _read_response(
    connection: h11.Connection, reader: asyncio.StreamReader, max_body: int
) -> tuple[int, bytes]:
    status: int | None = None
    content = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data and status is None:
                raise HttpError("the server closed the connection without a response")
            connection.receive_data(data)
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            content += event.data
            if len(content) > max_body:
                raise HttpError(f"the response body is over the limit of {max_body} bytes")
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    assert status is not None  # h11 ends a message only after its Response
    return status, bytes(content)
