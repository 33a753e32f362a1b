"""The modem model in virtual time: boot, registration, faults, URCs, time, SMS."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
import simpy

from vdtu.clock import VirtualClock
from vdtu.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from vdtu.modem import (
    Modem,
    NetMode,
    NetState,
    RegStat,
    Signal,
    SimCard,
    SimSlot,
    SimState,
    SmsRecord,
)
from vdtu.modem.modem import DEFAULT_CENTRE, KM_PER_DEGREE

IMEI = "867435053362828"
CARD = SimCard(iccid="898604E0092221379975", imsi="460001234567890", phone="18812345678")
PIN_CARD = SimCard(
    iccid="89860000000000000018", imsi="460001234567891", phone="18812345679", pin="1234"
)


@dataclass
class Rig:
    """One modem with its SIM slot and signal, and a log of what it reported."""

    clock: VirtualClock
    sim: SimSlot
    signal: Signal
    modem: Modem
    regs: list[tuple[float, RegStat]] = field(default_factory=list)
    urcs: list[tuple[float, str]] = field(default_factory=list)

    def run_for(self, seconds: float) -> None:
        self.clock.run_for(seconds)

    def run_process(self, generator: Any) -> simpy.Process:
        process = self.clock.env.process(generator)
        process.callbacks.append(_defuse)
        return process


def _defuse(event: simpy.Event) -> None:
    """Mark a failed process as handled: the test inspects its value itself."""
    event.defused = True


def make_rig(
    *,
    seed: int = 1,
    card: SimCard | None = CARD,
    boot_s: tuple[float, float] = (3.0, 3.0),
    search_s: tuple[float, float] = (5.0, 5.0),
    power_on: bool = True,
    **kwargs: Any,
) -> Rig:
    clock = VirtualClock()
    rng = random.Random(seed)
    sim = SimSlot(clock.env, card=card)
    signal = Signal(clock.env, rng, drift_period_s=1000.0)
    modem = Modem(
        clock.env,
        rng,
        imei=IMEI,
        sim=sim,
        signal=signal,
        epoch_s=clock.epoch_s,
        boot_s=boot_s,
        search_s=search_s,
        **kwargs,
    )
    rig = Rig(clock=clock, sim=sim, signal=signal, modem=modem)
    modem.on_registration_change += (lambda stat: rig.regs.append((clock.now, stat)),)
    modem.on_urc += (lambda line: rig.urcs.append((clock.now, line)),)
    if power_on:
        modem.power_on()
    return rig


# -- boot --------------------------------------------------------------------


def test_boot_timeline() -> None:
    """Boot 3 s, then searching, registered home 5 s later, with the boot URCs."""
    rig = make_rig()
    modem = rig.modem
    assert modem.net_state is NetState.INIT
    assert modem.rssi == 99
    rig.run_for(2.9)
    assert not modem.ready
    assert modem.cfun == 0
    rig.run_for(10)
    assert rig.regs == [(3.0, RegStat.SEARCHING), (8.0, RegStat.HOME)]
    assert rig.urcs == [
        (3.0, "RDY"),
        (3.0, "+CFUN: 1"),
        (3.0, "+CPIN: READY"),
        (8.0, "+QIND: SMS DONE"),
    ]
    assert modem.ready
    assert modem.registered
    assert modem.net_state is NetState.REGISTERED
    assert modem.net_mode is NetMode.LTE
    assert modem.rssi == 26


def test_net_state_unregister_while_searching() -> None:
    """Between boot and registration the XGC netState is UNREGISTER and netMode 0."""
    rig = make_rig()
    rig.run_for(4)
    assert rig.modem.net_state is NetState.UNREGISTER
    assert rig.modem.net_mode is NetMode.UNREGISTERED
    assert rig.modem.reg_stat is RegStat.SEARCHING


def test_boot_and_search_times_are_drawn_within_ranges_and_repeatable() -> None:
    """Random boot and search times stay in their ranges and repeat for a seed."""

    def registration_log(seed: int) -> list[tuple[float, RegStat]]:
        rig = make_rig(seed=seed, boot_s=(2.0, 4.0), search_s=(2.0, 8.0))
        rig.run_for(20)
        return rig.regs

    log = registration_log(42)
    (searching_at, searching), (registered_at, registered) = log
    assert searching is RegStat.SEARCHING
    assert registered is RegStat.HOME
    assert 2.0 <= searching_at <= 4.0
    assert 2.0 <= registered_at - searching_at <= 8.0
    assert registration_log(42) == log
    assert registration_log(43) != log


def test_not_powered_until_power_on() -> None:
    """A modem that was never powered stays INIT, unregistered, rssi 99."""
    rig = make_rig(power_on=False)
    rig.run_for(60)
    assert not rig.modem.powered
    assert rig.modem.net_state is NetState.INIT
    assert rig.modem.reg_stat is RegStat.NOT_REGISTERED
    assert rig.modem.rssi == 99
    assert rig.regs == []
    assert rig.urcs == []


def test_power_on_twice_and_off_twice_raise() -> None:
    """power_on on a powered modem and power_off on an off one are refused."""
    rig = make_rig()
    with pytest.raises(LocalProtocolError, match="already powered"):
        rig.modem.power_on()
    rig.modem.power_off()
    with pytest.raises(LocalProtocolError, match="already off"):
        rig.modem.power_off()


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def step(self) -> None:
        self.steps += 1
        super().step()


def test_idle_registered_modem_schedules_nothing() -> None:
    """Once registered, the modem processes no events at all (the signal drifts rarely here)."""
    env = CountingEnvironment()
    rng = random.Random(1)
    sim = SimSlot(env, card=CARD)
    signal = Signal(env, rng, drift_period_s=1000.0)
    modem = Modem(env, rng, imei=IMEI, sim=sim, signal=signal, epoch_s=0.0)
    modem.power_on()
    env.run(until=20)
    assert modem.registered
    steps = env.steps
    env.run(until=990)
    # Only the two stop events: run(until=20) leaves its own queued, then run(until=990)'s.
    assert env.steps - steps == 2


def test_many_modems_share_one_environment() -> None:
    """A thousand modems on one env all register within their boot + search time."""
    clock = VirtualClock()
    modems = []
    for unit in range(1000):
        rng = random.Random(unit)
        sim = SimSlot(clock.env, card=CARD)
        signal = Signal(clock.env, rng)
        modem = Modem(clock.env, rng, imei=IMEI, sim=sim, signal=signal, epoch_s=clock.epoch_s)
        modem.power_on()
        modems.append(modem)
    clock.run_for(12.0)
    assert all(modem.registered for modem in modems)


# -- SIM -----------------------------------------------------------------------


def test_sim_pulled_deregisters_at_once_and_reinserted_searches_again() -> None:
    """Pulling the SIM gives stat 0 and +CPIN: NOT READY at once; a new card registers again."""
    rig = make_rig()
    rig.modem.set_creg_mode(1)
    rig.run_for(10)
    rig.urcs.clear()
    rig.sim.remove()
    assert rig.modem.reg_stat is RegStat.NOT_REGISTERED
    assert rig.modem.imsi is None
    assert rig.modem.iccid is None
    rig.run_for(10)
    rig.sim.insert(CARD)
    rig.run_for(10)
    assert rig.regs[2:] == [
        (10.0, RegStat.NOT_REGISTERED),
        (20.0, RegStat.SEARCHING),
        (25.0, RegStat.HOME),
    ]
    assert rig.urcs == [
        (10.0, "+CPIN: NOT READY"),
        (10.0, "+CREG: 0"),
        (20.0, "+CPIN: READY"),
        (20.0, "+CREG: 2"),
        (25.0, "+CREG: 1"),
    ]


def test_sim_pulled_during_search_cancels_it() -> None:
    """A SIM pulled mid-search stops the search: no registration follows."""
    rig = make_rig()
    rig.run_for(5)
    rig.sim.remove()
    rig.run_for(30)
    assert rig.regs == [(3.0, RegStat.SEARCHING), (5.0, RegStat.NOT_REGISTERED)]


def test_no_sim_at_boot_stays_unregistered() -> None:
    """Without a card the modem boots, says +CPIN: NOT READY and never searches."""
    rig = make_rig(card=None)
    rig.run_for(30)
    assert rig.modem.reg_stat is RegStat.NOT_REGISTERED
    assert rig.modem.net_state is NetState.UNREGISTER
    assert rig.regs == []
    assert (3.0, "+CPIN: NOT READY") in rig.urcs


def test_pin_card_waits_for_unlock() -> None:
    """A PIN-locked card blocks registration until the PIN is entered."""
    rig = make_rig(card=PIN_CARD)
    rig.run_for(20)
    assert (3.0, "+CPIN: SIM PIN") in rig.urcs
    assert rig.modem.reg_stat is RegStat.NOT_REGISTERED
    assert rig.modem.iccid == PIN_CARD.iccid
    assert rig.modem.imsi is None
    with pytest.raises(ValueError, match="wrong PIN"):
        rig.modem.unlock_sim("0000")
    rig.modem.unlock_sim("1234")
    rig.run_for(10)
    assert rig.regs == [(20.0, RegStat.SEARCHING), (25.0, RegStat.HOME)]
    assert (20.0, "+CPIN: READY") in rig.urcs
    assert rig.modem.imsi == PIN_CARD.imsi


def test_sim_locked_while_registered_deregisters() -> None:
    """Locking the SIM deregisters and prints +CPIN: SIM PIN."""
    rig = make_rig(card=PIN_CARD)
    rig.run_for(4)
    rig.modem.unlock_sim("1234")
    rig.run_for(10)
    assert rig.modem.registered
    rig.sim.lock()
    assert rig.modem.reg_stat is RegStat.NOT_REGISTERED
    assert rig.urcs[-1] == (14.0, "+CPIN: SIM PIN")


# -- coverage ------------------------------------------------------------------


def test_coverage_lost_searches_and_back_registers() -> None:
    """Coverage lost: stat 2, netMode 0, rssi 99; back: a new search, then registered."""
    rig = make_rig()
    rig.modem.set_creg_mode(2)
    rig.run_for(10)
    rig.signal.set_coverage(False)
    assert rig.modem.reg_stat is RegStat.SEARCHING
    assert rig.modem.net_mode is NetMode.UNREGISTERED
    assert rig.modem.net_state is NetState.UNREGISTER
    assert rig.modem.rssi == 99
    assert rig.modem.location is None
    rig.run_for(20)
    assert rig.modem.reg_stat is RegStat.SEARCHING
    rig.signal.set_coverage(True)
    rig.run_for(4.9)
    assert not rig.modem.registered
    rig.run_for(0.2)
    assert rig.modem.registered
    assert rig.regs == [
        (3.0, RegStat.SEARCHING),
        (8.0, RegStat.HOME),
        (10.0, RegStat.SEARCHING),
        (35.0, RegStat.HOME),
    ]
    lac, ci = rig.modem.lac, rig.modem.ci
    assert rig.urcs[-1] == (35.0, f'+CREG: 1,"{lac:04X}","{ci:X}",7')
    assert rig.urcs[-2] == (10.0, "+CREG: 2")


def test_coverage_lost_during_search_restarts_it() -> None:
    """Coverage lost mid-search cancels that search; coverage back starts a full new one."""
    rig = make_rig()
    rig.run_for(6)
    rig.signal.set_coverage(False)
    rig.run_for(1)
    rig.signal.set_coverage(True)
    rig.run_for(10)
    assert rig.regs == [(3.0, RegStat.SEARCHING), (12.0, RegStat.HOME)]


def test_boot_without_coverage_is_searching() -> None:
    """A modem that boots out of coverage reports stat 2 and registers when coverage comes."""
    rig = make_rig()
    rig.signal.set_coverage(False)
    rig.run_for(30)
    assert rig.modem.reg_stat is RegStat.SEARCHING
    rig.signal.set_coverage(True)
    rig.run_for(5.1)
    assert rig.regs == [(3.0, RegStat.SEARCHING), (35.0, RegStat.HOME)]


# -- CFUN ----------------------------------------------------------------------


@pytest.mark.parametrize("fun", [0, 4])
def test_cfun_off_deregisters_and_cfun_1_searches(fun: int) -> None:
    """CFUN=0 and CFUN=4 deregister at once with rssi 99; CFUN=1 registers again."""
    rig = make_rig()
    rig.run_for(10)
    rig.modem.set_cfun(fun)
    assert rig.modem.cfun == fun
    assert rig.modem.reg_stat is RegStat.NOT_REGISTERED
    assert rig.modem.rssi == 99
    rig.signal.set_coverage(False)
    rig.signal.set_coverage(True)
    rig.run_for(10)
    assert rig.modem.reg_stat is RegStat.NOT_REGISTERED
    rig.modem.set_cfun(1)
    rig.run_for(5.1)
    assert rig.regs == [
        (3.0, RegStat.SEARCHING),
        (8.0, RegStat.HOME),
        (10.0, RegStat.NOT_REGISTERED),
        (20.0, RegStat.SEARCHING),
        (25.0, RegStat.HOME),
    ]


def test_cfun_validation() -> None:
    """CFUN outside 0/1/4 is a ValueError; CFUN before boot is a LocalProtocolError."""
    rig = make_rig()
    with pytest.raises(LocalProtocolError, match="not ready"):
        rig.modem.set_cfun(1)
    rig.run_for(4)
    with pytest.raises(ValueError, match="not 2"):
        rig.modem.set_cfun(2)


# -- deny, roaming ---------------------------------------------------------------


def test_denied_registration() -> None:
    """With deny_registration the search ends in stat 3; lifting it registers."""
    rig = make_rig(deny_registration=True)
    rig.modem.set_creg_mode(1)
    rig.run_for(10)
    assert rig.modem.reg_stat is RegStat.DENIED
    assert rig.modem.net_state is NetState.UNREGISTER
    assert rig.modem.network_time_ms() is None
    assert "+QIND: SMS DONE" not in [line for _, line in rig.urcs]
    rig.modem.set_deny_registration(False)
    rig.run_for(5.1)
    assert rig.regs == [
        (3.0, RegStat.SEARCHING),
        (8.0, RegStat.DENIED),
        (10.0, RegStat.SEARCHING),
        (15.0, RegStat.HOME),
    ]
    assert [line for _, line in rig.urcs if line.startswith("+CREG")] == [
        "+CREG: 2",
        "+CREG: 3",
        "+CREG: 2",
        "+CREG: 1",
    ]


def test_roaming_registration() -> None:
    """With roaming the search ends in stat 5, which counts as REGISTERED."""
    rig = make_rig(roaming=True)
    rig.run_for(10)
    assert rig.modem.reg_stat is RegStat.ROAMING
    assert rig.modem.registered
    assert rig.modem.roaming
    assert rig.modem.net_state is NetState.REGISTERED


def test_rat_sets_net_mode_and_cell_id_width() -> None:
    """The configured access technology is the netMode; 2G cells have 16-bit ids."""
    rig = make_rig(rat=NetMode.GSM)
    rig.run_for(10)
    assert rig.modem.net_mode is NetMode.GSM
    assert rig.modem.ci <= 0xFFFF


# -- time, location ----------------------------------------------------------------


def test_network_time_only_after_nitz() -> None:
    """Network time is None until the first registration, then epoch + now in ms."""
    rig = make_rig()
    rig.run_for(7.9)
    assert rig.modem.network_time_ms() is None
    rig.run_for(2.1)
    assert rig.modem.network_time_ms() == round((rig.clock.epoch_s + 10.0) * 1000)
    assert rig.modem.network_time_ms() == 1_692_157_162_787
    rig.signal.set_coverage(False)
    assert rig.modem.network_time_ms() == 1_692_157_162_787


def test_network_time_forgotten_on_power_cycle() -> None:
    """A power cycle forgets network time until the next registration."""
    rig = make_rig()
    rig.run_for(10)
    rig.modem.reset()
    assert rig.modem.network_time_ms() is None
    rig.run_for(8.1)
    assert rig.modem.network_time_ms() is not None


def test_default_location_near_shenzhen_and_only_when_registered() -> None:
    """The drawn cell is within 20 km of the xgc.md#5.11 point, reported only while registered."""
    for seed in range(50):
        rig = make_rig(seed=seed)
        assert rig.modem.location is None
        rig.run_for(10)
        location = rig.modem.location
        assert location is not None
        longitude, latitude = location
        east_km = (
            (longitude - DEFAULT_CENTRE[0])
            * KM_PER_DEGREE
            * math.cos(math.radians(DEFAULT_CENTRE[1]))
        )
        north_km = (latitude - DEFAULT_CENTRE[1]) * KM_PER_DEGREE
        assert math.hypot(east_km, north_km) <= 20.001


def test_location_is_deterministic_per_seed_and_configurable() -> None:
    """Same seed, same cell; a configured location is used as given."""
    assert make_rig(seed=9).modem.serving_location == make_rig(seed=9).modem.serving_location
    assert make_rig(seed=9).modem.serving_location != make_rig(seed=10).modem.serving_location
    rig = make_rig(location=(117.1138, 31.82279))
    rig.run_for(10)
    assert rig.modem.location == (117.1138, 31.82279)


# -- power cycle ---------------------------------------------------------------


def test_reset_is_a_power_cycle() -> None:
    """reset() drops registration at once, re-locks a PIN card, forgets AT settings and reboots."""
    rig = make_rig(card=PIN_CARD)
    rig.run_for(4)
    rig.modem.unlock_sim("1234")
    rig.modem.set_creg_mode(1)
    rig.run_for(10)
    assert rig.modem.registered
    rig.urcs.clear()
    rig.modem.reset()
    assert rig.modem.reg_stat is RegStat.NOT_REGISTERED
    assert not rig.modem.ready
    assert rig.modem.creg_mode == 0
    assert rig.modem.uptime_s == 0.0
    assert rig.sim.state is SimState.PIN_LOCKED
    rig.run_for(10)
    assert rig.urcs == [(17.0, "RDY"), (17.0, "+CFUN: 1"), (17.0, "+CPIN: SIM PIN")]
    assert rig.regs[-1] == (14.0, RegStat.NOT_REGISTERED)


def test_reset_during_boot_restarts_boot() -> None:
    """A reset while booting starts the boot over; the first boot never completes."""
    rig = make_rig()
    rig.run_for(2)
    rig.modem.reset()
    rig.run_for(2)
    assert not rig.modem.ready
    rig.run_for(1.1)
    assert rig.modem.ready
    assert [line for _, line in rig.urcs].count("RDY") == 1


def test_power_off_notifies_registration_listeners() -> None:
    """Powering off a registered modem reports stat 0 to listeners, without URCs."""
    rig = make_rig()
    rig.run_for(10)
    urcs = list(rig.urcs)
    rig.modem.power_off()
    assert rig.regs[-1] == (10.0, RegStat.NOT_REGISTERED)
    assert rig.urcs == urcs
    assert rig.modem.net_state is NetState.INIT
    assert rig.modem.rssi == 99


def test_sms_done_once_per_boot() -> None:
    """+QIND: SMS DONE is printed at the first registration after each boot only."""
    rig = make_rig()
    rig.run_for(10)
    rig.signal.set_coverage(False)
    rig.signal.set_coverage(True)
    rig.run_for(10)
    assert [line for _, line in rig.urcs].count("+QIND: SMS DONE") == 1
    rig.modem.reset()
    rig.run_for(10)
    assert [line for _, line in rig.urcs].count("+QIND: SMS DONE") == 2


# -- SMS -----------------------------------------------------------------------


def test_send_sms_appends_to_outbox() -> None:
    """A registered modem sends in 1..3 s and records the message with its parts."""
    rig = make_rig()
    rig.run_for(10)
    process = rig.run_process(rig.modem.send_sms("+8613800138000", "中" * 71))
    rig.run_for(5)
    assert process.ok
    record = process.value
    assert isinstance(record, SmsRecord)
    assert 11.0 <= record.at <= 13.0
    assert record.phone == "+8613800138000"
    assert record.parts == 2
    assert list(rig.modem.sms_outbox) == [record]
    assert rig.modem.snapshot()["sms_sent"] == 1


@pytest.mark.parametrize(
    ("phone", "text"),
    [("12", "hello"), ("188abc", "hello"), ("10086", ""), ("10086", "a" * 671)],
)
def test_send_sms_bad_param(phone: str, text: str) -> None:
    """An invalid phone or text fails with reply_hint bad-param."""
    rig = make_rig()
    rig.run_for(10)
    process = rig.run_process(rig.modem.send_sms(phone, text))
    rig.run_for(5)
    assert not process.ok
    assert isinstance(process.value, RemoteProtocolError)
    assert process.value.reply_hint == "bad-param"
    assert len(rig.modem.sms_outbox) == 0


def sms_failure(rig: Rig) -> RemoteProtocolError:
    process = rig.run_process(rig.modem.send_sms("10086", "hello"))
    rig.run_for(5)
    assert not process.ok
    error = process.value
    assert isinstance(error, RemoteProtocolError)
    assert len(rig.modem.sms_outbox) == 0
    return error


def test_send_sms_no_sim() -> None:
    """Without a card sending fails with no-sim."""
    rig = make_rig(card=None)
    rig.run_for(10)
    assert sms_failure(rig).reply_hint == "no-sim"


def test_send_sms_sim_locked() -> None:
    """With a PIN-locked card sending fails with sim-locked."""
    rig = make_rig(card=PIN_CARD)
    rig.run_for(10)
    assert sms_failure(rig).reply_hint == "sim-locked"


def test_send_sms_not_registered() -> None:
    """Before registration sending fails with not-registered."""
    rig = make_rig()
    rig.run_for(4)
    assert sms_failure(rig).reply_hint == "not-registered"


def test_send_sms_sim_pulled_while_sending() -> None:
    """A SIM pulled while the message is on its way fails it with no-sim."""
    rig = make_rig(search_s=(1.0, 1.0))
    rig.run_for(5)
    process = rig.run_process(rig.modem.send_sms("10086", "hello"))
    rig.run_for(0.5)
    rig.sim.remove()
    rig.run_for(5)
    assert not process.ok
    assert isinstance(process.value, RemoteProtocolError)
    assert process.value.reply_hint == "no-sim"


# -- snapshot, config ------------------------------------------------------------


def test_snapshot_is_json_and_complete() -> None:
    """snapshot() is JSON-able and reports registration, radio, SIM and signal."""
    rig = make_rig()
    rig.run_for(10)
    snapshot = rig.modem.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["imei"] == IMEI
    assert snapshot["reg_stat"] == 1
    assert snapshot["net_state"] == "REGISTERED"
    assert snapshot["net_mode"] == 4
    assert snapshot["rssi"] == 26
    assert snapshot["cfun"] == 1
    assert snapshot["uptime_s"] == 10.0
    assert snapshot["network_time_ms"] == 1_692_157_162_787
    assert snapshot["cell"] == {"lac": rig.modem.lac, "ci": rig.modem.ci}
    assert snapshot["location"] == list(rig.modem.serving_location)
    assert snapshot["sim"]["state"] == "READY"
    assert snapshot["signal"]["coverage"] is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"imei": "12345"}, "imei"),
        ({"rat": NetMode.UNREGISTERED}, "rat"),
        ({"boot_s": (4.0, 2.0)}, "boot_s"),
        ({"search_s": (-1.0, 2.0)}, "search_s"),
        ({"location": (200.0, 22.0)}, "location"),
    ],
)
def test_config_validation(kwargs: dict[str, Any], message: str) -> None:
    """Bad configuration raises ConfigError naming the field and value."""
    clock = VirtualClock()
    rng = random.Random(1)
    arguments: dict[str, Any] = {
        "imei": IMEI,
        "sim": SimSlot(clock.env, card=CARD),
        "signal": Signal(clock.env, rng),
        "epoch_s": clock.epoch_s,
    } | kwargs
    with pytest.raises(ConfigError, match=message):
        Modem(clock.env, rng, **arguments)


def test_creg_mode_validation() -> None:
    """AT+CREG modes other than 0, 1, 2 are refused."""
    rig = make_rig()
    with pytest.raises(ValueError, match="not 3"):
        rig.modem.set_creg_mode(3)
