"""Fuzz targets: one function per target, taking ``bytes``, shared by the CI tests and bench/fuzz.

Each target feeds hostile bytes to real project code the way they reach it (a host's serial
line, a cloud downlink, a serial chunk) and checks the code's contract. A target *crashes*
when an exception escapes that the contract does not allow, or when one of its invariants
breaks (``InvariantBroken``). The CI tests (``tests/fuzz/test_*.py``) run each target on a
small seeded budget with Hypothesis; ``bench/fuzz.py`` runs them for millions of inputs with
atheris (libFuzzer, coverage guided), starting from ``seeds(name)``.

Structured targets read their input with ``Draw`` (a FuzzedDataProvider in a few lines): the
first bytes pick an action, a channel or a command code, the rest becomes the fuzzed field,
so a mutation of the bytes is a mutation of the structure and every handler is reached.
``draw_json`` turns bytes into a JSON value of any shape (deep nesting, huge numbers, lone
surrogates, text with line ends included).

The unit-level targets (``UNIT_TARGETS``: ``xgc_unit_*`` and ``quec_unit``) run one whole unit
in virtual time. It is booted once and reused, so an input costs well under a millisecond of
real time; every ``UNIT_RESET_EVERY`` inputs (and after a crash) a fresh unit replaces it,
which also bounds what the unit and its host endpoints accumulate. After every input the unit
must not have faulted (a fault goes to its watchdog, ``Unit.faults``); every ``LIVENESS_EVERY``
inputs it must still answer: an XGC unit GET_IMEI on its host pipe, a QuecPython unit code 0
from its cloud (unless an input changed its configuration, which may cut it off by design).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from tests.firmware.test_xgc_downlinks import IMEI as XGC_IMEI
from tests.firmware.test_xgc_downlinks import OTA, PID, Connected
from tests.protocol.test_xgc_seed_frames import SEED_FRAMES, SEED_SLIPS
from tests.quec.test_frames import IMEI_REQUEST
from tests.quec_harness import QuecBench
from vdtu.clock import VirtualClock
from vdtu.cloud.xgc_api import (
    DOWNLINK_CHANNELS,
    DownlinkRefusedError,
    device_topic,
    downlink_value,
)
from vdtu.firmware.quec.commands import (
    CommandCode,
    CommandOptions,
    CommandRequest,
    ForwardData,
    Ignored,
    ModbusRequest,
    Refused,
    Reply,
    check_password,
    parse_config_command,
    parse_downlink,
)
from vdtu.firmware.quec.config import DtuConfig
from vdtu.firmware.quec.executor import Outcome, execute
from vdtu.firmware.quec.frames import (
    BadCrc,
    BadLength,
    ChannelType,
    CommandFrame,
    ConfigReplyForm,
    ConfigRequest,
    Malformed,
    ModbusChunk,
    PassthroughFrame,
    PortBinding,
    WorkMode,
    crc32_text,
    parse_chunk,
    parse_config_reply,
)
from vdtu.firmware.quec.params import param_schema, validate_params
from vdtu.firmware.xgc.actions import ACTIONS
from vdtu.firmware.xgc.codec import (
    CodeFormat,
    Frame,
    FrameKind,
    FrameReader,
    FrameReceived,
    GarbageDiscarded,
    LineTooLong,
    MalformedFrame,
    ReaderEvent,
    ShortcutReceived,
)
from vdtu.firmware.xgc.notify import downlink_frame
from vdtu.log import LogLevel
from vdtu.unit import Unit

Target = Callable[[bytes], None]
T = TypeVar("T")


class InvariantBroken(AssertionError):  # noqa: N818 (it is what the fuzzer reports)
    """A target's invariant does not hold: a bug, reported as a crash."""


def check(condition: bool, message: str) -> None:
    """Raise ``InvariantBroken(message)`` unless ``condition``."""
    if not condition:
        raise InvariantBroken(message)


class Draw:
    """Structured values drawn from fuzz bytes, front to back; an exhausted input gives zeros."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def pick(self, options: Sequence[T]) -> T:
        return options[self.byte() % len(options)]

    def take(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    def text(self, limit: int) -> str:
        """Up to ``limit`` bytes as text (one length byte first, scaled up for long fields)."""
        size = self.byte()
        if size >= 0xF0:
            size = (size - 0xEF) * 256
        return self.take(min(size, limit)).decode("utf-8", errors="surrogateescape")

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


_ODD_NUMBERS: tuple[Any, ...] = (
    0,
    -1,
    1.5,
    2**63,
    -(2**63) - 1,
    10**40,
    1e308,
    -0.0,
    True,
    False,
)
_ODD_TEXTS = ("", "\r\n", "\ud800", "#&#;:", ",", "99", "\x00", "$XGC#GET_IMEI#0#0&#5A#", "é中")


MAX_DRAWN_DEPTH = 300
"""The deepest nesting ``draw_json`` builds: far beyond every limit of the project's decoders
(8 or 16), yet within what ``json.dumps`` can write without reaching the recursion limit."""


def draw_json(draw: Draw, depth: int = 0, keys: Sequence[str] = ()) -> Any:
    """A JSON value of any shape from the bytes (``keys``: names to favour in objects)."""
    kind = draw.byte() % 10 if draw.left else 0
    if depth >= MAX_DRAWN_DEPTH or kind == 0:
        return None
    if kind == 1:
        return draw.pick(_ODD_NUMBERS)
    if kind == 2:
        return int.from_bytes(draw.take(draw.byte() % 24), "big", signed=True)
    if kind == 3:
        return draw.pick(_ODD_TEXTS)
    if kind in (4, 5):
        return draw.text(2048)
    if kind == 6:
        return [draw_json(draw, depth + 1, keys) for _ in range(draw.byte() % 5)]
    if kind == 7:  # deep nesting in one step: the limits must hold, never the interpreter's
        wraps = min(draw.byte(), MAX_DRAWN_DEPTH - depth - 1)
        value: Any = draw_json(draw, depth + 1 + wraps, keys)
        for _ in range(wraps):
            value = [value]
        return value
    obj: dict[str, Any] = {}
    for _ in range(draw.byte() % 6):
        key = draw.pick(keys) if keys and draw.byte() % 4 else draw.text(40)
        obj[key] = draw_json(draw, depth + 1, keys)
    return obj


def dump_json(value: Any, draw: Draw) -> bytes:
    """``value`` as JSON text, compact or spaced, UTF-8 (a lone surrogate stays escaped)."""
    spaced = draw.byte() % 2 == 1
    text = json.dumps(
        value, ensure_ascii=draw.byte() % 2 == 0, separators=None if spaced else (",", ":")
    )
    return text.encode("utf-8", errors="surrogatepass")


# -- XGC: the frame reader ------------------------------------------------------------------


def _read(data: bytes, cuts: Sequence[int], *, max_line: int, lone_cr: bool) -> list[ReaderEvent]:
    reader = FrameReader(max_line=max_line, lone_cr_ends_line=lone_cr)
    events: list[ReaderEvent] = []
    bound = max_line + 1
    start = 0
    for cut in [*cuts, len(data)]:
        reader.receive_data(data[start:cut])
        start = cut
        for count, event in enumerate(reader.events(), 1):
            check(count <= len(data) + 2, f"events() is not terminating ({count} events so far)")
            events.append(event)
        check(reader.buffered <= bound, f"{reader.buffered} bytes buffered (bound {bound})")
    reader.receive_data(b"\n")
    events.extend(reader.events())
    check(reader.buffered == 0, f"{reader.buffered} bytes left after a final LF")
    return events


def _chunkings(data: bytes) -> Iterator[list[int]]:
    """Cut points: byte by byte (the first 128 bytes), a stride of 2..62 bytes, two halves."""
    size = len(data)
    yield list(range(1, min(size, 128)))
    step = data[0] % 61 + 2 if data else 2
    yield list(range(step, size, step))
    yield [size // 2]


def _check_round_trip(event: FrameReceived, *, max_line: int, lone_cr: bool) -> None:
    """A frame the reader accepted, re-encoded, is read back as the same frame."""
    encoded = event.frame.encode(CodeFormat.HEX)
    if len(encoded) - 2 > max_line:
        return
    again = _read(encoded, [], max_line=max_line, lone_cr=lone_cr)
    check(
        len(again) == 1 and isinstance(again[0], FrameReceived) and again[0].code_ok,
        f"re-encoded frame {encoded!r} reads back as {again!r}",
    )
    assert isinstance(again[0], FrameReceived)
    check(again[0].frame == event.frame, f"{again[0].frame!r} != {event.frame!r}")


def xgc_reader(data: bytes) -> None:
    """``FrameReader``: bounded, terminating, and the same events however the bytes are split."""
    for max_line, lone_cr in ((64, True), (64, False), (4096, True)):
        whole = _read(data, [], max_line=max_line, lone_cr=lone_cr)
        chunkings = list(_chunkings(data))
        for cuts in chunkings if max_line == 64 else chunkings[1:2]:
            split = _read(data, cuts, max_line=max_line, lone_cr=lone_cr)
            check(split == whole, f"events differ when split at {cuts[:8]}...: {split} vs {whole}")
        for event in whole:
            match event:
                case FrameReceived():
                    _check_round_trip(event, max_line=max_line, lone_cr=lone_cr)
                case LineTooLong():
                    check(event.size > 0, f"{event!r}")
                case ShortcutReceived() | MalformedFrame() | GarbageDiscarded():
                    pass


# -- XGC: cloud downlinks, pure -------------------------------------------------------------


def _check_host_frame(frame: Frame) -> None:
    """A frame for the host is one line that the host's reader reads back as that frame."""
    encoded = frame.encode(CodeFormat.DECIMAL)
    check(
        b"\r" not in encoded[:-2] and b"\n" not in encoded[:-2],
        f"a line end inside {encoded[:80]!r}",
    )
    events = _read(encoded, [], max_line=max(64, len(encoded)), lone_cr=True)
    check(
        len(events) == 1 and isinstance(events[0], FrameReceived) and events[0].code_ok,
        f"the host reads {encoded[:80]!r} as {events!r}",
    )
    assert isinstance(events[0], FrameReceived)
    check(events[0].frame == frame, f"{events[0].frame!r} != {frame!r}")


def _xgc_downlink(payload: bytes) -> None:
    try:
        value = downlink_value(payload)
    except DownlinkRefusedError:
        return
    check(isinstance(value, dict | str), f"downlink_value gave {type(value).__name__}")
    for channel in DOWNLINK_CHANNELS:
        for trailing in (False, True):
            try:
                frame = downlink_frame(channel, value, sn=XGC_IMEI, trailing_separator=trailing)
            except DownlinkRefusedError:
                continue
            _check_host_frame(frame)


def xgc_downlink(data: bytes) -> None:
    """``downlink_value`` then ``downlink_frame`` on every channel: a refusal, or a good frame."""
    _xgc_downlink(data)


def xgc_downlink_json(data: bytes) -> None:
    """The same, on JSON drawn from the bytes: objects, OTA orders, nested and odd values."""
    draw = Draw(data)
    shape = draw.byte() % 3
    keys = ("configVersion", "fwVersion", "filename", "md5", "url", "a")
    value = draw_json(draw, keys=keys)
    if shape == 1:  # an OTA order with every field, fuzzed values
        value = {key: draw_json(draw) for key in keys[:5]}
    _xgc_downlink(dump_json(value, draw))


# -- XGC: one whole unit in virtual time -----------------------------------------------------

UNIT_RESET_EVERY = 500
"""Inputs one unit takes before a fresh one replaces it (the old one is garbage-collected at
once: left to the collector's own pace, discarded units pile up and RSS climbs, which is the
harness's churn, not the project's memory)."""
LIVENESS_EVERY = 50
"""Inputs between two checks that the unit still answers (``UnitUnderTest.alive``)."""
_GET_IMEI = b"\r\n" + Frame(kind=FrameKind.COMMAND, action="GET_IMEI", sn="0").encode(
    CodeFormat.HEX
)
_SERIAL_PORTS = ("uart", "uart", "rs485", "rs232")
ACTION_NAMES = sorted(ACTIONS)


class UnitUnderTest(Protocol):
    """A unit in virtual time, as the rig drives it."""

    unit: Unit
    clock: VirtualClock

    def alive(self) -> None:
        """Raise ``InvariantBroken`` unless the unit still answers its host or cloud."""


U = TypeVar("U", bound=UnitUnderTest)


class UnitRig(Generic[U]):
    """One unit under test, reused for ``UNIT_RESET_EVERY`` inputs, then made afresh."""

    def __init__(self, make: Callable[[], U]) -> None:
        self.make = make
        self.current: U | None = None
        self.inputs = 0
        self.history: list[bytes] = []
        """The inputs this unit took, oldest first (a repro when one alone does not crash)."""

    def discard(self) -> None:
        """Start from a fresh unit at the next input (after a crash: its state is unknown)."""
        self.current = None

    def run(self, data: bytes, feed: Callable[[U], None]) -> None:
        if self.current is None or self.inputs >= UNIT_RESET_EVERY:
            self.current = None
            gc.collect()  # a unit is a web of cycles: free the old one now, not at a gen-2 pass
            self.current = self.make()
            self.inputs = 0
            self.history = []
        current = self.current
        self.inputs += 1
        self.history.append(data)
        feed(current)
        current.clock.run_for(0.3)
        unit = current.unit
        check(unit.faults == 0, f"the unit faulted: {_last_fatal(unit)}")
        if self.inputs % LIVENESS_EVERY == 0:
            current.alive()


def _last_fatal(unit: Unit) -> str:
    records = [r.text for r in unit.log.records if r.level is LogLevel.FATAL]
    return records[-1] if records else "(no FATAL record)"


class XgcUnit:
    """A connected XGC unit (``Connected``: provisioned, on a simulated platform)."""

    def __init__(self) -> None:
        self.connected = Connected()
        self.bench = self.connected.bench
        self.unit = self.bench.unit
        self.clock = self.bench.clock

    def alive(self) -> None:
        """The unit answers GET_IMEI on its host pipe, once the line is quiet and the unit is
        listening: a host may have queued seconds of input on the 9600-baud bus (each input
        runs only 0.3 s), and a DTU_REBOOT among it makes the unit deaf for a second."""
        bench = self.bench
        deadline = bench.clock.now + 60.0
        for _attempt in range(5):
            port = bench.firmware.pipe.port
            endpoint = bench.host_on(port)
            while bench.clock.now < deadline and not (
                bench.firmware.listening
                and bench.unit.powered
                and endpoint.tap.busy_until <= bench.clock.now
                and bench.firmware.sending_until(port) <= bench.clock.now
            ):
                bench.clock.run_for(0.1)
            mark = len(endpoint.received)
            bench.send_raw(_GET_IMEI, port)
            bench.clock.run_for(1.5)
            reader = FrameReader()
            for _at, chunk in endpoint.received[mark:]:
                reader.receive_data(chunk)
            if any(
                isinstance(e, FrameReceived)
                and e.frame.action == "GET_IMEI"
                and e.frame.content == XGC_IMEI
                for e in reader.events()
            ):
                return
        raise InvariantBroken(
            f"no GET_IMEI reply on {bench.firmware.pipe.port} in 5 tries "
            f"(state {bench.firmware.state.value}, listening {bench.firmware.listening})"
        )


_XGC_RIG = UnitRig(XgcUnit)


def xgc_unit_serial(data: bytes) -> None:
    """Raw bytes from a host on the unit's uart, rs485 or rs232 (the first byte picks)."""
    draw = Draw(data)
    port = draw.pick(_SERIAL_PORTS)
    payload = draw.rest()
    _XGC_RIG.run(data, lambda u: u.bench.send_raw(payload, port))


def action_frame(draw: Draw) -> bytes:
    """A well-formed command frame (right check code) for an action of ``ACTIONS``."""
    action = draw.pick(ACTION_NAMES)
    form = draw.byte()
    text = draw.rest().decode("utf-8", errors="replace")
    content = None if form % 5 == 0 and not text else text.replace("\r", " ").replace("\n", " ")
    sn = "0" if form & 0x10 else XGC_IMEI
    frame = Frame(kind=FrameKind.COMMAND, action=action, sn=sn, timestamp="0", content=content)
    return frame.encode(CodeFormat.DECIMAL if form & 0x20 else CodeFormat.HEX)


def xgc_unit_actions(data: bytes) -> None:
    """A valid frame for every action of ``ACTIONS`` with fuzzed content, on the host pipe."""
    frame = action_frame(Draw(data))
    _XGC_RIG.run(data, lambda u: u.bench.send_raw(frame, u.bench.firmware.pipe.port))


def xgc_unit_downlink(data: bytes) -> None:
    """A cloud message on the unit's down, config or ota topic (the first byte picks)."""
    draw = Draw(data)
    channel = draw.pick(DOWNLINK_CHANNELS)
    payload = draw.rest() if draw.byte() % 2 else dump_json(draw_json(draw), draw)
    topic = device_topic(PID, XGC_IMEI, channel)

    def feed(unit: XgcUnit) -> None:
        unit.connected.platform.send(topic, payload)

    _XGC_RIG.run(data, feed)


# -- QuecPython: serial frames --------------------------------------------------------------

_BINDINGS = (
    PortBinding.command({"1": ChannelType.MQTT, "2": ChannelType.TCP, "3": ChannelType.HTTP}),
    PortBinding.command({"99": ChannelType.QUECTHING, "1": ChannelType.UDP}),
    *(PortBinding.passthrough(kind) for kind in ChannelType),
    PortBinding.modbus(),
)


def _check_chunk_result(chunk: bytes, binding: PortBinding) -> None:
    result = parse_chunk(chunk, binding)
    match result:
        case CommandFrame() | PassthroughFrame():
            check(binding.mode is not WorkMode.MODBUS, f"{result!r} on a modbus port")
            again = parse_chunk(result.encode(), binding)
            check(again == result, f"{result!r} re-encoded reads back as {again!r}")
        case ConfigRequest():
            again = parse_chunk(result.encode(), binding)
            check(again == result, f"{result!r} re-encoded reads back as {again!r}")
            command = parse_config_command(result)
            check(isinstance(command, CommandRequest | Ignored), f"{command!r}")
        case ModbusChunk():
            check(result.data == chunk, "a Modbus chunk is not the chunk")
        case BadLength() | BadCrc() | Malformed():
            check(result.chunk == chunk and bool(result.reason), f"{result!r}")


def quec_frames(data: bytes) -> None:
    """``parse_chunk`` on every kind of port binding: one result, never an exception; a frame,
    request or reply (``parse_config_reply``) re-encoded reads back as itself (a length with
    leading zeros is accepted and re-encoded without them, so the bytes may differ)."""
    for binding in _BINDINGS:
        _check_chunk_result(data, binding)
    for form in ConfigReplyForm:
        reply = parse_config_reply(data, form=form)
        if not isinstance(reply, BadLength | BadCrc | Malformed):
            again = parse_config_reply(reply.encode(form), form=form)
            check(again == reply, f"{reply!r} re-encoded reads back as {again!r}")


def quec_frames_structured(data: bytes) -> None:
    """Valid ``<len>,<crc32>,<data>`` frames (config requests, command and passthrough frames)
    whose data is JSON drawn from the bytes, with the length or CRC sometimes off by one."""
    draw = Draw(data)
    form = draw.byte()
    value = draw_json(draw, keys=("cmd_code", "password", "data", "msg_id", "topic_id"))
    if form % 3 == 0:
        value = {"cmd_code": draw_json(draw), "password": draw.text(12), "data": value}
    text = dump_json(value, draw).decode("utf-8", errors="surrogateescape")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="replace").decode()
    head = draw.pick(("99", "1,t1", "2", "99,t", ""))
    length, crc = len(text), crc32_text(text)
    if form & 0x40:
        length += 1
    if form & 0x80:
        crc = (crc + 1) % 2**32
    frame = f"{head + ',' if head else ''}{length},{crc},{text}"
    chunk = frame.encode()
    for binding in _BINDINGS:
        _check_chunk_result(chunk, binding)


# -- QuecPython: cloud commands -------------------------------------------------------------

_OPTIONS = (CommandOptions(), CommandOptions.firmware())
_QUEC_RIG: list[QuecBench] = []


def _quec_device_and_config() -> tuple[Any, DtuConfig]:
    """The real ``HardwareDevice`` of a booted QuecPython unit, and its config (made once)."""
    if not _QUEC_RIG:
        bench = QuecBench()
        bench.boot()
        _QUEC_RIG.append(bench)
    firmware = _QUEC_RIG[0].firmware
    assert firmware.config is not None
    return firmware.device, firmware.config


def _check_reply(reply: Reply) -> None:
    """A reply can be published: JSON, UTF-8, and it carries the code and a status."""
    text = reply.to_json()
    text.encode()
    body = json.loads(text)
    check(isinstance(body, dict) and "code" in body and "status" in body, f"reply {text[:80]}")


def _run_command(request: CommandRequest, options: CommandOptions) -> None:
    allowed = check_password(request, "123456", options=options)
    if allowed is not True:
        _check_reply(allowed)
    params = validate_params(request, options=options)
    if isinstance(params, Reply):
        _check_reply(params)
    device, config = _quec_device_and_config()
    outcome = execute(
        request,
        config=config,
        pending=None,
        device=device,
        options=options,
        include_password=bool(request.code % 2),
    )
    check(isinstance(outcome, Outcome), f"{outcome!r}")
    if outcome.reply is not None:
        _check_reply(outcome.reply)
    if outcome.new_config is not None:
        json.dumps(outcome.new_config.to_json(), ensure_ascii=False).encode()


def _quec_downlink(payload: bytes) -> None:
    for mode in WorkMode:
        for options in _OPTIONS:
            result = parse_downlink(payload, mode=mode, options=options)
            match result:
                case CommandRequest():
                    _run_command(result, options)
                case Refused():
                    _check_reply(result.reply)
                case ForwardData():
                    result.text.encode()
                case ModbusRequest() | Ignored():
                    pass


def quec_commands(data: bytes) -> None:
    """``parse_downlink`` in every work mode, then password, parameters and ``execute`` on the
    unit's real device view: a result, never an exception; every reply can be published."""
    _quec_downlink(data)


_CODES = [int(code) for code in CommandCode] + [-1, 14, 64, 65, 256, 10**25]


def command_envelope(draw: Draw, password: str) -> bytes:
    """A command downlink ``{"msg_id", "cmd_code", "password", "data"[, "topic_id"]}`` for any
    command code, ``data`` built from the code's parameter names with fuzzed values."""
    code = draw.pick(_CODES)
    form = draw.byte()
    names: list[str] = []
    if code in CommandCode._value2member_map_:
        for options in _OPTIONS:
            for spec in param_schema(CommandCode(code), options):
                names += [spec.name] + ([spec.parent] if spec.parent else [])
    envelope: dict[str, Any] = {
        "msg_id": draw_json(draw) if form & 1 else 1_700_000_000_123,
        "cmd_code": code if form & 2 else str(code),
        "password": draw.text(10) if form & 4 else password,
        "data": draw_json(draw, keys=names or ("a",)),
    }
    if form & 8:
        envelope["topic_id"] = draw_json(draw)
    if form & 16:
        envelope["data"] = {name: draw_json(draw, keys=names) for name in names}
    return dump_json(envelope, draw)


def quec_commands_structured(data: bytes) -> None:
    """Command envelopes for every command code (``command_envelope``) through the parser,
    the password and parameter checks and ``execute``."""
    _quec_downlink(command_envelope(Draw(data), _quec_password()))


def _quec_password() -> str:
    return _quec_device_and_config()[1].password


# -- QuecPython: one whole unit in virtual time ----------------------------------------------


class QuecUnit:
    """A QuecPython unit (``QuecBench``) running, its MQTT channel connected."""

    def __init__(self) -> None:
        self.bench = QuecBench()
        self.bench.boot()
        self.unit = self.bench.unit
        self.clock = self.bench.clock
        self.firmware = self.bench.firmware
        self.booted_config = self.firmware.config

    def alive(self) -> None:
        """The unit runs again; if no input changed its config, it answers code 0 (IMEI)."""
        bench = self.bench
        deadline = bench.clock.now + 60.0
        while bench.firmware.state != "running" and bench.clock.now < deadline:
            bench.clock.run_for(0.5)
        check(bench.firmware.state == "running", f"unit state {bench.firmware.state}")
        if bench.firmware.config != self.booted_config or bench.firmware.pending is not None:
            return  # a setting an input made may leave the unit without its cloud, by design
        bench.run_until(lambda: all(d.connected for d in bench.firmware.drivers.values()))
        reply = bench.command(CommandCode.GET_IMEI)
        check(reply.get("data") == bench.imei, f"code 0 answered {reply}")


_QUEC_UNIT_RIG = UnitRig(QuecUnit)


def quec_unit(data: bytes) -> None:
    """A QuecPython unit fed a serial chunk on its uart, a raw cloud message, or a command
    envelope for any code (the first byte picks)."""
    draw = Draw(data)
    kind = draw.byte() % 4

    def feed(unit: QuecUnit) -> None:
        if kind < 2:
            unit.bench.host_on("uart").write(draw.rest())
        elif kind == 2:
            unit.bench.cloud(draw.rest())
        else:
            config = unit.firmware.config
            password = "" if config is None else config.password
            unit.bench.cloud(command_envelope(draw, password))

    _QUEC_UNIT_RIG.run(data, feed)


# -- every target, and the inputs each starts from -------------------------------------------

TARGETS: Mapping[str, Target] = {
    "xgc_reader": xgc_reader,
    "xgc_downlink": xgc_downlink,
    "xgc_downlink_json": xgc_downlink_json,
    "xgc_unit_serial": xgc_unit_serial,
    "xgc_unit_actions": xgc_unit_actions,
    "xgc_unit_downlink": xgc_unit_downlink,
    "quec_frames": quec_frames,
    "quec_frames_structured": quec_frames_structured,
    "quec_commands": quec_commands,
    "quec_commands_structured": quec_commands_structured,
    "quec_unit": quec_unit,
}
UNIT_TARGETS = frozenset(("xgc_unit_serial", "xgc_unit_actions", "xgc_unit_downlink", "quec_unit"))


def reset_unit() -> None:
    """Discard the reused units (after a crash, their state is unknown)."""
    _XGC_RIG.discard()
    _QUEC_UNIT_RIG.discard()


def unit_history(name: str) -> list[bytes]:
    """The inputs the unit of unit-level target ``name`` took since it was made."""
    rig = _QUEC_UNIT_RIG if name == "quec_unit" else _XGC_RIG
    return list(rig.history)


@dataclass(frozen=True, slots=True)
class _Seeds:
    xgc_frames: tuple[bytes, ...]
    downlinks: tuple[bytes, ...]
    quec_chunks: tuple[bytes, ...]
    quec_downlinks: tuple[bytes, ...]


def _seed_sets() -> _Seeds:
    frames = tuple(text.encode() + b"\r\n" for text, *_ in SEED_FRAMES) + tuple(
        text.encode() + b"\r\n" for text in SEED_SLIPS
    )
    downlinks = (
        b'{"switch1":true}',
        b'"plain text"',
        b"raw bytes",
        b'{"configVersion":3,"interval":60,"nested":{"a":[1,2,"x"]}}',
        b"{" + OTA + b',"url":"http://files.example.com/fw.bin?a=1&b=2"}',
        b'{"a":{"b":"x\\ny"}}',
        b"[" * 20 + b"]" * 20,
    )
    request = ConfigRequest(text=IMEI_REQUEST)
    chunks = (
        request.encode(),
        CommandFrame(cid="1", topic_id="1", data='{"temp":21.5}').encode(),
        CommandFrame(cid="2", data="hello, world").encode(),
        PassthroughFrame(topic_id="1", data="passthrough").encode(),
        PassthroughFrame(data="").encode(),
        b"1,0",
        bytes.fromhex("010300000001840a"),
    )
    quec = [
        json.dumps(
            {"msg_id": 1_700_000_000_000 + code, "cmd_code": code, "password": "", "data": {}}
        )
        for code in CommandCode
    ]
    quec += [
        '{"msg_id": 1, "cmd_code": 50, "password": "", "data": {"message": '
        '{"number": "10086", "sms_msg": "hi"}}}',
        '{"msg_id": 2, "cmd_code": 61, "data": {"pins": ["1", "2", ""]}}',
        '{"msg_id": 3, "modbus": {"groups": [{"device": 1}]}}',
        '{"data": "to the serial port"}',
        '{"msg_id": 4, "cmd_code": "59", "data": {"conf": {"1": {"protocol": "mqtt"}}}}',
    ]
    return _Seeds(frames, downlinks, chunks, tuple(text.encode() for text in quec))


def seeds(name: str) -> list[bytes]:
    """Valid inputs for target ``name``, taken from the tests' frames and messages."""
    sets = _seed_sets()
    if name in ("xgc_reader", "xgc_unit_serial"):
        prefix = b"\x00" if name == "xgc_unit_serial" else b""
        return [prefix + frame for frame in sets.xgc_frames]
    if name == "xgc_unit_actions":
        out = []
        for index, action in enumerate(ACTION_NAMES):
            out.append(bytes([index, 0x10]))
            for _text, _kind, seed_action, _sn, _ts, content, _fmt in SEED_FRAMES:
                if seed_action == action and content:
                    out.append(bytes([index, 0x11]) + content.encode())
        return out
    if name in ("xgc_downlink", "xgc_downlink_json"):
        return list(sets.downlinks)
    if name == "xgc_unit_downlink":
        return [bytes([index % 3, 1]) + payload for index, payload in enumerate(sets.downlinks)]
    if name in ("quec_frames", "quec_frames_structured"):
        return list(sets.quec_chunks)
    if name in ("quec_commands", "quec_commands_structured"):
        return list(sets.quec_downlinks)
    if name == "quec_unit":
        return [b"\x00" + chunk for chunk in sets.quec_chunks] + [
            b"\x02" + payload for payload in sets.quec_downlinks
        ]
    raise KeyError(name)
