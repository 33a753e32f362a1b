"""The control API as the dashboard calls it.

``Api`` is the protocol every screen talks to; ``HttpApi`` implements it over aiohttp (as
``vdtu ctl`` does: one session with the bearer token, JSON in and out, the event stream
as JSON lines), and the snapshot tests give the screens a fake with fixed data. Every
failure a user can cause or meet (a 4xx with the server's one-line reason, a fleet that
went away, a request that timed out) is an ``ApiError`` with a message fit to show; the
screens show it and go on. ``locate`` finds a running fleet as ``vdtu ctl`` does: the
``control`` entry of ``up.json`` in a ``--pty-dir``, or an address and token given.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from vdtu.api_address import api_address
from vdtu.errors import ConfigError

"""The discovery document a run writes into its ``--pty-dir`` (docs/control-api.md)."""

TIMEOUT_S = 30.0
"""How long one request may take (the event stream has no limit)."""

Json = dict[str, Any]


class ApiError(Exception):
    """A request that did not do what was asked; ``str()`` is the line to show."""


class Api(Protocol):
    """The control API's routes, as the screens use them."""

    url: str
    """Where the API is (shown in the header)."""

    async def fleet(self) -> Json:
        """``GET /v1/fleet``."""
        ...

    async def scenario(self) -> Json:
        """``GET /v1/scenario``: the scenario run's progress (404: the fleet runs none)."""
        ...

    async def units(self, select: str = "all") -> list[Json]:
        """``GET /v1/units``: one row per selected unit."""
        ...

    async def unit(self, unit: str) -> Json:
        """``GET /v1/units/{unit}``: one unit's whole snapshot."""
        ...

    async def kinds(self) -> list[Json]:
        """``GET /v1/faults/kinds``: the catalogue with typed parameters."""
        ...

    async def apply_fault(
        self, select: str, kind: str, params: dict[str, str], for_s: float | None
    ) -> Json:
        """``POST /v1/faults``."""
        ...

    async def clear_faults(self, select: str, kind: str | None) -> Json:
        """``POST /v1/faults/clear``."""
        ...

    async def poke(self, select: str, action: str, params: dict[str, Any]) -> Json:
        """``POST /v1/pokes``."""
        ...

    async def add_units(self, count: int, tags: list[str], profile: str | None = None) -> Json:
        """``POST /v1/units`` (``profile`` None: as the fleet gives them out)."""
        ...

    def events(
        self, select: str = "all", *, after: int | None = None, follow: bool = True
    ) -> AsyncIterator[Json]:
        """``GET /v1/events``: the events, one dict each (``missed`` lines included)."""
        ...

    async def close(self) -> None:
        """Let go of the connection (the fleet is not touched)."""
        ...


def locate(pty_dir: Path | None, url: str | None, token: str | None) -> tuple[str, str]:
    """The API's URL and token, from ``url``/``token`` or ``pty_dir``'s up.json
    (``vdtu.api_address``, as ``vdtu ctl`` finds it).

    Raises:
        ApiError: the two options without each other, no up.json, or one without an API.
    """
    try:
        return api_address(pty_dir, url, token)
    except ConfigError as exc:
        raise ApiError(str(exc)) from None


class HttpApi:
    """``Api`` over HTTP: one aiohttp session, opened on the first request."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self._token = token
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                self.url,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            )
        return self._http

    async def _call(self, method: str, path: str, body: Any = None, **query: str) -> Json:
        try:
            async with self._session().request(
                method, f"/v1/{path}", json=body, params=query or None
            ) as reply:
                try:
                    document = await reply.json(content_type=None)
                except ValueError:
                    raise ApiError(
                        f"the control API answered {reply.status} without JSON"
                    ) from None
        except aiohttp.ClientConnectionError as exc:
            raise ApiError(f"cannot reach the control API at {self.url}: {exc}") from None
        except TimeoutError:
            raise ApiError(
                f"the control API at {self.url} did not answer in {TIMEOUT_S:g} s"
            ) from None
        if reply.status != 200 or not isinstance(document, dict):
            message = document.get("error") if isinstance(document, dict) else None
            raise ApiError(str(message or f"the control API answered {reply.status}"))
        return document

    async def fleet(self) -> Json:
        return await self._call("GET", "fleet")

    async def scenario(self) -> Json:
        return await self._call("GET", "scenario")

    async def units(self, select: str = "all") -> list[Json]:
        rows: list[Json] = (await self._call("GET", "units", select=select))["units"]
        return rows

    async def unit(self, unit: str) -> Json:
        return await self._call("GET", f"units/{unit}")

    async def kinds(self) -> list[Json]:
        kinds: list[Json] = (await self._call("GET", "faults/kinds"))["kinds"]
        return kinds

    async def apply_fault(
        self, select: str, kind: str, params: dict[str, str], for_s: float | None
    ) -> Json:
        body = {"select": select, "kind": kind, "params": params, "for_s": for_s}
        return await self._call("POST", "faults", body)

    async def clear_faults(self, select: str, kind: str | None) -> Json:
        return await self._call("POST", "faults/clear", {"select": select, "kind": kind})

    async def poke(self, select: str, action: str, params: dict[str, Any]) -> Json:
        body = {"select": select, "action": action, "params": params}
        return await self._call("POST", "pokes", body)

    async def add_units(self, count: int, tags: list[str], profile: str | None = None) -> Json:
        body = {"count": count, "tags": tags, "profile": profile}
        return await self._call("POST", "units", body)

    async def events(
        self, select: str = "all", *, after: int | None = None, follow: bool = True
    ) -> AsyncIterator[Json]:
        query = {"select": select, "follow": "1" if follow else "0"}
        if after is not None:
            query["after"] = str(after)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=TIMEOUT_S)
        try:
            async with self._session().get("/v1/events", params=query, timeout=timeout) as reply:
                if reply.status != 200:
                    document = await reply.json(content_type=None)
                    raise ApiError(str(document.get("error", reply.status)))
                async for raw in reply.content:
                    line = raw.strip()
                    if line:
                        yield json.loads(line)
        except aiohttp.ClientConnectionError as exc:
            raise ApiError(f"the event stream from {self.url} ended: {exc}") from None
        except aiohttp.ClientPayloadError as exc:
            raise ApiError(f"the event stream from {self.url} broke off: {exc}") from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
