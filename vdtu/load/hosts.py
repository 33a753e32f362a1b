"""Simulated host MCUs for headless load-test units: they write uplinks on the unit's serial port.

Each host sits on its unit's ``uart`` line (an unpaced tap, like a PTY host) and,
once the unit has first reached its cloud, sends an uplink every ``interval_s`` while
the unit is up (not while it is off or booting again after a reset; a host stopped and
started again, as the ramp does with a unit it drops and brings back, waits for the
cloud again)
(each period drawn within +/-20 % so a fleet does not send in step). An uplink
carries the unit id, a per-unit sequence number and the send time in Unix ms
(``payload.encode_uplink``), so the verifying subscriber can count what the cloud
received. How the uplink is framed, and how a host answers the command probe, is the
personality's (its ``HostCodec``: an XGC host writes a ``DATA_PACK`` and echoes the
probe's ``probe:<k>`` downlink back up; a QuecPython host writes a command-mode frame
on channel 1 and answers nothing, the unit answering its probe by itself). Timers are
timed callbacks (``DomainEnvironment.call_later``): no process per host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import simpy

from vdtu.clock import DomainEnvironment
from vdtu.firmware.personality import Phase
from vdtu.load.payload import encode_uplink
from vdtu.uart.line import Tap
from vdtu.unit import Unit

JITTER = 0.2


class RandomSource(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


PROBE_KEY = "probe"


class Host:
    """The host MCU of one load-test unit.

    Args:
        unit: the unit it is wired to.
        unit_index: the unit's id in the fleet (carried in every uplink).
        rng: its random source (the periods' jitter).
        interval_s: the mean time between two uplinks (None: it sends none).
        payload_size: the size of an uplink's JSON text, in characters.
        epoch_s: Unix time at sim time 0.
        published: called as ``published(unit_index, seq)`` for each uplink handed to the unit.
        jobs: it carries out the cloud's configuration and firmware jobs (``HostCodec``).
    """

    __slots__ = (
        "_ticking",
        "codec",
        "env",
        "epoch_s",
        "interval_s",
        "payload_size",
        "published",
        "rng",
        "sending",
        "seq",
        "stopped",
        "tap",
        "unit",
        "unit_index",
    )

    def __init__(
        self,
        unit: Unit,
        *,
        unit_index: int,
        rng: RandomSource,
        interval_s: float | None,
        payload_size: int,
        epoch_s: float,
        published: Callable[[int, int], None],
        jobs: bool = False,
    ) -> None:
        self.unit = unit
        self.env: DomainEnvironment = unit.env
        self.unit_index = unit_index
        self.rng = rng
        self.interval_s = interval_s
        self.payload_size = payload_size
        self.epoch_s = epoch_s
        self.published = published
        self.seq = 0
        self.sending = False
        self.stopped = False
        self._ticking = False
        self.codec = unit.personality.host_codec(PROBE_KEY, jobs=jobs)
        self.tap: Tap = unit.lines["uart"].attach(self, "host", paced=False)

    def start(self) -> None:
        """Begin, or begin again after ``stop``: the first tick comes within one period, and
        the host waits for its unit to reach the cloud before it sends."""
        self.stopped = False
        self.sending = False
        if self.interval_s is not None and not self._ticking:
            self._ticking = True
            self._later(self.rng.uniform(0.0, self.interval_s))

    def stop(self) -> None:
        """Send nothing more (until ``start``)."""
        self.stopped = True

    def _later(self, delay_s: float) -> None:
        self.env.call_later(delay_s, self._tick)

    def _tick(self, _event: simpy.Event) -> None:
        if self.stopped:
            self._ticking = False
            return
        if self.sending or self.cloud_connected():
            self.sending = True
            if self.unit_ready():
                self.send_uplink()
        assert self.interval_s is not None  # only a host with a period ticks
        self._later(self.interval_s * self.rng.uniform(1 - JITTER, 1 + JITTER))

    def unit_ready(self) -> bool:
        """Whether the unit takes what its host writes: it is powered and past its boot (a
        host MCU waits for its DTU to come up after a reset rather than write into it: an
        XGC unit that is still starting answers ``error:no-project``)."""
        unit = self.unit
        return unit.powered and unit.firmware.unit_state.phase not in (Phase.OFF, Phase.BOOTING)

    def cloud_connected(self) -> bool:
        """Whether the unit has reached its cloud (the host starts then and keeps going)."""
        return self.unit.firmware.cloud_connected

    def now_ms(self) -> int:
        return int((self.epoch_s + float(self.env.now)) * 1000)

    def send_uplink(self) -> None:
        """Write the next uplink on the serial port."""
        self.seq += 1
        text = encode_uplink(
            unit=self.unit_index, seq=self.seq, sent_ms=self.now_ms(), size=self.payload_size
        )
        self.tap.send(self.codec.frame_uplink(text))
        self.published(self.unit_index, self.seq)

    # -- the line's node interface: what the unit writes to the host -------------------

    def receive(self, data: bytes) -> None:
        """Bytes from the unit: what the personality's host answers goes back."""
        for answer in self.codec.answers(data):
            self.tap.send(answer)
