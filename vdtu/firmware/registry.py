"""The firmware personalities vdtu has, by name: the one place that lists them.

Everything above the firmware layer finds a personality here (``personality("quec")``,
or ``personality_of(options)`` from a unit's options) and then uses only the
interface of ``vdtu.firmware.personality``. Adding a personality is adding its
package and one entry to ``PERSONALITIES`` (DEVELOPERS.md).
"""

from __future__ import annotations

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
