"""Pokes: one-off things done to a unit from outside, as a person at its bench would.

``input`` drives an opto input, ``sms`` delivers a short message to the modem,
``host-send`` sends a typed line to the unit as its host would, framed as ``vdtu term``
frames it (XGC: ``GET_IMEI`` becomes ``$XGC#GET_IMEI#0#0&#<check>#`` CR LF; QuecPython:
``1,0,<len>,<crc32>,<text>``), from the host's end of the port (the PTY, or the simulated
host), so the firmware hears it and answers toward the host, ``host-write`` makes the unit
write bytes toward its host on a port (they leave the
unit's own transmitter, so the host reads them and the unit's firmware does not),
``power-off``/``power-on``/``reboot`` work its supply. ``downlink`` (a message from
the cloud) is not done in sim time: the control server publishes it to the unit's
downlink topic at the broker, as the cloud would (``Controlled.downlink``).

Parameters are checked with the catalogue's ``Param`` (``parse_params``), so a bad one
gets the same kind of message as a bad fault parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vdtu.faults.catalogue import PORT, FaultError, Param, Value, parse_params
from vdtu.io.gpio import MAX_PINS
from vdtu.links.sides import SIDES
from vdtu.unit import DEFAULT_BAUDS

if TYPE_CHECKING:
    from vdtu.unit import Unit

MAX_HOST_WRITE = 4096
"""The most bytes one ``host-write`` takes (the unit's transmit buffer)."""
MAX_DOWNLINK = 65536
HOST_ENDS = frozenset({"pty", "device", "host"})
"""The taps at a port's host end: its PTY, its real serial device, a simulated host (a
Modbus slave on the RS-485 bus is a tap too, but not the host)."""
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|[rnt0\\])")
_SIMPLE_ESCAPES = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0", b"\\": b"\\"}


class PokeError(ValueError):
    """A poke with a bad parameter."""


def unescape(text: str) -> bytes:
    """``text`` as bytes, with ``\\r \\n \\t \\0 \\\\`` and ``\\xNN`` escapes decoded.

    Raises:
        PokeError: a character is not Latin-1 (write it as UTF-8 bytes with ``\\xNN``).
    """
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raw = text.encode("utf-8")

    def decode(match: re.Match[bytes]) -> bytes:
        code = match[1]
        return bytes([int(code[1:], 16)]) if code[:1] == b"x" else _SIMPLE_ESCAPES[code]

    return _ESCAPE.sub(decode, raw)


@dataclass(frozen=True, slots=True)
class Poke:
    """One poke: its parameters and what it does to a unit (None: ``downlink``)."""

    help: str
    params: tuple[Param, ...]
    run: Callable[[Unit, Mapping[str, Value]], None] | None

    def check(self, raw: Mapping[str, object]) -> dict[str, Value]:
        """The checked parameters (PokeError naming the bad one)."""
        try:
            return parse_params("poke", self.params, raw)
        except FaultError as exc:
            raise PokeError(str(exc).removeprefix("poke: ")) from None


def _host_write(unit: Unit, params: Mapping[str, Value]) -> None:
    text, hex_text = params["text"], params["hex"]
    assert isinstance(text, str)
    assert isinstance(hex_text, str)
    if (text == "") == (hex_text == ""):
        raise ValueError("give one of text= (with \\r \\n \\xNN escapes) or hex=")
    try:
        data = unescape(text) if text else bytes.fromhex(hex_text)
    except ValueError:
        raise ValueError(f"hex= must be pairs of hex digits, not {hex_text!r}") from None
    port = str(params["port"])
    tap = next((tap for tap in unit.lines[port].taps if tap.name == "dtu"), None)
    if tap is None or not unit.powered:
        raise ValueError(f"the unit is not running: nothing drives its {port} transmitter")
    tap.send(data)


def _host_send(unit: Unit, params: Mapping[str, Value]) -> None:
    line, port = str(params["line"]), str(params["port"])
    if not line.strip():
        raise ValueError("line= is blank: give a command, e.g. GET_IMEI")
    console = SIDES[unit.config.profile].term.open(
        device="api", sn="0", raw=False, bauds={**DEFAULT_BAUDS, **unit.config.bauds}
    )
    data = console.frame(line)
    host_end = next((tap for tap in unit.lines[port].taps if tap.name in HOST_ENDS), None)
    if host_end is None:
        raise ValueError(f"nothing is at the host's end of {port}: no PTY and no simulated host")
    host_end.send(data)


def _sms(unit: Unit, params: Mapping[str, Value]) -> None:
    unit.modem.receive_sms(str(params["from"]), str(params["text"]))


def _input(unit: Unit, params: Mapping[str, Value]) -> None:
    index, level = params["index"], params["level"]
    assert isinstance(index, int)
    assert isinstance(level, int)
    unit.set_input(index, level)


POKES: Mapping[str, Poke] = {
    "input": Poke(
        "drive opto input in<index> to level 0 or 1",
        (
            Param(name="index", kind=int, low=1, high=MAX_PINS, help="which input"),
            Param(name="level", kind=int, choices=(0, 1), help="the level"),
        ),
        _input,
    ),
    "sms": Poke(
        "deliver a short message to the unit's modem",
        (
            Param(name="from", kind=str, default="10086", high=21, help="the sender's number"),
            Param(name="text", kind=str, high=670, help="the message"),
        ),
        _sms,
    ),
    "host-send": Poke(
        "the unit's host sends a command line, framed as vdtu term frames it",
        (
            PORT,
            Param(name="line", kind=str, high=MAX_HOST_WRITE, help="the command, as typed"),
        ),
        _host_send,
    ),
    "host-write": Poke(
        "the unit writes bytes toward its host on a port",
        (
            PORT,
            Param(name="text", kind=str, default="", high=MAX_HOST_WRITE * 4, help="escaped"),
            Param(name="hex", kind=str, default="", high=MAX_HOST_WRITE * 2, help="hex bytes"),
        ),
        _host_write,
    ),
    "downlink": Poke(
        "publish a message to the unit's downlink topic, as its cloud does",
        (Param(name="payload", kind=str, high=MAX_DOWNLINK, help="the payload (JSON or text)"),),
        None,
    ),
    "power-off": Poke("switch the unit's power off", (), lambda unit, _p: unit.power_off()),
    "power-on": Poke("switch the unit's power on", (), lambda unit, _p: unit.power_on()),
    "reboot": Poke("power-cycle the unit", (), lambda unit, _p: unit.reboot()),
}
