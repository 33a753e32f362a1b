"""A unit snapshot's parts as Rich renderables (the unit screen's panels and log lines).

Each function takes the snapshot of ``GET /v1/units/{unit}`` (docs/control-api.md) and
draws one part of it. A part the unit's personality does not have, or a value the API
gave as null (the modem off), is drawn as ``-``, never a KeyError. Flash values under
keys that name a secret are masked, as the unit's log masks them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

Json = dict[str, Any]

SECRET_WORDS = ("secret", "password", "psk", "token")
PHASE_STYLES = {
    "off": "dim",
    "booting": "yellow",
    "no-cloud": "bold red",
    "connecting": "dark_orange",
    "connected": "green",
}


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _facts(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, expand=True)
    table.add_column(style="dim", no_wrap=True)
    table.add_column()
    for name, value in rows:
        table.add_row(name, value if isinstance(value, Text) else _value(value))
    return table


def phase_text(snapshot: Json) -> Text:
    """``connected mqtt-connected`` in the phase's colour."""
    phase = str(snapshot.get("phase", ""))
    return Text(f"{phase} {snapshot.get('state', '')}", style=PHASE_STYLES.get(phase, ""))


def identity(snapshot: Json, ports: Path | None) -> Table:
    """Who the unit is and where its ports are."""
    firmware = snapshot.get("firmware") or {}
    counters = snapshot.get("counters") or {}
    rows: list[tuple[str, Any]] = [
        ("name", snapshot.get("name")),
        ("profile", snapshot.get("profile")),
        ("IMEI", snapshot.get("imei")),
        ("firmware", firmware.get("version")),
        ("state", phase_text(snapshot)),
        ("cloud", "connected" if snapshot.get("cloud_connected") else "not connected"),
        ("connections", counters.get("connections")),
        ("reconnects", counters.get("reconnects")),
        ("links lost", counters.get("links_lost")),
        ("watchdog resets", snapshot.get("faults")),
    ]
    if ports is not None:
        rows.append(("ports", f"{ports}/{{uart,rs232,rs485}}"))
    return _facts("Identity", rows)


def sim(snapshot: Json) -> Table:
    """The SIM card."""
    card = (snapshot.get("modem") or {}).get("sim") or {}
    state = str(card.get("state", "-"))
    return _facts(
        "SIM",
        [
            ("state", Text(state, style="green" if state == "READY" else "bold red")),
            ("ICCID", card.get("iccid")),
            ("IMSI", card.get("imsi")),
            ("phone", card.get("phone")),
            ("PIN", card.get("has_pin")),
            ("wrong PINs", card.get("wrong_pins")),
            ("blocked", card.get("blocked")),
        ],
    )


def modem(snapshot: Json) -> Table:
    """Registration, signal and data."""
    info = snapshot.get("modem") or {}
    return _facts(
        "Modem",
        [
            ("model", info.get("model")),
            ("operator", info.get("operator")),
            ("powered", info.get("powered")),
            ("registration", info.get("net_state")),
            ("roaming", info.get("roaming")),
            ("CSQ", info.get("rssi")),
            ("BER", info.get("ber")),
            ("data", info.get("data_state")),
            ("DNS", info.get("dns_ok")),
            ("cell", info.get("cell")),
            ("SMS in/out", f"{info.get('sms_received', 0)}/{info.get('sms_sent', 0)}"),
            ("faults", json.dumps(info["faults"]) if info.get("faults") else None),
        ],
    )


def power(snapshot: Json) -> Table:
    """Supply and battery."""
    battery = snapshot.get("battery") or {}
    soc = battery.get("soc")
    powered = bool(snapshot.get("powered"))
    return _facts(
        "Power",
        [
            ("supply", Text("on" if powered else "off", style="green" if powered else "bold red")),
            ("battery", None if soc is None else f"{soc * 100:.0f} %"),
            ("vbat", None if battery.get("vbat_mv") is None else f"{battery['vbat_mv']} mV"),
            ("vbus", battery.get("vbus")),
            ("cut off", battery.get("cut_off")),
            ("halted", snapshot.get("halted")),
        ],
    )


def active_faults(snapshot: Json) -> Table:
    """The faults in force, with when they started and end (sim seconds)."""
    table = Table(title="Active faults", title_justify="left", expand=True, box=None)
    for heading in ("kind", "params", "since", "until"):
        table.add_column(heading)
    faults = snapshot.get("active_faults") or []
    for fault in faults:
        params = " ".join(f"{k}={v}" for k, v in (fault.get("params") or {}).items())
        until = fault.get("until")
        table.add_row(
            Text(str(fault.get("kind")), style="bold red"),
            params or "-",
            f"{fault.get('since', 0):.1f} s",
            "until cleared" if until is None else f"{until:.1f} s",
        )
    if not faults:
        table.add_row("none", "", "", "")
    return table


def outputs(snapshot: Json) -> Table:
    """Relay outputs and their contacts (the inputs are the switches below)."""
    gpio = snapshot.get("gpio") or {}
    table = Table(title="Outputs (relays)", title_justify="left", box=None)
    names = list((gpio.get("outputs") or {}).keys())
    for name in names:
        table.add_column(name, justify="center")
    if names:
        table.add_row(*("●" if gpio["outputs"][n] else "○" for n in names))
        contacts = gpio.get("contacts") or {}
        table.add_row(*(_value(contacts.get(n)) for n in names))
    return table


def analog(snapshot: Json) -> Table:
    """ADC inputs and the temperature/humidity sensor."""
    adc = (snapshot.get("adc") or {}).get("inputs_mv") or {}
    sensor = snapshot.get("sensor") or {}
    rows: list[tuple[str, Any]] = [(f"ADC {k}", f"{v:g} mV") for k, v in adc.items()]
    rows += [
        ("temperature", sensor.get("temperature_c")),
        ("humidity", sensor.get("humidity_pct")),
    ]
    return _facts("Analog", rows)


def slaves(snapshot: Json) -> Table:
    """The RS-485 bus's Modbus slaves."""
    table = Table(title="RS-485 slaves", title_justify="left", expand=True, box=None)
    for heading in ("address", "name", "online", "frames", "replies", "exceptions", "faults"):
        table.add_column(heading)
    for slave in snapshot.get("slaves") or []:
        stats = slave.get("stats") or {}
        online = bool(slave.get("online"))
        table.add_row(
            str(slave.get("address")),
            str(slave.get("name")),
            Text("yes" if online else "no", style="green" if online else "bold red"),
            _value(stats.get("frames")),
            _value(stats.get("replies")),
            _value(stats.get("exceptions")),
            json.dumps(slave["faults"]) if slave.get("faults") else "-",
        )
    return table


def lines(snapshot: Json) -> Table:
    """Each serial port's baud rate, collisions and line faults."""
    table = Table(title="Serial lines", title_justify="left", expand=True, box=None)
    for heading in ("port", "baud", "collisions", "faults"):
        table.add_column(heading)
    for port, line in (snapshot.get("lines") or {}).items():
        faults = line.get("faults")
        table.add_row(
            port,
            _value(line.get("baud")),
            _value(line.get("collisions")),
            json.dumps(faults) if faults else "-",
        )
    return table


def flash(snapshot: Json) -> RenderableType:
    """What the unit's flash holds, secrets masked."""
    contents = _masked(snapshot.get("flash") or {})
    return Group(
        Text("Flash", style="bold"), Text(json.dumps(contents, indent=1, sort_keys=True) or "{}")
    )


def _masked(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, key) for v in value]
    if isinstance(value, str) and any(word in key.lower() for word in SECRET_WORDS):
        return value[:4] + "..." if len(value) > 4 else "..."
    return value


def _clock(event: Json) -> str:
    return time.strftime("%H:%M:%S", time.localtime(float(event.get("wall", 0.0))))


def serial_line(event: Json) -> Text:
    """``12:00:01 uart → host  $XGC_ACK#...``, then each frame the server decoded in it:
    ``  ACK action GET_IMEI · sn 1 · ...  ✓ check 12``."""
    data = event["data"]
    toward = event["kind"] == "to-host"
    line = Text(f"{_clock(event)} {data.get('port', '?'):<5} ", style="dim")
    line.append("→ host " if toward else "← host ", style="cyan" if toward else "magenta")
    line.append(str(data.get("text", "")).rstrip("\r\n"))
    for frame in data.get("frames") or ():
        line.append("\n" + " " * 15)
        line.append(f"{frame.get('kind', '?')} ", style="bold")
        fields = frame.get("fields") or {}
        line.append(" · ".join(f"{name} {value}" for name, value in fields.items() if value != ""))
        check, ok = frame.get("check"), frame.get("check_ok")
        if ok is True:
            line.append(f"  ✓ {check}" if check else "  ✓", style="green")
        elif ok is False:
            line.append(f"  ✗ {check}" if check else "  ✗", style="bold red")
    return line


def poked_line(port: str, text: str) -> Text:
    """A line the dashboard wrote toward the host (the ``host-write`` poke)."""
    line = Text(f"{time.strftime('%H:%M:%S')} {port:<5} ", style="dim")
    line.append("→ host ", style="cyan")
    line.append(text)
    line.append("  (written from the prompt)", style="dim italic")
    return line


def cloud_line(event: Json) -> Text:
    """``12:00:01 ↑ uplink xgc/.../up {...}``."""
    data = event["data"]
    up = event["kind"] == "uplink"
    line = Text(f"{_clock(event)} ", style="dim")
    line.append("↑ uplink   " if up else "↓ downlink ", style="cyan" if up else "magenta")
    where = data.get("topic") or f"channel {data.get('channel')}"
    line.append(f"{where} ", style="dim")
    line.append(str(data.get("payload", "")))
    return line
