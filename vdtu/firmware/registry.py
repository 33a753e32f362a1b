"""The firmware personalities vdtu has, by name: the one place that lists them.

Everything above the firmware layer finds a personality here (``personality("quec")``,
or ``personality_of(options)`` from a unit's options) and then uses only the
interface of ``vdtu.firmware.personality``. Adding a personality is adding its
package and one entry to ``PERSONALITIES`` (DEVELOPERS.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from enum import Enum
from types import MappingProxyType

from vdtu.errors import ConfigError
from vdtu.firmware.personality import Personality
from vdtu.firmware.quec.personality import QUEC
from vdtu.firmware.xgc.personality import XGC

PERSONALITIES: MappingProxyType[str, Personality] = MappingProxyType(
    {entry.name: entry for entry in (XGC, QUEC)}
)
"""Every personality, by the name users give it (``--profile``)."""
DEFAULT = XGC.name
"""The personality of a unit that names none."""


def personality(name: str) -> Personality:
    """The personality called ``name``.

    Raises:
        ConfigError: no personality has that name (the message lists those that do).
    """
    try:
        return PERSONALITIES[name]
    except KeyError:
        known = ", ".join(PERSONALITIES)
        raise ConfigError(f"unknown firmware personality {name!r}; known: {known}") from None


def personality_of(options: object) -> Personality:
    """The personality whose options ``options`` are.

    Raises:
        ConfigError: the options belong to no personality.
    """
    for entry in PERSONALITIES.values():
        if isinstance(options, entry.options_type):
            return entry
    raise ConfigError(f"{type(options).__name__} are the options of no firmware personality")


def options_with(name: str, changes: Mapping[str, object]) -> object:
    """Personality ``name``'s default options with ``changes`` (field name -> value): numbers,
    flags, text, and an enum field's value by its name (``check_mode: warn``).

    Raises:
        ValueError: a field it does not have (the message lists those it does), a value of
            the wrong kind, or one its options refuse (their own check's message).
    """
    base = personality(name).options_type()
    kinds = {field.name: type(getattr(base, field.name)) for field in fields(base)}
    typed: dict[str, object] = {}
    for key, value in changes.items():
        kind = kinds.get(key)
        if kind is None:
            raise ValueError(f"{name} options have no {key!r}; they are: {', '.join(kinds)}")
        if issubclass(kind, Enum):
            try:
                typed[key] = kind(value)
            except ValueError:
                allowed = ", ".join(str(member.value) for member in kind)
                raise ValueError(f"{key} must be one of {allowed}, not {value!r}") from None
        elif kind in (int, float, bool, str) and (
            (isinstance(value, kind) and (kind is bool or not isinstance(value, bool)))
            or (kind is float and type(value) is int)
        ):
            typed[key] = value
        else:
            raise ValueError(f"{key} must be {kind.__name__}, not {value!r}")
    return replace(base, **typed)
