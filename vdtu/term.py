"""``vdtu term``: an interactive host console for a unit's port.

The console frames each typed line as the unit's host does, sends it, and shows what
the unit writes; how is its personality's (``--profile``, default XGC), asked of that
personality's side (``vdtu.links.term_side``). An XGC unit (``vdtu.links.xgc_term``)
takes a command the short way, ``GET_IMEI`` or ``SAVE_KEYS a:1;b:2``, framed with its
check code, and its replies are shown decoded with the code verified (and a note when
the host pipe moves away from this port); a QuecPython unit (``vdtu.links.quec_term``)
gets each line as a command-mode frame, ``1,0,len,crc32,<text>``.

The port is opened with pyserial (a PTY, a real device, or ``socket://``) and
read on the asyncio loop; stdin is read on the loop too, so piping commands in
works for scripts: ``printf 'GET_IMEI\\n' | vdtu term /tmp/vdtu-0/dtu0/uart``, and
so does a file, ``vdtu term /tmp/vdtu-0/dtu0/uart < commands.txt`` (a regular file
or ``/dev/null`` is always readable, which the loop cannot watch: it is read line by
line instead). Either way the console ends ``linger`` seconds after stdin does.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

import serial

from vdtu.firmware.registry import DEFAULT
from vdtu.links.sides import SIDES
from vdtu.links.term_side import HostConsole
from vdtu.unit import DEFAULT_BAUDS


class Console:
    """The console's state: the port, its personality's codec, and where output goes."""

    def __init__(
        self, port: serial.SerialBase, out: TextIO, *, host: HostConsole, raw: bool
    ) -> None:
        self.port = port
        self.out = out
        self.host = host
        self.raw = raw

    def send(self, text: str) -> None:
        """Frame and send one typed line."""
        if not text.strip():
            return
        try:
            data = self.host.frame(text)
        except ValueError as exc:
            print(f"! {exc}", file=self.out, flush=True)
            return
        if self.raw:
            print(f"> {data!r}", file=self.out, flush=True)
        self.port.write(data)
        if self.host.gap_s > 0:
            time.sleep(self.host.gap_s)

    def readable(self) -> None:
        """Read what the port has and print it as the codec shows it."""
        data = self.port.read(self.port.in_waiting or 1)
        if not data:
            return
        for line in self.host.receive(data):
            print(line, file=self.out, flush=True)


async def run_console(
    device: str, *, baud: int, sn: str, raw: bool, linger_s: float, profile: str = DEFAULT
) -> int:
    """Run the console for a unit of personality ``profile`` until stdin ends (then wait
    ``linger_s`` for replies)."""
    side = SIDES[profile].term
    try:
        port = serial.serial_for_url(device, baudrate=baud, timeout=0)
    except (serial.SerialException, ValueError) as exc:
        print(f"vdtu term: cannot open {device}: {exc}", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    host = side.open(device=device, sn=sn, raw=raw, bauds=DEFAULT_BAUDS)
    console = Console(port, sys.stdout, host=host, raw=raw)
    loop.add_reader(port.fileno(), console.readable)
    if sys.stdin.isatty():
        print(f"vdtu term on {device} at {baud} baud. Type e.g. {side.example}; Ctrl-D quits.")
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
