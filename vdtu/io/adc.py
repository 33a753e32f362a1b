"""The DTU's analog inputs: a few ADC channels that read a voltage in mV.

How it works: each channel has the voltage the outside world puts on it
(``set``, from a scenario or the dashboard). ``read`` is the firmware taking a
conversion: that voltage plus Gaussian noise of ``noise_mv`` (standard
deviation) from the ADC's own rng, rounded and clamped to 0..full scale. The
last conversion of each channel is kept for displays.

Invariants: the set of channels is fixed at construction; ``snapshot()``
never draws from the rng (watching must not change the run); a power cycle
forgets the last conversions but not the input voltages, which belong to
whatever is wired to the pins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import simpy

    from vdtu.clock.rng import RandomSource

DEFAULT_CHANNELS: Mapping[int, float] = MappingProxyType({0: 1200.0, 1: 3300.0})
"""Channel 0 at 1.2 V, channel 1 at 3.3 V."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdcSnapshot:
    """A copy of the ADC state."""

    inputs_mv: dict[int, float]
    """The voltage on each channel's pin."""
    last_read_mv: dict[int, int | None]
    """The last conversion of each channel (None: not read since power-on)."""


class Adc:
    """Analog input channels.

    Args:
        env: the SimPy environment (the common model interface; conversions
            happen when the firmware calls ``read``, so no process runs).
        rng: the ADC's own random source (conversion noise).
        channels: channel number (>= 0) -> initial input voltage in mV.
        noise_mv: standard deviation of the conversion noise, >= 0.
        full_scale_mv: the highest voltage the converter reports, > 0.

    Raises:
        ValueError: no channels, a negative channel number, a voltage outside
            0..full scale, or a bad noise or full scale.
    """

    __slots__ = ("_inputs_mv", "_last_read_mv", "env", "full_scale_mv", "noise_mv", "rng")

    def __init__(
        self,
        env: simpy.Environment,
        rng: RandomSource,
        *,
        channels: Mapping[int, float] = DEFAULT_CHANNELS,
        noise_mv: float = 2.0,
        full_scale_mv: float = 5000.0,
    ) -> None:
        if not (math.isfinite(full_scale_mv) and full_scale_mv > 0):
            raise ValueError(f"full_scale_mv must be > 0, not {full_scale_mv!r}")
        if not (math.isfinite(noise_mv) and noise_mv >= 0):
            raise ValueError(f"noise_mv must be >= 0, not {noise_mv!r}")
        if not channels:
            raise ValueError(f"channels must name at least one channel, not {channels!r}")
        self.env = env
        self.rng = rng
        self.noise_mv = noise_mv
        self.full_scale_mv = full_scale_mv
        self._inputs_mv: dict[int, float] = {}
        for channel, mv in sorted(channels.items()):
            if isinstance(channel, bool) or channel < 0:
                raise ValueError(f"channel numbers must be >= 0, not {channel!r}")
            self._inputs_mv[channel] = self._checked_mv(channel, mv)
        self._last_read_mv: dict[int, int] = {}
        """The channels converted since power-on (a unit whose firmware reads none keeps an
        empty dict, not one entry per channel)."""

    @property
    def channels(self) -> tuple[int, ...]:
        """The channel numbers, ascending."""
        return tuple(self._inputs_mv)

    def read(self, channel: int) -> int:
        """Convert ``channel``: its voltage plus noise, in mV, clamped to 0..full scale.

        Raises:
            ValueError: no such channel (the message lists the ones that exist).
        """
        self._check_channel(channel)
        noisy = self._inputs_mv[channel] + self.rng.gauss(0.0, self.noise_mv)
        reading = round(min(max(noisy, 0.0), self.full_scale_mv))
        self._last_read_mv[channel] = reading
        return reading

    def set(self, channel: int, mv: float) -> None:
        """Put ``mv`` millivolts on ``channel``'s pin.

        Raises:
            ValueError: no such channel, or ``mv`` outside 0..full scale.
        """
        self._check_channel(channel)
        self._inputs_mv[channel] = self._checked_mv(channel, mv)

    def reset(self) -> None:
        """Power cycle: the last conversions are forgotten; the pin voltages stay."""
        self._last_read_mv = {}

    def snapshot(self) -> AdcSnapshot:
        """A copy of the pin voltages and the last conversions."""
        last = self._last_read_mv
        return AdcSnapshot(
            inputs_mv=dict(self._inputs_mv),
            last_read_mv={channel: last.get(channel) for channel in self._inputs_mv},
        )

    def _check_channel(self, channel: int) -> None:
        if channel not in self._inputs_mv:
            names = ", ".join(str(number) for number in self._inputs_mv)
            raise ValueError(f"ADC channel must be one of {names}, not {channel!r}")

    def _checked_mv(self, channel: int, mv: float) -> float:
        if not (math.isfinite(mv) and 0.0 <= mv <= self.full_scale_mv):
            raise ValueError(
                f"channel {channel} voltage must be 0..{self.full_scale_mv:g} mV, not {mv!r}"
            )
        return float(mv)
