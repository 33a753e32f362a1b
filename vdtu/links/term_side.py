"""What ``vdtu term`` (the host console, ``vdtu/term.py``) does for the units of one personality.

Every ``SideEntry`` has a ``TermSide`` (its ``term``). The console keeps the serial port,
stdin and the loop that reads both; its side frames each typed line as that personality's
host does and turns what the unit writes into display lines (XGC: frames decoded with their
check code verified, and a note when the host pipe moves; ``vdtu.links.xgc_term``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class HostConsole(Protocol):
    """One console session's codec: what it sends for a typed line, and what it shows."""

    @property
    def gap_s(self) -> float:
        """Seconds of line silence the console leaves after each frame (0: none), for a
        firmware that reads a chunk between silences as one frame."""

    def frame(self, text: str) -> bytes:
        """What the console sends for the typed line ``text`` (not blank).

        Raises:
            ValueError: the line cannot be framed (the message says why).
        """

    def receive(self, data: bytes) -> list[str]:
        """The lines to show for ``data``, the next bytes the unit wrote (maybe none yet)."""


class TermSide(Protocol):
    """What ``vdtu term`` does for the units of one personality."""

    @property
    def example(self) -> str:
        """What the greeting suggests typing (``GET_IMEI or SAVE_KEYS a:1``)."""

    def open(self, *, device: str, sn: str, raw: bool, bauds: Mapping[str, int]) -> HostConsole:
        """A console session on ``device`` (what the port was opened as).

        ``sn``: the SN field of sent frames, where frames have one; ``raw``: also show the
        raw bytes received; ``bauds``: each port's default baud (for messages naming a port).
        """
