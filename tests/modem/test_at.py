"""The AT interpreter: exact Quectel-style responses, against a fake view and a real modem."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from vdtu.clock import VirtualClock
from vdtu.modem import Modem, RegStat, Signal, SimCard, SimSlot
from vdtu.modem.at import AtInterpreter, ModemView, cpin_status, creg_location, creg_urc
from vdtu.modem.registration import NetMode, SimState

ICCID = "898604E0092221379975"
IMSI = "460001234567890"
IMEI = "867435053362828"


@dataclass
class FakeModem:
    """A hand-set modem view: registered on LTE, SIM ready, network time known."""

    ready: bool = True
    imei: str = IMEI
    model: str = "XGC-RG88C"
    firmware_version: str = "1.0.0"
    operator: str = "CHINA MOBILE"
    rssi: int = 28
    ber: int = 99
    reg_stat: RegStat = RegStat.HOME
    net_mode: NetMode = NetMode.LTE
    cell: tuple[int, int] | None = (0x5B00, 0xA2C7B03)
    creg_mode: int = 0
    cfun: int = 1
    sim_state: SimState = SimState.READY
    sim_blocked: bool = False
    iccid: str | None = ICCID
    imsi: str | None = IMSI
    pin: str = "1234"
    network_ms: int | None = 1_692_157_152_787
    uptime_s: float = 75.4

    @property
    def answering(self) -> bool:
        return self.ready

    def set_creg_mode(self, mode: int) -> None:
        self.creg_mode = mode

    def set_cfun(self, fun: int) -> None:
        self.cfun = fun

    def unlock_sim(self, pin: str) -> None:
        if pin != self.pin:
            raise ValueError(f"wrong PIN {pin!r}")
        self.sim_state = SimState.READY

    def network_time_ms(self) -> int | None:
        return self.network_ms


def unregistered() -> FakeModem:
    return FakeModem(reg_stat=RegStat.SEARCHING, net_mode=NetMode.UNREGISTERED, cell=None)


def no_sim() -> FakeModem:
    return FakeModem(
        sim_state=SimState.ABSENT,
        iccid=None,
        imsi=None,
        reg_stat=RegStat.NOT_REGISTERED,
        net_mode=NetMode.UNREGISTERED,
        cell=None,
    )


def pin_locked(*, blocked: bool = False) -> FakeModem:
    return FakeModem(
        sim_state=SimState.PIN_LOCKED,
        sim_blocked=blocked,
        imsi=None,
        reg_stat=RegStat.NOT_REGISTERED,
        net_mode=NetMode.UNREGISTERED,
        cell=None,
    )


REGISTERED_CASES = [
    ("AT", ["OK"]),
    ("ATI", ["Quectel", "XGC-RG88C", "Revision: 1.0.0", "OK"]),
    ("AT+CGMI", ["Quectel", "OK"]),
    ("AT+CGMM", ["XGC-RG88C", "OK"]),
    ("AT+CGMR", ["1.0.0", "OK"]),
    ("AT+CGSN", [IMEI, "OK"]),
    ("AT+CSQ", ["+CSQ: 28,99", "OK"]),
    ("AT+CSQ=?", ["+CSQ: (0-31,99),(0-7,99)", "OK"]),
    ("AT+CREG?", ["+CREG: 0,1", "OK"]),
    ("AT+CREG=?", ["+CREG: (0-2)", "OK"]),
    ("AT+CCID", [f"+CCID: {ICCID}", "OK"]),
    ("AT+QCCID", [f"+QCCID: {ICCID}", "OK"]),
    ("AT+CIMI", [IMSI, "OK"]),
    ("AT+CPIN?", ["+CPIN: READY", "OK"]),
    ("AT+CPIN=?", ["OK"]),
    ("AT+COPS?", ['+COPS: 0,0,"CHINA MOBILE",7', "OK"]),
    ("AT+CFUN?", ["+CFUN: 1", "OK"]),
    ("AT+CFUN=?", ["+CFUN: (0,1,4),(0-1)", "OK"]),
    ("AT+CCLK?", ['+CCLK: "23/08/16,11:39:12+32"', "OK"]),
    ("AT+CMEE?", ["+CMEE: 1", "OK"]),
    ("AT+CMEE=?", ["+CMEE: (0-2)", "OK"]),
    ("AT+RIL=1", ["OK"]),
    ("AT+RIL=0", ["OK"]),
]


@pytest.mark.parametrize(("command", "lines"), REGISTERED_CASES)
def test_commands_on_registered_modem(command: str, lines: list[str]) -> None:
    """Each command answers exactly as an EC200 does on a registered modem."""
    assert AtInterpreter(FakeModem()).execute(command) == lines


@pytest.mark.parametrize(("command", "lines"), REGISTERED_CASES)
def test_commands_are_case_insensitive_and_trimmed(command: str, lines: list[str]) -> None:
    """Lower case and surrounding blanks (including CR/LF) do not matter."""
    assert AtInterpreter(FakeModem()).execute(f"  {command.lower()}\r\n") == lines


@pytest.mark.parametrize(
    "command",
    [
        "HELLO",
        "ATX",
        "AT+FOO",
        "AT+CSQ?",
        "AT+CSQ=1",
        "AT+CGSN=1",
        "AT+CGMR?",
        "ATI1",
        "AT+CREG=3",
        "AT+CREG=",
        "AT+CREG=a",
        "AT+CREG",
        "AT+CFUN=2",
        "AT+CFUN=1,1",
        "AT+CFUN",
        "AT+COPS",
        "AT+COPS=0",
        "AT+CCLK",
        "AT+CPIN",
        "AT+CPIN=12",
        "AT+CPIN=abcd",
        "AT+CPIN=123456789",
        "AT+CMEE=3",
        "AT+RIL=2",
        "AT+RIL?",
        "AT+CCID?",
        "AT+QCCID=?",
        "AT+CIMI?",
    ],
)
def test_unknown_command_or_bad_parameter_is_error(command: str) -> None:
    """Unknown commands and bad parameters answer ERROR and change nothing."""
    view = FakeModem()
    assert AtInterpreter(view).execute(command) == ["ERROR"]
    assert view.cfun == 1
    assert view.creg_mode == 0


def test_empty_line_gets_no_answer() -> None:
    """An empty line is ignored, and does not turn forwarding on."""
    interpreter = AtInterpreter(FakeModem())
    assert interpreter.execute("  \r\n") == []
    assert not interpreter.forwarding


def test_booting_modem_is_silent_except_ril() -> None:
    """While the module boots nothing answers, but AT+RIL (the DTU's own switch) does."""
    interpreter = AtInterpreter(FakeModem(ready=False))
    assert interpreter.execute("AT") == []
    assert interpreter.execute("AT+CSQ") == []
    assert interpreter.forwarding
    assert interpreter.execute("AT+RIL=0") == ["OK"]
    assert not interpreter.forwarding


def test_creg_set_and_read_with_location() -> None:
    """AT+CREG=2 is passed to the modem; the read form then adds lac, ci and AcT."""
    view = FakeModem()
    interpreter = AtInterpreter(view)
    assert interpreter.execute("AT+CREG=2") == ["OK"]
    assert view.creg_mode == 2
    assert interpreter.execute("AT+CREG?") == ['+CREG: 2,1,"5B00","A2C7B03",7', "OK"]
    assert interpreter.execute("AT+CREG=1") == ["OK"]
    assert interpreter.execute("AT+CREG?") == ["+CREG: 1,1", "OK"]


def test_creg_read_while_searching() -> None:
    """An unregistered modem reports its stat without location even in mode 2."""
    view = unregistered()
    view.creg_mode = 2
    assert AtInterpreter(view).execute("AT+CREG?") == ["+CREG: 2,2", "OK"]


def test_cops_unregistered() -> None:
    """AT+COPS? without registration gives only the mode."""
    assert AtInterpreter(unregistered()).execute("AT+COPS?") == ["+COPS: 0", "OK"]


@pytest.mark.parametrize(
    ("mode", "act"),
    [(NetMode.GSM, 0), (NetMode.EDGE, 3), (NetMode.TD, 2), (NetMode.LTE, 7), (NetMode.WCDMA, 2)],
)
def test_cops_access_technology(mode: NetMode, act: int) -> None:
    """AT+COPS? gives the 3GPP AcT number of the serving cell's technology."""
    view = FakeModem(net_mode=mode)
    assert AtInterpreter(view).execute("AT+COPS?") == [f'+COPS: 0,0,"CHINA MOBILE",{act}', "OK"]


@pytest.mark.parametrize("fun", [0, 1, 4])
def test_cfun_set(fun: int) -> None:
    """AT+CFUN=<0|1|4> is passed to the modem."""
    view = FakeModem(cfun=1 if fun != 1 else 0)
    assert AtInterpreter(view).execute(f"AT+CFUN={fun}") == ["OK"]
    assert view.cfun == fun


def test_cclk_before_network_time() -> None:
    """Before NITZ the RTC counts from 1980-01-06 with zone +00."""
    view = FakeModem(network_ms=None, uptime_s=75.4)
    assert AtInterpreter(view).execute("AT+CCLK?") == ['+CCLK: "80/01/06,00:01:15+00"', "OK"]


def test_no_sim_answers() -> None:
    """Without a card SIM commands give +CME ERROR: 10; the rest still works."""
    interpreter = AtInterpreter(no_sim())
    assert interpreter.execute("AT+CPIN?") == ["+CME ERROR: 10"]
    assert interpreter.execute("AT+CCID") == ["+CME ERROR: 10"]
    assert interpreter.execute("AT+QCCID") == ["+CME ERROR: 10"]
    assert interpreter.execute("AT+CIMI") == ["+CME ERROR: 10"]
    assert interpreter.execute("AT+CPIN=1234") == ["+CME ERROR: 10"]
    assert interpreter.execute("AT+CREG?") == ["+CREG: 0,0", "OK"]
    assert interpreter.execute("AT+CGSN") == [IMEI, "OK"]


def test_pin_locked_answers_and_unlock() -> None:
    """A locked card: SIM PIN, CIMI needs the PIN, wrong PIN 16, right PIN OK."""
    view = pin_locked()
    interpreter = AtInterpreter(view)
    assert interpreter.execute("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert interpreter.execute("AT+CIMI") == ["+CME ERROR: 11"]
    assert interpreter.execute("AT+CCID") == [f"+CCID: {ICCID}", "OK"]
    assert interpreter.execute("AT+CPIN=0000") == ["+CME ERROR: 16"]
    assert interpreter.execute("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert interpreter.execute('AT+CPIN="1234"') == ["OK"]
    assert view.sim_state is SimState.READY
    assert interpreter.execute("AT+CPIN?") == ["+CPIN: READY", "OK"]
    assert interpreter.execute("AT+CPIN=1234") == ["+CME ERROR: 3"]


def test_blocked_card_wants_puk() -> None:
    """A blocked card reports SIM PUK and refuses PINs with +CME ERROR: 12."""
    interpreter = AtInterpreter(pin_locked(blocked=True))
    assert interpreter.execute("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
    assert interpreter.execute("AT+CPIN=1234") == ["+CME ERROR: 12"]
    assert interpreter.execute("AT+CIMI") == ["+CME ERROR: 12"]


def test_cmee_modes() -> None:
    """AT+CMEE=0 gives plain ERROR, =2 the verbose text, =1 the number."""
    interpreter = AtInterpreter(no_sim())
    assert interpreter.execute("AT+CMEE=0") == ["OK"]
    assert interpreter.execute("AT+CIMI") == ["ERROR"]
    assert interpreter.execute("AT+CMEE=2") == ["OK"]
    assert interpreter.execute("AT+CIMI") == ["+CME ERROR: SIM not inserted"]
    assert interpreter.execute("AT+CMEE?") == ["+CMEE: 2", "OK"]
    interpreter.reset()
    assert interpreter.execute("AT+CIMI") == ["+CME ERROR: 10"]


def test_ril_forwarding_flag() -> None:
    """Forwarding starts with any command, stops with AT+RIL=0, resumes with AT+RIL=1 or any."""
    interpreter = AtInterpreter(FakeModem())
    assert not interpreter.forwarding
    interpreter.execute("AT+CSQ")
    assert interpreter.forwarding
    assert interpreter.execute("at+ril=0") == ["OK"]
    assert not interpreter.forwarding
    assert interpreter.execute("AT+RIL=1") == ["OK"]
    assert interpreter.forwarding
    interpreter.execute("AT+RIL=0")
    interpreter.execute("AT+FOO")
    assert interpreter.forwarding
    interpreter.reset()
    assert not interpreter.forwarding


def test_creg_urc_formats() -> None:
    """+CREG URCs: none in mode 0, the stat in mode 1, with the cell in mode 2."""
    cell = (0x5B00, 0xA2C7B03)
    assert creg_urc(RegStat.HOME, 0, cell, NetMode.LTE) is None
    assert creg_urc(RegStat.HOME, 1, cell, NetMode.LTE) == "+CREG: 1"
    assert creg_urc(RegStat.HOME, 2, cell, NetMode.LTE) == '+CREG: 1,"5B00","A2C7B03",7'
    assert creg_urc(RegStat.SEARCHING, 2, None, NetMode.UNREGISTERED) == "+CREG: 2"
    assert creg_location((0x0102, 0x0304), NetMode.GSM) == '"0102","304",0'
    with pytest.raises(ValueError, match="UNREGISTERED"):
        creg_location(cell, NetMode.UNREGISTERED)


def test_cpin_status_words() -> None:
    """The +CPIN words for each SIM state."""
    assert cpin_status(SimState.READY, blocked=False) == "READY"
    assert cpin_status(SimState.PIN_LOCKED, blocked=False) == "SIM PIN"
    assert cpin_status(SimState.PIN_LOCKED, blocked=True) == "SIM PUK"
    assert cpin_status(SimState.ABSENT, blocked=False) == "NOT READY"


# -- against a real modem ----------------------------------------------------------


@dataclass
class Unit:
    clock: VirtualClock
    sim: SimSlot
    signal: Signal
    modem: Modem
    at: AtInterpreter
    urcs: list[str]


def make_unit(*, pin: str | None = None) -> Unit:
    clock = VirtualClock()
    rng = random.Random(3)
    card = SimCard(iccid=ICCID, imsi=IMSI, phone="18812345678", pin=pin)
    sim = SimSlot(clock.env, card=card)
    signal = Signal(clock.env, rng, base_rssi=28, drift_period_s=1000.0)
    modem = Modem(
        clock.env,
        rng,
        imei=IMEI,
        sim=sim,
        signal=signal,
        epoch_s=clock.epoch_s,
        boot_s=(3.0, 3.0),
        search_s=(5.0, 5.0),
    )
    view: ModemView = modem
    urcs: list[str] = []
    modem.on_urc += (urcs.append,)
    modem.power_on()
    return Unit(clock=clock, sim=sim, signal=signal, modem=modem, at=AtInterpreter(view), urcs=urcs)


def test_real_modem_answers() -> None:
    """A registered real Modem answers every command like the fake registered view."""
    unit = make_unit()
    assert unit.at.execute("AT") == []
    unit.clock.run_for(10)
    expected = dict(REGISTERED_CASES) | {"AT+CCLK?": ['+CCLK: "23/08/16,11:39:22+32"', "OK"]}
    for command, lines in expected.items():
        assert unit.at.execute(command) == lines, command
    lac, ci = unit.modem.lac, unit.modem.ci
    assert unit.at.execute("AT+CREG=2") == ["OK"]
    assert unit.at.execute("AT+CREG?") == [f'+CREG: 2,1,"{lac:04X}","{ci:X}",7', "OK"]


def test_real_modem_before_registration() -> None:
    """Right after boot the modem searches: stat 2, no operator, RTC time."""
    unit = make_unit()
    unit.clock.run_for(4)
    assert unit.at.execute("AT+CREG?") == ["+CREG: 0,2", "OK"]
    assert unit.at.execute("AT+COPS?") == ["+COPS: 0", "OK"]
    assert unit.at.execute("AT+CCLK?") == ['+CCLK: "80/01/06,00:00:04+00"', "OK"]


def test_real_modem_pin_flow_and_urcs() -> None:
    """AT+CPIN unlocks a real SIM, which then registers; URCs follow AT+CREG=1."""
    unit = make_unit(pin="4321")
    unit.clock.run_for(4)
    assert unit.at.execute("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert unit.at.execute("AT+CREG=1") == ["OK"]
    assert unit.at.execute("AT+CPIN=1111") == ["+CME ERROR: 16"]
    assert unit.sim.wrong_pins == 1
    assert unit.at.execute("AT+CPIN=4321") == ["OK"]
    unit.clock.run_for(6)
    assert unit.urcs == [
        "RDY",
        "+CFUN: 1",
        "+CPIN: SIM PIN",
        "+CPIN: READY",
        "+CREG: 2",
        "+CREG: 1",
        "+QIND: SMS DONE",
    ]
    assert unit.at.execute("AT+CIMI") == [IMSI, "OK"]


def test_real_modem_cfun_and_no_sim() -> None:
    """AT+CFUN=4 drops registration and CSQ; pulling the SIM gives CME 10."""
    unit = make_unit()
    unit.clock.run_for(10)
    assert unit.at.execute("AT+CFUN=4") == ["OK"]
    assert unit.modem.reg_stat is RegStat.NOT_REGISTERED
    assert unit.at.execute("AT+CSQ") == ["+CSQ: 99,99", "OK"]
    assert unit.at.execute("AT+CFUN?") == ["+CFUN: 4", "OK"]
    assert unit.at.execute("AT+CFUN=1") == ["OK"]
    unit.clock.run_for(6)
    assert unit.at.execute("AT+CREG?") == ["+CREG: 0,1", "OK"]
    unit.sim.remove()
    assert unit.at.execute("AT+CPIN?") == ["+CME ERROR: 10"]
    assert unit.at.execute("AT+CCID") == ["+CME ERROR: 10"]
    assert unit.at.execute("AT+CREG?") == ["+CREG: 0,0", "OK"]
