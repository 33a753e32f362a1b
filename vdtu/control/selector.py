"""Selectors: which units a control command is for.

A selector is one or more terms separated by commas. Terms that name units add them
(a union): a unit id (``7``), a range (``0-99``, both ends included), an IMEI (15
digits), or ``all``. Terms ``NAME=VALUE`` narrow what the others chose (or the whole
fleet if there are none): ``profile=quec``, ``state=online`` (the unit's phase or its
personality's own state name, any case) and ``tag=north``; a filter takes alternatives
(``tag=north|south``: either) and can be turned round (``state!=connected``: none of
them). Last, ``random=10%`` keeps a fraction of the chosen units, drawn from a seed
(``random=10%:42``; without one the fleet's seed, so the same selector picks the same
units in every run of the same fleet).

``parse_selector`` checks the text and raises ``SelectorError`` naming the bad term;
``Selector.pick`` applies it to the fleet's units.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

MAX_SELECTOR = 1000
"""The longest selector text accepted."""
_RANGE = re.compile(r"(\d{1,7})-(\d{1,7})")
_RANDOM = re.compile(r"(\d{1,3}(?:\.\d{1,6})?)%(?::(\d{1,19}))?")
FILTERS = ("profile", "state", "tag")
"""The terms that narrow the choice by what a unit is."""


class SelectorError(ValueError):
    """A selector that cannot be parsed."""


class UnitFacts(Protocol):
    """What a selector looks at in a unit."""

    @property
    def unit_id(self) -> int: ...
    @property
    def imei(self) -> str: ...
    @property
    def profile(self) -> str: ...
    @property
    def states(self) -> tuple[str, ...]: ...
    @property
    def tags(self) -> tuple[str, ...]: ...


U = TypeVar("U", bound=UnitFacts)


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector (see the module comment)."""

    text: str
    everyone: bool
    ids: frozenset[int]
    ranges: tuple[tuple[int, int], ...]
    imeis: frozenset[str]
    filters: tuple[tuple[str, frozenset[str], bool], ...]
    """(name, the values any of which passes, whether the filter is turned round)."""
    fraction: float | None
    seed: int | None

    def pick(self, units: Sequence[U], *, fleet_seed: int) -> list[U]:
        """The units the selector chooses, in fleet order."""
        named = self.everyone or self.ids or self.ranges or self.imeis
        chosen = [
            unit
            for unit in units
            if (not named or self._names(unit)) and all(self._passes(unit, f) for f in self.filters)
        ]
        if self.fraction is None:
            return chosen
        draw = random.Random(f"select:{self.seed if self.seed is not None else fleet_seed}")
        count = round(len(chosen) * self.fraction)
        picked = set(draw.sample(range(len(chosen)), count))
        return [unit for index, unit in enumerate(chosen) if index in picked]

    @property
    def reads_states(self) -> bool:
        """Whether the choice depends on the units' states (not only on who they are)."""
        return any(name == "state" for name, _values, _negated in self.filters)

    def _names(self, unit: UnitFacts) -> bool:
        return (
            self.everyone
            or unit.unit_id in self.ids
            or any(low <= unit.unit_id <= high for low, high in self.ranges)
            or unit.imei in self.imeis
        )

    @staticmethod
    def _passes(unit: UnitFacts, term: tuple[str, frozenset[str], bool]) -> bool:
        name, values, negated = term
        if name == "profile":
            found = unit.profile in values
        elif name == "state":
            found = any(state.lower() in values for state in unit.states)
        else:
            found = any(tag in values for tag in unit.tags)
        return found != negated


def parse_selector(text: str) -> Selector:
    """Parse a selector.

    Raises:
        SelectorError: naming the term that is wrong and what a term can be.
    """
    if not text or len(text) > MAX_SELECTOR:
        raise SelectorError(f"a selector is 1..{MAX_SELECTOR} characters, not {len(text)}")
    everyone = False
    ids: set[int] = set()
    ranges: list[tuple[int, int]] = []
    imeis: set[str] = set()
    filters: list[tuple[str, frozenset[str], bool]] = []
    fraction: float | None = None
    seed: int | None = None
    for term in (part.strip() for part in text.split(",")):
        name, equals, value = term.partition("=")
        if term == "all":
            everyone = True
        elif term.isdigit() and len(term) == 15:
            imeis.add(term)
        elif term.isdigit() and len(term) <= 7:
            ids.add(int(term))
        elif match := _RANGE.fullmatch(term):
            low, high = int(match[1]), int(match[2])
            if low > high:
                raise SelectorError(f"range {term!r} runs backwards; write {high}-{low}")
            ranges.append((low, high))
        elif equals and name == "random":
            if fraction is not None:
                raise SelectorError("random= is given twice")
            fraction, seed = _random(value)
        elif equals and name.removesuffix("!") in FILTERS and all(value.split("|")):
            base = name.removesuffix("!")
            values = value.split("|")
            if base == "state":
                values = [state.lower() for state in values]
            filters.append((base, frozenset(values), base != name))
        else:
            raise SelectorError(
                f"bad selector term {term!r}: a term is a unit id (7), a range (0-99), an IMEI "
                "(15 digits), all, profile=NAME, state=STATE, tag=TAG (NAME=A|B: either, "
                "NAME!=A: not) or random=PERCENT%[:SEED]"
            )
    return Selector(
        text, everyone, frozenset(ids), tuple(ranges), frozenset(imeis), tuple(filters),
        fraction, seed,
    )  # fmt: skip


def _random(value: str) -> tuple[float, int | None]:
    match = _RANDOM.fullmatch(value)
    if match is None or not 0 < float(match[1]) <= 100:
        raise SelectorError(
            f"random={value} is not a percentage in (0, 100] with an optional seed, "
            "e.g. random=10% or random=10%:42"
        )
    return float(match[1]) / 100, int(match[2]) if match[2] else None


def describe_ids(ids: Iterable[int]) -> str:
    """``0-9, 12, 20-21``: unit ids as ranges (for messages)."""
    parts: list[str] = []
    run: list[int] = []
    for unit_id in sorted(ids):
        if run and unit_id == run[-1] + 1:
            run.append(unit_id)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [unit_id]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(parts) or "none"
