"""The cellular faults a modem can be put in, as one record per faulted modem.

A modem without faults holds None in its one ``_faults`` slot: a fleet of healthy
units pays nothing for this. The first fault makes a ``ModemFaults``; when every
fault is cleared again the modem drops it (``ModemFaults.idle``).

Two kinds of state live here:

* the network's: a reject cause and its timers' values, roaming, a refused data
  context, a failing DNS server, no network time (NITZ). They are conditions of
  the network, so they outlast a power cycle of the module, until cleared;
* the module's own, which a power cycle ends (``power_off``): the back-off timer
  running after a reject, a USIM marked invalid for EPS (#3, #7), the hang, a
  dropped data context waiting for its re-activation.

What each fault does is documented on the ``Modem`` method that applies it; the
reject causes are the table of ``vdtu.modem.registration``. ``check_*`` validate a
parameter and raise ``ValueError`` naming the value and what is allowed.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from vdtu.checks import check_duration
from vdtu.modem.registration import EmmCause, EsmCause

if TYPE_CHECKING:
    import simpy

__all__ = [
    "DATA_RETRY_S",
    "ModemFaults",
    "check_duration",
    "check_emm_cause",
    "check_esm_cause",
    "is_ip_literal",
]

DATA_RETRY_S = 20.0
"""vdtu's default delay before the module re-activates a dropped or refused data context."""


def check_emm_cause(cause: int) -> EmmCause:
    """``cause`` as an ``EmmCause`` (3, 7, 11, 13, 15 or 22)."""
    allowed = [int(c) for c in EmmCause]
    if isinstance(cause, bool) or cause not in allowed:
        raise ValueError(f"cause must be one of the EMM causes {allowed}, not {cause!r}")
    return EmmCause(cause)


def check_esm_cause(cause: int) -> EsmCause:
    """``cause`` as an ``EsmCause`` (26, 27, 29, 33 or 38)."""
    allowed = [int(c) for c in EsmCause]
    if isinstance(cause, bool) or cause not in allowed:
        raise ValueError(f"cause must be one of the ESM causes {allowed}, not {cause!r}")
    return EsmCause(cause)


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address (which needs no DNS lookup)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class ModemFaults:
    """The faults of one modem (see the module docstring)."""

    __slots__ = (
        "backoff",
        "data_back_at",
        "data_cause",
        "data_retry_s",
        "data_since",
        "data_timer",
        "dns_failing",
        "hung",
        "no_network_time",
        "reject",
        "roaming",
        "sim_invalid",
        "subscribed_roaming",
        "t3346_s",
        "t3402_s",
    )

    def __init__(self) -> None:
        # The network's conditions.
        self.reject: EmmCause | None = None
        """The cause every registration attempt is rejected with, or None."""
        self.t3346_s = 0.0
        self.t3402_s = 0.0
        self.roaming = False
        """Registration lands on ROAMING while this is on."""
        self.subscribed_roaming = False
        """What the subscription says without the fault (restored when it is cleared)."""
        self.data_cause: EsmCause | None = None
        """The cause every data context activation is refused with, or None."""
        self.data_retry_s = DATA_RETRY_S
        """How long the module waits before it tries the data context again."""
        self.data_since = 0.0
        """When the refusal began (the module retries every ``data_retry_s`` from there)."""
        self.dns_failing = False
        self.no_network_time = False
        # The module's own state, ended by a power cycle.
        self.backoff: simpy.Event | None = None
        """The T3402 or T3346 timer running after a reject (the retry is its callback)."""
        self.sim_invalid = False
        """The USIM is invalid for EPS (#3, #7) until a power cycle or the SIM is re-inserted."""
        self.hung = False
        self.data_back_at: float | None = None
        """When a dropped (or no longer refused) data context comes back."""
        self.data_timer: simpy.Event | None = None
        """The timer that tells the firmware the data context is back."""

    def power_off(self) -> None:
        """The module lost power: its own state ends; the network's stays."""
        self.backoff = None
        self.sim_invalid = False
        self.hung = False
        self.data_back_at = None
        self.data_timer = None

    @property
    def idle(self) -> bool:
        """Whether nothing is left: the modem may drop this record."""
        return (
            self.reject is None
            and not self.roaming
            and self.data_cause is None
            and not self.dns_failing
            and not self.no_network_time
            and self.backoff is None
            and not self.sim_invalid
            and not self.hung
            and self.data_back_at is None
        )

    def snapshot(self, now: float) -> dict[str, Any]:
        """A JSON-able view (the modem's ``snapshot()["faults"]``)."""
        return {
            "reject_cause": None if self.reject is None else int(self.reject),
            "t3346_s": self.t3346_s,
            "t3402_s": self.t3402_s,
            "backoff": self.backoff is not None,
            "sim_invalid": self.sim_invalid,
            "roaming": self.roaming,
            "data_cause": None if self.data_cause is None else int(self.data_cause),
            "data_retry_s": self.data_retry_s,
            "data_back_in_s": None
            if self.data_back_at is None
            else max(0.0, self.data_back_at - now),
            "dns_failing": self.dns_failing,
            "no_network_time": self.no_network_time,
            "hung": self.hung,
        }
