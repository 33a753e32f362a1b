"""The control API of a ``vdtu fleet --procs N`` run: the parent answers for all its shards.

Each shard (a child process) serves its own API on 127.0.0.1 and names it in its
discovery file; the parent reads those, and ``ShardsControl`` forwards every request
to every shard and merges the answers: rows and ids in unit order, applied and
refused units added up, a unit shown by the shard that has it. A selector that
matches nothing in one shard is no error (the unit ids are split between shards);
only a selector that matches nothing anywhere is a 404, and a bad one is the 400
the first shard gave. ``random=P%`` is drawn in each shard from its own units. The
broker the shards share is the parent's, so ``broker-stop`` is applied here. Each
shard's event stream is followed and re-emitted into the parent's ring (numbered
anew), so a reader of the parent sees the whole fleet's events; their ``metrics``
events are the parent's own, each second, of every shard's figures together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from vdtu.control.attach import METRICS_S
from vdtu.control.controller import NO_SCENARIO, ack_figures
from vdtu.control.errors import ControlError
from vdtu.control.events import EventLog
from vdtu.control.fleet_faults import FleetFaultBook, FleetFaults
from vdtu.faults.catalogue import CATALOGUE, Scope
from vdtu.histogram import LatencyHistogram

Reply = tuple[int, Any]
SUMMED = ("units", "powered", "connected", "faulted")


class ShardsControl:
    """``ControlApi`` over the shards' APIs.

    Args:
        shards: each shard's API as (url, token), in shard order.
        fleet_faults: the shared broker's faults (None: a broker of the user's own).
    """

    def __init__(self, shards: list[tuple[str, str]], *, fleet_faults: FleetFaults | None) -> None:
        loop = asyncio.get_running_loop()
        self.events = EventLog(loop)
        t0 = time.monotonic()
        self.fleet_faults = FleetFaultBook(
            fleet_faults,
            self.events,
            now=lambda: time.monotonic() - t0,
            later=lambda delay, callback: _call_later(loop, delay, callback),
        )
        self._sessions = [
            aiohttp.ClientSession(url, headers={"Authorization": f"Bearer {token}"})
            for url, token in shards
        ]
        self._followers: list[asyncio.Future[None]] = []

    async def watch_events(self) -> None:
        """Someone reads the events: follow every shard's stream from now on, and emit the
        whole fleet's figures every ``METRICS_S``."""
        if not self._followers:
            self._followers = [asyncio.ensure_future(self._follow(h)) for h in self._sessions]
            self._followers.append(asyncio.ensure_future(self._metrics()))

    async def _metrics(self) -> None:
        """A ``metrics`` event of the whole fleet (the shards' own are not passed on: each
        counts its share of the units only)."""
        while True:
            await asyncio.sleep(METRICS_S)
            try:
                summary = await self.summary()
            except ControlError:
                continue  # a shard did not answer this time
            figures = {key: summary[key] for key in SUMMED}
            self.events.emit(self.fleet_faults.now(), None, "metrics",
                             figures | {"ack_ms_recent": summary["ack_ms_recent"]})  # fmt: skip

    async def close(self) -> None:
        for task in self._followers:
            task.cancel()
        for session in self._sessions:
            await session.close()

    async def _follow(self, http: aiohttp.ClientSession) -> None:
        with contextlib.suppress(aiohttp.ClientError, asyncio.CancelledError):
            async with http.get("/v1/events", params={"follow": "1"}, timeout=None) as reply:
                async for raw in reply.content:
                    event = json.loads(raw)
                    if event["kind"] == "metrics":
                        continue
                    self.events.emit(event.get("at", 0.0), event.get("unit"), event["kind"],
                                     event.get("data", {}))  # fmt: skip

    async def _all(self, method: str, path: str, body: Any = None, **query: str) -> list[Reply]:
        async def one(http: aiohttp.ClientSession) -> Reply:
            async with http.request(method, path, json=body, params=query or None) as reply:
                return reply.status, await reply.json(content_type=None)

        try:
            return list(await asyncio.gather(*(one(http) for http in self._sessions)))
        except aiohttp.ClientError as exc:
            raise ControlError(409, f"a shard did not answer: {exc}") from None

    @staticmethod
    def _good(replies: list[Reply], what: str) -> list[Any]:
        """The 200 answers; a 400 (or any other error) is raised; all 404: a 404."""
        for status, document in replies:
            if status not in (200, 404):
                raise ControlError(status, document.get("error", f"a shard answered {status}"))
        good = [document for status, document in replies if status == 200]
        if not good:
            raise ControlError(404, f"{what} matches no unit of any shard")
        return good

    async def summary(self) -> dict[str, Any]:
        documents = self._good(await self._all("GET", "/v1/fleet"), "the fleet")
        merged = {key: sum(document[key] for document in documents) for key in SUMMED}
        total, recent = LatencyHistogram(), LatencyHistogram()
        for document in documents:
            total.merge(LatencyHistogram.from_json(document["ack_histograms"]["total"]))
            recent.merge(LatencyHistogram.from_json(document["ack_histograms"]["recent"]))
        return (
            merged
            | ack_figures(total, recent)
            | {
                "shards": len(documents),
                "fleet_faults": self.fleet_faults.view(),
                "events": self.events.last_seq,
                "profiles": documents[0]["profiles"],
            }
        )

    async def scenario(self) -> dict[str, Any]:
        """A ``vdtu fleet --procs`` run is no scenario."""
        raise ControlError(404, NO_SCENARIO)

    async def units(self, text: str) -> list[dict[str, Any]]:
        replies = await self._all("GET", "/v1/units", select=text)
        rows = [
            row
            for document in self._good(replies, f"selector {text!r}")
            for row in document["units"]
        ]
        return sorted(rows, key=lambda row: int(row["unit"]))

    async def unit_ids(self, text: str) -> set[int] | None:
        if text == "all":
            return None
        return {int(row["unit"]) for row in await self.units(text)}

    async def show(self, ref: str) -> dict[str, Any]:
        for status, document in await self._all("GET", f"/v1/units/{ref}"):
            if status == 200:
                return dict(document)
        raise ControlError(404, f"no unit {ref!r} in any shard (an id or an IMEI)")

    async def add(self, count: object, tags: object = (), profile: object = None) -> dict[str, Any]:
        last = self._sessions[-1]
        body = {"count": count, "tags": tags, "profile": profile}
        async with last.post("/v1/units", json=body) as reply:
            document = await reply.json(content_type=None)
            if reply.status != 200:
                raise ControlError(reply.status, document.get("error", "the shard refused"))
            return dict(document)

    async def fault(
        self, text: str, kind: str, params: Mapping[str, object], for_s: object = None
    ) -> dict[str, Any]:
        entry = CATALOGUE.get(kind)
        if entry is not None and entry.scope is Scope.FLEET:
            if for_s is not None and not isinstance(for_s, int | float):
                raise ControlError(400, f"the duration of {kind} must be a number of seconds")
            return await self.fleet_faults.apply(
                text, kind, None if for_s is None else float(for_s)
            )
        body = {"select": text, "kind": kind, "params": dict(params), "for_s": for_s}
        return self._merge(await self._all("POST", "/v1/faults", body), text, "applied", kind=kind)

    async def clear(self, text: str, kind: str | None = None) -> dict[str, Any]:
        entry = CATALOGUE.get(kind or "")
        if entry is not None and entry.scope is Scope.FLEET:
            return {"cleared": await self.fleet_faults.clear(text, kind), "refused": {}}
        replies = await self._all("POST", "/v1/faults/clear", {"select": text, "kind": kind})
        merged = self._merge(replies, text, "cleared")
        if kind is None:
            merged["cleared"] |= await self.fleet_faults.clear(text, None)
        return merged

    async def poke(self, text: str, action: str, params: Mapping[str, object]) -> dict[str, Any]:
        body = {"select": text, "action": action, "params": dict(params)}
        return self._merge(await self._all("POST", "/v1/pokes", body), text, "done", action=action)

    def _merge(self, replies: list[Reply], text: str, key: str, **extra: str) -> dict[str, Any]:
        documents = self._good(replies, f"selector {text!r}")
        refused: dict[str, str] = {}
        for document in documents:
            refused |= document["refused"]
        if isinstance(documents[0][key], dict):
            done: Any = {}
            for document in documents:
                done |= document[key]
        else:
            done = sorted(unit for document in documents for unit in document[key])
        return extra | {key: done, "refused": refused}


def _call_later(
    loop: asyncio.AbstractEventLoop, delay: float, callback: Callable[[], None]
) -> None:
    loop.call_later(delay, callback)
