"""The QuecPython DTU's Modbus mode as pure decisions: cloud commands, bus data, polls.

Pure (standard library and ``vdtu.modbus`` only): every function here takes
values and returns values; the firmware glue writes the frames, waits and
publishes.

**Cloud -> bus** (docs/spec/quec.md#11.1). ``plan_modbus`` turns the ``modbus``
object of a downlink into the RTU frames to write and the reply to publish::

    {"msg_id": 7, "modbus": {"groups": {"num": 0, "cmd": ["0x03", "0x00", "0x00", "0x00", "0x02"]}}}
        one frame per slave address of group 0, in the group's order:
        | addr | 03 00 00 00 02 | crc lo | crc hi |
    {"msg_id": 7, "modbus": {"command": ["0x01", "0x03", "0x00", "0x00", "0x00", "0x02"]}}
        one frame, the bytes as given: | 01 03 00 00 00 02 | c4 0b |

    crc: CRC-16/MODBUS over every byte before it, low byte first.

* The glue writes ``frames[0]``, waits ``gap_s``, writes ``frames[1]``, and so on
  (v1 sleeps 1 s between the frames of a group so each slave can answer), then
  publishes ``reply``. Under ``last_address_only`` a group gives one frame, for
  its last address: the v2 firmware builds every frame but keeps only the last.
* A byte of ``cmd``/``command`` is a hex string ``"0x00"``..``"0xff"`` (one or two
  digits, ``0x`` or ``0X``) or a JSON integer 0..255. A string without ``0x`` is
  refused although the firmware reads it as hex, so that ``"10"`` is never
  silently 16 (the same rule as ``modbus.groups.slave_address`` in the config).
  The firmware itself takes only strings; integers are a vdtu convenience.
* A frame is at most 256 bytes (the RTU limit): ``cmd`` 1..253 bytes (the
  address and the CRC are added), ``command`` 2..254 bytes (address and function
  at least). ``command`` is written as is: its address is not checked, so a
  scenario can put any frame on the bus.
* ``num`` is the group's index in ``modbus.groups``: an integer or a string of
  at most 9 decimal digits (the firmware runs ``int()`` on it).
* Success reply: ``{"code": <the cmd or command list as sent>, "status": 1,
  "msg_id": <echo>}``. Failure reply: ``{"code": 0, "status": 0, "error": "...",
  "msg_id": <echo>}``; the error names the field, the bad value and what is
  allowed. A ``modbus`` object with neither ``groups`` nor ``command`` gets the
  firmware's text, ``"can't get any modbus params"``, followed by the keys it
  had (``task`` is documented by the seed but implemented by no firmware: #11.1). The
  firmware sends no ``msg_id`` in these replies; the seed's uplink format has
  one (docs/spec/quec.md#2.2, #11.1), and a cloud needs it to match a reply to its
  request, so it is echoed unless ``echo_msg_id`` is off.

**Bus -> cloud** (docs/spec/quec.md#11.2). Whatever arrives on the bus goes up unparsed,
as a list of lowercase two-digit hex strings (``format_bus_data``)::

    bytes 01 03 04 00 7b ...  ->  ["0x01", "0x03", "0x04", "0x00", "0x7b", ...]   v1: JSON
                              ->  ['0x01', '0x03', '0x04', '0x00', '0x7b', ...]   v2: str()

**Polls** (vdtu extension, config ``modbus.poll``; the firmware never polls).
``poll_requests`` gives the read frames of one entry (one per slave, in
``poll_slaves`` order); ``poll_report`` turns one slave's answer into a JSON
object for the cloud, never raising on what the bus sent::

    {"poll": {"slave": 1, "function": 3, "start": 0, "count": 2, "time_s": 12.5,
              "values": [123, 456]}}
    {"poll": {"slave": 1, "function": 3, "start": 0, "count": 2, "time_s": 12.5,
              "error": PollError.EXCEPTION, "exception_code": 2,
              "detail": "slave 1 refused function 3: illegal-data-address"}}

``values`` are register values 0..65535 (functions 3, 4) or bits 0/1 (functions
1, 2, the ``count`` requested, padding dropped). ``time_s`` is the sim time the
answer was judged at. ``error`` is a ``PollError``: ``timeout`` (no answer),
``bad-crc``, ``bad-frame`` (not a well-formed response), ``mismatch`` (a sound
response, but not to this request: other slave, function or quantity) and
``exception`` (the slave refused, ``exception_code`` says why). Every error
has a ``detail`` text, and all but ``timeout`` and ``exception`` carry the
answer as ``raw`` hex (``"01 83 02 c0 f1"``). The shape is vdtu's own, after
the ``report`` object of QuecPython's Gateway_485 (docs/spec/quec.md#11.3).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from vdtu.errors import RemoteProtocolError
from vdtu.firmware.quec.commands import ModbusRequest, Reply
from vdtu.firmware.quec.modbus_schema import ModbusConfig, PollEntry
from vdtu.modbus.rtu import (
    ExceptionResponse,
    FunctionCode,
    ReadBitsResponse,
    ReadRegistersResponse,
    ReadRequest,
    Response,
    WriteSingleCoil,
    WriteSingleRegister,
    append_crc,
    decode_response,
    encode_request,
)

NO_PARAMS_ERROR: Final = "can't get any modbus params"
"""The firmware's error text for a ``modbus`` object with neither ``groups`` nor ``command``."""

MAX_FRAME_BYTES: Final = 256
"""The longest RTU frame, CRC included."""


class PollError(StrEnum):
    """Every ``error`` a poll report can carry."""

    TIMEOUT = "timeout"
    """No answer came."""
    BAD_CRC = "bad-crc"
    """The answer's CRC is wrong."""
    BAD_FRAME = "bad-frame"
    """The answer is not a well-formed Modbus response."""
    MISMATCH = "mismatch"
    """A sound response, but not to this request (other slave, function or quantity)."""
    EXCEPTION = "exception"
    """The slave refused the read; ``exception_code`` says why."""


_HEX_BYTE_RE = re.compile(r"0[xX][0-9a-fA-F]{1,2}")
_DECIMAL_RE = re.compile(r"[0-9]{1,9}")
"""A group index as a string: decimal digits, at most 9 (no int() of a huge string)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusOptions:
    """Switches between the seed/v1 behaviour (the defaults) and the v2 firmware's."""

    last_address_only: bool = False
    """A group command writes one frame, for the group's last address (v2's loop bug)."""
    python_repr: bool = False
    """Bus data goes up as Python ``str()`` of the hex list, single quotes (v2), not JSON."""
    group_gap_s: float = 1.0
    """Seconds between the frames of a group command (v1 sleeps 1 s), finite and >= 0."""
    echo_msg_id: bool = True
    """Replies carry the request's ``msg_id`` (the seed's uplink format; the firmware omits it;
    docs/spec/quec.md#11.1)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.group_gap_s) and self.group_gap_s >= 0):
            raise ValueError(
                f"group_gap_s must be a finite number of seconds >= 0, not {self.group_gap_s!r}"
            )

    @classmethod
    def firmware(cls) -> ModbusOptions:
        """Every switch set the way the v2 firmware behaves."""
        return cls(last_address_only=True, python_repr=True, echo_msg_id=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusPlan:
    """What a valid cloud Modbus command does: frames to write, then a reply."""

    frames: tuple[bytes, ...]
    """Complete RTU frames (CRC included), in the order they are written; at least one."""
    gap_s: float
    """Seconds to wait between two frames (not after the last one)."""
    reply: Reply
    """The success reply, published once the last frame is written."""

    def __post_init__(self) -> None:
        if not self.frames:
            raise ValueError("frames must hold at least one frame, not ()")
        if not (math.isfinite(self.gap_s) and self.gap_s >= 0):
            raise ValueError(f"gap_s must be a finite number of seconds >= 0, not {self.gap_s!r}")


def _show(value: object) -> str:
    """``repr(value)``, cut to 60 characters: cloud input can be any size."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


class _BadCommandError(ValueError):
    """A cloud Modbus command that cannot be planned; the message is the reply's error."""


def _reply(request: ModbusRequest, body: dict[str, Any], options: ModbusOptions) -> Reply:
    if options.echo_msg_id:
        body["msg_id"] = request.msg_id
    return Reply(body=body)


def _failure(request: ModbusRequest, error: str, options: ModbusOptions) -> Reply:
    return _reply(request, {"code": 0, "status": 0, "error": error}, options)


def plan_modbus(
    request: ModbusRequest, config: ModbusConfig, *, options: ModbusOptions
) -> ModbusPlan | Reply:
    """Plan a cloud ``{"modbus": {...}}`` command.

    Args:
        request: the parsed downlink; its ``body`` is unchecked cloud input.
        config: the unit's ``modbus`` configuration (the groups).
        options: seed/v1 or v2 behaviour.

    Returns:
        The frames to write and the success reply, or, for a command that
        cannot be carried out, the failure reply to publish (nothing is
        written). Never raises on bad cloud input.
    """
    try:
        return _plan(request, config, options)
    except _BadCommandError as exc:
        return _failure(request, str(exc), options)


def _plan(request: ModbusRequest, config: ModbusConfig, options: ModbusOptions) -> ModbusPlan:
    body = request.body
    if not isinstance(body, dict):
        raise _BadCommandError(
            f'modbus must be a JSON object with "groups" or "command", not {_show(body)}'
        )
    if "groups" in body and "command" in body:
        raise _BadCommandError('modbus must have one of "groups" and "command", not both')
    if "groups" in body:
        group = body["groups"]
        frames = _group_frames(group, config, options)
        return ModbusPlan(
            frames=frames,
            gap_s=options.group_gap_s,
            reply=_reply(request, {"code": group["cmd"], "status": 1}, options),
        )
    if "command" in body:
        command = body["command"]
        frame = append_crc(_read_bytes("modbus.command", command, 2, MAX_FRAME_BYTES - 2))
        return ModbusPlan(
            frames=(frame,),
            gap_s=0.0,
            reply=_reply(request, {"code": command, "status": 1}, options),
        )
    keys = _show(sorted(body)) if body else "none"
    raise _BadCommandError(
        f'{NO_PARAMS_ERROR}: modbus must have "groups" or "command", not keys: {keys}'
    )


def _group_frames(group: object, config: ModbusConfig, options: ModbusOptions) -> tuple[bytes, ...]:
    if not isinstance(group, dict):
        raise _BadCommandError(
            'modbus.groups must be a JSON object with "num" (a group index) and "cmd" '
            f"(a list of hex bytes), not {_show(group)}"
        )
    for key in ("num", "cmd"):
        if key not in group:
            raise _BadCommandError(f"modbus.groups.{key} is missing")
    cmd = _read_bytes("modbus.groups.cmd", group["cmd"], 1, MAX_FRAME_BYTES - 3)
    addresses = config.groups[_group_index(group["num"], config)].slave_addresses
    if options.last_address_only:
        addresses = addresses[-1:]
    return tuple(append_crc(bytes((address,)) + cmd) for address in addresses)


def _group_index(num: object, config: ModbusConfig) -> int:
    index: int | None = None
    if isinstance(num, int) and not isinstance(num, bool):
        index = num
    elif isinstance(num, str) and _DECIMAL_RE.fullmatch(num):
        index = int(num)
    count = len(config.groups)
    if count == 0:
        raise _BadCommandError(f"modbus.groups.num {_show(num)}: no modbus groups are configured")
    if index is None or not 0 <= index < count:
        raise _BadCommandError(
            f"modbus.groups.num must be the index of one of the {count} modbus groups "
            f"(0..{count - 1}), not {_show(num)}"
        )
    return index


def _read_bytes(path: str, raw: object, shortest: int, longest: int) -> bytes:
    if not isinstance(raw, list):
        raise _BadCommandError(
            f'{path} must be a list of hex bytes such as "0x03", not {_show(raw)}'
        )
    if not shortest <= len(raw) <= longest:
        raise _BadCommandError(f"{path} must have {shortest}..{longest} bytes, not {len(raw)}")
    return bytes(_read_byte(path, index, item) for index, item in enumerate(raw))


def _read_byte(path: str, index: int, item: object) -> int:
    if isinstance(item, str) and _HEX_BYTE_RE.fullmatch(item):
        return int(item, 16)
    if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 0xFF:
        return item
    raise _BadCommandError(
        f'{path}[{index}] must be a byte as a hex string "0x00".."0xff" or an integer '
        f"0..255, not {_show(item)}"
    )


def format_bus_data(data: bytes, *, options: ModbusOptions) -> str:
    """The uplink payload for bytes that arrived on the bus.

    Args:
        data: one chunk read from the bus (a slave's answer or anything else).
        options: ``python_repr`` picks v2's ``['0x01']`` over v1's JSON ``["0x01"]``.

    Returns:
        The bytes as a list of ``"0x"`` + two lowercase hex digits; ``[]`` for
        no bytes.
    """
    items = [f"0x{byte:02x}" for byte in data]
    if options.python_repr:
        return str(items)
    return json.dumps(items)


def poll_slaves(entry: PollEntry, config: ModbusConfig) -> tuple[int, ...]:
    """The slave addresses one poll entry reads, in order.

    Args:
        entry: one ``modbus.poll`` entry.
        config: the ``modbus`` configuration the entry belongs to.

    Returns:
        ``(entry.slave,)``, or every address of group ``entry.group``.

    Raises:
        ValueError: ``entry.group`` is not an index of ``config.groups`` (the
            entry does not belong to this configuration).
    """
    if entry.slave is not None:
        return (entry.slave,)
    if entry.group is None or not 0 <= entry.group < len(config.groups):
        raise ValueError(
            f"entry.group must be the index of one of the {len(config.groups)} modbus groups, "
            f"not {entry.group!r}"
        )
    return config.groups[entry.group].slave_addresses


def poll_requests(entry: PollEntry, config: ModbusConfig) -> tuple[bytes, ...]:
    """The read frames of one poll entry, one per slave in ``poll_slaves`` order.

    Raises:
        ValueError: as ``poll_slaves``.
    """
    return tuple(
        encode_request(
            ReadRequest(
                address=slave, function=entry.function, start=entry.start, quantity=entry.count
            )
        )
        for slave in poll_slaves(entry, config)
    )


def poll_report(entry: PollEntry, slave: int, answer: bytes | None, now_s: float) -> dict[str, Any]:
    """The cloud reading for one slave's answer to a poll (shape in the module docstring).

    Args:
        entry: the poll entry that was sent.
        slave: the address the request went to.
        answer: the bytes the bus returned (one frame), or None if nothing came.
        now_s: sim time of the answer (or of the timeout).

    Returns:
        ``{"poll": {...}}`` with ``values`` or with ``error`` and ``detail``. Never
        raises on what the bus sent.
    """
    reading: dict[str, Any] = {
        "slave": slave,
        "function": int(entry.function),
        "start": entry.start,
        "count": entry.count,
        "time_s": now_s,
    }
    reading.update(_judge(entry, slave, answer))
    return {"poll": reading}


def _judge(entry: PollEntry, slave: int, answer: bytes | None) -> dict[str, Any]:
    if answer is None:
        return {"error": PollError.TIMEOUT, "detail": f"no answer from slave {slave}"}
    try:
        response = decode_response(answer)
    except RemoteProtocolError as exc:
        kind = PollError.BAD_CRC if exc.reply_hint == "bad-crc" else PollError.BAD_FRAME
        return {"error": kind, "detail": exc.message, "raw": answer.hex(" ")}
    function = int(entry.function)
    if response.address != slave:
        problem = f"answer from slave {response.address}, not from slave {slave}"
        return _mismatch(problem, answer)
    match response:
        case ExceptionResponse() if response.function == function:
            return {
                "error": PollError.EXCEPTION,
                "exception_code": int(response.code),
                "detail": f"slave {slave} refused function {function}: {response.code.hint}",
            }
        case ReadBitsResponse() if response.function == function:
            return _bit_values(entry, response, answer)
        case ReadRegistersResponse() if response.function == function:
            return _register_values(entry, response, answer)
        case _:
            problem = f"answer to function {_function_of(response)}, not to function {function}"
            return _mismatch(problem, answer)


def _mismatch(problem: str, answer: bytes) -> dict[str, Any]:
    return {"error": PollError.MISMATCH, "detail": problem, "raw": answer.hex(" ")}


def _function_of(response: Response) -> int:
    """The function code a response answers (an exception's without its 0x80 bit)."""
    match response:
        case WriteSingleCoil():
            return int(FunctionCode.WRITE_SINGLE_COIL)
        case WriteSingleRegister():
            return int(FunctionCode.WRITE_SINGLE_REGISTER)
        case _:
            return int(response.function)


def _bit_values(entry: PollEntry, response: ReadBitsResponse, answer: bytes) -> dict[str, Any]:
    expected = (entry.count + 7) // 8
    got = len(response.bits) // 8
    if got != expected:
        return _mismatch(f"{got} data bytes for {entry.count} bits, not {expected}", answer)
    return {"values": [int(bit) for bit in response.bits[: entry.count]]}


def _register_values(
    entry: PollEntry, response: ReadRegistersResponse, answer: bytes
) -> dict[str, Any]:
    if len(response.values) != entry.count:
        problem = f"{len(response.values)} registers, not the {entry.count} requested"
        return _mismatch(problem, answer)
    return {"values": list(response.values)}
