"""The QuecPython units' side of ``vdtu term``: a typed line as a command-mode frame.

The user types the data, ``hello``, and the console sends it as the host of a unit in
command mode does (the simulated host's uplink): ``1,0,5,907060870,hello``, channel
``1`` (the default ``dtu_config.json``'s) and topic id ``0``, with the length and the
CRC32 of ``vdtu.firmware.quec.frames``. The firmware reads a chunk of line silence as
one frame, so nothing is added after it, and the console waits ``GAP_S`` after each
frame (else lines piped in back to back reach the unit as one chunk, dropped). What
the unit writes is shown as it comes, as text (its escapes where it is not printable),
one line per read of the port: the console does not decode it.
"""

from __future__ import annotations

from collections.abc import Mapping

from vdtu.firmware.quec.frames import CommandFrame

CHANNEL = "1"
"""The channel a typed line goes to (the default ``dtu_config.json``'s only one)."""
TOPIC_ID = "0"
"""Its topic id."""

GAP_S = 0.05
"""The line silence left after each frame (the firmware's chunk gap is 1 ms)."""


def frame_line(text: str) -> bytes:
    """What the console sends for one typed line: a command-mode frame of its text."""
    return CommandFrame(cid=CHANNEL, topic_id=TOPIC_ID, data=text.strip()).encode()


def show(data: bytes) -> str:
    """One line for bytes the unit wrote."""
    text = data.decode("utf-8", errors="backslashreplace").removesuffix("\n").removesuffix("\r")
    return f"< {text}" if text.isprintable() else f"< {text!r}"


class QuecHostConsole:
    """One console session on a QuecPython unit."""

    gap_s = GAP_S

    def __init__(self, *, raw: bool) -> None:
        self.raw = raw

    def frame(self, text: str) -> bytes:
        return frame_line(text)

    def receive(self, data: bytes) -> list[str]:
        if not data:
            return []
        return [f"< {data!r}", show(data)] if self.raw else [show(data)]


class QuecTermSide:
    """What ``vdtu term`` does for QuecPython units (``--sn`` does not apply)."""

    __slots__ = ()
    example = "hello (sent as 1,0,len,crc32,hello)"

    def open(self, *, device: str, sn: str, raw: bool, bauds: Mapping[str, int]) -> QuecHostConsole:
        return QuecHostConsole(raw=raw)


QUEC_TERM = QuecTermSide()
