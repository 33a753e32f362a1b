"""Bytes cut into chunks at line silences, in virtual time."""

from __future__ import annotations

from collections.abc import Generator

import pytest
import simpy

from vdtu.clock import VirtualClock
from vdtu.uart.chunker import SilenceChunker


def test_bytes_closer_than_the_gap_form_one_chunk_and_a_gap_ends_it() -> None:
    """a, b 0.5 ms apart are one chunk (handed over 1 ms after b); c after a 5 ms gap is another."""
    clock = VirtualClock()
    chunks: list[tuple[float, bytes]] = []
    chunker = SilenceChunker(clock.env, 0.001, lambda chunk: chunks.append((clock.now, chunk)))

    def talk() -> Generator[simpy.Event, None, None]:
        chunker.feed(b"a")
        yield clock.env.timeout(0.0005)
        chunker.feed(b"b")
        yield clock.env.timeout(0.005)
        chunker.feed(b"c")

    clock.env.process(talk())
    clock.run_for(1)
    assert [chunk for _at, chunk in chunks] == [b"ab", b"c"]
    assert chunks[0][0] == pytest.approx(0.0015)


def test_reset_drops_what_was_collected() -> None:
    """After reset (power-off) the pending bytes are never handed over."""
    clock = VirtualClock()
    chunks: list[bytes] = []
    chunker = SilenceChunker(clock.env, 0.001, chunks.append)
    chunker.feed(b"lost")
    chunker.reset()
    clock.run_for(1)
    chunker.feed(b"kept")
    clock.run_for(1)
    assert chunks == [b"kept"]


def test_gap_must_be_positive() -> None:
    """A zero gap is refused with the value named."""
    with pytest.raises(ValueError, match="silence_s must be > 0, not 0"):
        SilenceChunker(VirtualClock().env, 0, print)


def test_a_line_that_never_goes_quiet_is_handed_over_in_full_buffers() -> None:
    """A flood with no silence comes out as max_chunk-sized chunks; nothing is held past it."""
    clock = VirtualClock()
    chunks: list[bytes] = []
    chunker = SilenceChunker(clock.env, 0.001, chunks.append, max_chunk=100)
    for _ in range(25):
        chunker.feed(bytes(range(10)) * 3)  # 30 bytes at the same instant: no silence
    assert [len(chunk) for chunk in chunks] == [100] * 7
    clock.run_for(1)
    assert [len(chunk) for chunk in chunks] == [100] * 7 + [50]
    assert b"".join(chunks) == bytes(range(10)) * 75
