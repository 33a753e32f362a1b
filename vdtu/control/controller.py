"""What the control API does, without HTTP: select units, read them, fault them, poke them.

``FleetControl`` stands between the API (``vdtu.control.server``) and a running
``Fleet``. Every command that touches a unit runs through ``Clock.call``: in sim time
caught up to now, inside the unit's failure domain, so a fault in the unit's code
resets that unit (its watchdog) while a ``ValueError`` from its models (an empty SIM
slot, no slave at that address) is the user's error and comes back in the answer,
per unit. Errors the request itself has (a bad selector, an unknown fault kind, a
bad parameter) raise ``ControlError`` with the HTTP status the API answers with.

It keeps no state per unit: a unit's facts are read from the unit when asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from vdtu.control.errors import ControlError
from vdtu.control.events import EventLog
from vdtu.control.fleet_faults import FleetFaultBook, FleetFaults
from vdtu.control.pokes import POKES, PokeError
from vdtu.control.selector import SelectorError, describe_ids, parse_selector
from vdtu.errors import LocalProtocolError
from vdtu.faults.active import apply_fault, clear_faults, current_faults
from vdtu.faults.catalogue import CATALOGUE, FaultError, Scope, parse_request
from vdtu.histogram import LatencyHistogram

if TYPE_CHECKING:
    from vdtu.clock import Clock
    from vdtu.unit import Unit

MAX_ADD = 10_000
NO_SCENARIO = "this fleet runs no scenario (vdtu scenario run --realtime serves one)"
BATCH = 100
"""Units a request acts on between two turns of the loop."""
T = TypeVar("T")
"""The most units one request adds."""


class Controlled(Protocol):
    """What the controller needs from the fleet it steers."""

    @property
    def clock(self) -> Clock: ...
    @property
    def units(self) -> list[Unit]: ...
    @property
    def seed(self) -> int: ...
    @property
    def events(self) -> EventLog: ...
    def start_observing(self) -> None:
        """Take the units' events from now on (nothing if already)."""
        ...

    @property
    def profiles(self) -> list[str]:
        """The personalities this fleet can run (its clouds serve them)."""
        ...

    def acks(self) -> tuple[LatencyHistogram, LatencyHistogram]:
        """The units' uplinks' publish-to-PUBACK times in ms: since the API started, and
        over the last metrics interval."""
        ...

    def add_unit(self, tags: tuple[str, ...] | None, profile: str | None) -> Unit:
        """Build, wire and power on one more unit, with ``tags`` (None: the fleet's own)
        and ``profile`` (None: as the fleet gives them out); ValueError naming a bad tag."""
        ...

    async def downlink(self, unit: Unit, payload: bytes) -> str:
        """Publish ``payload`` to ``unit``'s downlink topic as its cloud; returns the topic
        (ValueError: it cannot be sent, saying why)."""
        ...


def fleet_counts(units: list[Unit]) -> dict[str, int]:
    """How many units there are, are powered, reach their cloud, and have a fault in force."""
    return {
        "units": len(units),
        "powered": sum(unit.powered for unit in units),
        "connected": sum(unit.firmware.cloud_connected for unit in units),
        "faulted": sum(unit.active_faults is not None for unit in units),
    }


def ack_view(histogram: LatencyHistogram) -> dict[str, Any]:
    """A latency histogram as the API shows it: ``count``, ``p50``, ``p95``, ``p99``,
    ``max`` (ms; null without a sample)."""
    return {"count": histogram.count} | histogram.summary().to_json()


def ack_figures(total: LatencyHistogram, recent: LatencyHistogram) -> dict[str, Any]:
    """The acknowledgement times of ``GET /v1/fleet``: since the start, the last interval,
    and both histograms (a ``--procs`` parent merges its shards')."""
    return {
        "ack_ms": ack_view(total),
        "ack_ms_recent": ack_view(recent),
        "ack_histograms": {"total": total.to_json(), "recent": recent.to_json()},
    }


def unit_row(unit: Unit) -> dict[str, Any]:
    """One line of ``units``: who the unit is and how it is now."""
    phase, state = unit.states
    modem = unit.modem
    return {
        "unit": unit.config.unit_id,
        "name": unit.name,
        "profile": unit.config.profile,
        "imei": unit.imei,
        "tags": list(unit.config.tags),
        "powered": unit.powered,
        "phase": phase,
        "state": state,
        "csq": modem.rssi if modem.powered else None,
        "registration": modem.reg_stat.name.lower(),
        "sim": modem.sim_state.value,
        "iccid": modem.iccid,
        "cloud_connected": unit.firmware.cloud_connected,
        "faults": [active.key for active in current_faults(unit)],
        "counters": asdict(unit.firmware.counters()),
    }


class FleetControl:
    """The control surface of one fleet.

    Args:
        fleet: what it steers.
        fleet_faults: the shared cloud's faults (None: this fleet has none it can fault,
            e.g. a broker of the user's own).
        scenario: where the scenario run this fleet is part of stands (None: the fleet
            is not a scenario's).
    """

    def __init__(
        self,
        fleet: Controlled,
        *,
        fleet_faults: FleetFaults | None = None,
        scenario: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.fleet = fleet
        self._scenario = scenario
        clock = fleet.clock

        def later(delay: float, callback: Callable[[], None]) -> None:
            clock.env.timeout(delay).callbacks.append(lambda _event: callback())

        self.fleet_faults = FleetFaultBook(
            fleet_faults, fleet.events, now=lambda: clock.now, later=later
        )

    # -- reading ------------------------------------------------------------------------------

    def select(self, text: str) -> list[Unit]:
        """The units ``text`` selects (ControlError 400: bad; 404: it selects none)."""
        try:
            selector = parse_selector(text)
        except SelectorError as exc:
            raise ControlError(400, str(exc)) from None
        units = self.fleet.units
        picked = selector.pick(units, fleet_seed=self.fleet.seed)
        if not picked:
            have = describe_ids(unit.config.unit_id for unit in units)
            raise ControlError(404, f"selector {text!r} matches no unit (the units: {have})")
        return picked

    async def units(self, text: str = "all") -> list[dict[str, Any]]:
        """A row per selected unit."""
        return [unit_row(unit) for unit in self.select(text)]

    async def show(self, ref: str) -> dict[str, Any]:
        """One unit's full snapshot: ``ref`` is its id or its IMEI (404: no such unit)."""
        for unit in self.fleet.units:
            if ref in (str(unit.config.unit_id), unit.imei, unit.name):
                current_faults(unit)  # drops a fault something else ended
                return self.fleet.clock.call(unit.snapshot, domain=unit.domain)
        have = describe_ids(unit.config.unit_id for unit in self.fleet.units)
        raise ControlError(404, f"no unit {ref!r} (an id or an IMEI; the units: {have})")

    async def summary(self) -> dict[str, Any]:
        """The fleet in numbers, and its own faults."""
        return (
            fleet_counts(self.fleet.units)
            | {
                "fleet_faults": self.fleet_faults.view(),
                "sim_time": self.fleet.clock.now,
                "events": self.fleet.events.last_seq,
                "profiles": self.fleet.profiles,
            }
            | ack_figures(*self.fleet.acks())
        )

    async def scenario(self) -> dict[str, Any]:
        """The scenario run's progress (404: the fleet runs no scenario)."""
        if self._scenario is None:
            raise ControlError(404, NO_SCENARIO)
        return self.fleet.clock.call(self._scenario)

    async def unit_ids(self, text: str) -> set[int] | None:
        """The ids ``text`` selects now (None: ``all``, which includes units added later)."""
        if text == "all":
            return None
        return {unit.config.unit_id for unit in self.select(text)}

    @property
    def events(self) -> EventLog:
        """The fleet's event stream."""
        return self.fleet.events

    async def watch_events(self) -> None:
        """Someone reads the events: the units' own are taken from now on."""
        self.fleet.start_observing()

    # -- faults -------------------------------------------------------------------------------

    async def fault(
        self, text: str, kind: str, params: Mapping[str, object], for_s: object = None
    ) -> dict[str, Any]:
        """Apply a fault to the selected units; the answer lists who got it and who refused."""
        try:
            request = parse_request(kind, params, for_s)
        except FaultError as exc:
            raise ControlError(400, str(exc)) from None
        if request.kind.scope is Scope.FLEET:
            return await self.fleet_faults.apply(text, request.kind.name, request.for_s)
        done, refused = await self._on_each(
            self.select(text), lambda unit: apply_fault(unit, request)
        )
        return {"kind": kind, "applied": list(done), "refused": refused}

    async def clear(self, text: str, kind: str | None = None) -> dict[str, Any]:
        """Clear the selected units' faults (of ``kind``, or all of them)."""
        if kind is not None and kind not in CATALOGUE:
            raise ControlError(400, f"unknown fault kind {kind!r}; the kinds are: "
                               f"{', '.join(CATALOGUE)}")  # fmt: skip
        if kind is not None and CATALOGUE[kind].scope is Scope.FLEET:
            return {"cleared": await self.fleet_faults.clear(text, kind), "refused": {}}
        done, refused = await self._on_each(self.select(text), lambda u: clear_faults(u, kind))
        cleared: dict[str, list[str]] = {
            str(unit_id): keys for unit_id, keys in done.items() if keys
        }
        if kind is None:
            cleared |= await self.fleet_faults.clear(text, None)
        return {"cleared": cleared, "refused": refused}

    # -- pokes and units ----------------------------------------------------------------------

    async def poke(self, text: str, action: str, params: Mapping[str, object]) -> dict[str, Any]:
        """Run a poke (``vdtu.control.pokes``) on the selected units."""
        if action not in POKES:
            raise ControlError(400, f"unknown poke {action!r}; the pokes are: {', '.join(POKES)}")
        try:
            checked = POKES[action].check(params)
        except PokeError as exc:
            raise ControlError(400, f"{action}: {exc}") from None
        run = POKES[action].run
        if run is not None:
            done, refused = await self._on_each(self.select(text), lambda u: run(u, checked))
            return {"action": action, "done": list(done), "refused": refused}
        refused = {}
        sent: list[int] = []
        for unit in self.select(text):
            try:
                await self.fleet.downlink(unit, str(checked["payload"]).encode())
            except ValueError as exc:
                refused[str(unit.unit_id)] = str(exc)
            else:
                sent.append(unit.unit_id)
        return {"action": action, "done": sent, "refused": refused}

    async def _on_each(
        self, units: list[Unit], act: Callable[[Unit], T]
    ) -> tuple[dict[int, T], dict[str, str]]:
        """``act(unit)`` for each unit in sim time, in its failure domain: what each returned
        (by unit id) and why each that refused did (a ``ValueError`` or a model's
        ``LocalProtocolError``). Units go in batches of ``BATCH``: one entry into sim time
        each, and a turn of the loop between two, so one request on a large fleet never
        holds the other units (or other requests) up for long."""
        done: dict[int, T] = {}
        refused: dict[str, str] = {}
        env = self.fleet.clock.env

        def batch(chunk: list[Unit]) -> None:
            for unit in chunk:
                try:
                    with env.entered(unit.domain):
                        done[unit.unit_id] = act(unit)
                except (ValueError, LocalProtocolError) as exc:
                    refused[str(unit.unit_id)] = str(exc)

        for start in range(0, len(units), BATCH):
            if start:
                await asyncio.sleep(0)
            # one entry into sim time per batch: the clock catches up and rearms once
            self.fleet.clock.call(batch, units[start : start + BATCH])
        return done, refused

    async def add(self, count: object, tags: object = (), profile: object = None) -> dict[str, Any]:
        """Add ``count`` units to the running fleet (ids after the last), with ``tags`` (a
        list of labels) instead of the fleet's own, of personality ``profile`` (None: as
        the fleet gives them out; else one of the fleet's ``profiles``)."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_ADD:
            raise ControlError(400, f"count must be an integer in 1..{MAX_ADD}, not {count!r}")
        if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
            raise ControlError(400, f"tags must be a list of labels, not {tags!r}")
        profiles = self.fleet.profiles
        if profile is not None and profile not in profiles:
            raise ControlError(400, f"profile must be one of this fleet's: "
                               f"{', '.join(profiles)} (or none), not {profile!r}")  # fmt: skip
        added = []
        for _ in range(count):
            try:
                unit = self.fleet.add_unit(tuple(tags) or None, profile)
            except ValueError as exc:
                raise ControlError(400, str(exc)) from None
            added.append(unit.config.unit_id)
            self.fleet.events.emit(self.fleet.clock.now, unit.config.unit_id, "added", {})
        return {"added": added}
