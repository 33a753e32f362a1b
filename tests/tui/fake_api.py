"""A control API with fixed answers, for the dashboard's snapshot tests, and the factory
of the apps they draw.

The answers are a recorded fleet (``fixed_fleet.json``: a real unit's snapshot and part
of the catalogue, recorded once) and a table of twelve units made from a rule, so every
run draws the same thing: no clock, no seed, no network. The fake records what it was
asked to do (``calls``) so a test can check a screen sent the request it should.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tui.app import DashboardApp
from tui.client import ApiError, Json

FIXED = json.loads((Path(__file__).parent / "fixed_fleet.json").read_text())
WALL = 1_796_385_600.0
"""The wall time of the fixed events (with TZ=UTC: 12:00:00)."""

PHASES = ["connected", "connected", "connecting", "booting", "off", "no-cloud"]
STATES = {
    "connected": "mqtt-connected",
    "connecting": "mqtt-disconnected",
    "booting": "no-init",
    "off": "off",
    "no-cloud": "no-project-info",
}


def unit_row(unit: int) -> Json:
    """Unit ``unit`` of the fixed fleet, as ``GET /v1/units`` gives it."""
    phase = PHASES[unit % len(PHASES)]
    return {
        "unit": unit,
        "name": f"dtu{unit}",
        "profile": "quec" if unit % 4 == 3 else "xgc",
        "imei": f"8674350598{unit:05d}",
        "tags": [],
        "powered": phase != "off",
        "phase": phase,
        "state": STATES[phase],
        "csq": None if phase == "off" else 10 + unit,
        "registration": "home",
        "sim": "ABSENT" if unit == 2 else "READY",
        "iccid": f"898600958030805{unit:05d}",
        "cloud_connected": phase == "connected",
        "faults": ["sim-pull"] if unit == 2 else [],
        "counters": {"connections": 1, "connect_failures": 0, "reconnects": 0, "links_lost": 0},
    }


def fixed_events() -> list[Json]:
    """Traffic of unit 0 and a fleet's metrics, with fixed times."""
    data = [
        (0, "from-host", {"port": "uart", "text": "$XGC#GET_IMEI#1#0&#41#", "code_ok": True}),
        (0, "to-host", {"port": "uart", "text": "$XGC_ACK#GET_IMEI#867435059800763#0#ok&#12#\r\n"}),
        (0, "from-host", {"port": "uart", "text": "$XGC#GET_CSQ#2#0&#99#", "code_ok": False}),
        (0, "uplink", {"topic": "xgc/p/867435059800763/up", "payload": '{"temp": 25.0}'}),
        (0, "downlink", {"topic": "xgc/p/867435059800763/down", "payload": '{"switch1": true}'}),
        (1, "uplink", {"topic": "xgc/p/867435059800771/up", "payload": '{"temp": 24.0}'}),
        (None, "metrics", {"units": 12, "powered": 10, "connected": 4, "faulted": 1}),
    ]
    return [
        {"seq": seq, "at": float(seq), "wall": WALL + seq, "unit": unit, "kind": kind, "data": d}
        for seq, (unit, kind, d) in enumerate(data, start=1)
    ]


class FakeApi:
    """``tui.client.Api`` with the fixed fleet's answers."""

    url = "http://127.0.0.1:41235"

    def __init__(self, units: int = 12) -> None:
        self.count = units
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def fleet(self) -> Json:
        return {"units": self.count, "powered": 10, "connected": 4, "faulted": 1,
                "fleet_faults": [], "sim_time": 60.0, "events": 7,
                "profiles": ["xgc", "quec"]}  # fmt: skip

    async def units(self, select: str = "all") -> list[Json]:
        low, _, high = select.partition("-")
        return [unit_row(u) for u in range(int(low), int(high or low) + 1) if u < self.count]

    async def unit(self, unit: str) -> Json:
        snapshot: Json = dict(FIXED["snapshot"])
        return snapshot

    async def kinds(self) -> list[Json]:
        kinds: list[Json] = FIXED["kinds"]
        return kinds

    async def apply_fault(
        self, select: str, kind: str, params: dict[str, str], for_s: float | None
    ) -> Json:
        self.calls.append(("fault", (select, kind, params, for_s)))
        if kind == "broker-stop" and select != "all":
            raise ApiError("broker-stop is a fleet fault: select all")
        return {"kind": kind, "applied": [int(select)], "refused": {}}

    async def clear_faults(self, select: str, kind: str | None) -> Json:
        self.calls.append(("clear", (select, kind)))
        return {"cleared": {select: [kind or "sim-pull"]}, "refused": {}}

    async def poke(self, select: str, action: str, params: dict[str, Any]) -> Json:
        self.calls.append(("poke", (select, action, params)))
        return {"action": action, "done": [int(select)], "refused": {}}

    async def add_units(self, count: int, tags: list[str], profile: str | None = None) -> Json:
        self.calls.append(("add", (count, tags, profile)))
        added = list(range(self.count, self.count + count))
        self.count += count
        return {"added": added}

    async def events(
        self, select: str = "all", *, after: int | None = None, follow: bool = True
    ) -> AsyncIterator[Json]:
        for event in fixed_events():
            if select == "all" or str(event["unit"]) == select:
                yield event

    async def close(self) -> None:
        return None


async def filled(app: DashboardApp) -> None:
    """Give a non-live app the fixed fleet: rows, events, three seconds of charts."""
    await app.sync_once()
    app.take_events(fixed_events())
    app.flush()
    for _ in range(3):
        app.model.sample()
    app.flush()


def fixed_app(units: int = 12) -> DashboardApp:
    """A dashboard over the fixed fleet that reads nothing on its own."""
    return DashboardApp(FakeApi(units), live=False, pty_dir=Path("/tmp/vdtu-tui-fixed"))
