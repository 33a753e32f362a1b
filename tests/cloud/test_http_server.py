"""The generic HTTP server and the HTTP client, against each other and raw sockets, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping

import pytest

from vdtu.cloud.http_client import HttpError, post_json, request
from vdtu.cloud.http_server import Handler, HttpServer, Reply, Request

pytestmark = pytest.mark.realtime


@contextlib.asynccontextmanager
async def serving(
    routes: Mapping[tuple[str, str], Handler], **options: float
) -> AsyncIterator[HttpServer]:
    server = HttpServer(routes, **options)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def fixed(text: str) -> Handler:
    """A handler answering 200 with ``text``."""
    return lambda _request: Reply(status=200, body=text.encode())


async def raw_exchange(port: int, data: bytes, *, wait_s: float = 2.0) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        async with asyncio.timeout(wait_s):
            return await reader.read()
    finally:
        writer.close()


def test_handler_gets_method_path_query_lowercase_headers_and_body() -> None:
    """The request object carries the method, the path without query, the raw query,
    headers by lower-case name and the body; the reply's status, headers and body arrive."""
    seen: list[Request] = []

    def handler(incoming: Request) -> Reply:
        seen.append(incoming)
        return Reply(status=201, body=b"made", headers=(("x-answer", "42"),))

    async def scenario() -> tuple[int, bytes]:
        async with serving({("PUT", "/things/1"): handler}) as server:
            return await request(
                "PUT", f"{server.url}/things/1?a=1&b=x%20y", b"payload", {"X-Trace": "t1"}
            )

    assert asyncio.run(scenario()) == (201, b"made")
    (incoming,) = seen
    assert (incoming.method, incoming.path, incoming.query, incoming.body) == (
        "PUT",
        "/things/1",
        "a=1&b=x%20y",
        b"payload",
    )
    assert incoming.headers["x-trace"] == "t1"
    assert incoming.headers["content-length"] == "7"


def test_unknown_path_is_404_and_unrouted_method_is_405_with_allow() -> None:
    """No route for the path: 404; the path is routed but not for this method: 405 + Allow."""

    async def scenario() -> tuple[tuple[int, object], bytes]:
        routes = {("GET", "/a"): fixed("a"), ("POST", "/a"): fixed("a")}
        async with serving(routes) as server:
            missing = await post_json(f"{server.url}/b", {})
            answer = await raw_exchange(server.port, b"DELETE /a HTTP/1.1\r\nHost: x\r\n\r\n")
            return missing, answer

    (status, body), answer = asyncio.run(scenario())
    assert status == 404
    assert body == {"error": "no resource at /b"}
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 405 ")
    assert b"\r\nallow: get, post" in head


def test_prefix_routes_match_their_subtree_and_the_longest_prefix_wins() -> None:
    """``/api/*`` serves /api and /api/x but not /apix; ``/api/v2/*`` wins under /api/v2;
    an exact route beats every prefix; ``/*`` catches the rest."""
    routes = {
        ("GET", "/*"): fixed("root"),
        ("GET", "/api/*"): fixed("api"),
        ("GET", "/api/v2/*"): fixed("v2"),
        ("GET", "/api/v2/exact"): fixed("exact"),
    }

    async def scenario() -> list[bytes]:
        async with serving(routes) as server:
            paths = ["/api", "/api/x/y", "/apix", "/api/v2/z", "/api/v2/exact", "/"]
            return [(await request("GET", server.url + path))[1] for path in paths]

    assert asyncio.run(scenario()) == [b"api", b"api", b"root", b"v2", b"exact", b"root"]


def test_body_over_the_limit_gets_413_and_the_client_reads_it() -> None:
    """A body past max_body is answered 413 without reading the rest, and the client
    still gets the answer (the unread rest does not reset the connection first)."""

    async def scenario() -> tuple[int, bytes]:
        async with serving({("POST", "/up"): fixed("ok")}, max_body=1000) as server:
            return await request("POST", f"{server.url}/up", b"x" * 200_000)

    status, body = asyncio.run(scenario())
    assert status == 413
    assert json.loads(body) == {"error": "body over 1000 bytes"}


def test_malformed_request_gets_400() -> None:
    """Bytes that are not HTTP get 400 with a JSON error, not a crash."""

    async def scenario() -> bytes:
        async with serving({("GET", "/"): fixed("x")}) as server:
            return await raw_exchange(server.port, b"this is not http\r\n\r\n")

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b'{"error": "bad request: ' in answer


def test_incomplete_request_gets_408_after_the_read_timeout() -> None:
    """A request whose body never completes is answered 408 after read_timeout_s."""

    async def scenario() -> bytes:
        async with serving({("POST", "/"): fixed("x")}, read_timeout_s=0.1) as server:
            partial = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
            return await raw_exchange(server.port, partial)

    assert asyncio.run(scenario()).startswith(b"HTTP/1.1 408 ")


def test_head_answer_has_the_length_but_no_body() -> None:
    """HEAD gets the status and Content-Length of the body it leaves out."""

    async def scenario() -> tuple[tuple[int, bytes], bytes]:
        async with serving({("HEAD", "/f"): fixed("twelve bytes")}) as server:
            via_client = await request("HEAD", f"{server.url}/f")
            raw = await raw_exchange(server.port, b"HEAD /f HTTP/1.1\r\nHost: x\r\n\r\n")
            return via_client, raw

    via_client, raw = asyncio.run(scenario())
    assert via_client == (200, b"")
    head, _sep, rest = raw.partition(b"\r\n\r\n")
    assert b"content-length: 12" in head.lower()
    assert rest == b""


def test_client_that_leaves_without_a_request_is_no_error_and_counts_nothing() -> None:
    """A connection closed before any byte is simply closed; ``requests`` counts only
    complete requests."""

    async def scenario() -> tuple[int, int]:
        async with serving({("GET", "/"): fixed("x")}) as server:
            _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.close()
            await writer.wait_closed()
            await request("GET", server.url + "/")
            await asyncio.sleep(0.05)
            first = server.requests
            await request("GET", server.url + "/nothing-here")
            return first, server.requests

    assert asyncio.run(scenario()) == (1, 2)


def test_client_keeps_a_given_host_header_and_rejects_bad_methods_and_urls() -> None:
    """A Host header given by the caller replaces the URL's; a bad method is a ValueError;
    an https URL is an HttpError naming it."""
    hosts: list[str] = []

    def handler(incoming: Request) -> Reply:
        hosts.append(incoming.headers["host"])
        return Reply(status=204)

    async def scenario() -> tuple[int, int]:
        async with serving({("GET", "/h"): handler}) as server:
            given = await request("GET", f"{server.url}/h", headers={"Host": "dtu.example:8080"})
            own = await request("GET", f"{server.url}/h")
            with pytest.raises(ValueError, match=r"method must be one of .* not 'FETCH'"):
                await request("FETCH", f"{server.url}/h")
            with pytest.raises(HttpError, match=r"only http://.*'https://x/'"):
                await request("GET", "https://x/")
            return given[0], own[0]

    assert asyncio.run(scenario()) == (204, 204)
    assert hosts[0] == "dtu.example:8080"
    assert hosts[1].startswith("127.0.0.1:")


def test_client_refuses_an_oversized_answer_and_a_missing_answer() -> None:
    """A response body past max_body, and a server that closes without answering, are
    HttpErrors that say so."""

    async def closer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def scenario() -> tuple[str, str]:
        async with serving({("GET", "/big"): fixed("x" * 5000)}) as server:
            with pytest.raises(HttpError) as big:
                await request("GET", f"{server.url}/big", max_body=100)
        silent = await asyncio.start_server(closer, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        try:
            with pytest.raises(HttpError) as nothing:
                await request("GET", f"http://127.0.0.1:{port}/")
        finally:
            silent.close()
            await silent.wait_closed()
        return str(big.value), str(nothing.value)

    big, nothing = asyncio.run(scenario())
    assert "over the limit of 100 bytes" in big
    assert "closed the connection without a response" in nothing


def test_bad_routes_and_replies_are_refused_with_the_value_named() -> None:
    """Route methods must be upper-case tokens, paths must start with '/', replies need a
    final status."""
    with pytest.raises(ValueError, match="upper-case token, not 'get'"):
        HttpServer({("get", "/"): fixed("x")})
    with pytest.raises(ValueError, match="must start with '/', not 'a'"):
        HttpServer({("GET", "a"): fixed("x")})
    with pytest.raises(ValueError, match=r"200\.\.599, not 101"):
        Reply(status=101)
    with pytest.raises(ValueError, match="max_body must be a byte count >= 0, not -1"):
        HttpServer({}, max_body=-1)


@pytest.mark.parametrize(
    "answer",
    [b'{"port":' + b"1" * 5000 + b"}", b"[" * 5000 + b"]" * 5000, b"\xff", b"nope", b"NaN"],
    ids=["5000-digit number", "nested 5000 deep", "not UTF-8", "not JSON", "NaN"],
)
def test_post_json_reads_a_hostile_answer_as_no_json(answer: bytes) -> None:
    """An answer whose body is not JSON within limits is (status, None), never an exception."""

    def hostile(_request: Request) -> Reply:
        return Reply(status=200, body=answer)

    async def scenario() -> tuple[int, object]:
        async with serving({("POST", "/x"): hostile}) as server:
            return await post_json(f"{server.url}/x", {"a": 1})

    assert asyncio.run(scenario()) == (200, None)


def test_an_endless_request_head_gets_431() -> None:
    """A request head still incomplete past h11's 16 KiB buffer is refused with 431, so a
    client cannot make the server buffer headers without end."""

    async def scenario() -> bytes:
        async with serving({("GET", "/"): fixed("x")}) as server:
            head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000
            return await raw_exchange(server.port, head)

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b'"error"' in answer
