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
