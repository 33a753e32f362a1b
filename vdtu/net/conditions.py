"""The conditions of one unit's IP link to its cloud, and of its platform: pure data and arithmetic.

These are the network half of the fault catalogue, the way Toxiproxy's toxics sit on one
connection, but per device. A unit holds one ``LinkConditions`` slot that is None while
its link is healthy (a fleet of healthy units pays nothing); its personality hands the
value to every transport it owns and to every connection it opens afterwards, in sim
time (``vdtu.links.sim_xgc``, ``sim_quec``) and on real sockets (``vdtu.net.shaping``,
``vdtu.links.mqtt_xgc``, ``quec_net``). They are conditions of the network: they outlast
a reboot of the unit until they are cleared.

What each condition means, in both directions of every connection of the unit:

* ``latency_ms`` +/- ``jitter_ms``: each burst of bytes (an MQTT packet, a TCP write, a
  datagram, an HTTP exchange) arrives that much later; the jitter is uniform, drawn from
  the unit's own random source, so a virtual run repeats. Bytes of one stream are never
  reordered: a burst arrives no earlier than the one before it (``Pacer``).
* ``bandwidth_kbps``: each direction carries at most this many kilobits (1000 bits) a
  second; a burst of ``n`` bytes occupies the link ``n * 8 / (kbps * 1000)`` seconds, and
  the next one waits for it.
* ``blackhole``: every packet vanishes, both ways, with no RST and no FIN (a NAT mapping
  that timed out). A connection looks alive until keep-alive notices; new connections
  never complete (their SYN vanishes), so they fail at the client's connect timeout.
* ``connect_timeout``: new connection attempts hang until the client's connect timeout;
  connections already made are untouched.

A platform's conditions (``PlatformConditions``) are the unit's credential request at
its cloud platform being refused (HTTP 503, ``REFUSE_STATUS``) or answered ``delay_ms``
late.

Every parameter is checked when the value is made; a bad one raises ``ValueError``
(``TypeError`` for a flag that is not a bool) naming the parameter, the value and the
allowed range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vdtu.clock.rng import RandomSource  # the clock package would load SimPy

MAX_LATENCY_MS = 600_000.0
"""The largest latency (and jitter) a link may be given: ten minutes."""
MAX_BANDWIDTH_KBPS = 10_000_000.0
"""The largest bandwidth cap: 10 Gbit/s (more is no cap)."""
MIN_BANDWIDTH_KBPS = 0.1
"""The smallest bandwidth cap: 100 bit/s (a dying GPRS link)."""
MAX_PLATFORM_DELAY_MS = 3_600_000.0
"""The longest a platform may take to answer: one hour."""
REFUSE_STATUS = 503
"""What a refusing platform answers: HTTP 503 Service Unavailable, the status a cloud
service's front end gives while the service behind it is down or shedding load (the
project is not wrong: the device retries with its back-off, unlike a 401)."""


def _check_ms(name: str, value: float, most: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number of milliseconds 0..{most:g}, not {value!r}")
    if not 0 <= value <= most:
        raise ValueError(f"{name} must be 0..{most:g} ms, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkConditions:
    """What the network does to one unit's link (see the module docstring).

    A value with nothing set (``idle``) is allowed; ``normalized`` turns it into None,
    which is how a unit holds a healthy link.

    Raises:
        ValueError: a parameter outside its range (the message names it, the value and
            the range).
        TypeError: ``blackhole`` or ``connect_timeout`` is not a bool.
    """

    latency_ms: float = 0.0
    """One-way delay added to every burst, 0..600000 ms."""
    jitter_ms: float = 0.0
    """The delay varies uniformly by +/- this much, 0..``latency_ms``."""
    bandwidth_kbps: float | None = None
    """Each direction's capacity in kbit/s (0.1..10000000); None: no cap."""
    blackhole: bool = False
    """Packets vanish both ways, without RST or FIN."""
    connect_timeout: bool = False
    """New connection attempts hang until the client gives up."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "latency_ms", _check_ms("ms", self.latency_ms, MAX_LATENCY_MS))
        jitter = _check_ms("jitter", self.jitter_ms, MAX_LATENCY_MS)
        if jitter > self.latency_ms:
            raise ValueError(
                f"jitter must be 0..ms ({self.latency_ms:g}) so that no delay is negative, "
                f"not {self.jitter_ms!r}"
            )
        object.__setattr__(self, "jitter_ms", jitter)
        kbps = self.bandwidth_kbps
        if kbps is not None:
            if (
                isinstance(kbps, bool)
                or not isinstance(kbps, int | float)
                or not MIN_BANDWIDTH_KBPS <= kbps <= MAX_BANDWIDTH_KBPS
            ):
                raise ValueError(
                    f"kbps must be a number {MIN_BANDWIDTH_KBPS:g}..{MAX_BANDWIDTH_KBPS:g}, "
                    f"not {kbps!r}"
                )
            object.__setattr__(self, "bandwidth_kbps", float(kbps))
        for name in ("blackhole", "connect_timeout"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, not {getattr(self, name)!r}")

    @property
    def idle(self) -> bool:
        """Whether nothing is set (a healthy link)."""
        return (
            self.latency_ms == 0
            and self.bandwidth_kbps is None
            and not self.blackhole
            and not self.connect_timeout
        )

    @property
    def shaping(self) -> bool:
        """Whether bytes that get through are delayed (latency or a bandwidth cap)."""
        return self.latency_ms > 0 or self.bandwidth_kbps is not None

    @property
    def blocks_connect(self) -> bool:
        """Whether a new connection attempt hangs until its timeout."""
        return self.blackhole or self.connect_timeout

    def normalized(self) -> LinkConditions | None:
        """Self, or None when nothing is set."""
        return None if self.idle else self

    def with_changes(self, **changes: Any) -> LinkConditions | None:
        """A copy with ``changes`` (field names) applied, normalized: how one fault of the
        catalogue is added to or removed from the others a link already has.

        Raises:
            ValueError: a changed value outside its range.
            TypeError: a name that is not a field.
        """
        return replace(self, **changes).normalized()

    def delay_s(self, rng: RandomSource) -> float:
        """One burst's propagation delay, in seconds: ``latency_ms`` +/- ``jitter_ms``."""
        if self.jitter_ms == 0:
            return self.latency_ms / 1000
        return (self.latency_ms + rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000

    def transfer_s(self, size: int) -> float:
        """How long ``size`` bytes occupy one direction of the link (0 without a cap)."""
        kbps = self.bandwidth_kbps
        return 0.0 if kbps is None else size * 8 / (kbps * 1000)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view (for a unit's snapshot)."""
        return {
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "bandwidth_kbps": self.bandwidth_kbps,
            "blackhole": self.blackhole,
            "connect_timeout": self.connect_timeout,
        }


NO_LINK_CONDITIONS = LinkConditions()
"""Nothing set (the base ``with_changes`` starts from when a unit holds None)."""


class Pacer:
    """When each burst of one direction of one stream arrives, under a link's conditions.

    It keeps the transmitter's busy time (the bandwidth cap serialises bursts) and the
    arrival time of the last burst, so bursts never overtake each other whatever the
    jitter draws. Pure: time comes in as ``now``.
    """

    __slots__ = ("_free_at", "_last_at")

    def __init__(self) -> None:
        self._free_at = 0.0
        self._last_at = 0.0

    def arrival_at(
        self, now: float, size: int, conditions: LinkConditions, rng: RandomSource
    ) -> float:
        """The time a burst of ``size`` bytes sent at ``now`` arrives (>= ``now``)."""
        start = max(now, self._free_at)
        self._free_at = start + conditions.transfer_s(size)
        at = max(self._free_at + conditions.delay_s(rng), self._last_at, now)
        self._last_at = at
        return at


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Impairment:
    """A unit's link conditions with the random source their jitter draws from: what the
    unit's firmware hands its transports (None while the link is healthy)."""

    conditions: LinkConditions
    rng: RandomSource
    """The unit's own link random source, so a virtual run repeats."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformConditions:
    """What the cloud platform does with one unit's credential request.

    Raises:
        ValueError: ``delay_ms`` outside its range.
        TypeError: ``refuse`` is not a bool.
    """

    refuse: bool = False
    """The platform answers HTTP 503 (``REFUSE_STATUS``)."""
    delay_ms: float = 0.0
    """The platform answers this much later, 0..3600000 ms."""

    def __post_init__(self) -> None:
        if not isinstance(self.refuse, bool):
            raise TypeError(f"refuse must be True or False, not {self.refuse!r}")
        object.__setattr__(self, "delay_ms", _check_ms("ms", self.delay_ms, MAX_PLATFORM_DELAY_MS))

    @property
    def idle(self) -> bool:
        """Whether nothing is set."""
        return not self.refuse and self.delay_ms == 0

    @property
    def delay_s(self) -> float:
        """The added answer time in seconds."""
        return self.delay_ms / 1000

    def normalized(self) -> PlatformConditions | None:
        """Self, or None when nothing is set."""
        return None if self.idle else self

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {"refuse": self.refuse, "delay_ms": self.delay_ms}
