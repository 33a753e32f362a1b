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
  (``+CPIN: SIM PUK``) and ``unlock`` refuses even the right PIN; ``unblock`` is
  the PUK being entered.
* ``on_state_change`` listeners run after every change of ``state`` and only
  then, with the new state.

A power cycle (``reset``) asks a card with a PIN for it again; a card without
one comes back ``READY``.

SIM faults (issue 12; the catalogue calls these), each with its clear:

* ``pin_lock`` / ``clear_pin_lock``: the card asks for a PIN the unit does not
  give (``+CPIN: SIM PIN``; the modem drops to stat 0). A card without a PIN gets
  its PIN lock turned on with ``DEFAULT_PIN`` (as ``AT+CLCK="SC",1`` would), so it
  asks again after every power cycle until the clear, which enters the PIN and
  puts the card back as it was.
* ``block`` / ``unblock``: the card is blocked as after 3 wrong PINs
  (``+CPIN: SIM PUK``); ``unblock`` enters the PUK: the counter is reset, the
  card is ``READY``.
* ``swap(card)``: another card in the slot (the modem sees it pulled and a new one
  put in: it registers again, and the unit reports the new ICCID and IMSI);
  swapping the old card back is the clear.

A SIM without a data plan registers and is refused data: the modem's
``refuse_data`` with ESM cause #33 (``vdtu.modem.modem``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vdtu.modem.registration import SimState

if TYPE_CHECKING:
    import simpy

__all__ = ["DEFAULT_PIN", "PIN_ATTEMPTS", "SimCard", "SimSlot", "SimState"]

PIN_ATTEMPTS = 3
"""Wrong PINs a card accepts before it is blocked."""
DEFAULT_PIN = "1234"
"""The PIN a card without one gets when the PIN-lock fault turns its lock on."""

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

    __slots__ = (
        "_card",
        "_pinless",
        "_state",
        "_wrong_pins",
        "changed_at",
        "env",
        "on_state_change",
    )

    def __init__(self, env: simpy.Environment, *, card: SimCard | None) -> None:
        self.env = env
        self._card = card
        self._wrong_pins: dict[str, int] | None = None
        """Wrong PINs by ICCID (None until the first: most slots never see one)."""
        self._pinless: SimCard | None = None
        """The card as it was before ``pin_lock`` turned its PIN lock on, if it did."""
        self._state = self._power_on_state()
        self.changed_at = float(env.now)
        """Sim time of the last state change."""
        self.on_state_change: tuple[Callable[[SimState], None], ...] = ()
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
        if self._card is None or self._wrong_pins is None:
            return 0
        return self._wrong_pins.get(self._card.iccid, 0)

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
        if self._pinless is not None:
            card, self._pinless = self._pinless, None  # it leaves as it came
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
        wrong = self.wrong_pins
        if wrong >= PIN_ATTEMPTS:
            raise ValueError(
                f"card {card.iccid!r} is blocked after {wrong} wrong PINs: it wants its PUK"
            )
        if pin != card.pin:
            self._count_wrong(card, wrong + 1)
            left = PIN_ATTEMPTS - wrong - 1
            raise ValueError(f"wrong PIN {pin!r} for card {card.iccid!r}: {left} attempts left")
        self._count_wrong(card, 0)
        self._set_state(SimState.READY)

    # -- faults (see the module docstring) -------------------------------------

    def pin_lock(self) -> None:
        """The card asks for its PIN (a card without one gets ``DEFAULT_PIN``).

        Raises:
            ValueError: the slot is empty.
        """
        card = self._card
        if card is None:
            raise ValueError("cannot PIN-lock the SIM: the slot is empty")
        if card.pin is None:
            self._pinless = card
            self._card = replace(card, pin=DEFAULT_PIN)
        self._set_state(SimState.PIN_LOCKED)

    def clear_pin_lock(self) -> None:
        """The PIN is entered: the card is ``READY`` and as it was before ``pin_lock``.

        Raises:
            ValueError: the card is blocked (``unblock`` it), or the slot is empty.
        """
        card = self._card
        if card is None:
            raise ValueError("cannot clear the PIN lock: the slot is empty")
        if self.blocked:
            raise ValueError(f"cannot clear the PIN lock of card {card.iccid!r}: it is blocked")
        if self._pinless is not None:
            self._card, self._pinless = self._pinless, None
        self._set_state(SimState.READY)

    def block(self) -> None:
        """Block the card as after ``PIN_ATTEMPTS`` wrong PINs: ``+CPIN: SIM PUK``.

        Raises:
            ValueError: the slot is empty.
        """
        self.pin_lock()
        card = self._card
        assert card is not None  # pin_lock checked
        self._count_wrong(card, PIN_ATTEMPTS)

    def unblock(self) -> None:
        """The PUK is entered: the wrong-PIN counter is reset and the card is ``READY``.

        Raises:
            ValueError: the slot is empty.
        """
        card = self._card
        if card is None:
            raise ValueError("cannot unblock the SIM: the slot is empty")
        self._count_wrong(card, 0)
        self.clear_pin_lock()

    def swap(self, card: SimCard) -> SimCard:
        """Put ``card`` in place of the card in the slot; returns the card taken out.

        Raises:
            ValueError: the slot is empty (``insert`` it), or ``card`` is the one in it.
        """
        old = self._card
        if old is None:
            raise ValueError(f"cannot swap in card {card.iccid!r}: the slot is empty")
        if card.iccid == old.iccid:
            raise ValueError(f"cannot swap in card {card.iccid!r}: it is the card in the slot")
        taken = self.remove()
        self.insert(card)
        return taken

    def _count_wrong(self, card: SimCard, wrong: int) -> None:
        if wrong:
            if self._wrong_pins is None:
                self._wrong_pins = {}
            self._wrong_pins[card.iccid] = wrong
        elif self._wrong_pins is not None:
            self._wrong_pins.pop(card.iccid, None)

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
        for listener in self.on_state_change:
            listener(state)
