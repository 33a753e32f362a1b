"""The SIM card record and the SIM slot."""

from __future__ import annotations

import pytest

from vdtu.clock import VirtualClock
from vdtu.modem.sim import PIN_ATTEMPTS, SimCard, SimSlot, SimState

CARD = SimCard(iccid="898604E0092221379975", imsi="460001234567890", phone="18812345678")
PIN_CARD = SimCard(
    iccid="89860000000000000018", imsi="460001234567891", phone="18812345679", pin="1234"
)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def watch(slot: SimSlot) -> list[SimState]:
    log: list[SimState] = []
    slot.on_state_change += (log.append,)
    return log


def test_card_validation_names_the_value() -> None:
    """A bad ICCID, IMSI or PIN raises ValueError naming it."""
    with pytest.raises(ValueError, match="'123'"):
        SimCard(iccid="123", imsi="460001234567890", phone="1")
    with pytest.raises(ValueError, match="'46000'"):
        SimCard(iccid="898604E0092221379975", imsi="46000", phone="1")
    with pytest.raises(ValueError, match="'12'"):
        SimCard(iccid="898604E0092221379975", imsi="460001234567890", phone="1", pin="12")


def test_initial_states(clock: VirtualClock) -> None:
    """Empty slot ABSENT, card without PIN READY, card with PIN PIN_LOCKED."""
    assert SimSlot(clock.env, card=None).state is SimState.ABSENT
    assert SimSlot(clock.env, card=CARD).state is SimState.READY
    assert SimSlot(clock.env, card=PIN_CARD).state is SimState.PIN_LOCKED


def test_remove_and_insert_fire_listeners(clock: VirtualClock) -> None:
    """Pulling and inserting a card change the state and call the listeners."""
    slot = SimSlot(clock.env, card=CARD)
    log = watch(slot)
    clock.run_for(5)
    assert slot.remove() is CARD
    assert slot.card is None
    assert slot.changed_at == 5.0
    slot.insert(PIN_CARD)
    assert slot.card is PIN_CARD
    assert log == [SimState.ABSENT, SimState.PIN_LOCKED]


def test_insert_into_full_slot_and_remove_from_empty_slot_raise(clock: VirtualClock) -> None:
    """A second card or pulling from an empty slot is refused with the ICCIDs named."""
    slot = SimSlot(clock.env, card=CARD)
    with pytest.raises(ValueError, match="898604E0092221379975"):
        slot.insert(PIN_CARD)
    slot.remove()
    with pytest.raises(ValueError, match="empty"):
        slot.remove()


def test_lock_and_unlock(clock: VirtualClock) -> None:
    """lock() needs the PIN again; unlock with the right PIN makes the card READY."""
    slot = SimSlot(clock.env, card=PIN_CARD)
    log = watch(slot)
    slot.unlock("1234")
    slot.lock()
    assert log == [SimState.READY, SimState.PIN_LOCKED]
    slot.unlock("1234")
    assert log[-1] is SimState.READY
    assert slot.state is SimState.READY


def test_lock_without_pin_or_card_raises(clock: VirtualClock) -> None:
    """A card without a PIN and an empty slot cannot be locked."""
    with pytest.raises(ValueError, match="no PIN"):
        SimSlot(clock.env, card=CARD).lock()
    with pytest.raises(ValueError, match="empty"):
        SimSlot(clock.env, card=None).lock()


def test_unlock_when_not_locked_raises(clock: VirtualClock) -> None:
    """unlock() on a READY card is refused and names the state."""
    with pytest.raises(ValueError, match="READY"):
        SimSlot(clock.env, card=CARD).unlock("1234")


def test_wrong_pins_are_counted_and_block_the_card(clock: VirtualClock) -> None:
    """Each wrong PIN counts; after three even the right PIN is refused."""
    slot = SimSlot(clock.env, card=PIN_CARD)
    log = watch(slot)
    for attempt in range(1, PIN_ATTEMPTS + 1):
        with pytest.raises(
            ValueError, match=f"wrong PIN '0000'.*{PIN_ATTEMPTS - attempt} attempts"
        ):
            slot.unlock("0000")
        assert slot.wrong_pins == attempt
    assert slot.blocked
    with pytest.raises(ValueError, match="blocked"):
        slot.unlock("1234")
    assert slot.state is SimState.PIN_LOCKED
    assert log == []


def test_right_pin_clears_the_count(clock: VirtualClock) -> None:
    """A right PIN before the block resets the wrong-PIN count."""
    slot = SimSlot(clock.env, card=PIN_CARD)
    with pytest.raises(ValueError, match="wrong PIN"):
        slot.unlock("9999")
    slot.unlock("1234")
    assert slot.wrong_pins == 0


def test_block_survives_reset_and_reinsertion(clock: VirtualClock) -> None:
    """The wrong-PIN count lives on the card: a power cycle or re-insertion keeps it."""
    slot = SimSlot(clock.env, card=PIN_CARD)
    for _ in range(PIN_ATTEMPTS):
        with pytest.raises(ValueError, match="wrong PIN"):
            slot.unlock("0000")
    slot.reset()
    assert slot.blocked
    slot.remove()
    assert slot.wrong_pins == 0
    slot.insert(PIN_CARD)
    assert slot.blocked


def test_reset_relocks_pin_card_and_keeps_others(clock: VirtualClock) -> None:
    """Power cycle: a PIN card asks again, a plain card stays READY, an empty slot stays empty."""
    pin_slot = SimSlot(clock.env, card=PIN_CARD)
    pin_slot.unlock("1234")
    log = watch(pin_slot)
    pin_slot.reset()
    assert pin_slot.state is SimState.PIN_LOCKED
    assert log == [SimState.PIN_LOCKED]

    plain = SimSlot(clock.env, card=CARD)
    plain_log = watch(plain)
    plain.reset()
    assert plain.state is SimState.READY
    assert plain_log == []

    empty = SimSlot(clock.env, card=None)
    empty.reset()
    assert empty.state is SimState.ABSENT


def test_snapshot(clock: VirtualClock) -> None:
    """snapshot() reports the state and the card."""
    slot = SimSlot(clock.env, card=PIN_CARD)
    assert slot.snapshot() == {
        "state": "PIN_LOCKED",
        "iccid": "89860000000000000018",
        "imsi": "460001234567891",
        "phone": "18812345679",
        "has_pin": True,
        "wrong_pins": 0,
        "blocked": False,
        "changed_at": 0.0,
    }


# -- faults (issue 12) ----------------------------------------------------------


def test_pin_lock_fault_on_a_card_without_pin(clock: VirtualClock) -> None:
    """The lock is turned on with the default PIN; it asks after a power cycle too; the clear
    enters it and gives the card back as it was."""
    slot = SimSlot(clock.env, card=CARD)
    log = watch(slot)
    slot.pin_lock()
    assert slot.state is SimState.PIN_LOCKED
    slot.reset()
    assert slot.snapshot()["state"] == "PIN_LOCKED"
    slot.clear_pin_lock()
    assert slot.card == CARD
    assert log == [SimState.PIN_LOCKED, SimState.READY]
    slot.reset()
    assert slot.snapshot()["state"] == "READY"


def test_block_fault_wants_the_puk_and_unblock_enters_it(clock: VirtualClock) -> None:
    slot = SimSlot(clock.env, card=PIN_CARD)
    slot.unlock("1234")
    slot.block()
    assert slot.blocked
    assert slot.wrong_pins == PIN_ATTEMPTS
    with pytest.raises(ValueError, match=r"blocked .* wants its PUK"):
        slot.unlock("1234")
    with pytest.raises(ValueError, match="blocked"):
        slot.clear_pin_lock()
    slot.unblock()
    assert slot.state is SimState.READY
    assert slot.wrong_pins == 0
    assert slot.card == PIN_CARD


def test_swap_puts_another_card_in(clock: VirtualClock) -> None:
    slot = SimSlot(clock.env, card=CARD)
    log = watch(slot)
    assert slot.swap(PIN_CARD) == CARD
    assert slot.card == PIN_CARD
    assert log == [SimState.ABSENT, SimState.PIN_LOCKED]
    with pytest.raises(ValueError, match="it is the card in the slot"):
        slot.swap(PIN_CARD)
    slot.remove()
    with pytest.raises(ValueError, match="the slot is empty"):
        slot.swap(CARD)
    for fault in (slot.pin_lock, slot.block, slot.unblock, slot.clear_pin_lock):
        with pytest.raises(ValueError, match="the slot is empty"):
            fault()


def test_a_slot_without_wrong_pins_holds_no_counter(clock: VirtualClock) -> None:
    """Per-unit memory: the wrong-PIN counter is made on the first wrong PIN only."""
    slot = SimSlot(clock.env, card=PIN_CARD)
    slot.unlock("1234")
    assert slot._wrong_pins is None
    slot.lock()
    with pytest.raises(ValueError, match="wrong PIN"):
        slot.unlock("0000")
    assert slot.wrong_pins == 1
