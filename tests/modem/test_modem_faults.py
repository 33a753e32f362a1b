"""The modem's cellular faults in virtual time: rejects with EMM causes, roaming, the data
context, DNS, hang, reboot, network time (boot 3 s, search 5 s: registered at 8 s)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.modem.test_modem import CARD, PIN_CARD, Rig, make_rig
from vdtu.errors import LocalProtocolError
from vdtu.modem import AtInterpreter, Modem, RegStat, SimCard
from vdtu.modem.registration import DataState, EsmCause

OTHER_CARD = SimCard(iccid="89860000000000000026", imsi="460009876543210", phone="18800000000")


def stat(rig: Rig) -> RegStat:
    """The stat now (a call, so that mypy does not narrow it between two reads)."""
    return rig.modem.reg_stat


def data(rig: Rig) -> DataState:
    """The data context now."""
    return rig.modem.data_state


def registered_rig(**kwargs: Any) -> Rig:
    rig = make_rig(**kwargs)
    rig.modem.set_creg_mode(1)
    rig.run_for(10)
    assert rig.modem.registered
    rig.regs.clear()
    rig.urcs.clear()
    return rig


def creg_urcs(rig: Rig) -> list[tuple[float, str]]:
    return [(at, line) for at, line in rig.urcs if line.startswith("+CREG")]


# -- registration rejected -----------------------------------------------------


def test_congestion_detaches_and_retries_after_t3346() -> None:
    """#22 while registered: +CREG: 3 at once; the retry waits T3346, then registers."""
    rig = registered_rig()
    rig.modem.reject_registration(22, t3346_s=60)
    assert stat(rig) is RegStat.DENIED
    assert AtInterpreter(rig.modem).execute("AT+CREG?") == ["+CREG: 1,3", "OK"]
    rig.modem.clear_registration_reject()
    rig.run_for(59.9)
    assert stat(rig) is RegStat.DENIED  # the timer is not cut short
    rig.run_for(5.2)
    assert creg_urcs(rig) == [(10.0, "+CREG: 3"), (70.0, "+CREG: 2"), (75.0, "+CREG: 1")]
    assert rig.modem.snapshot()["faults"] is None


def test_congestion_still_on_rejects_again_after_each_t3346() -> None:
    """A #22 that lasts: a retry every T3346 (+ the search), each rejected again."""
    rig = make_rig()
    rig.modem.set_creg_mode(1)
    rig.modem.reject_registration(22, t3346_s=100)
    rig.run_for(300)
    assert creg_urcs(rig) == [
        (3.0, "+CREG: 2"),
        (8.0, "+CREG: 3"),
        (108.0, "+CREG: 2"),
        (113.0, "+CREG: 3"),
        (213.0, "+CREG: 2"),
        (218.0, "+CREG: 3"),
    ]
    assert rig.modem.snapshot()["faults"]["reject_cause"] == 22
    assert rig.modem.snapshot()["faults"]["backoff"] is True


@pytest.mark.parametrize("cause", [11, 13])
def test_forbidden_plmn_or_ta_retries_after_t3402(cause: int) -> None:
    """#11/#13: denied; the next attempt is T3402 (12 min by default) later."""
    rig = make_rig()
    rig.modem.reject_registration(cause)
    rig.run_for(10)
    assert stat(rig) is RegStat.DENIED
    rig.modem.clear_registration_reject()
    rig.run_for(8 + 720 - 10 - 0.5)
    assert stat(rig) is RegStat.DENIED
    rig.run_for(0.5 + 5.1)
    assert stat(rig) is RegStat.HOME
    assert [at for at, stat in rig.regs if stat is RegStat.HOME] == [733.0]


@pytest.mark.parametrize("cause", [3, 7])
def test_illegal_ue_needs_a_power_cycle_or_sim_reinsert(cause: int) -> None:
    """#3/#7: the USIM is invalid for EPS: no retry, even after the cause is lifted, until the
    SIM is pulled and put back (or the power is cycled)."""
    rig = make_rig()
    rig.modem.reject_registration(cause)
    rig.run_for(10)
    rig.modem.clear_registration_reject()
    rig.run_for(3600)
    assert stat(rig) is RegStat.DENIED
    assert rig.modem.snapshot()["faults"]["sim_invalid"] is True
    rig.sim.insert(rig.sim.remove())
    rig.run_for(5.1)
    assert stat(rig) is RegStat.HOME

    rig.modem.reject_registration(cause)
    assert stat(rig) is RegStat.DENIED
    rig.modem.clear_registration_reject()
    rig.modem.reset()
    rig.run_for(8.1)
    assert stat(rig) is RegStat.HOME


def test_no_suitable_cells_keeps_searching_until_lifted() -> None:
    """#15: stat 2 (the UE searches another TA), never 3; lifted: registered one search later."""
    rig = registered_rig()
    rig.modem.reject_registration(15)
    rig.run_for(600)
    assert creg_urcs(rig) == [(10.0, "+CREG: 2")]
    rig.modem.clear_registration_reject()
    rig.run_for(5.1)
    assert creg_urcs(rig)[-1] == (615.0, "+CREG: 1")


def test_power_cycle_stops_the_backoff_but_the_cause_stays() -> None:
    """The network's cause outlasts a reboot; the module's T3346 does not."""
    rig = make_rig()
    rig.modem.reject_registration(22, t3346_s=1000)
    rig.run_for(10)
    rig.modem.reset()
    rig.run_for(9)
    assert stat(rig) is RegStat.DENIED  # rejected again at once after the reboot
    rig.modem.clear_registration_reject()
    rig.modem.reset()
    rig.run_for(8.1)
    assert stat(rig) is RegStat.HOME


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.reject_registration(4), r"EMM causes \[3, 7, 11, 13, 15, 22\], not 4"),
        (lambda m: m.reject_registration(22, t3346_s=0), "t3346_s must be .* not 0"),
        (lambda m: m.reject_registration(11, t3402_s=-1.0), "t3402_s .* not -1.0"),
        (lambda m: m.refuse_data(34), r"ESM causes \[26, 27, 29, 33, 38\], not 34"),
        (lambda m: m.refuse_data(33, retry_s=float("inf")), "retry_s .* not inf"),
        (lambda m: m.drop_data(retry_s=True), "retry_s .* not True"),
    ],
)
def test_fault_parameters_are_checked(call: Callable[[Modem], None], message: str) -> None:
    """A bad parameter is a ValueError naming the value and what is allowed; nothing changes."""
    rig = registered_rig()
    with pytest.raises(ValueError, match=message):
        call(rig.modem)
    assert rig.modem.snapshot()["faults"] is None
    assert rig.modem.data_ready


# -- roaming -------------------------------------------------------------------


def test_roaming_fault_registers_as_roaming_and_back() -> None:
    """Registered at home: 2, then 5 after a search; cleared: 2, then 1."""
    rig = registered_rig()
    rig.modem.force_roaming()
    rig.run_for(5.1)
    rig.modem.clear_roaming()
    rig.run_for(5.1)
    assert creg_urcs(rig) == [
        (10.0, "+CREG: 2"),
        (15.0, "+CREG: 5"),
        (15.1, "+CREG: 2"),
        (20.1, "+CREG: 1"),
    ]
    assert rig.modem.snapshot()["faults"] is None


def test_roaming_fault_on_a_roaming_subscription_changes_nothing() -> None:
    rig = registered_rig(roaming=True)
    assert stat(rig) is RegStat.ROAMING
    rig.modem.force_roaming()
    rig.modem.clear_roaming()
    rig.run_for(10)
    assert rig.regs == []
    assert rig.modem.roaming


# -- the data context ----------------------------------------------------------


def test_refused_data_context_registers_without_data() -> None:
    """#33 (no data plan): registered (stat 1) but REFUSED; the listeners hear of each change;
    lifted: ACTIVE at the module's next retry."""
    rig = make_rig()
    rig.modem.refuse_data(EsmCause.SERVICE_OPTION_NOT_SUBSCRIBED, retry_s=30)
    rig.run_for(10)
    assert stat(rig) is RegStat.HOME
    assert data(rig) is DataState.REFUSED
    assert rig.modem.data_cause == 33
    assert not rig.modem.data_ready
    rig.regs.clear()
    rig.run_for(35)  # refused at 0; retries at 30, 60, ...
    rig.modem.clear_data_refusal()
    assert data(rig) is DataState.DROPPED
    rig.run_for(14.9)
    assert not rig.modem.data_ready
    rig.run_for(0.2)
    assert rig.modem.data_ready
    assert rig.regs == [(60.0, RegStat.HOME)]
    assert rig.modem.snapshot()["faults"] is None


def test_data_drop_reactivates_after_the_retry_delay() -> None:
    rig = registered_rig()
    rig.modem.drop_data(retry_s=12)
    assert data(rig) is DataState.DROPPED
    assert rig.modem.snapshot()["faults"]["data_back_in_s"] == 12.0
    rig.run_for(12.1)
    assert data(rig) is DataState.ACTIVE
    assert rig.regs == [(10.0, RegStat.HOME), (22.0, RegStat.HOME)]
    rig.modem.refuse_data()
    with pytest.raises(LocalProtocolError, match="it is REFUSED, not ACTIVE"):
        rig.modem.drop_data()


def test_clear_data_drop_reactivates_at_once() -> None:
    rig = registered_rig()
    rig.modem.drop_data(retry_s=100)
    rig.run_for(1)
    rig.modem.clear_data_drop()
    assert rig.modem.data_ready
    rig.run_for(200)
    assert rig.regs == [(10.0, RegStat.HOME), (11.0, RegStat.HOME)]


def test_no_data_context_without_registration() -> None:
    rig = make_rig()
    assert data(rig) is DataState.DETACHED
    rig.run_for(10)
    assert data(rig) is DataState.ACTIVE
    rig.signal.set_coverage(False)
    assert data(rig) is DataState.DETACHED


# -- DNS, network time -----------------------------------------------------------


def test_dns_failure_refuses_names_not_addresses() -> None:
    rig = registered_rig()
    assert rig.modem.resolve_error("broker.vdtu") is None
    rig.modem.fail_dns()
    assert not rig.modem.dns_ok
    error = rig.modem.resolve_error("broker.vdtu")
    assert error is not None
    assert "DNS lookup of 'broker.vdtu' failed" in error
    assert rig.modem.resolve_error("127.0.0.1") is None
    assert rig.modem.resolve_error("::1") is None
    assert rig.modem.snapshot()["dns_ok"] is False
    rig.modem.clear_dns_failure()
    assert rig.modem.resolve_error("broker.vdtu") is None
    assert rig.modem.snapshot()["faults"] is None


def test_no_network_time_while_withheld() -> None:
    """No NITZ: network_time_ms None and AT+CCLK counts from the RTC's reset value."""
    rig = registered_rig()
    at = AtInterpreter(rig.modem)
    rig.modem.withhold_network_time()
    assert rig.modem.network_time_ms() is None
    assert at.execute("AT+CCLK?") == ['+CCLK: "80/01/06,00:00:10+00"', "OK"]
    rig.modem.clear_network_time_fault()
    assert rig.modem.network_time_ms() == round((rig.clock.epoch_s + 10) * 1000)


# -- hang, reboot ---------------------------------------------------------------


def test_hung_modem_is_silent_frozen_and_without_data_until_reset() -> None:
    rig = registered_rig()
    at = AtInterpreter(rig.modem)
    rig.modem.hang()
    assert at.execute("AT+CSQ") == []
    assert at.execute("AT") == []
    assert rig.modem.rssi == 99
    assert data(rig) is DataState.DETACHED
    assert rig.regs == [(10.0, RegStat.HOME)]  # data gone, the stat frozen
    rig.signal.set_coverage(False)
    rig.sim.remove()
    rig.run_for(100)
    assert stat(rig) is RegStat.HOME
    assert rig.urcs == []
    rig.sim.insert(CARD)
    rig.signal.set_coverage(True)
    rig.modem.reset()
    assert stat(rig) is RegStat.NOT_REGISTERED
    rig.run_for(8.1)
    assert at.execute("AT") == ["OK"]
    assert rig.modem.data_ready
    assert rig.modem.snapshot()["faults"] is None


def test_hang_needs_a_booted_modem() -> None:
    rig = make_rig()
    with pytest.raises(LocalProtocolError, match="not booted"):
        rig.modem.hang()


def test_reboot_drops_to_zero_and_registers_again() -> None:
    rig = registered_rig()
    rig.modem.reboot()
    rig.run_for(8.1)
    assert rig.regs == [
        (10.0, RegStat.NOT_REGISTERED),
        (13.0, RegStat.SEARCHING),
        (18.0, RegStat.HOME),
    ]
    assert (13.0, "RDY") in rig.urcs
    rig.modem.power_off()
    with pytest.raises(LocalProtocolError, match="off"):
        rig.modem.reboot()


# -- SIM faults as the modem sees them --------------------------------------------


def test_pin_lock_fault_drops_registration_and_cpin_says_sim_pin() -> None:
    rig = registered_rig()
    at = AtInterpreter(rig.modem)
    rig.sim.pin_lock()
    assert stat(rig) is RegStat.NOT_REGISTERED
    assert at.execute("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    rig.modem.reset()
    rig.run_for(10)
    assert at.execute("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]  # it asks after every boot
    rig.sim.clear_pin_lock()
    rig.run_for(5.1)
    assert stat(rig) is RegStat.HOME
    assert rig.sim.card == CARD


def test_puk_blocked_sim_says_sim_puk() -> None:
    rig = make_rig(card=PIN_CARD)
    rig.run_for(3.1)
    rig.modem.unlock_sim("1234")
    rig.run_for(5.1)
    assert rig.modem.registered
    rig.sim.block()
    assert stat(rig) is RegStat.NOT_REGISTERED
    at = AtInterpreter(rig.modem)
    assert at.execute("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
    assert at.execute("AT+CPIN=1234") == ["+CME ERROR: 12"]
    rig.sim.unblock()
    rig.run_for(5.1)
    assert stat(rig) is RegStat.HOME


def test_swapped_sim_registers_again_with_the_new_identity() -> None:
    rig = registered_rig()
    old = rig.sim.swap(OTHER_CARD)
    assert old == CARD
    assert rig.modem.iccid == OTHER_CARD.iccid
    assert rig.modem.imsi == OTHER_CARD.imsi
    assert [stat for _at, stat in rig.regs] == [RegStat.NOT_REGISTERED, RegStat.SEARCHING]
    rig.run_for(5.1)
    assert stat(rig) is RegStat.HOME


def test_snapshot_with_faults_is_json() -> None:
    rig = registered_rig()
    rig.modem.reject_registration(22)
    rig.modem.refuse_data(27)
    rig.modem.fail_dns()
    rig.modem.withhold_network_time()
    snapshot = rig.modem.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["data_state"] == "DETACHED"
    assert snapshot["faults"] | {} == {
        "reject_cause": 22,
        "t3346_s": 900.0,
        "t3402_s": 720.0,
        "backoff": True,
        "sim_invalid": False,
        "roaming": False,
        "data_cause": 27,
        "data_retry_s": 20.0,
        "data_back_in_s": None,
        "dns_failing": True,
        "no_network_time": True,
        "hung": False,
    }
