"""Random sources for the models of a unit: small, seeded and independent of each other.

Every model of a unit (signal, modem, battery, ADC, sensor, each Modbus slave, the
firmware) draws from a random source of its own, seeded from the fleet seed, the unit
id and the model's name, so a run repeats exactly and adding a model does not shift the
draws of the others. ``random.Random`` (Mersenne Twister) carries 2.5 KB of state per
instance: with seven per unit, that was most of a headless unit's memory. A
``SplitMix64`` carries one 64-bit integer (under 100 bytes in all).

How it works: SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014; the generator that seeds xoshiro): the state advances by the
odd constant ``0x9E3779B97F4A7C15`` and each output is the state passed through a 64-bit
mixing function. Its period is 2**64, and it passes BigCrush. A string seed is hashed to
the first state with BLAKE2b (8 bytes), so neighbouring seeds (``0:1:modem``,
``0:2:modem``) start far apart. Derived draws:

* ``random()``: the top 53 bits of an output, over 2**53: uniform in [0, 1).
* integers below ``n`` (``randrange``, ``randint``, ``choice``): the top bits of an
  output, as many as ``n - 1`` has, drawn again while the value is ``n`` or more, so
  every value is equally likely.
* ``gauss(mu, sigma)``: Box-Muller on two ``random()`` draws; one value per call.

Draws as functions of time. A model that changes every period need not tick: it can
compute the value of period ``k`` when it is read, from ``keyed(key, k)``, a fresh
``SplitMix64`` whose state is the key and the indices mixed together. The key is one
draw from the model's own source, taken once, so the values repeat for the same seed,
and they are the same whenever (and however often) they are read.

``RandomSource`` is the part of ``random.Random``'s interface the models use; a
``random.Random`` satisfies it too (tests pass seeded ones).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_FLOAT_UNIT = 2.0**-53


class RandomSource(Protocol):
    """The random draws a model makes (a subset of ``random.Random``)."""

    def random(self) -> float:
        """A float uniform in [0, 1)."""

    def uniform(self, a: float, b: float) -> float:
        """A float uniform between ``a`` and ``b``."""

    def randint(self, a: int, b: int) -> int:
        """An int uniform in ``a..b``, both included."""

    def randrange(self, start: int, stop: int | None = None) -> int:
        """An int uniform in ``range(start, stop)`` (``range(start)`` without ``stop``)."""

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        """A float from the normal distribution with mean ``mu`` and deviation ``sigma``."""

    def choice(self, seq: Sequence[T]) -> T:
        """One element of the non-empty ``seq``, each equally likely."""


def _first_state(seed: str | int) -> int:
    if isinstance(seed, str):
        return int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=8).digest(), "big")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be a str or an int, not {seed!r}")
    return seed & _MASK


def mix64(value: int) -> int:
    """SplitMix64's output function: a 64-bit value mixed into an unrelated-looking one."""
    mixed = ((value ^ (value >> 30)) * _MIX1) & _MASK
    mixed = ((mixed ^ (mixed >> 27)) * _MIX2) & _MASK
    return mixed ^ (mixed >> 31)


def randints(rng: RandomSource, a: int, b: int, count: int) -> list[int]:
    """``count`` draws of ``rng.randint(a, b)``: at once from a ``SplitMix64``
    (``SplitMix64.randints``), one by one from any other source."""
    if isinstance(rng, SplitMix64):
        return rng.randints(a, b, count)
    return [rng.randint(a, b) for _ in range(count)]


def keyed(key: int, *indices: int) -> SplitMix64:
    """A random source that is a pure function of ``key`` and ``indices`` (see the module
    docstring): the same arguments give the same draws, neighbouring indices unrelated ones.

    Args:
        key: the model's key (any int; taken modulo 2**64).
        indices: what the draws belong to, such as a period's index (ints, any sign).
    """
    state = key & _MASK
    for index in indices:
        state = mix64((state + (index + 1) * _GAMMA) & _MASK)
    return SplitMix64(state)


class SplitMix64:
    """A small seeded random source (see the module docstring).

    Args:
        seed: a string (hashed) or an int (taken modulo 2**64).

    Raises:
        TypeError: ``seed`` is neither a str nor an int.
    """

    __slots__ = ("_state",)

    def __init__(self, seed: str | int) -> None:
        self._state = _first_state(seed)

    def next64(self) -> int:
        """The next raw output: an int uniform in 0..2**64-1."""
        state = (self._state + _GAMMA) & _MASK
        self._state = state
        mixed = ((state ^ (state >> 30)) * _MIX1) & _MASK
        mixed = ((mixed ^ (mixed >> 27)) * _MIX2) & _MASK
        return mixed ^ (mixed >> 31)

    def random(self) -> float:
        """A float uniform in [0, 1), with 53 random bits."""
        return (self.next64() >> 11) * _FLOAT_UNIT

    def uniform(self, a: float, b: float) -> float:
        """A float uniform between ``a`` and ``b`` (``a + (b - a) * random()``)."""
        return a + (b - a) * self.random()

    def randint(self, a: int, b: int) -> int:
        """An int uniform in ``a..b``, both included.

        Raises:
            ValueError: ``b < a``.
        """
        if b < a:
            raise ValueError(f"randint needs a <= b, not a={a} b={b}")
        return a + self._below(b - a + 1)

    def randints(self, a: int, b: int, count: int) -> list[int]:
        """``count`` draws of ``randint(a, b)`` (the same values, and the source left where
        they leave it), in one call: a model that catches up on many steps makes them at
        the cost of one.

        Raises:
            ValueError: ``b < a``.
        """
        if b < a:
            raise ValueError(f"randint needs a <= b, not a={a} b={b}")
        n = b - a + 1
        if n > 1 << 64:
            raise ValueError(f"ranges wider than 2**64 are not supported, not {n}")
        shift = 64 - (n - 1).bit_length()
        state = self._state
        draws: list[int] = []
        while len(draws) < count:
            state = (state + _GAMMA) & _MASK
            value = mix64(state) >> shift
            if value < n:
                draws.append(a + value)
        self._state = state
        return draws

    def randrange(self, start: int, stop: int | None = None) -> int:
        """An int uniform in ``range(start, stop)``, or in ``range(start)`` without ``stop``.

        Raises:
            ValueError: the range is empty or wider than 2**64.
        """
        low, high = (0, start) if stop is None else (start, stop)
        if high <= low:
            raise ValueError(f"randrange needs a non-empty range, not range({low}, {high})")
        return low + self._below(high - low)

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        """A float from the normal distribution with mean ``mu`` and deviation ``sigma``."""
        radius = math.sqrt(-2.0 * math.log(1.0 - self.random()))
        return mu + sigma * radius * math.cos(2.0 * math.pi * self.random())

    def choice(self, seq: Sequence[T]) -> T:
        """One element of ``seq``, each equally likely.

        Raises:
            IndexError: ``seq`` is empty.
        """
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self._below(len(seq))]

    def _below(self, n: int) -> int:
        """An int uniform in 0..n-1 (1 <= n <= 2**64), by rejection on the top bits."""
        if n > 1 << 64:
            raise ValueError(f"ranges wider than 2**64 are not supported, not {n}")
        shift = 64 - (n - 1).bit_length()
        while True:
            value = self.next64() >> shift
            if value < n:
                return value
