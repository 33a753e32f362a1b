"""Bytes from a serial line cut into chunks at silences, as UART firmware reads them.

A DTU's firmware does not see a byte stream: it sees what arrived before the line
went quiet (Modbus RTU's t3.5 gap; the QuecPython firmware's 1 ms read gap).
``SilenceChunker.feed`` collects bytes and (re)arms a check ``silence_s`` after the
last one; when the check finds no newer byte, the collected bytes are one chunk.
Each check is one SimPy timeout, and a stale one (bytes arrived after it was set)
does nothing, so no timer is ever cancelled.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy


class SilenceChunker:
    """Collect bytes; hand them over when the line has been silent for ``silence_s``.

    Args:
        env: the SimPy environment.
        silence_s: the gap that ends a chunk.
        on_chunk: called with each chunk, in sim time.
    """

    __slots__ = ("_data", "_generation", "_last_at", "env", "on_chunk", "silence_s")

    def __init__(
        self, env: simpy.Environment, silence_s: float, on_chunk: Callable[[bytes], None]
    ) -> None:
        if silence_s <= 0:
            raise ValueError(f"silence_s must be > 0, not {silence_s}")
        self.env = env
        self.silence_s = silence_s
        self.on_chunk = on_chunk
        self._data = bytearray()
        self._last_at = -1.0
        self._generation = 0

    def feed(self, data: bytes) -> None:
        """Bytes arrived now."""
        if not data:
            return
        self._data += data
        now = float(self.env.now)
        self._last_at = now
        generation = self._generation
        check = self.env.timeout(self.silence_s)
        check.callbacks.append(lambda _event: self._check(now, generation))

    def reset(self) -> None:
        """Forget what was collected (power-off); pending checks become no-ops."""
        self._data.clear()
        self._generation += 1

    def _check(self, heard_at: float, generation: int) -> None:
        if generation != self._generation or heard_at != self._last_at or not self._data:
            return
        chunk = bytes(self._data)
        self._data.clear()
        self.on_chunk(chunk)
