"""The XGC DTU's serial side: its three ports, the host pipe, frames in and replies out.

How it works. ``HostLink`` attaches one node to each serial line (``uart``,
``rs232``, ``rs485``) and keeps a ``FrameReader`` per port (made when the port first
hears bytes after power-on, so idle ports cost nothing). The host protocol runs on
the port that SET_DTU_PIPE selected (``pipe``; the firmware persists it, ``uart`` by
default); on the other ports only the shortcut ``SET_DTU_PIPE#...`` is recognised
(docs/spec/xgc.md#7), so a host that only has RS-485 can switch the pipe. While the
pipe is not 485, whatever arrives on the RS-485 bus is collected until the line has
been silent for t3.5 and reported to the host as ``485_RECEIVE`` (docs/spec/xgc.md#6.8).

What gets no reply (docs/spec/xgc.md#4.3) is logged and counted here: bytes before
the firmware listens, bytes outside any frame, frames on a port that is not the
pipe, ``$XGC_ACK`` frames from the host. A malformed frame, an overlong line and a
wrong check code (``--check strict``) are answered with the one error form
(docs/spec/xgc.md#4.2). A good command frame, a shortcut and a bus burst go to the
firmware through ``LinkHost``. Replies and notifications carry the IMEI as SN and
``0`` as timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from vdtu.clock import DomainEnvironment
from vdtu.firmware.xgc.codec import (
    Frame,
    FrameKind,
    FrameReader,
    FrameReceived,
    GarbageDiscarded,
    LineTooLong,
    MalformedFrame,
    ReaderEvent,
    ShortcutReceived,
    parse_written,
)
from vdtu.firmware.xgc.content import redact, redact_line, sanitize
from vdtu.firmware.xgc.options import CheckMode, XgcOptions
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.log import LogLevel, preview
from vdtu.uart.chunker import SilenceChunker
from vdtu.uart.line import SerialLine, Tap


@dataclass(slots=True)
class XgcStats:
    """Counters that are never lost, whatever the log level."""

    frames: int = 0
    bad_check_codes: int = 0
    malformed: int = 0
    garbage_bytes: int = 0
    long_lines: int = 0
    error_replies: int = 0
    notifications: int = 0
    bytes_lost_booting: int = 0
    frames_on_other_ports: int = 0
    bus_bursts: int = 0
    uplinks_lost_at_power_off: int = 0
    flash_errors: int = 0
    """Flash writes that failed (full, read-only, I/O); the command got its error reply."""
    downlinks_refused: int = 0
    """Cloud messages not passed on to the host (over a limit, or unfit for the line)."""


class LinkHost(Protocol):
    """What the serial side needs from the firmware (``XgcFirmware``)."""

    @property
    def imei(self) -> str:
        """The SN of every frame the DTU sends."""
        ...

    def write_log(self, level: LogLevel, source: str, text: str) -> None:
        """Write to the unit's log."""

    @property
    def observed(self) -> bool:
        """Whether anyone takes the unit's events (build an event's text only then)."""

    @property
    def describes_frames(self) -> bool:
        """Whether its serial events carry the frames decoded (``UnitLog.describe_frames``)."""

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Hand an event of the unit to its observer (``UnitLog.event``)."""

    def run_command(self, port: str, frame: Frame) -> None:
        """A command frame arrived on the pipe, its check code accepted."""

    def run_shortcut(self, port: str, value: str) -> None:
        """``SET_DTU_PIPE#<value>`` arrived on ``port`` (any port)."""

    def bus_burst(self, burst: bytes) -> None:
        """A burst was heard on the RS-485 bus (and notified to the host)."""


def event_text(data: bytes) -> str:
    """What the ``to-host`` event shows of ``data``: its preview, secrets hidden."""
    return redact(preview(data))


@dataclass(slots=True)
class _PortNode:
    link: HostLink
    port: str

    def receive(self, data: bytes) -> None:
        self.link.receive(self.port, data)


class HostLink:
    """The ports of one XGC unit (see the module comment).

    Args:
        env: the SimPy environment.
        lines: the unit's serial lines by port.
        host: the firmware.
        options: the firmware's options (check codes, line limit, code format).
        stats: the firmware's counters.
    """

    __slots__ = (
        "_bus",
        "_bus_silence_s",
        "_host",
        "_last_reply",
        "_options",
        "_readers",
        "_stats",
        "_taps",
        "listening",
        "pipe",
    )

    def __init__(
        self,
        env: DomainEnvironment,
        lines: Mapping[str, SerialLine],
        *,
        host: LinkHost,
        options: XgcOptions,
        stats: XgcStats,
    ) -> None:
        self._host = host
        self._options = options
        self._stats = stats
        self.pipe = Pipe.UART
        """The host pipe; the firmware sets it from the flash at power-on."""
        self.listening = False
        """Whether the firmware hears its ports (from ``firmware_start_s`` after power-on)."""
        self._bus: SilenceChunker | None = None
        """What the bus says between silences, made with its first bytes (most units' buses
        never say anything to their DTU)."""
        self._bus_silence_s = lines["rs485"].silence_s
        """The silence that ends a burst: the bus's when the firmware was built."""
        self._readers: dict[str, FrameReader] = {}
        """The frame reader of each port that has heard bytes since power-on (made on first
        use: most units only ever hear their host pipe)."""
        self._last_reply: tuple[str, str, bytes, str | None] | None = None
        """(action, content, bytes, event text or None) of the last reply (see ``reply``)."""
        self._taps: dict[str, Tap] = {
            port: line.attach(_PortNode(self, port), "dtu") for port, line in lines.items()
        }

    def switch(self, pipe: Pipe) -> None:
        """Speak the host protocol on ``pipe`` from now on."""
        self.pipe = pipe
        self._readers.pop(pipe.port, None)

    def reset(self) -> None:
        """Power-off: nothing more is heard; partial input is forgotten."""
        self.listening = False
        if self._bus is not None:
            self._bus.reset()
        self._readers.clear()

    def sending_until(self, port: str) -> float:
        """When what the unit has sent on ``port`` will have left (its transmitter is idle)."""
        return self._taps[port].busy_until

    def buffered(self, port: str) -> int:
        """Bytes ``port``'s frame reader holds (0 when the port has none)."""
        reader = self._readers.get(port)
        return 0 if reader is None else reader.buffered

    # -- receiving ------------------------------------------------------------------------------

    def receive(self, port: str, data: bytes) -> None:
        """Bytes arrived on a port (called by the line, in sim time)."""
        stats, host = self._stats, self._host
        if not self.listening:
            stats.bytes_lost_booting += len(data)
            host.write_log(
                LogLevel.WARN, port, f"{len(data)} bytes lost: the firmware is not running yet"
            )
            return
        if port == "rs485" and self.pipe is not Pipe.RS485:
            bus = self._bus
            if bus is None:
                line = self._taps[port].line
                bus = self._bus = SilenceChunker(line.env, self._bus_silence_s, self._bus_burst)
            bus.feed(data)
        reader = self._readers.get(port)
        if reader is None:
            reader = self._readers[port] = FrameReader(
                max_line=self._options.max_line, lone_cr_ends_line=self._options.lone_cr_ends_line
            )
        reader.receive_data(data)
        for event in reader.events():
            if port == self.pipe.port:
                self._handle(port, event)
            elif isinstance(event, ShortcutReceived):
                host.run_shortcut(port, event.value)
            elif isinstance(event, FrameReceived):
                stats.frames_on_other_ports += 1
                host.write_log(
                    LogLevel.WARN,
                    port,
                    f"{event.frame.action} ignored: the host pipe is {self.pipe.value}, not {port}",
                )

    def _handle(self, port: str, event: ReaderEvent) -> None:
        stats, host = self._stats, self._host
        match event:
            case FrameReceived():
                self._handle_frame(port, event)
            case ShortcutReceived():
                host.run_shortcut(port, event.value)
            case MalformedFrame():
                stats.malformed += 1
                host.write_log(
                    LogLevel.WARN,
                    port,
                    f"malformed frame ({event.reason}): {redact_line(event.line)!r}",
                )
                self.reply_error(port, event.action or "ERROR", "malformed-frame", event.reason)
            case GarbageDiscarded():
                stats.garbage_bytes += len(event.data)
                host.write_log(
                    LogLevel.WARN,
                    port,
                    f"{len(event.data)} bytes outside any frame: {redact_line(event.data, 40)!r}",
                )
            case LineTooLong():
                stats.long_lines += 1
                host.write_log(
                    LogLevel.WARN, port, f"line of {event.size} bytes without a line end dropped"
                )
                self.reply_error(
                    port,
                    "ERROR",
                    "line-too-long",
                    f"{event.size} bytes without a line end; the limit is {self._options.max_line}",
                )

    def _handle_frame(self, port: str, event: FrameReceived) -> None:
        frame, host, options = event.frame, self._host, self._options
        self._stats.frames += 1
        if host.observed:
            text = redact(preview(frame.body()))
            seen: dict[str, Any] = {"port": port, "text": text, "code_ok": event.code_ok}
            if host.describes_frames:
                seen["frames"] = [_view(event)]
            host.event("from-host", seen)
        if frame.kind is FrameKind.ACK:
            host.write_log(
                LogLevel.WARN, port, f"{frame.action}: $XGC_ACK frames are sent by the DTU; ignored"
            )
            return
        if not event.code_ok and options.check_mode is not CheckMode.OFF:
            self._stats.bad_check_codes += 1
            expected = event.expected_code
            detail = f"got {event.code} expected {expected:02X} (hex) or {expected} (decimal)"
            host.write_log(LogLevel.WARN, port, f"{frame.action}: bad check code, {detail}")
            if options.check_mode is CheckMode.STRICT:
                self.reply_error(port, frame.action, "bad-check-code", detail)
                return
        if not event.crlf:
            host.write_log(LogLevel.DEBUG, port, f"{frame.action}: line ended in LF without CR")
        host.run_command(port, frame)

    def _bus_burst(self, burst: bytes) -> None:
        if not self.listening:
            return
        self._stats.bus_bursts += 1
        self.notify("485_RECEIVE", burst.hex().upper())
        self._host.bus_burst(burst)

    # -- sending --------------------------------------------------------------------------------

    def send(self, port: str, data: bytes, text: str | None = None) -> float:
        """Transmit ``data`` on ``port``; returns when its last byte has arrived. ``text``:
        the event's text for ``data``, if the caller has it already."""
        if self._host.observed:
            if text is None:
                text = event_text(data)
            event: dict[str, Any] = {"port": port, "text": text}
            if self._host.describes_frames:
                event["frames"] = [_view(found) for found in parse_written(data)]
            self._host.event("to-host", event)
        return self._taps[port].send(data)

    def reply(self, port: str, action: str, content: str) -> float:
        """Answer a command on the port it came from; returns when the reply has left.

        The last reply's bytes and, while the unit is observed, its event text are kept: a
        host that sends data gets the same ``ok`` for every DATA_PACK, and it is framed once.
        """
        last = self._last_reply
        if last is None or last[0] != action or last[1] != content:
            data = self._frame(action, content).encode(self._options.code_format)
            text = event_text(data) if self._host.observed else None
            last = self._last_reply = (action, content, data, text)
        return self.send(port, last[2], last[3])

    def reply_error(self, port: str, action: str, code: str, message: str) -> None:
        """Answer with the one error form: ``error:<code>;msg:<text>`` (secrets hidden)."""
        self._stats.error_replies += 1
        self.reply(port, action, f"error:{code};msg:{sanitize(redact(message))}")

    def notify(self, action: str, content: str) -> None:
        """Send a notification to the host on the pipe (only while listening)."""
        self.notify_frame(self._frame(action, content))

    def notify_frame(self, frame: Frame) -> None:
        """Send a prepared frame (a notification, a cloud message) to the host on the pipe."""
        if not self.listening:
            return
        self._stats.notifications += 1
        self.send(self.pipe.port, frame.encode(self._options.code_format))

    def _frame(self, action: str, content: str) -> Frame:
        return Frame(
            kind=FrameKind.ACK, action=action, sn=self._host.imei, timestamp="0", content=content
        )


def _view(found: FrameReceived | ShortcutReceived | MalformedFrame) -> dict[str, Any]:
    """A frame decoded for the event stream (docs/control-api.md): its fields, its check
    code and whether it matches; the content with secrets hidden, cut as a preview is."""
    match found:
        case FrameReceived(frame=frame):
            content = "" if frame.content is None else redact(preview(frame.content.encode()))
            fields = {"action": frame.action, "sn": frame.sn, "timestamp": frame.timestamp,
                      "content": content}  # fmt: skip
            check = f"{found.code} (expected {found.expected_code:02X} hex, {found.expected_code})"
            return {"kind": str(frame.kind).lstrip("$"), "fields": fields, "check": check,
                    "check_ok": found.code_ok}  # fmt: skip
        case ShortcutReceived(value=value):
            return {"kind": "SET_DTU_PIPE", "fields": {"value": value}, "check": None,
                    "check_ok": None}  # fmt: skip
        case MalformedFrame(reason=reason):
            return {"kind": "malformed", "fields": {"reason": reason}, "check": None,
                    "check_ok": False}  # fmt: skip
