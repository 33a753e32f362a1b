"""Network registration as the modem reports it: 3GPP ``+CREG`` stats and one state machine.

This module is pure (standard library only), so the AT interpreter and the
firmware codecs can use its enums without pulling in SimPy.

Codes on the wire
-----------------

* ``RegStat``: the ``<stat>`` of ``+CREG`` (3GPP TS 27.007 §7.2), 0..11, exactly
  as the table of docs/spec/quec.md#4.13 lists them.
* ``NetMode``: the XGC ``netMode`` of ``GET_NET_INFO`` (docs/spec/xgc.md#5.5), 0..5.
* ``NetState``: the XGC ``netState`` (``INIT``, ``REGISTERED``, ``UNREGISTER``),
  derived from (modem booted?, ``RegStat``) by ``net_state``.
* ``SimState``: what the modem sees in its SIM slot. It lives here, with the
  other pure enums, so that the AT interpreter can read it without importing
  the SimPy models; ``vdtu.modem.sim`` re-exports it.

The registration machine
------------------------

The state is a ``RegStat``. Inputs (``RegInput``) are things the modem observes
or decides:

* ``SEARCH_STARTED``: the modem starts looking for a cell to register on. The
  driver (``vdtu.modem.modem.Modem``) feeds it only when the radio is on
  (CFUN=1), the SIM is ready and there is coverage, whatever made those true
  (radio switched on, SIM inserted or unlocked, coverage back): the machine does
  the same thing for each reason, so the reasons are one input.
* ``SEARCH_SUCCEEDED`` / ``SEARCH_DENIED``: the search ended.
* ``COVERAGE_LOST``: the cell went away. A registered or denied modem goes back
  to searching (stat 2); a modem that was not looking (stat 0) stays at 0.
* ``SIM_LOST``: the SIM was pulled or became unusable (PIN-locked): stat 0 at once.
* ``RADIO_OFF``: CFUN=0 or CFUN=4: stat 0 at once.

Rules the table encodes:

1. ``SIM_LOST``, ``RADIO_OFF`` and ``COVERAGE_LOST`` come from outside and can
   happen in every state, so every state has a row for them.
2. ``SEARCH_SUCCEEDED`` and ``SEARCH_DENIED`` are only legal while searching
   (stat 2): a search result in any other state is a bug in the driver.
3. ``SEARCH_STARTED`` is legal from every state that is not registered: a
   registered modem does not search.
4. A successful search lands on ``HOME``, or on ``ROAMING`` for a roaming
   subscription: the machine has two tables, ``HOME_TABLE`` and ``ROAMING_TABLE``,
   that differ only there.

What the table leaves out: the simulated modem never *enters* stats 4 and 6..11
(no input leads there except the error rule below). They have rows so that a
``Registration`` started in any stat (a scenario, a value read from a real
modem) behaves sensibly: the registered-for-something stats 6, 7, 9, 10 behave
like ``HOME``; 4, 8 and 11 like ``SEARCHING`` without a search in progress.
Cell changes (handover), periodic re-searches after a denial and the emergency
registrations are not modelled.

Errors: a (state, input) pair missing from the table raises
``vdtu.errors.LocalProtocolError`` naming both, after the machine has moved to
``UNKNOWN`` (stat 4), from which ``SEARCH_STARTED``, ``SIM_LOST`` and
``RADIO_OFF`` recover. As in h2's stream machine, the object is never left in
an undefined state.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum
from types import MappingProxyType

from vdtu.errors import LocalProtocolError


class RegStat(IntEnum):
    """``<stat>`` of ``+CREG`` (3GPP TS 27.007), as listed in docs/spec/quec.md#4.13."""

    NOT_REGISTERED = 0
    """Not registered, the MT is not searching for an operator."""
    HOME = 1
    """Registered, home network."""
    SEARCHING = 2
    """Not registered, the MT is trying to attach or searching for an operator."""
    DENIED = 3
    """Registration denied."""
    UNKNOWN = 4
    """Unknown (e.g. out of E-UTRAN coverage)."""
    ROAMING = 5
    """Registered, roaming."""
    SMS_ONLY_HOME = 6
    """Registered for "SMS only", home network."""
    SMS_ONLY_ROAMING = 7
    """Registered for "SMS only", roaming."""
    EMERGENCY_ATTACHED = 8
    """Attached for emergency bearer services only."""
    CSFB_NOT_PREFERRED_HOME = 9
    """Registered for "CSFB not preferred", home network."""
    CSFB_NOT_PREFERRED_ROAMING = 10
    """Registered for "CSFB not preferred", roaming."""
    EMERGENCY_ONLY = 11
    """Emergency bearer services only."""


REGISTERED_STATS = frozenset(
    {
        RegStat.HOME,
        RegStat.ROAMING,
        RegStat.SMS_ONLY_HOME,
        RegStat.SMS_ONLY_ROAMING,
        RegStat.CSFB_NOT_PREFERRED_HOME,
        RegStat.CSFB_NOT_PREFERRED_ROAMING,
    }
)
"""The stats in which the modem is registered with a network (1, 5, 6, 7, 9, 10)."""


class NetMode(IntEnum):
    """XGC ``netMode`` of ``GET_NET_INFO`` (docs/spec/xgc.md#5.5): the radio access technology."""

    UNREGISTERED = 0
    GSM = 1
    """2G GSM."""
    EDGE = 2
    """2.5G EDGE."""
    TD = 3
    """3G TD-SCDMA."""
    LTE = 4
    """4G LTE."""
    WCDMA = 5
    """3G WCDMA."""


class NetState(StrEnum):
    """XGC ``netState`` of ``GET_NET_INFO`` (docs/spec/xgc.md#5.5)."""

    INIT = "INIT"
    """The modem is still booting."""
    REGISTERED = "REGISTERED"
    UNREGISTER = "UNREGISTER"


class SimState(StrEnum):
    """What the modem sees in its SIM slot."""

    READY = "READY"
    """A card is present and usable."""
    ABSENT = "ABSENT"
    """No card in the slot."""
    PIN_LOCKED = "PIN_LOCKED"
    """A card is present but waits for its PIN."""


def net_state(ready: bool, stat: RegStat) -> NetState:
    """The XGC view of registration.

    Args:
        ready: whether the modem has finished booting.
        stat: the current ``+CREG`` stat.

    Returns:
        ``INIT`` while booting, ``REGISTERED`` for the registered stats
        (1, 5, 6, 7, 9, 10), ``UNREGISTER`` otherwise.
    """
    if not ready:
        return NetState.INIT
    return NetState.REGISTERED if stat in REGISTERED_STATS else NetState.UNREGISTER


class RegInput(StrEnum):
    """Inputs of the registration machine (see the module docstring)."""

    SEARCH_STARTED = "SEARCH_STARTED"
    SEARCH_SUCCEEDED = "SEARCH_SUCCEEDED"
    SEARCH_DENIED = "SEARCH_DENIED"
    COVERAGE_LOST = "COVERAGE_LOST"
    SIM_LOST = "SIM_LOST"
    RADIO_OFF = "RADIO_OFF"


_NOT_SEARCHING_UNREGISTERED = (
    RegStat.UNKNOWN,
    RegStat.EMERGENCY_ATTACHED,
    RegStat.EMERGENCY_ONLY,
)


def _table(registered: RegStat) -> Mapping[tuple[RegStat, RegInput], RegStat]:
    """The transition table in which a successful search lands on ``registered``."""
    table: dict[tuple[RegStat, RegInput], RegStat] = {
        (RegStat.NOT_REGISTERED, RegInput.SEARCH_STARTED): RegStat.SEARCHING,
        (RegStat.NOT_REGISTERED, RegInput.COVERAGE_LOST): RegStat.NOT_REGISTERED,
        (RegStat.SEARCHING, RegInput.SEARCH_STARTED): RegStat.SEARCHING,
        (RegStat.SEARCHING, RegInput.SEARCH_SUCCEEDED): registered,
        (RegStat.SEARCHING, RegInput.SEARCH_DENIED): RegStat.DENIED,
        (RegStat.SEARCHING, RegInput.COVERAGE_LOST): RegStat.SEARCHING,
        (RegStat.DENIED, RegInput.SEARCH_STARTED): RegStat.SEARCHING,
        (RegStat.DENIED, RegInput.COVERAGE_LOST): RegStat.SEARCHING,
    }
    for stat in REGISTERED_STATS:
        table[stat, RegInput.COVERAGE_LOST] = RegStat.SEARCHING
    for stat in _NOT_SEARCHING_UNREGISTERED:
        table[stat, RegInput.SEARCH_STARTED] = RegStat.SEARCHING
        table[stat, RegInput.COVERAGE_LOST] = RegStat.SEARCHING
    for stat in RegStat:
        table[stat, RegInput.SIM_LOST] = RegStat.NOT_REGISTERED
        table[stat, RegInput.RADIO_OFF] = RegStat.NOT_REGISTERED
    return MappingProxyType(table)


HOME_TABLE = _table(RegStat.HOME)
"""Transitions for a SIM on its home network."""
ROAMING_TABLE = _table(RegStat.ROAMING)
"""Transitions for a roaming SIM: identical except that a search ends in ``ROAMING``."""

ERROR_STATE = RegStat.UNKNOWN
"""Where the machine goes when it is given an input its table does not allow."""


class Registration:
    """The registration state of one modem.

    Args:
        roaming: whether a successful search registers as roaming (stat 5)
            instead of home (stat 1).
        initial: the stat to start in.
    """

    __slots__ = ("roaming", "state", "table")

    def __init__(self, *, roaming: bool = False, initial: RegStat = RegStat.NOT_REGISTERED) -> None:
        self.roaming = roaming
        self.table = ROAMING_TABLE if roaming else HOME_TABLE
        """The transition table in use."""
        self.state = RegStat(initial)
        """The current ``+CREG`` stat."""

    @property
    def registered(self) -> bool:
        """Whether the current stat is one of the registered stats."""
        return self.state in REGISTERED_STATS

    def process(self, event: RegInput) -> RegStat:
        """Apply one input.

        Args:
            event: what happened.

        Returns:
            The new stat.

        Raises:
            LocalProtocolError: the table has no row for (current stat, ``event``).
                The machine is in ``ERROR_STATE`` (``UNKNOWN``) afterwards.
        """
        key = (self.state, event)
        try:
            self.state = self.table[key]
        except KeyError:
            old = self.state
            self.state = ERROR_STATE
            raise LocalProtocolError(
                f"registration input {event.name} is not allowed in stat {old.name} ({int(old)})"
            ) from None
        return self.state

    def reset(self) -> None:
        """Back to ``NOT_REGISTERED`` (modem powered off or power-cycled)."""
        self.state = RegStat.NOT_REGISTERED
