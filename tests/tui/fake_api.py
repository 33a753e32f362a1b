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


ACKS = {"count": 9, "p50": 3.1, "p95": 7.9, "p99": 12.4, "max": 12.4}
"""The fixed fleet's uplink acknowledgement times over the last second."""


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


def xgc(kind: str, action: str, sn: str, content: str, check: str, ok: bool) -> Json:
    """An XGC frame as the server decodes it into a serial event."""
    fields = {"action": action, "sn": sn, "timestamp": "0", "content": content}
    return {"kind": kind, "fields": fields, "check": check, "check_ok": ok}


def fixed_events() -> list[Json]:
    """Traffic of unit 0 and a fleet's metrics, with fixed times."""
    data = [
        (
            0,
            "from-host",
            {
                "port": "uart",
                "text": "$XGC#GET_IMEI#1#0",
                "code_ok": True,
                "frames": [xgc("XGC", "GET_IMEI", "1", "", "5B (expected 5B hex, 91)", True)],
            },
        ),
        (
            0,
            "to-host",
            {
                "port": "uart",
                "text": "$XGC_ACK#GET_IMEI#1#0#867435059800763&#83#\r\n",
                "frames": [
                    xgc(
                        "XGC_ACK",
                        "GET_IMEI",
                        "1",
                        "867435059800763",
                        "83 (expected 53 hex, 83)",
                        True,
                    )
                ],
            },
        ),
        (
            0,
            "from-host",
            {
                "port": "uart",
                "text": "$XGC#GET_CSQ#2#0",
                "code_ok": False,
                "frames": [xgc("XGC", "GET_CSQ", "2", "", "99 (expected 11 hex, 17)", False)],
            },
        ),
        (0, "uplink", {"topic": "xgc/p/867435059800763/up", "payload": '{"temp": 25.0}'}),
        (0, "downlink", {"topic": "xgc/p/867435059800763/down", "payload": '{"switch1": true}'}),
        (1, "uplink", {"topic": "xgc/p/867435059800771/up", "payload": '{"temp": 24.0}'}),
        (
            None,
            "metrics",
            {"units": 12, "powered": 10, "connected": 4, "faulted": 1, "ack_ms_recent": ACKS},
        ),
    ]
    return [
        {"seq": seq, "at": float(seq), "wall": WALL + seq, "unit": unit, "kind": kind, "data": d}
        for seq, (unit, kind, d) in enumerate(data, start=1)
    ]


def _step(index: int, when: str, what: str, select: str, state: str, detail: str = "") -> Json:
    started = None if state == "pending" else 10.0 * index
    ended = 10.0 * index + 4 if state in ("done", "failed") else None
    return {"index": index, "when": when, "action": what.split(maxsplit=1)[0], "what": what,
            "select": select, "state": state, "started": started, "ended": ended,
            "runs": 0 if state == "pending" else 1, "detail": detail}  # fmt: skip


SCENARIO: Json = {
    "name": "Quick check, short enough for real time",
    "description": "Five units for four minutes of sim time.",
    "seed": 1,
    "sim_time": 126.5,
    "duration": 240.0,
    "phase": "running",
    "passed": None,
    "current": [4],
    "steps": [
        _step(
            0,
            "at 0:00:00",
            "wait for state connected, at most 30 s",
            "all",
            "done",
            "5 units reached state connected within 9.2 s",
        ),
        _step(1, "at 0:01:00", "fault link-reset", "0", "done"),
        _step(
            2,
            "after 0 s",
            "wait for a serial /GET_DTU_STATE#\\d+#0#mqtt-connected/, at most 15 s",
            "0",
            "failed",
            "after 15 s, 1 of 1 units had not reached a "
            "serial line /GET_DTU_STATE#\\d+#0#mqtt-connected/: 0",
        ),
        _step(3, "at 0:02:00", "fault modem-reboot", "4", "done"),
        _step(4, "after 0 s", "wait for state connected, at most 45 s", "4", "running"),
        _step(5, "at 0:03:00", 'downlink {"valve": "open"}', "all", "pending"),
    ],
    "expectations": [
        {
            "index": 0,
            "name": "every unit is connected at 1:30",
            "kind": "state",
            "status": "pass",
            "evidence": "at 0:01:30: all 5 units are connected",
        },
        {
            "index": 1,
            "name": "every uplink arrives once, in order",
            "kind": "uplinks",
            "status": "pending",
            "evidence": "",
            "holds_so_far": True,
            "so_far": "30 published, 30 delivered; delivered_pct 100, lost 0, duplicated 0",
        },
        {
            "index": 2,
            "name": "unit 0 told its host about the reset",
            "kind": "serial",
            "status": "fail",
            "evidence": "1 of 1 units did not: dtu0 matched 1 of 3",
        },
    ],
}
"""A scenario run's progress as ``GET /v1/scenario`` gives it, half way through."""


class FakeApi:
    """``tui.client.Api`` with the fixed fleet's answers (``scenario``: whether the fleet
    runs one)."""

    url = "http://127.0.0.1:41235"

    def __init__(self, units: int = 12, *, scenario: bool = True) -> None:
        self.count = units
        self.runs_scenario = scenario
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def fleet(self) -> Json:
        return {"units": self.count, "powered": 10, "connected": 4, "faulted": 1,
                "fleet_faults": [], "sim_time": 60.0, "events": 7,
                "profiles": ["xgc", "quec"], "ack_ms_recent": ACKS}  # fmt: skip

    async def scenario(self) -> Json:
        if not self.runs_scenario:
            raise ApiError("this fleet runs no scenario (vdtu scenario run --realtime serves one)")
        return SCENARIO

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
