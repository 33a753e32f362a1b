"""The serial line's transmit buffer: bounded, counted, and free again once the wire drains."""

from __future__ import annotations

from collections.abc import Generator

import pytest
import simpy

from vdtu.clock import VirtualClock
from vdtu.uart.line import TX_BUFFER, SerialLine


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def receive(self, data: bytes) -> None:
        self.data += data


def test_a_write_larger_than_the_transmit_buffer_keeps_what_fits_and_counts_the_rest() -> None:
    clock = VirtualClock()
    line = SerialLine(clock.env, name="uart", baud=9600)
    sink = Sink()
    line.attach(sink, "host")
    dtu = line.attach(Sink(), "dtu")
    payload = bytes(i % 251 for i in range(10_000))
    dtu.send(payload)
    assert dtu.dropped == 10_000 - TX_BUFFER
    assert dtu.sent == TX_BUFFER
    assert len(clock.env._queue) <= TX_BUFFER  # events per line bounded by the buffer
    clock.run_for(10)
    assert bytes(sink.data) == payload[:TX_BUFFER]


def test_a_writer_faster_than_the_wire_loses_only_what_overflows() -> None:
    """Writes of 100 bytes every 10 ms at 9600 baud (1 byte/ms): the buffer fills, then half
    of each write fits; once the writer stops, everything taken arrives, in order."""
    clock = VirtualClock()
    line = SerialLine(clock.env, name="rs232", baud=9600)
    sink = Sink()
    line.attach(sink, "host")
    dtu = line.attach(Sink(), "dtu")

    def writer() -> Generator[simpy.Event, None, None]:
        for index in range(200):
            dtu.send(bytes([index % 256]) * 100)
            yield clock.env.timeout(0.010)

    clock.env.process(writer())
    clock.run_for(20)
    assert dtu.sent + dtu.dropped == 20_000
    assert dtu.dropped > 0
    assert len(sink.data) == dtu.sent
    assert dtu.sent == pytest.approx(2.0 * 960 + TX_BUFFER, rel=0.05)  # the wire's worth + buffer


def test_an_unpaced_sender_is_not_limited() -> None:
    """The host's side of a point-to-point line takes no wire time and has no buffer limit."""
    clock = VirtualClock()
    line = SerialLine(clock.env, name="uart", baud=115200)
    sink = Sink()
    line.attach(sink, "dtu")
    host = line.attach(Sink(), "host", paced=False)
    host.send(b"x" * 10_000)
    clock.run_for(1)
    assert host.dropped == 0
    assert len(sink.data) == 10_000
