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
* ``DETACHED``: the network ended a registration and the UE must register again
  (network-initiated detach "re-attach required", 3GPP TS 24.301 §5.5.2.3.2; a
  move to another PLMN, home to roaming; the reject cause #15 below): stat 2.
* ``DETACHED_DENIED``: the network ended a registration with a cause that bars
  the UE (#3, #7, #11, #13, #22 below; TS 24.301 §5.5.2.3.2 handles them as the
  attach reject does): stat 3.

Rules the table encodes:

1. ``SIM_LOST``, ``RADIO_OFF`` and ``COVERAGE_LOST`` come from outside and can
   happen in every state, so every state has a row for them.
2. ``SEARCH_SUCCEEDED`` and ``SEARCH_DENIED`` are only legal while searching
   (stat 2): a search result in any other state is a bug in the driver.
3. ``SEARCH_STARTED`` is legal from every state that is not registered: a
   registered modem does not search.
4. A successful search lands on ``HOME``, or on ``ROAMING`` for a roaming
   subscription: the machine has two tables, ``HOME_TABLE`` and ``ROAMING_TABLE``,
   that differ only there. ``use_roaming`` switches between them (the roaming
   fault); the stat changes only at the next registration.
5. ``DETACHED`` and ``DETACHED_DENIED`` are only legal from the registered stats:
   the network detaches only a UE it has registered. A reject at the end of a
   search is ``SEARCH_DENIED`` (or, for #15, no input: the UE keeps searching).

Registration rejected: the EMM causes
-------------------------------------

A network that rejects an attach or tracking area update gives an EMM cause
(TS 24.301 §9.9.3.9, values in annex A); what the UE does next is in §5.5.1.2.5
(attach reject) and §5.5.3.2.5 (TAU reject). ``REJECT_RULES`` is the part vdtu
models, one row per cause; the modem (``vdtu.modem.modem.Modem``) carries it out:

===== ================================== ===== =========================================
cause meaning                            stat  what the UE does next
===== ================================== ===== =========================================
#3    illegal UE                         3     USIM invalid for EPS until the power is
                                               switched off or the UICC is removed
                                               (§5.5.1.2.5): no retry before that
#7    EPS services not allowed           3     the same (§5.5.1.2.5)
#11   PLMN not allowed                   3     PLMN on the "forbidden PLMNs" list; PLMN
                                               selection (§5.5.1.2.5). One PLMN is
                                               modelled: vdtu retries after T3402
#13   roaming not allowed in this TA     3     TAI on the "forbidden tracking areas for
                                               roaming" list (§5.5.1.2.5); vdtu retries
                                               after T3402
#15   no suitable cells in this TA       2     TAI on the "forbidden tracking areas for
                                               regional provision of service"; the UE
                                               searches for another TA (§5.5.1.2.5):
                                               stat 2 while the cause lasts
#22   congestion                         3     T3346 started with the network's value;
                                               retry when it expires (§5.5.1.2.5)
===== ================================== ===== =========================================

T3402 is 12 minutes by default (TS 24.301 §10.2, table 10.2.1; the network may
give another value); T3346 is the network's (its ``T3346 value`` IE), vdtu's
default 15 minutes. Both are parameters of ``Modem.reject_registration``. A
power cycle stops the timers and empties the lists (§5.5.1.2.5: the lists are
deleted at switch-off); a SIM pulled and put back validates the USIM again.

The data context (``DataState``): being registered is not reaching the cloud. The
module's data call (the default EPS bearer's PDN connection, Quectel's
``AT+QIACT``) can be refused by the network with an ESM cause (TS 24.301 §6.5.1.4,
PDN connectivity reject; causes §9.9.4.4, annex B: ``EsmCause``) or deactivated
by it (§6.4.4, EPS bearer context deactivation).

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
from dataclasses import dataclass
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
    DETACHED = "DETACHED"
    DETACHED_DENIED = "DETACHED_DENIED"


class EmmCause(IntEnum):
    """The EMM causes of a registration reject that vdtu models (TS 24.301 annex A)."""

    ILLEGAL_UE = 3
    EPS_SERVICES_NOT_ALLOWED = 7
    PLMN_NOT_ALLOWED = 11
    ROAMING_NOT_ALLOWED_IN_TA = 13
    NO_SUITABLE_CELLS_IN_TA = 15
    CONGESTION = 22


class Retry(StrEnum):
    """When a rejected UE tries to register again."""

    SIM_INVALID = "sim-invalid"
    """Not before a power cycle or the SIM being pulled and put back."""
    T3402 = "t3402"
    """When T3402 expires."""
    T3346 = "t3346"
    """When T3346 (the network's back-off for congestion) expires."""
    SEARCH = "search"
    """It keeps searching (another tracking area) while the cause lasts."""


@dataclass(frozen=True, slots=True)
class RejectRule:
    """What a reject cause does: the ``+CREG`` stat, the retry, and the clause it follows."""

    stat: RegStat
    retry: Retry
    clause: str


REJECT_RULES: Mapping[EmmCause, RejectRule] = MappingProxyType(
    {
        EmmCause.ILLEGAL_UE: RejectRule(RegStat.DENIED, Retry.SIM_INVALID, "24.301 5.5.1.2.5"),
        EmmCause.EPS_SERVICES_NOT_ALLOWED: RejectRule(
            RegStat.DENIED, Retry.SIM_INVALID, "24.301 5.5.1.2.5"
        ),
        EmmCause.PLMN_NOT_ALLOWED: RejectRule(RegStat.DENIED, Retry.T3402, "24.301 5.5.1.2.5"),
        EmmCause.ROAMING_NOT_ALLOWED_IN_TA: RejectRule(
            RegStat.DENIED, Retry.T3402, "24.301 5.5.1.2.5"
        ),
        EmmCause.NO_SUITABLE_CELLS_IN_TA: RejectRule(
            RegStat.SEARCHING, Retry.SEARCH, "24.301 5.5.1.2.5"
        ),
        EmmCause.CONGESTION: RejectRule(RegStat.DENIED, Retry.T3346, "24.301 5.5.1.2.5"),
    }
)
"""One row per modelled cause (the table of the module docstring)."""

T3402_S = 720.0
"""T3402's default: 12 minutes (TS 24.301 §10.2, table 10.2.1)."""
T3346_S = 900.0
"""vdtu's default for T3346 (the network gives its value in the reject): 15 minutes."""


class EsmCause(IntEnum):
    """ESM causes of a refused data context that vdtu models (TS 24.301 §9.9.4.4, annex B)."""

    INSUFFICIENT_RESOURCES = 26
    MISSING_OR_UNKNOWN_APN = 27
    USER_AUTHENTICATION_FAILED = 29
    SERVICE_OPTION_NOT_SUBSCRIBED = 33
    """The SIM has no data plan."""
    NETWORK_FAILURE = 38


class DataState(StrEnum):
    """The module's data context (its data call), as the firmware sees it."""

    DETACHED = "DETACHED"
    """Not registered (or the module does not answer): no data context."""
    ACTIVE = "ACTIVE"
    """Registered and the data context is active: the cloud can be reached."""
    REFUSED = "REFUSED"
    """Registered, but the network refuses the data context (an ``EsmCause``)."""
    DROPPED = "DROPPED"
    """Registered; the network deactivated the context and the module re-activates it later."""


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
        table[stat, RegInput.DETACHED] = RegStat.SEARCHING
        table[stat, RegInput.DETACHED_DENIED] = RegStat.DENIED
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

    def use_roaming(self, roaming: bool) -> None:
        """From now on a successful search lands on ``ROAMING`` (True) or ``HOME`` (False).

        The stat itself is unchanged: it follows at the next registration.
        """
        self.roaming = roaming
        self.table = ROAMING_TABLE if roaming else HOME_TABLE

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
