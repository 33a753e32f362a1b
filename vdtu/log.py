"""A unit's log: timestamped records in sim time, bounded, with a level threshold.

The XGC levels (SET_LOG_LEVEL, docs/spec/xgc.md#5.7): TRACE 1 .. FATAL 6, and SILENT above
them all; a record is kept when its level is at least the threshold. Records go
into a bounded ring (the newest ``capacity``) and to every sink (the CLI prints
them, the dashboard shows them). Counters that must never be lost (bad frames,
dropped bytes) live in the firmware's stats, not here.

A fleet's units log the same lines (``state registering -> mqtt-connecting``, ``firmware
1.0.0 started``): a record keeps the one copy of its text that ``_shared_text`` holds for
every unit, in a table of at most ``SHARED_TEXTS`` texts emptied when full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class LogLevel(IntEnum):
    """Log levels, numbered as SET_LOG_LEVEL numbers them (docs/spec/xgc.md#5.7)."""

    TRACE = 1
    DEBUG = 2
    INFO = 3
    WARN = 4
    ERROR = 5
    FATAL = 6
    SILENT = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    """One log line."""

    at: float
    """Sim time in seconds."""
    level: LogLevel
    source: str
    """Who wrote it: ``firmware``, ``uart``, ``rs485``, ..."""
    text: str

    def format(self) -> str:
        """``[  12.345] WARN  uart: text``."""
        return f"[{self.at:9.3f}] {self.level.name:<5} {self.source}: {self.text}"


SHARED_TEXTS = 4096
"""How many distinct log texts the shared table holds before it starts again."""
_texts: dict[str, str] = {}


def _shared_text(text: str) -> str:
    """The copy of ``text`` every record with that text keeps (about 100 bytes a line per
    unit of a fleet, for a dictionary look-up per kept record)."""
    kept = _texts.get(text)
    if kept is not None:
        return kept
    if len(_texts) >= SHARED_TEXTS:
        _texts.clear()
    _texts[text] = text
    return text


PREVIEW_BYTES = 512
"""How much of a payload an event carries."""


def preview(data: bytes, limit: int = PREVIEW_BYTES) -> str:
    """``data`` as text for an event: UTF-8 (other bytes escaped), cut at ``limit`` bytes."""
    text = data[:limit].decode("utf-8", "backslashreplace")
    return text if len(data) <= limit else f"{text}...(+{len(data) - limit} bytes)"


class UnitLog:
    """The log of one unit.

    Args:
        name: the unit's name, passed to sinks.
        capacity: how many records the ring keeps.
    """

    def __init__(self, name: str, *, capacity: int = 500) -> None:
        self.name = name
        self.threshold = LogLevel.INFO
        self.capacity = capacity
        self.records: list[LogRecord] = []
        """The newest ``capacity`` records, oldest first (a list: an empty deque costs 760
        bytes, which a fleet of 10 000 units pays 10 000 times)."""
        self.sinks: tuple[Callable[[str, LogRecord], None], ...] = ()

    observer: Callable[[str, float, str, dict[str, Any]], None] | None = None
    """Who receives the unit's events (``event``): the fleet's event stream, or nobody. A
    class attribute until set, so a unit nobody observes pays nothing for it."""

    on_cloud: Callable[[str, bool], None] | None = None
    """Who hears of the unit's cloud connection coming up (True) or going (False), its
    ``cloud`` events, without observing the rest: a load run noting first connections as
    they happen. A class attribute until set, like ``observer``."""

    describe_frames: bool = False
    """Whether the serial events carry ``frames``, the personality's decoding of their bytes
    with check codes verified (the control API's readers want them; a scenario's transcript
    does not: they say nothing the bytes do not, and cost a parse per frame)."""

    def write(self, at: float, level: LogLevel, source: str, text: str) -> None:
        """Keep and publish a record if ``level`` passes the threshold."""
        if level < self.threshold:
            return
        record = LogRecord(at=at, level=level, source=source, text=_shared_text(text))
        self.records.append(record)
        if len(self.records) > self.capacity:
            del self.records[0]
        for sink in self.sinks:
            sink(self.name, record)

    def event(self, at: float, kind: str, data: dict[str, Any]) -> None:
        """Hand an event of the unit (a state change, a notification to its host, an uplink,
        a downlink, a fault applied or cleared) to its observer, if it has one; a ``cloud``
        event also to ``on_cloud``."""
        if kind == "cloud" and self.on_cloud is not None:
            self.on_cloud(self.name, bool(data["up"]))
        observer = self.observer
        if observer is not None:
            observer(self.name, at, kind, data)
