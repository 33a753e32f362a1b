"""The XGC units' side of ``vdtu term``: framing a typed line, decoding what the unit writes.

The user types a command the short way, ``GET_IMEI`` or ``SAVE_KEYS a:1;b:2``
(action, a space, the content), and the console frames it as a host does,
``$XGC#SAVE_KEYS#0#0#a:1;b:2&#<code>#\\r\\n`` with a two-digit hex check code.
A line that already starts with ``$XGC`` is sent as typed (with its check code
added when it ends at the content), and ``SET_DTU_PIPE#485`` goes out as the
shortcut it is. Everything the unit sends is decoded with the same reader the
firmware uses and shown with its check code verified.

When the unit confirms a new host pipe (``SET_DTU_PIPE#485-ok``, or the
``SET_DTU_PIPE`` reply) that is not the port the console is on, the unit answers
there from now on and stays silent here; the console says so and names the port to
open, with the baud and the command that brings the pipe back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

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
    check_code,
    format_code,
)
from vdtu.firmware.xgc.pipe import Pipe

PIPE_NAMES = {Pipe.UART: "UART", Pipe.RS232: "RS-232", Pipe.RS485: "RS-485"}


def frame_command(text: str, *, sn: str = "0") -> bytes:
    """What the console sends for one typed line (see the module comment)."""
    line = text.strip()
    if line.startswith("SET_DTU_PIPE#"):
        return line.encode() + b"\r\n"
    if line.startswith("$XGC"):
        if line.endswith("#") and "&#" in line:
            return line.encode() + b"\r\n"
        body = line.encode()
        return body + b"&#" + format_code(check_code(body), CodeFormat.HEX).encode() + b"#\r\n"
    action, _, content = line.partition(" ")
    frame = Frame(
        kind=FrameKind.COMMAND, action=action.upper(), sn=sn, timestamp="0", content=content or None
    )
    return frame.encode(CodeFormat.HEX)


def describe(event: ReaderEvent) -> str:
    """One human line for something the unit sent."""
    match event:
        case FrameReceived(frame=frame):
            mark = (
                "ok" if event.code_ok else f"BAD CODE {event.code}, expected {event.expected_code}"
            )
            content = "" if frame.content is None else frame.content
            return (
                f"< {frame.action:<14} {content}   [{frame.kind.value} sn={frame.sn} code {mark}]"
            )
        case ShortcutReceived(value=value):
            return f"< SET_DTU_PIPE#{value}"
        case MalformedFrame(line=line, reason=reason):
            return f"< (malformed: {reason}) {line!r}"
        case GarbageDiscarded(data=data):
            return f"< (not a frame) {data!r}"
        case LineTooLong(size=size):
            return f"< (line of {size} bytes dropped)"


def confirmed_pipe(event: ReaderEvent) -> Pipe | None:
    """The host pipe the unit confirms with ``event`` (``SET_DTU_PIPE#485-ok`` or the
    ``SET_DTU_PIPE`` reply ``485-ok``), else None."""
    match event:
        case ShortcutReceived(value=value):
            text = value
        case FrameReceived(frame=frame) if frame.action == "SET_DTU_PIPE":
            text = frame.content or ""
        case _:
            return None
    if not text.endswith("-ok"):
        return None
    try:
        return Pipe(text.removesuffix("-ok").lower())
    except ValueError:
        return None


def pipe_note(pipe: Pipe, device: str, bauds: Mapping[str, int]) -> str | None:
    """What to tell the user when the host pipe moved to ``pipe`` while the console is on
    ``device`` (``bauds``: each port's default baud); None when ``device`` is that pipe's
    port."""
    here = Path(device).name if "://" not in device else None
    if here == pipe.port:
        return None
    ports = {p.port: p for p in Pipe}
    target = str(Path(device).with_name(pipe.port)) if here in ports else f"<its {pipe.port} port>"
    back = ports[here].value if here in ports else Pipe.UART.value
    return (
        f"! the host pipe is now {PIPE_NAMES[pipe]}: the unit answers on its {pipe.port} port, "
        f"no longer here; open it with: vdtu term --baud {bauds[pipe.port]} {target} "
        f"(SET_DTU_PIPE#{back} there brings the pipe back)"
    )


class XgcHostConsole:
    """One console session on an XGC unit: the frame reader and what the lines need."""

    gap_s = 0.0
    """The reader takes frames by their line end: none needed."""

    def __init__(self, *, device: str, sn: str, raw: bool, bauds: Mapping[str, int]) -> None:
        self.device = device
        """What the port was opened as (names the sibling ports in the pipe note)."""
        self.sn = sn
        self.raw = raw
        self.bauds = bauds
        self.reader = FrameReader(max_line=1 << 20)

    def frame(self, text: str) -> bytes:
        return frame_command(text, sn=self.sn)

    def receive(self, data: bytes) -> list[str]:
        self.reader.receive_data(data)
        lines: list[str] = []
        for event in self.reader.events():
            if self.raw and isinstance(event, FrameReceived):
                lines.append(f"< {event.frame.encode(CodeFormat.DECIMAL)!r}")
            lines.append(describe(event))
            pipe = confirmed_pipe(event)
            note = None if pipe is None else pipe_note(pipe, self.device, self.bauds)
            if note is not None:
                lines.append(note)
        return lines


class XgcTermSide:
    """What ``vdtu term`` does for XGC units."""

    __slots__ = ()
    example = "GET_IMEI or SAVE_KEYS a:1"

    def open(self, *, device: str, sn: str, raw: bool, bauds: Mapping[str, int]) -> XgcHostConsole:
        return XgcHostConsole(device=device, sn=sn, raw=raw, bauds=bauds)


XGC_TERM = XgcTermSide()
