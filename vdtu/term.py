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
works for scripts: ``printf 'GET_IMEI\\n' | vdtu term /tmp/vdtu-0/dtu0/uart``, and
so does a file, ``vdtu term /tmp/vdtu-0/dtu0/uart < commands.txt`` (a regular file
or ``/dev/null`` is always readable, which the loop cannot watch: it is read line by
line instead). Either way the console ends ``linger`` seconds after stdin does.

When the unit confirms a new host pipe (``SET_DTU_PIPE#485-ok``, or the
``SET_DTU_PIPE`` reply) that is not the port the console is on, the unit answers
there from now on and stays silent here; the console says so and names the port to
open, with the baud and the command that brings the pipe back.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
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
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.unit import DEFAULT_BAUDS

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


def pipe_note(pipe: Pipe, device: str) -> str | None:
    """What to tell the user when the host pipe moved to ``pipe`` while the console is on
    ``device``; None when ``device`` is that pipe's port."""
    here = Path(device).name if "://" not in device else None
    if here == pipe.port:
        return None
    ports = {p.port: p for p in Pipe}
    target = str(Path(device).with_name(pipe.port)) if here in ports else f"<its {pipe.port} port>"
    back = ports[here].value if here in ports else Pipe.UART.value
    return (
        f"! the host pipe is now {PIPE_NAMES[pipe]}: the unit answers on its {pipe.port} port, "
        f"no longer here; open it with: vdtu term --baud {DEFAULT_BAUDS[pipe.port]} {target} "
        f"(SET_DTU_PIPE#{back} there brings the pipe back)"
    )


class Console:
    """The console's state: the port, the reader, and where output goes."""

    def __init__(
        self, port: serial.SerialBase, out: TextIO, *, sn: str, raw: bool, device: str = ""
    ) -> None:
        self.port = port
        self.device = device
        """What the port was opened as (names the sibling ports in the pipe note)."""
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
            pipe = confirmed_pipe(event)
            note = None if pipe is None else pipe_note(pipe, self.device)
            if note is not None:
                print(note, file=self.out, flush=True)


async def run_console(device: str, *, baud: int, sn: str, raw: bool, linger_s: float) -> int:
    """Run the console until stdin ends (then wait ``linger_s`` for replies)."""
    try:
        port = serial.serial_for_url(device, baudrate=baud, timeout=0)
    except (serial.SerialException, ValueError) as exc:
        print(f"vdtu term: cannot open {device}: {exc}", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    console = Console(port, sys.stdout, sn=sn, raw=raw, device=device)
    loop.add_reader(port.fileno(), console.readable)
    if sys.stdin.isatty():
        print(
            f"vdtu term on {device} at {baud} baud. "
            "Type e.g. GET_IMEI or SAVE_KEYS a:1; Ctrl-D quits."
        )
    try:
        await send_input(loop, sys.stdin, console)
        await asyncio.sleep(linger_s)
    finally:
        loop.remove_reader(port.fileno())
        port.close()
    return 0


async def send_input(loop: asyncio.AbstractEventLoop, source: TextIO, console: Console) -> None:
    """Send every line of ``source`` in order until it ends.

    A terminal or a pipe is watched on the loop. A regular file or ``/dev/null`` is always
    readable, and epoll refuses such a file (PermissionError): it is read line by line,
    the loop running between lines so that replies are printed as they come.
    """
    done = asyncio.Event()

    def readable() -> None:
        line = source.readline()
        if not line:
            loop.remove_reader(source.fileno())
            done.set()
            return
        console.send(line)

    try:
        loop.add_reader(source.fileno(), readable)
    except PermissionError:
        for line in source:
            console.send(line)
            await asyncio.sleep(0)
        return
    await done.wait()
