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

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from vdtu.control.events import EventLog
from vdtu.control.pokes import POKES, PokeError
from vdtu.control.selector import SelectorError, describe_ids, parse_selector
from vdtu.faults.active import apply_fault, clear_faults, current_faults
from vdtu.faults.catalogue import CATALOGUE, FaultError, Scope, parse_request

if TYPE_CHECKING:
    from vdtu.clock import Clock
    from vdtu.unit import Unit

MAX_ADD = 10_000
"""The most units one request adds."""


class ControlError(Exception):
    """A request the API refuses, with its HTTP status (400, 404, 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FleetFaults(Protocol):
    """The faults of the fleet's shared cloud (``broker-stop``)."""

    def apply(self, kind: str) -> None:
        """Apply fleet fault ``kind`` (ValueError: it cannot be, saying why)."""

    def clear(self, kind: str) -> None:
        """Clear fleet fault ``kind``."""


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
    def add_unit(self) -> Unit:
        """Build, wire and power on one more unit (ConfigError if it cannot)."""
        ...

    async def downlink(self, unit: Unit, payload: bytes) -> str:
        """Publish ``payload`` to ``unit``'s downlink topic as its cloud; returns the topic
        (ValueError: it cannot be sent, saying why)."""
        ...


@dataclass(frozen=True, slots=True)
class _Facts:
    """A unit as a selector sees it (made on the fly; nothing kept per unit)."""

    unit: Unit

    @property
    def unit_id(self) -> int:
        return self.unit.config.unit_id

    @property
    def imei(self) -> str:
        return self.unit.imei

    @property
    def profile(self) -> str:
        return self.unit.config.profile

    @property
    def states(self) -> tuple[str, ...]:
        state = self.unit.firmware.unit_state
        return (state.phase.value, state.detail)

    @property
    def tags(self) -> tuple[str, ...]:
        return self.unit.config.tags


def unit_row(unit: Unit) -> dict[str, Any]:
    """One line of ``units``: who the unit is and how it is now."""
    state = unit.firmware.unit_state
    modem = unit.modem
    return {
        "unit": unit.config.unit_id,
        "name": unit.name,
        "profile": unit.config.profile,
        "imei": unit.imei,
        "tags": list(unit.config.tags),
        "powered": unit.powered,
        "phase": state.phase.value,
        "state": state.detail,
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
    """

    def __init__(self, fleet: Controlled, *, fleet_faults: FleetFaults | None = None) -> None:
        self.fleet = fleet
        self.fleet_faults = fleet_faults
        self.fleet_active: dict[str, dict[str, Any]] = {}

    # -- reading ------------------------------------------------------------------------------

    def select(self, text: str) -> list[Unit]:
        """The units ``text`` selects (ControlError 400: bad; 404: it selects none)."""
        try:
            selector = parse_selector(text)
        except SelectorError as exc:
            raise ControlError(400, str(exc)) from None
        units = self.fleet.units
        picked = selector.pick([_Facts(unit) for unit in units], fleet_seed=self.fleet.seed)
        if not picked:
            have = describe_ids(unit.config.unit_id for unit in units)
            raise ControlError(404, f"selector {text!r} matches no unit (the units: {have})")
        return [facts.unit for facts in picked if isinstance(facts, _Facts)]

    def units(self, text: str = "all") -> list[dict[str, Any]]:
        """A row per selected unit."""
        return [unit_row(unit) for unit in self.select(text)]

    def show(self, ref: str) -> dict[str, Any]:
        """One unit's full snapshot: ``ref`` is its id or its IMEI (404: no such unit)."""
        for unit in self.fleet.units:
            if ref in (str(unit.config.unit_id), unit.imei, unit.name):
                return self.fleet.clock.call(unit.snapshot, domain=unit.domain)
        have = describe_ids(unit.config.unit_id for unit in self.fleet.units)
        raise ControlError(404, f"no unit {ref!r} (an id or an IMEI; the units: {have})")

    def summary(self) -> dict[str, Any]:
        """The fleet in numbers, and its own faults."""
        units = self.fleet.units
        return {
            "units": len(units),
            "powered": sum(unit.powered for unit in units),
            "connected": sum(unit.firmware.cloud_connected for unit in units),
            "faulted": sum(unit.active_faults is not None for unit in units),
            "fleet_faults": list(self.fleet_active.values()),
            "sim_time": self.fleet.clock.now,
            "events": self.fleet.events.last_seq,
        }

    # -- faults -------------------------------------------------------------------------------

    def fault(
        self, text: str, kind: str, params: Mapping[str, object], for_s: object = None
    ) -> dict[str, Any]:
        """Apply a fault to the selected units; the answer lists who got it and who refused."""
        try:
            request = parse_request(kind, params, for_s)
        except FaultError as exc:
            raise ControlError(400, str(exc)) from None
        if request.kind.scope is Scope.FLEET:
            return self._fleet_fault(text, request.kind.name, request.for_s)
        applied: list[int] = []
        refused: dict[str, str] = {}
        for unit in self.select(text):
            try:
                self.fleet.clock.call(apply_fault, unit, request, domain=unit.domain)
            except ValueError as exc:
                refused[str(unit.config.unit_id)] = str(exc)
            else:
                applied.append(unit.config.unit_id)
        return {"kind": kind, "applied": applied, "refused": refused}

    def clear(self, text: str, kind: str | None = None) -> dict[str, Any]:
        """Clear the selected units' faults (of ``kind``, or all of them)."""
        if kind is not None and kind not in CATALOGUE:
            raise ControlError(400, f"unknown fault kind {kind!r}; the kinds are: "
                               f"{', '.join(CATALOGUE)}")  # fmt: skip
        if kind is not None and CATALOGUE[kind].scope is Scope.FLEET:
            return self._clear_fleet_fault(text, kind)
        cleared: dict[str, list[str]] = {}
        refused: dict[str, str] = {}
        for unit in self.select(text):
            try:
                keys = self.fleet.clock.call(clear_faults, unit, kind, domain=unit.domain)
            except ValueError as exc:
                refused[str(unit.config.unit_id)] = str(exc)
                continue
            if keys:
                cleared[str(unit.config.unit_id)] = keys
        if kind is None and text == "all":
            for fleet_kind in list(self.fleet_active):
                self._clear_fleet_fault(text, fleet_kind)
        return {"cleared": cleared, "refused": refused}

    def _fleet_fault(self, text: str, kind: str, for_s: float | None) -> dict[str, Any]:
        if text != "all":
            raise ControlError(400, f"{kind} acts on the whole fleet's cloud: use the selector all")
        if self.fleet_faults is None:
            raise ControlError(409, f"{kind}: this fleet's broker is not vdtu's own (--broker)")
        try:
            self.fleet_faults.apply(kind)
        except ValueError as exc:
            raise ControlError(409, f"{kind}: {exc}") from None
        clock = self.fleet.clock
        self.fleet_active[kind] = {"kind": kind, "since": clock.now, "until": None}
        self.fleet.events.emit(clock.now, None, "fault", {"kind": kind, "for_s": for_s})
        if for_s is not None:
            entry = self.fleet_active[kind]
            entry["until"] = clock.now + for_s

            def expire(_event: object) -> None:
                if self.fleet_active.get(kind) is entry:
                    self._end_fleet_fault(kind, "expired")

            clock.env.timeout(for_s).callbacks.append(expire)
        return {"kind": kind, "applied": ["fleet"], "refused": {}}

    def _clear_fleet_fault(self, text: str, kind: str) -> dict[str, Any]:
        if text != "all":
            raise ControlError(400, f"{kind} acts on the whole fleet's cloud: use the selector all")
        if kind not in self.fleet_active:
            return {"cleared": {}, "refused": {}}
        self._end_fleet_fault(kind, "cleared")
        return {"cleared": {"fleet": [kind]}, "refused": {}}

    def _end_fleet_fault(self, kind: str, why: str) -> None:
        del self.fleet_active[kind]
        assert self.fleet_faults is not None
        self.fleet_faults.clear(kind)
        self.fleet.events.emit(
            self.fleet.clock.now, None, "fault-cleared", {"kind": kind, "why": why}
        )

    # -- pokes and units ----------------------------------------------------------------------

    async def poke(self, text: str, action: str, params: Mapping[str, object]) -> dict[str, Any]:
        """Run a poke (``vdtu.control.pokes``) on the selected units."""
        if action not in POKES:
            raise ControlError(400, f"unknown poke {action!r}; the pokes are: {', '.join(POKES)}")
        try:
            checked = POKES[action].check(params)
        except PokeError as exc:
            raise ControlError(400, f"{action}: {exc}") from None
        done: list[int] = []
        refused: dict[str, str] = {}
        run = POKES[action].run
        for unit in self.select(text):
            try:
                if run is None:
                    await self.fleet.downlink(unit, str(checked["payload"]).encode())
                else:
                    self.fleet.clock.call(run, unit, checked, domain=unit.domain)
            except ValueError as exc:
                refused[str(unit.config.unit_id)] = str(exc)
            else:
                done.append(unit.config.unit_id)
        return {"action": action, "done": done, "refused": refused}

    def add(self, count: object) -> dict[str, Any]:
        """Add ``count`` units to the running fleet (ids after the last)."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_ADD:
            raise ControlError(400, f"count must be an integer in 1..{MAX_ADD}, not {count!r}")
        added = []
        for _ in range(count):
            unit = self.fleet.add_unit()
            added.append(unit.config.unit_id)
            self.fleet.events.emit(self.fleet.clock.now, unit.config.unit_id, "added", {})
        return {"added": added}
