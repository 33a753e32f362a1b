"""The fleet side of every personality, by its name: the one place in links/ that lists them.

``SIDES`` has one ``SideEntry`` per personality of ``vdtu.firmware.registry``, in
its order; ``fleet_sides`` makes the sides one fleet needs. The XGC side hosts the
broker (its platform checks the logins and gives the console its own), so every
fleet makes it, with units of its personality or not. Adding a personality is
adding its side module and one entry here (DEVELOPERS.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from vdtu.links.quec_side import QUEC_SIDE
from vdtu.links.side import BrokerHost, FleetSide, SideContext, SideEntry
from vdtu.links.xgc_side import XGC_SIDE

SIDES: MappingProxyType[str, SideEntry] = MappingProxyType(
    {entry.name: entry for entry in (XGC_SIDE, QUEC_SIDE)}
)
"""Every personality's fleet side, by the personality's name."""
BROKER_HOST = XGC_SIDE
"""The side whose cloud hosts the fleet's broker."""


def fleet_sides(
    context: SideContext, names: Iterable[str]
) -> tuple[BrokerHost, dict[str, FleetSide]]:
    """The broker's host and the sides of the personalities ``names``, for one fleet (the
    host is the side of its own personality when that is among them)."""
    host = BROKER_HOST.side(context)
    sides = {
        name: host if name == BROKER_HOST.name else SIDES[name].side(context) for name in names
    }
    return host, sides
