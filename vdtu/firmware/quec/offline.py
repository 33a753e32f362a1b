"""Offline storage: uplinks a channel could not send, kept for when it comes back.

The v2 firmware's ``history`` module (docs/spec/quec.md#12.1): a bounded list, at most
100 items, the oldest dropped when a new one arrives; kept in flash
(``/usr/dtu_data.hist``) so a reboot does not lose it. vdtu keeps each item with
the channel and topic it was meant for and replays a channel's items, in order,
when that channel connects again (the firmware replays only at boot and only to
the first channel, which sends data where it was not meant to go; the issue asks
for replay on reconnect). Every dropped item is counted, so loss is never silent.

Pure: the unit's flash document holds ``to_json()``; ``from_json`` reads it back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vdtu.errors import ConfigError

CAPACITY = 100
"""The firmware's limit (``history.py``: ``max_hist_num = 100``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stored:
    """One uplink waiting for its channel."""

    channel: str
    """The ``conf`` key of the channel."""
    topic_id: str | None
    """The publish topic id (MQTT-type channels) or request id (http); None otherwise."""
    payload: str
    """Exactly what would have been sent."""

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "topic_id": self.topic_id, "payload": self.payload}


class OfflineStore:
    """A bounded FIFO of ``Stored`` uplinks.

    Args:
        capacity: how many items are kept (the oldest goes first).
    """

    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity}")
        self.capacity = capacity
        self._items: list[Stored] = []  # a list: an empty deque costs 760 bytes per unit
        self.dropped = 0
        """Items pushed out by newer ones: lost, and counted."""

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Stored]:
        return iter(tuple(self._items))

    def add(self, item: Stored) -> Stored | None:
        """Keep ``item``; returns the oldest item dropped to make room, if any."""
        dropped = None
        if len(self._items) >= self.capacity:
            dropped = self._items.pop(0)
            self.dropped += 1
        self._items.append(item)
        return dropped

    def take(self, channel: str) -> list[Stored]:
        """Remove and return the items of ``channel``, oldest first."""
        taken = [item for item in self._items if item.channel == channel]
        if taken:
            self._items = [item for item in self._items if item.channel != channel]
        return taken

    def put_back(self, items: list[Stored]) -> None:
        """Return items ``take`` gave out but could not be sent, ahead of newer ones.

        If that overflows the store, the oldest items are dropped (and counted).
        """
        self._items[:0] = items
        excess = len(self._items) - self.capacity
        if excess > 0:
            del self._items[:excess]
            self.dropped += excess

    def to_json(self) -> dict[str, Any]:
        return {"data": [item.to_json() for item in self._items], "dropped": self.dropped}

    @classmethod
    def from_json(cls, raw: object, capacity: int = CAPACITY) -> OfflineStore:
        """Read what ``to_json`` wrote.

        Raises:
            ConfigError: the document is not in that shape (naming the bad item).
        """
        store = cls(capacity)
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
            raise ConfigError(f'offline store: expected {{"data": [...]}}, not {raw!r:.80}')
        dropped = raw.get("dropped", 0)
        if not isinstance(dropped, int) or dropped < 0:
            raise ConfigError(f"offline store: dropped must be a count >= 0, not {dropped!r}")
        for index, entry in enumerate(raw["data"]):
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("channel"), str)
                or not isinstance(entry.get("payload"), str)
                or not isinstance(entry.get("topic_id"), str | None)
            ):
                raise ConfigError(
                    f"offline store: data.{index} must be "
                    f'{{"channel": str, "topic_id": str|null, "payload": str}}, not {entry!r:.80}'
                )
            store.add(
                Stored(
                    channel=entry["channel"], topic_id=entry["topic_id"], payload=entry["payload"]
                )
            )
        store.dropped += dropped
        return store
