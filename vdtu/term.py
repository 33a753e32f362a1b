"""``vdtu term``: an interactive host console for an XGC unit.

The user types a command the short way, ``GET_IMEI`` or ``SAVE_KEYS a:1;b:2``
(action, a space, the content), and the console frames it as a host does,
``$XGC#SAVE_KEYS#0#0#a:1;b:2&#<code>#\\r\\n`` with a two-digit hex check code.
A line that already starts with ``$XGC`` is sent as typed (with its check code
added when it ends at the content), and ``SET_DTU_PIPE#485`` goes out as the
shortcut it is. Everything the unit sends is decoded with the same reader the
firmware uses and shown with its check code verified.

The port is opened with pyserial (a PTY, a real device, or ``socket://``) and
read on the asyncio loop; stdin is read on the loop too, so piping commands in
works for scripts: ``printf 'GET_IMEI\\n' | vdtu term /tmp/vdtu-0/dtu0/uart``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

import serial

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


class Console:
    """The console's state: the port, the reader, and where output goes."""

    def __init__(self, port: serial.SerialBase, out: TextIO, *, sn: str, raw: bool) -> None:
        self.port = port
        self.out = out
        self.sn = sn
        self.raw = raw
        self.reader = FrameReader(max_line=1 << 20)

    def send(self, text: str) -> None:
        """Frame and send one typed line."""
        if not text.strip():
            return
        try:
            data = frame_command(text, sn=self.sn)
        except ValueError as exc:
            print(f"! {exc}", file=self.out, flush=True)
            return
        if self.raw:
            print(f"> {data!r}", file=self.out, flush=True)
        self.port.write(data)

    def readable(self) -> None:
        """Read what the port has and print it decoded."""
        data = self.port.read(self.port.in_waiting or 1)
        if not data:
            return
        self.reader.receive_data(data)
        for event in self.reader.events():
            if self.raw and isinstance(event, FrameReceived):
                print(f"< {event.frame.encode(CodeFormat.DECIMAL)!r}", file=self.out)
            print(describe(event), file=self.out, flush=True)


async def run_console(device: str, *, baud: int, sn: str, raw: bool, linger_s: float) -> int:
    """Run the console until stdin ends (then wait ``linger_s`` for replies)."""
    try:
        port = serial.serial_for_url(device, baudrate=baud, timeout=0)
    except (serial.SerialException, ValueError) as exc:
        print(f"vdtu term: cannot open {device}: {exc}", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    console = Console(port, sys.stdout, sn=sn, raw=raw)
    done = asyncio.Event()
    loop.add_reader(port.fileno(), console.readable)

    def stdin_readable() -> None:
        line = sys.stdin.readline()
        if not line:
            loop.remove_reader(sys.stdin.fileno())
            done.set()
            return
        console.send(line)

    loop.add_reader(sys.stdin.fileno(), stdin_readable)
    if sys.stdin.isatty():
        print(
            f"vdtu term on {device} at {baud} baud. "
            "Type e.g. GET_IMEI or SAVE_KEYS a:1; Ctrl-D quits."
        )
    try:
        await done.wait()
        await asyncio.sleep(linger_s)
    finally:
        loop.remove_reader(port.fileno())
        port.close()
    return 0
