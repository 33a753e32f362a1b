"""The control API's HTTP server: aiohttp on 127.0.0.1, one bearer token, JSON in and out.

Why aiohttp: the API needs routing, request size limits, keep-alive and one long-lived
streaming response per event follower, all on the process's one asyncio loop next to
thousands of units; aiohttp does each of these and is maintained, where the
project's own h11 server (``vdtu.cloud.http_server``) answers single small requests.
The same package is the client ``vdtu ctl`` and the dashboard use.

Every route is in docs/control-api.md (the contract). Errors are JSON
``{"error": "..."}`` with 400 (a bad request: selector, kind, parameter, body), 401 (no
or a wrong token), 404 (no such route, no such unit, a selector that matches nothing)
or 409 (the fleet cannot do it). A request body is at most ``MAX_BODY`` bytes.

The events route streams JSON lines (``application/x-ndjson``): one event per line,
and ``{"kind": "missed", "data": {"count": N}}`` when the reader fell so far behind
that the ring dropped events it had not read. Writing to a slow reader waits for that
reader only; the units never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from vdtu.control.errors import ControlError
from vdtu.control.events import Batch, EventLog
from vdtu.control.pokes import POKES
from vdtu.errors import ConfigError
from vdtu.faults.catalogue import KINDS, Param

MAX_BODY = 256 * 1024
"""The largest request body accepted (a downlink payload is the largest part)."""
API = "/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    """A fresh bearer token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _param_view(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "type": param.kind.__name__,
        "required": param.required,
        "default": param.default,
        "allowed": param.allowed(),
        "help": param.help,
    }


def catalogue_view() -> list[dict[str, Any]]:
    """The fault kinds as ``GET /v1/faults/kinds`` lists them."""
    return [
        {
            "kind": kind.name,
            "layer": kind.layer,
            "scope": kind.scope.value,
            "one_shot": kind.one_shot,
            "help": kind.help,
            "params": [_param_view(param) for param in kind.params],
        }
        for kind in KINDS
    ]


class ControlApi(Protocol):
    """What the routes call: a fleet in this process (``FleetControl``) or the shards of a
    ``--procs`` run (``ShardsControl``). Each method raises ``ControlError`` for a request
    it refuses."""

    @property
    def events(self) -> EventLog: ...
    async def summary(self) -> dict[str, Any]: ...
    async def scenario(self) -> dict[str, Any]: ...
    async def units(self, text: str) -> list[dict[str, Any]]: ...
    async def unit_ids(self, text: str) -> set[int] | None: ...
    async def watch_events(self) -> None: ...
    async def show(self, ref: str) -> dict[str, Any]: ...
    async def add(
        self, count: object, tags: object = (), profile: object = None
    ) -> dict[str, Any]: ...
    async def fault(
        self, text: str, kind: str, params: Mapping[str, object], for_s: object = None
    ) -> dict[str, Any]: ...
    async def clear(self, text: str, kind: str | None = None) -> dict[str, Any]: ...
    async def poke(
        self, text: str, action: str, params: Mapping[str, object]
    ) -> dict[str, Any]: ...


class ControlServer:
    """The API of one fleet.

    Args:
        control: what the routes call.
        token: the bearer token every request must carry.
        port: the TCP port on 127.0.0.1 (0: any free one).
    """

    def __init__(self, control: ControlApi, *, token: str, port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"control port must be 0..65535 (0: any free one), not {port}")
        self.control = control
        self.token = token
        self.port = port
        self._runner: web.AppRunner | None = None
        self._streams: set[asyncio.Task[Any]] = set()
        """The event streams being served: ended first when the server stops."""
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        app.add_routes(
            [
                web.get(f"{API}/fleet", self._fleet),
                web.get(f"{API}/scenario", self._scenario),
                web.get(f"{API}/units", self._units),
                web.post(f"{API}/units", self._add),
                web.get(f"{API}/units/{{ref}}", self._show),
                web.get(f"{API}/faults/kinds", self._kinds),
                web.post(f"{API}/faults", self._fault),
                web.post(f"{API}/faults/clear", self._clear),
                web.get(f"{API}/pokes", self._pokes),
                web.post(f"{API}/pokes", self._poke),
                web.get(f"{API}/events", self._events),
            ]
        )
        self.app = app

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (after ``start``)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1 (``port`` becomes the real one)."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"control port {self.port} on 127.0.0.1: {exc.strerror}; give another with "
                "--control-port, or 0 for any free one"
            ) from None
        self._runner = runner
        server = site._server  # the bound port of port 0 is only known here
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection (event streams end) and stop listening."""
        for task in self._streams:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the guard ----------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme != "Bearer" or not hmac.compare_digest(token.encode(), self.token.encode()):
            return _error(401, "no or a wrong token: send 'Authorization: Bearer <token>' "
                          "with the control token from up.json")  # fmt: skip
        try:
            return await handler(request)
        except ControlError as exc:
            return _error(exc.status, str(exc))
        except web.HTTPException as exc:
            return _error(exc.status, exc.reason)

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json(loads=json.loads)
        except web.HTTPRequestEntityTooLarge:
            raise ControlError(400, f"the request body is over {MAX_BODY} bytes") from None
        except (ValueError, UnicodeDecodeError):
            raise ControlError(400, "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise ControlError(400, "the request body must be a JSON object")
        return body

    @staticmethod
    def _field(body: dict[str, Any], name: str, kind: type, *, default: Any = ...) -> Any:
        value = body.get(name, default)
        if value is ...:
            raise ControlError(400, f"the request body needs {name!r}")
        if value is not None and value is not default and not isinstance(value, kind):
            raise ControlError(400, f"{name!r} must be a {kind.__name__}, not {value!r}")
        return value

    # -- routes -------------------------------------------------------------------------------

    async def _fleet(self, _request: web.Request) -> web.Response:
        return web.json_response(await self.control.summary())

    async def _scenario(self, _request: web.Request) -> web.Response:
        return web.json_response(await self.control.scenario())

    async def _units(self, request: web.Request) -> web.Response:
        units = await self.control.units(request.query.get("select", "all"))
        return web.json_response({"units": units})

    async def _show(self, request: web.Request) -> web.Response:
        return web.json_response(await self.control.show(request.match_info["ref"]))

    async def _add(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        answer = await self.control.add(
            body.get("count", 1), body.get("tags", []), body.get("profile")
        )
        return web.json_response(answer)

    async def _kinds(self, _request: web.Request) -> web.Response:
        return web.json_response({"kinds": catalogue_view()})

    async def _fault(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        answer = await self.control.fault(
            self._field(body, "select", str),
            self._field(body, "kind", str),
            self._field(body, "params", dict, default={}),
            body.get("for_s"),
        )
        return web.json_response(answer)

    async def _clear(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        answer = await self.control.clear(
            self._field(body, "select", str), self._field(body, "kind", str, default=None)
        )
        return web.json_response(answer)

    async def _pokes(self, _request: web.Request) -> web.Response:
        pokes = [
            {"action": name, "help": poke.help, "params": [_param_view(p) for p in poke.params]}
            for name, poke in POKES.items()
        ]
        return web.json_response({"pokes": pokes})

    async def _poke(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        answer = await self.control.poke(
            self._field(body, "select", str),
            self._field(body, "action", str),
            self._field(body, "params", dict, default={}),
        )
        return web.json_response(answer)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        ids = await self.control.unit_ids(query.get("select", "all"))
        await self.control.watch_events()
        follow = query.get("follow", "0") in ("1", "true", "yes")
        log = self.control.events
        after = _int_query(query.get("after"), "after", default=0 if not follow else -1)
        cursor = max(0, log.last_seq + 1 + after) if after < 0 else after
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while True:
                batch = log.read(cursor)
                cursor = batch.cursor
                lines = _lines(batch, ids)
                if lines:
                    await response.write(lines)
                if not follow and len(batch.events) < 1000:
                    break
                if not batch.events:
                    await log.wait(cursor)
        self._streams.discard(task)
        return response


def _int_query(value: str | None, name: str, *, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ControlError(400, f"{name} must be an integer, not {value!r}") from None


def _lines(batch: Batch, ids: set[int] | None) -> bytes:
    out: list[str] = []
    if batch.missed:
        out.append(json.dumps({"seq": None, "kind": "missed", "data": {"count": batch.missed}}))
    out.extend(
        json.dumps(event.view(), separators=(",", ":"))
        for event in batch.events
        if ids is None or event.unit is None or event.unit in ids
    )
    return "".join(line + "\n" for line in out).encode()
