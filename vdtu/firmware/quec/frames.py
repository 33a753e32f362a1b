"""The QuecPython DTU's serial line (MCU <-> DTU): framings, CRC32 and a chunk classifier.

Pure (standard library, plus the project's pure Modbus CRC). The serial protocol is
not in the seed (which describes the cloud side); it is the one of the v2 firmware
and its user guide (docs/spec/quec.md#10). Every frame is text, UTF-8 on the
wire, with comma-separated fields::

    command mode, tcp/udp channel          cid,len,crc32,data              (both directions)
    command mode, mqtt/aliyun/txyun/hwyun  cid,topic_id,len,crc32,data     (both directions)
    command mode, http                     cid,request_id,len,crc32,data
    command mode, quecthing                cid,pkgid,len,crc32,data        (pkgid 0 downwards)
    passthrough, tcp/udp                   len,crc32,data
    passthrough, any other channel type    topic_id,len,crc32,data
    configuration request (every mode)     99,len,crc32,json               MCU -> DTU
    configuration reply                    99,len,crc32,json               DTU -> MCU (documented)
                                           len,crc32,json                  DTU -> MCU (firmware)
    modbus                                 raw RTU bytes, no framing

* ``len`` counts the *characters* of ``data`` (not its UTF-8 bytes), and
  ``crc32`` is the unsigned decimal CRC-32 of ``data`` computed per character
  over ``ord(c) & 0xFF`` (``crc32_text``): the firmware's rule, equal to
  ``zlib.crc32`` for ASCII and different from a byte CRC for anything else.
* Fields are split with a maximum split count, so ``data`` may contain commas.
* An empty uplink may be sent in the short form ``cid,0`` (command mode) or
  ``0`` (passthrough tcp/udp), as the firmware accepts; encoders always write
  the full form (``...,0,0,``), which every parser also accepts.
* The configuration reply: the firmware writes it without the ``99`` prefix,
  while its user guides document ``99,len,crc32,json``. ``ConfigReplyForm``
  picks one; the default is the documented form.

The firmware reads serial input as chunks delimited by line silence (v2: more
than 1 ms without a byte ends a chunk) and treats each chunk as one frame, with
no reassembly. So nothing here buffers: ``parse_chunk(chunk, binding)`` takes one
complete chunk and the port's ``PortBinding`` (work mode and the channel types
bound to that UART) and returns exactly one result. A bad chunk is a *result*
(``BadLength``, ``BadCrc``, ``Malformed``, each with a ``reason`` and the chunk),
never an exception: the firmware drops it with a diagnostic and counts it.

How ``parse_chunk`` classifies a chunk, in the firmware's order:

1. A chunk starting ``99,`` whose length and CRC check and whose data is a JSON
   object with a ``cmd_code`` is a ``ConfigRequest``, in every work mode.
2. A chunk starting ``99,`` that fails as a configuration request is refused
   with that failure, unless the port can read it otherwise: as a whole Modbus
   RTU frame (command and modbus mode), or as an ordinary frame (command mode
   with a channel ``99`` bound; passthrough on a channel with topic ids, where
   ``99`` is a topic id).
3. Modbus mode: anything else is a ``ModbusChunk``. Command mode: a chunk with
   no comma, or one that is a whole Modbus RTU frame (valid CRC-16), is a
   ``ModbusChunk`` too (v2 auto-detection; v2 tests only one CRC byte and so
   misroutes one text frame in 256: this module requires the whole CRC).
4. Otherwise it is the mode's text frame (``parse_frame``).

Limits (issue 9: one bad input never takes the unit down): a chunk over
``MAX_CHUNK_BYTES`` is ``Malformed`` before any parsing; a length or CRC field of
more than ``MAX_FIELD_DIGITS`` digits is ``Malformed``; a configuration request's
JSON is decoded within ``COMMAND_LIMITS`` (``vdtu.json_limits``), so a huge number
or deep nesting is a ``Malformed`` naming the limit. Reasons quote at most 40
characters of a field.

Differences from the firmware kept on purpose: a short-form length ``0``
followed by more fields is checked like any frame (the firmware ignores what
follows); a CRC with leading zeros is malformed (the firmware compares the CRC
as text, so it never matches); a ``99,`` frame with too little data is a
``BadLength`` (v2 swallows it silently); in modbus mode a text frame is not a
command frame (v2 treats command and modbus mode alike).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, assert_never

from vdtu.json_limits import JsonLimitError, JsonLimits
from vdtu.json_limits import decode as decode_json
from vdtu.modbus.rtu import check_crc

CONFIG_PREFIX = "99"
"""The first field of a configuration request (and, documented, of its reply)."""

MAX_CHUNK_BYTES = 16 * 1024
"""The largest chunk read as a frame; a longer one is ``Malformed`` before any parsing."""
MAX_FIELD_DIGITS = 10
"""The most digits a length or CRC field may have (a CRC-32 has at most 10)."""
COMMAND_LIMITS = JsonLimits(max_bytes=16 * 1024, max_depth=16, max_digits=20, max_string=8 * 1024)
"""The limits of one command's JSON, from the cloud or the serial configuration channel:
16 KiB, 16 levels of nesting, 20 digits per number (a signed 64-bit integer), 8 KiB strings."""

_LENGTH_RE = re.compile(r"[0-9]+")
_CRC_RE = re.compile(r"0|[1-9][0-9]*")


class WorkMode(StrEnum):
    """The DTU's ``work_mode`` (the value is the one ``dtu_config.json`` uses)."""

    COMMAND = "command"
    MODBUS = "modbus"
    PASSTHROUGH = "through"


class ChannelType(StrEnum):
    """A cloud channel's ``protocol`` (``hwyun``: in the firmware, not in the seed;
    docs/spec/quec.md#8.9)."""

    HTTP = "http"
    TCP = "tcp"
    UDP = "udp"
    MQTT = "mqtt"
    ALIYUN = "aliyun"
    TXYUN = "txyun"
    QUECTHING = "quecthing"
    HWYUN = "hwyun"

    @property
    def has_topic_id(self) -> bool:
        """Whether frames for this channel carry a second id (topic, request id or pkgid)."""
        return self not in (ChannelType.TCP, ChannelType.UDP)

    @property
    def id_name(self) -> str:
        """What the second id of a frame is called for this channel type ("" for tcp/udp)."""
        match self:
            case ChannelType.HTTP:
                return "request_id"
            case ChannelType.QUECTHING:
                return "pkgid"
            case ChannelType.TCP | ChannelType.UDP:
                return ""
            case ChannelType.MQTT | ChannelType.ALIYUN | ChannelType.TXYUN | ChannelType.HWYUN:
                return "topic_id"
            case _:
                assert_never(self)


class ConfigReplyForm(StrEnum):
    """How the DTU frames its reply to a configuration request."""

    DOCUMENTED = "documented"
    """``99,len,crc32,json``: the form the user guides show (the default)."""
    FIRMWARE = "firmware"
    """``len,crc32,json``: what the v1/v2 firmware actually writes."""


def _make_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


def crc32_text(text: str) -> int:
    """The firmware's CRC-32 of a string: reflected 0xEDB88320, init and final 0xFFFFFFFF.

    Each *character* contributes ``ord(c) & 0xFF`` (the high bits of a non-Latin-1
    character are dropped), so for ASCII this is ``zlib.crc32`` of the text.

    >>> crc32_text("test")
    3632233996
    """
    try:
        return zlib.crc32(text.encode("latin-1"))
    except UnicodeEncodeError:
        crc = 0xFFFFFFFF
        for char in text:
            crc = _CRC_TABLE[(crc ^ ord(char)) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF


def _check_id(name: str, value: str) -> None:
    if not value or "," in value:
        raise ValueError(f"{name} must be a non-empty string without ',', not {value!r}")


def _check_text(name: str, value: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{name} must be encodable as UTF-8; {value[exc.start : exc.end]!r} is not"
        ) from None


def _payload(data: str) -> str:
    """``len,crc32,data`` for ``data``."""
    return f"{len(data)},{crc32_text(data)},{data}"


def _show(value: str) -> str:
    """``repr(value)``, cut to 40 characters: a field of a serial frame can be any size."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _command_json_problem(text: str) -> str | None:
    """Why ``text`` is no JSON object with a ``cmd_code`` within ``COMMAND_LIMITS`` (None: ok)."""
    try:
        value = decode_json(text, COMMAND_LIMITS)
    except JsonLimitError as exc:
        return f"over the limits of a command: {exc}"
    except ValueError:
        return "not JSON"
    if not isinstance(value, dict) or value.get("cmd_code") is None:
        return "not a JSON object with a cmd_code"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandFrame:
    """A command-mode frame, the same shape both ways: ``cid,[topic_id,]len,crc32,data``."""

    cid: str
    """The channel id: a key of the config's ``conf``."""
    topic_id: str | None = None
    """Topic id (mqtt-type channels), request id (http) or pkgid (quecthing); None for tcp/udp."""
    data: str

    def __post_init__(self) -> None:
        _check_id("cid", self.cid)
        if self.topic_id is not None:
            _check_id("topic_id", self.topic_id)
        _check_text("data", self.data)

    def encode(self) -> bytes:
        """The frame as written on the serial line."""
        head = self.cid if self.topic_id is None else f"{self.cid},{self.topic_id}"
        return f"{head},{_payload(self.data)}".encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class PassthroughFrame:
    """A passthrough frame, the same shape both ways: ``[topic_id,]len,crc32,data``."""

    topic_id: str | None = None
    """Topic id, request id (http) or ``0`` (quecthing); None on a tcp/udp channel."""
    data: str

    def __post_init__(self) -> None:
        if self.topic_id is not None:
            _check_id("topic_id", self.topic_id)
        _check_text("data", self.data)

    def encode(self) -> bytes:
        """The frame as written on the serial line."""
        if self.topic_id is None:
            return _payload(self.data).encode()
        return f"{self.topic_id},{_payload(self.data)}".encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigRequest:
    """A configuration request from the MCU: ``99,len,crc32,json``.

    ``text`` is a JSON object with a ``cmd_code`` (``{"cmd_code": 0, "password": ..,
    "data": {..}}``); ``vdtu.firmware.quec.commands.parse_config_command`` reads it.
    """

    text: str

    def __post_init__(self) -> None:
        _check_text("text", self.text)
        problem = _command_json_problem(self.text)
        if problem is not None:
            raise ValueError(f"text must be a JSON object with a cmd_code, not {problem}")

    def encode(self) -> bytes:
        """The request as the MCU writes it."""
        return f"{CONFIG_PREFIX},{_payload(self.text)}".encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigReply:
    """The DTU's reply to a configuration request: ``[99,]len,crc32,json``."""

    text: str
    """The reply, a JSON object (``commands.Reply.to_json()``)."""

    def __post_init__(self) -> None:
        _check_text("text", self.text)
        try:
            value = decode_json(self.text, COMMAND_LIMITS)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ValueError(f"text must be a JSON object, not {self.text!r}")  # noqa: TRY004

    def encode(self, form: ConfigReplyForm = ConfigReplyForm.DOCUMENTED) -> bytes:
        """The reply as the DTU writes it, in the given form."""
        match form:
            case ConfigReplyForm.DOCUMENTED:
                return f"{CONFIG_PREFIX},{_payload(self.text)}".encode()
            case ConfigReplyForm.FIRMWARE:
                return _payload(self.text).encode()
            case _:
                assert_never(form)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusChunk:
    """Raw bytes for the Modbus path (modbus mode, or a Modbus-looking chunk in command mode)."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class BadLength:
    """The length field does not match the data: the chunk must be dropped."""

    expected: int
    """The length the frame declared."""
    got: int
    """The characters of data that arrived."""
    chunk: bytes

    @property
    def reason(self) -> str:
        """A one-line diagnostic."""
        text = f"length field says {self.expected} characters but the data has {self.got}"
        if self.chunk.endswith((b"\n", b"\r")):
            text += " (the chunk ends with a line ending, which counts as data)"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class BadCrc:
    """The CRC field does not match the data: the chunk must be dropped."""

    expected: int
    """The CRC-32 of the data that arrived (``crc32_text``)."""
    got: int
    """The CRC the frame carried."""
    chunk: bytes

    @property
    def reason(self) -> str:
        """A one-line diagnostic."""
        return f"crc field says {self.got} but the data's CRC-32 is {self.expected}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Malformed:
    """The chunk is not a frame this port can read: the chunk must be dropped."""

    reason: str
    chunk: bytes


ParseError = BadLength | BadCrc | Malformed
"""Why a chunk was refused; each has ``reason`` (str) and ``chunk`` (bytes)."""
FrameResult = CommandFrame | PassthroughFrame | ParseError
"""What ``parse_frame`` returns."""
ChunkResult = CommandFrame | PassthroughFrame | ConfigRequest | ModbusChunk | ParseError
"""What ``parse_chunk`` returns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PortBinding:
    """What one UART is bound to: all a parser needs to read its chunks.

    Build it with ``command``, ``passthrough`` or ``modbus``. The firmware makes one
    per UART at boot from ``conf``/``uconf`` (command mode: every channel whose
    ``serialID`` is this UART; passthrough: the one channel bound to it).
    """

    mode: WorkMode
    channels: Mapping[str, ChannelType] = field(default_factory=dict)
    """Command mode: channel id -> type of each channel bound to this UART."""
    bound: ChannelType | None = None
    """Passthrough: the type of the single channel bound to this UART."""

    def __post_init__(self) -> None:
        channels = dict(self.channels)
        for cid, kind in channels.items():
            _check_id("channel id", cid)
            if not isinstance(kind, ChannelType):
                raise ValueError(  # noqa: TRY004 (a bad value of the right shape)
                    f"channel {cid!r} type must be one of {', '.join(ChannelType)}, not {kind!r}"
                )
        match self.mode:
            case WorkMode.COMMAND:
                if not channels or self.bound is not None:
                    raise ValueError(
                        "a command-mode port needs channels (cid -> type) and no bound type, "
                        f"not channels={channels!r} bound={self.bound!r}"
                    )
            case WorkMode.PASSTHROUGH:
                if self.bound is None or channels:
                    raise ValueError(
                        "a passthrough port needs a bound channel type and no channels, "
                        f"not channels={channels!r} bound={self.bound!r}"
                    )
            case WorkMode.MODBUS:
                if channels or self.bound is not None:
                    raise ValueError(
                        "a modbus port takes no channel types, "
                        f"not channels={channels!r} bound={self.bound!r}"
                    )
            case _:
                assert_never(self.mode)
        object.__setattr__(self, "channels", MappingProxyType(channels))

    @classmethod
    def command(cls, channels: Mapping[str, ChannelType]) -> PortBinding:
        """A command-mode port carrying these channels (cid -> type)."""
        return cls(mode=WorkMode.COMMAND, channels=channels)

    @classmethod
    def passthrough(cls, bound: ChannelType) -> PortBinding:
        """A passthrough port bound to one channel of this type."""
        return cls(mode=WorkMode.PASSTHROUGH, bound=bound)

    @classmethod
    def modbus(cls) -> PortBinding:
        """A modbus-mode port."""
        return cls(mode=WorkMode.MODBUS)

    def reads_config_prefix_as_frame(self) -> bool:
        """Whether a chunk starting ``99,`` could also be one of this port's ordinary frames."""
        match self.mode:
            case WorkMode.COMMAND:
                return CONFIG_PREFIX in self.channels
            case WorkMode.PASSTHROUGH:
                return self.bound is not None and self.bound.has_topic_id
            case WorkMode.MODBUS:
                return False
            case _:
                assert_never(self.mode)


def _decode(chunk: bytes) -> str | Malformed:
    try:
        return chunk.decode()
    except UnicodeDecodeError as exc:
        return Malformed(reason=f"not valid UTF-8 ({exc.reason} at byte {exc.start})", chunk=chunk)


def _read_payload(rest: str, chunk: bytes, layout: str, *, short_empty: bool) -> str | ParseError:
    """Check ``len,crc32,data`` (or the short form ``0``) and return ``data``."""
    if short_empty and rest == "0":
        return ""
    parts = rest.split(",", 2)
    if len(parts) != 3:
        return Malformed(reason=f"expected {layout}", chunk=chunk)
    length_text, crc_text, data = parts
    if not _LENGTH_RE.fullmatch(length_text):
        return Malformed(reason=f"length {_show(length_text)} is not a decimal number", chunk=chunk)
    if not _CRC_RE.fullmatch(crc_text):
        return Malformed(
            reason=f"crc {_show(crc_text)} is not an unsigned decimal number without leading zeros",
            chunk=chunk,
        )
    for name, digits in (("length", length_text), ("crc", crc_text)):
        if len(digits) > MAX_FIELD_DIGITS:
            return Malformed(
                reason=f"the {name} field has {len(digits)} digits (at most {MAX_FIELD_DIGITS})",
                chunk=chunk,
            )
    if int(length_text) != len(data):
        return BadLength(expected=int(length_text), got=len(data), chunk=chunk)
    crc = crc32_text(data)
    if int(crc_text) != crc:
        return BadCrc(expected=crc, got=int(crc_text), chunk=chunk)
    return data


def parse_config_request(chunk: bytes) -> ConfigRequest | ParseError:
    """Read a chunk as a configuration request ``99,len,crc32,json``."""
    text = _decode(chunk)
    if isinstance(text, Malformed):
        return text
    prefix, sep, rest = text.partition(",")
    if prefix != CONFIG_PREFIX or not sep:
        return Malformed(reason="a configuration request starts with '99,'", chunk=chunk)
    data = _read_payload(rest, chunk, "99,len,crc32,json", short_empty=False)
    if not isinstance(data, str):
        return data
    problem = _command_json_problem(data)
    if problem is not None:
        return Malformed(
            reason=f"a configuration request carries a JSON object with a cmd_code, not {problem}",
            chunk=chunk,
        )
    return ConfigRequest(text=data)


def parse_config_reply(
    chunk: bytes, *, form: ConfigReplyForm = ConfigReplyForm.DOCUMENTED
) -> ConfigReply | ParseError:
    """Read a chunk from the DTU as the reply to a configuration request (the MCU's side)."""
    text = _decode(chunk)
    if isinstance(text, Malformed):
        return text
    match form:
        case ConfigReplyForm.DOCUMENTED:
            prefix, sep, rest = text.partition(",")
            if prefix != CONFIG_PREFIX or not sep:
                return Malformed(reason="a configuration reply starts with '99,'", chunk=chunk)
            layout = "99,len,crc32,json"
        case ConfigReplyForm.FIRMWARE:
            rest = text
            layout = "len,crc32,json"
        case _:
            assert_never(form)
    data = _read_payload(rest, chunk, layout, short_empty=False)
    if not isinstance(data, str):
        return data
    try:
        return ConfigReply(text=data)
    except ValueError:
        return Malformed(reason="a configuration reply carries a JSON object", chunk=chunk)


def parse_frame(chunk: bytes, binding: PortBinding) -> FrameResult:
    """Read a chunk as the text frame of the port's mode (either direction).

    The MCU side uses this for what the DTU writes (downlink frames have the
    same shape as uplink frames); the DTU side goes through ``parse_chunk``.

    Raises:
        ValueError: the port is in modbus mode, which has no text frames.
    """
    text = _decode(chunk)
    if isinstance(text, Malformed):
        return text
    match binding.mode:
        case WorkMode.COMMAND:
            return _parse_command(text, chunk, binding.channels)
        case WorkMode.PASSTHROUGH:
            assert binding.bound is not None  # PortBinding guarantees it
            return _parse_passthrough(text, chunk, binding.bound)
        case WorkMode.MODBUS:
            raise ValueError("a modbus-mode port carries raw RTU bytes, not text frames")
        case _:
            assert_never(binding.mode)


def _parse_command(
    text: str, chunk: bytes, channels: Mapping[str, ChannelType]
) -> CommandFrame | ParseError:
    cid, sep, rest = text.partition(",")
    if not sep:
        return Malformed(reason="expected cid,... (no comma after the channel id)", chunk=chunk)
    kind = channels.get(cid)
    if kind is None:
        return Malformed(
            reason=f"channel {cid!r} is not bound to this port (bound: {', '.join(channels)})",
            chunk=chunk,
        )
    topic_id: str | None = None
    layout = _LAYOUTS[kind][0]
    if kind.has_topic_id:
        topic_id, sep, rest = rest.partition(",")
        if not sep or not topic_id:
            return Malformed(reason=f"expected {layout}", chunk=chunk)
    data = _read_payload(rest, chunk, layout, short_empty=True)
    if not isinstance(data, str):
        return data
    return CommandFrame(cid=cid, topic_id=topic_id, data=data)


def _layouts(kind: ChannelType) -> tuple[str, str]:
    """The command-mode and the passthrough frame layout on a ``kind`` channel (the refusals
    name them)."""
    second_id = f"{kind.id_name}," if kind.has_topic_id else ""
    return (
        f"cid,{second_id}len,crc32,data on a {kind} channel",
        f"{second_id}len,crc32,data on a {kind} channel",
    )


_LAYOUTS = {kind: _layouts(kind) for kind in ChannelType}
"""Each channel type's layouts, made once (not on every frame read)."""


def _parse_passthrough(text: str, chunk: bytes, kind: ChannelType) -> PassthroughFrame | ParseError:
    layout = _LAYOUTS[kind][1]
    if not kind.has_topic_id:
        data = _read_payload(text, chunk, layout, short_empty=True)
        if not isinstance(data, str):
            return data
        return PassthroughFrame(data=data)
    topic_id, sep, rest = text.partition(",")
    if not sep or not topic_id:
        return Malformed(reason=f"expected {layout}", chunk=chunk)
    data = _read_payload(rest, chunk, layout, short_empty=False)
    if not isinstance(data, str):
        return data
    return PassthroughFrame(topic_id=topic_id, data=data)


def parse_chunk(chunk: bytes, binding: PortBinding) -> ChunkResult:
    """Classify and read one chunk the MCU wrote to a UART (the DTU's side).

    Args:
        chunk: every byte received between two line silences, as one whole.
        binding: the UART's work mode and the channel types bound to it.

    Returns:
        A ``ConfigRequest``, a ``ModbusChunk``, the mode's frame, or a ``ParseError``
        saying why the chunk is dropped (see the module comment for the order).
    """
    if not chunk:
        return Malformed(reason="empty chunk", chunk=chunk)
    if len(chunk) > MAX_CHUNK_BYTES:
        return Malformed(
            reason=f"a chunk of {len(chunk)} bytes (at most {MAX_CHUNK_BYTES})", chunk=chunk
        )
    config = parse_config_request(chunk) if chunk.startswith(b"99,") else None
    if isinstance(config, ConfigRequest):
        return config
    rtu = binding.mode is not WorkMode.PASSTHROUGH and check_crc(chunk)
    if config is not None and not rtu and not binding.reads_config_prefix_as_frame():
        return config
    match binding.mode:
        case WorkMode.MODBUS:
            return ModbusChunk(data=chunk)
        case WorkMode.COMMAND:
            if rtu or b"," not in chunk:
                return ModbusChunk(data=chunk)
            return parse_frame(chunk, binding)
        case WorkMode.PASSTHROUGH:
            return parse_frame(chunk, binding)
        case _:
            assert_never(binding.mode)


def read_written(data: bytes, binding: PortBinding) -> ChunkResult | ConfigReply:
    """A chunk the DTU wrote toward the MCU, read as the MCU would: a frame of the port's
    mode (or raw Modbus), else a configuration reply in either form."""
    found = parse_chunk(data, binding)
    if not isinstance(found, BadLength | BadCrc | Malformed):
        return found
    for form in ConfigReplyForm:
        reply = parse_config_reply(data, form=form)
        if isinstance(reply, ConfigReply):
            return reply
    return found


def describe(found: ChunkResult | ConfigReply) -> dict[str, Any]:
    """A chunk as the control API's serial events decode it: its kind, its fields, its
    check (the CRC-32 of a frame's data, the CRC-16 of Modbus RTU) and whether it holds."""
    crc: str | None = None
    fields: dict[str, str] = {}
    ok: bool | None = True
    match found:
        case CommandFrame() | PassthroughFrame() | ConfigRequest() | ConfigReply():
            kind = _KIND_NAMES[type(found)]
            text = found.text if isinstance(found, ConfigRequest | ConfigReply) else found.data
            if isinstance(found, CommandFrame):
                fields["cid"] = found.cid
            if isinstance(found, CommandFrame | PassthroughFrame) and found.topic_id is not None:
                fields["topic_id"] = found.topic_id
            fields |= {"len": str(len(text)), "data": _shown(text)}
            crc = f"crc32 {crc32_text(text)}"
        case ModbusChunk(data=data):
            kind, fields = "modbus", {"rtu": data[:64].hex(" ").upper()}
            ok, crc = check_crc(data), f"crc16 {data[-2:].hex().upper()}"
        case BadCrc():
            kind, crc, ok = "bad-crc", f"crc32 {found.got} (expected {found.expected})", False
            fields["reason"] = found.reason
        case BadLength() | Malformed():
            kind, ok = ("bad-length" if isinstance(found, BadLength) else "malformed"), False
            fields["reason"] = found.reason
    return {"kind": kind, "fields": fields, "check": crc, "check_ok": ok}


_KIND_NAMES: dict[type, str] = {
    CommandFrame: "command",
    PassthroughFrame: "passthrough",
    ConfigRequest: "config-request",
    ConfigReply: "config-reply",
}


def _shown(text: str) -> str:
    """Data as an event shows it: cut at 512 characters."""
    return text if len(text) <= 512 else f"{text[:512]}...(+{len(text) - 512} characters)"
