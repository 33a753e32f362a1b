"""The SIM card and the slot it sits in.

A ``SimSlot`` is ``ABSENT`` (no card), ``PIN_LOCKED`` (a card waiting for its
PIN) or ``READY``. The slot is the only thing that changes: a ``SimCard`` is an
immutable record of what is printed on and stored in the card.

Invariants:

* ``state`` is ``ABSENT`` exactly when ``card`` is None.
* Only a card with a PIN can be ``PIN_LOCKED``.
* Wrong PINs are counted per card (the counter lives on a real card, so it
  survives power cycles and being pulled and put back). After
  ``PIN_ATTEMPTS`` (3) wrong PINs the card is blocked: it stays ``PIN_LOCKED``
  and ``unlock`` refuses even the right PIN (a real card would now want its PUK,
  which is not modelled).
* ``on_state_change`` listeners run after every change of ``state`` and only
  then, with the new state.

A power cycle (``reset``) asks a card with a PIN for it again; a card without
one comes back ``READY``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vdtu.modem.registration import SimState

if TYPE_CHECKING:
    import simpy

__all__ = ["PIN_ATTEMPTS", "SimCard", "SimSlot", "SimState"]

PIN_ATTEMPTS = 3
"""Wrong PINs a card accepts before it is blocked."""

_PIN_RE = re.compile(r"[0-9]{4,8}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimCard:
    """A SIM card.

    Attributes:
        iccid: the card's serial number (19 or 20 characters).
        imsi: the subscriber identity (14 or 15 digits).
        phone: the subscriber's phone number (MSISDN).
        pin: the PIN (4 to 8 digits), or None if the PIN lock is disabled.
    """

    iccid: str
    imsi: str
    phone: str
    pin: str | None = None

    def __post_init__(self) -> None:
        if not 19 <= len(self.iccid) <= 20 or not self.iccid.isalnum():
            raise ValueError(f"iccid must be 19 or 20 letters or digits, not {self.iccid!r}")
        if not (14 <= len(self.imsi) <= 15 and self.imsi.isdigit()):
            raise ValueError(f"imsi must be 14 or 15 digits, not {self.imsi!r}")
        if self.pin is not None and not _PIN_RE.fullmatch(self.pin):
            raise ValueError(f"pin must be None or 4 to 8 digits, not {self.pin!r}")


class SimSlot:
    """The SIM slot of one modem.

    Args:
        env: the SimPy environment (for the time of the last change).
        card: the card in the slot at power-on, or None for an empty slot.
    """

    __slots__ = ("_card", "_state", "_wrong_pins", "changed_at", "env", "on_state_change")

    def __init__(self, env: simpy.Environment, *, card: SimCard | None) -> None:
        self.env = env
        self._card = card
        self._wrong_pins: dict[str, int] = {}
        self._state = self._power_on_state()
        self.changed_at = float(env.now)
        """Sim time of the last state change."""
        self.on_state_change: list[Callable[[SimState], None]] = []
        """Called with the new state after every state change."""

    @property
    def state(self) -> SimState:
        """The slot's state."""
        return self._state

    @property
    def card(self) -> SimCard | None:
        """The card in the slot, if any."""
        return self._card

    @property
    def wrong_pins(self) -> int:
        """Wrong PINs entered for the card in the slot since its last right PIN (0 if empty)."""
        return 0 if self._card is None else self._wrong_pins.get(self._card.iccid, 0)

    @property
    def blocked(self) -> bool:
        """Whether the card in the slot has had ``PIN_ATTEMPTS`` wrong PINs."""
        return self.wrong_pins >= PIN_ATTEMPTS

    def insert(self, card: SimCard) -> None:
        """Put ``card`` in the empty slot.

        Raises:
            ValueError: the slot already holds a card.
        """
        if self._card is not None:
            raise ValueError(
                f"cannot insert card {card.iccid!r}: the slot holds card {self._card.iccid!r}"
            )
        self._card = card
        self._set_state(self._power_on_state())

    def remove(self) -> SimCard:
        """Pull the card out of the slot.

        Returns:
            The card that was removed.

        Raises:
            ValueError: the slot is empty.
        """
        card = self._card
        if card is None:
            raise ValueError("cannot remove a card: the slot is empty")
        self._card = None
        self._set_state(SimState.ABSENT)
        return card

    def lock(self) -> None:
        """Lock the card: it is ``PIN_LOCKED`` until ``unlock`` is given its PIN.

        Raises:
            ValueError: the slot is empty, or the card has no PIN.
        """
        card = self._card
        if card is None:
            raise ValueError("cannot lock: the slot is empty")
        if card.pin is None:
            raise ValueError(f"cannot lock card {card.iccid!r}: it has no PIN")
        self._set_state(SimState.PIN_LOCKED)

    def unlock(self, pin: str) -> None:
        """Enter the PIN of a locked card.

        Raises:
            ValueError: the card is not locked (or the slot is empty), the card
                is blocked, or ``pin`` is wrong (which counts towards the block).
                The state is unchanged after an error.
        """
        card = self._card
        if card is None or self._state is not SimState.PIN_LOCKED:
            raise ValueError(f"cannot unlock: the SIM is {self._state.value}, not PIN_LOCKED")
        wrong = self._wrong_pins.get(card.iccid, 0)
        if wrong >= PIN_ATTEMPTS:
            raise ValueError(
                f"card {card.iccid!r} is blocked after {wrong} wrong PINs (PUK not modelled)"
            )
        if pin != card.pin:
            self._wrong_pins[card.iccid] = wrong + 1
            left = PIN_ATTEMPTS - wrong - 1
            raise ValueError(f"wrong PIN {pin!r} for card {card.iccid!r}: {left} attempts left")
        self._wrong_pins.pop(card.iccid, None)
        self._set_state(SimState.READY)

    def reset(self) -> None:
        """Power cycle: a card with a PIN asks for it again; an empty slot stays empty."""
        self._set_state(self._power_on_state())

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the slot."""
        card = self._card
        return {
            "state": self._state.value,
            "iccid": None if card is None else card.iccid,
            "imsi": None if card is None else card.imsi,
            "phone": None if card is None else card.phone,
            "has_pin": card is not None and card.pin is not None,
            "wrong_pins": self.wrong_pins,
            "blocked": self.blocked,
            "changed_at": self.changed_at,
        }

    def _power_on_state(self) -> SimState:
        if self._card is None:
            return SimState.ABSENT
        return SimState.READY if self._card.pin is None else SimState.PIN_LOCKED

    def _set_state(self, state: SimState) -> None:
        if state is self._state:
            return
        self._state = state
        self.changed_at = float(self.env.now)
        for listener in tuple(self.on_state_change):
            listener(state)
