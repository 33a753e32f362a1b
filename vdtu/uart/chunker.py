"""Bytes from a serial line cut into chunks at silences, as UART firmware reads them.

A DTU's firmware does not see a byte stream: it sees what arrived before the line
went quiet (Modbus RTU's t3.5 gap; the QuecPython firmware's 1 ms read gap).
``SilenceChunker.feed`` collects bytes and (re)arms a check ``silence_s`` after the
last one; when the check finds no newer byte, the collected bytes are one chunk.
Each check is one timed callback (``DomainEnvironment.call_later``), and a stale one
(bytes arrived after it was set) does nothing, so no timer is ever cancelled.

A chunk never grows past ``max_chunk`` bytes (the UART receive buffer, 4096 by
default): a line that never goes quiet is handed over in full buffers, so a flood
costs bounded memory.
"""

from __future__ import annotations

from collections.abc import Callable

from vdtu.clock.domain import DomainEnvironment

RX_BUFFER = 4096
"""The UART receive buffer a firmware reads from: the largest chunk it ever gets."""


class SilenceChunker:
    """Collect bytes; hand them over when the line has been silent for ``silence_s``.

    Args:
        env: the SimPy environment.
        silence_s: the gap that ends a chunk.
        on_chunk: called with each chunk, in sim time.
        max_chunk: the largest chunk; a full one is handed over without waiting for silence.
    """

    __slots__ = ("_data", "_generation", "_last_at", "env", "max_chunk", "on_chunk", "silence_s")

    def __init__(
        self,
        env: DomainEnvironment,
        silence_s: float,
        on_chunk: Callable[[bytes], None],
        *,
        max_chunk: int = RX_BUFFER,
    ) -> None:
        if silence_s <= 0:
            raise ValueError(f"silence_s must be > 0, not {silence_s}")
        if max_chunk < 1:
            raise ValueError(f"max_chunk must be >= 1, not {max_chunk}")
        self.env = env
        self.max_chunk = max_chunk
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
        while len(self._data) >= self.max_chunk:
            chunk = bytes(self._data[: self.max_chunk])
            del self._data[: self.max_chunk]
            self.on_chunk(chunk)
        if not self._data:
            return
        now = float(self.env.now)
        self._last_at = now
        generation = self._generation
        self.env.call_later(self.silence_s, lambda _event: self._check(now, generation))

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
