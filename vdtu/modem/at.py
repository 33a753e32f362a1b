"""An AT command interpreter that answers as a Quectel EC200-series module does.

Pure: standard library only. It reads the modem through ``ModemView``, a
``Protocol`` listing exactly what it reads or calls, so tests pass a fake and
``vdtu.modem.modem.Modem`` satisfies it structurally.

Response shape
--------------

``execute(line)`` returns the lines the module prints, without CR/LF and
without the empty lines of the V1 framing (a module prints
``\\r\\n+CSQ: 26,99\\r\\n\\r\\nOK\\r\\n``; this returns ``["+CSQ: 26,99", "OK"]``).
The last line is the final result: ``OK``, ``ERROR``, or ``+CME ERROR: <err>``.
Commands are case-insensitive and trimmed; there is no echo (ATE is not
modelled). An empty line gets no answer, and so does every command while the
module is still booting (a real module is silent until it prints ``RDY``) or
has hung (``answering`` False: the host's command times out).

``+CME ERROR`` codes (3GPP TS 27.007 §9.2) follow ``AT+CMEE`` (default 1,
numeric, as on the EC200; 0 gives plain ``ERROR``, 2 the verbose text):

==== ====================== ==================================================
code text                   when
==== ====================== ==================================================
3    operation not allowed  ``AT+CPIN=<pin>`` when no PIN is wanted
10   SIM not inserted       SIM commands without a card
11   SIM PIN required       ``AT+CIMI`` on a locked card
12   SIM PUK required       a card blocked after 3 wrong PINs
16   incorrect password     ``AT+CPIN=<pin>`` with a wrong PIN
==== ====================== ==================================================

An unknown command, or a known one with a bad parameter, gives ``ERROR``.

Commands
--------

``AT``, ``ATI``, ``AT+CGMI``, ``AT+CGMM``, ``AT+CGMR``, ``AT+CGSN``, ``AT+CSQ``,
``AT+CREG?``/``=<0|1|2>``, ``AT+CCID``, ``AT+QCCID``, ``AT+CIMI``, ``AT+CPIN?``/
``=<pin>``, ``AT+COPS?``, ``AT+CFUN?``/``=<0|1|4>``, ``AT+CCLK?``,
``AT+CMEE?``/``=<0|1|2>``, ``AT+RIL=<0|1>``, and the test forms (``=?``) of
``+CSQ``, ``+CREG``, ``+CFUN`` and ``+CMEE``.

``AT+CCLK?`` gives local time in UTC+8 (``+32`` quarter-hours) once the network
has given time (NITZ). Before that the module's RTC counts from its reset value,
1980-01-06 00:00:00 with zone ``+00``.

RIL forwarding (docs/spec/xgc.md#5.22, #6.9)
-------------------------------------------

Once the host has sent an AT command through the DTU, the DTU forwards every
module output (responses and unsolicited result codes) to the host until
``AT+RIL=0``; ``AT+RIL=1`` turns it back on. ``forwarding`` is that switch:
False at power-on, set by every command except ``AT+RIL=0``, which answers
``OK`` and clears it. ``AT+RIL`` is the DTU's own command, so it is answered
even while the module boots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Protocol

from vdtu.modem.registration import NetMode, RegStat, SimState

MANUFACTURER = "Quectel"
"""What ``AT+CGMI`` and the first line of ``ATI`` print."""

OK = "OK"
ERROR = "ERROR"

CME_OPERATION_NOT_ALLOWED = 3
CME_SIM_NOT_INSERTED = 10
CME_SIM_PIN_REQUIRED = 11
CME_SIM_PUK_REQUIRED = 12
CME_INCORRECT_PASSWORD = 16

CME_TEXT = {
    CME_OPERATION_NOT_ALLOWED: "operation not allowed",
    CME_SIM_NOT_INSERTED: "SIM not inserted",
    CME_SIM_PIN_REQUIRED: "SIM PIN required",
    CME_SIM_PUK_REQUIRED: "SIM PUK required",
    CME_INCORRECT_PASSWORD: "incorrect password",
}
"""Verbose ``+CME ERROR`` texts (``AT+CMEE=2``)."""

ACCESS_TECHNOLOGY = {
    NetMode.GSM: 0,
    NetMode.EDGE: 3,
    NetMode.TD: 2,
    NetMode.LTE: 7,
    NetMode.WCDMA: 2,
}
"""3GPP ``<AcT>`` for each XGC net mode: GSM 0, GSM w/EGPRS 3, UTRAN 2, E-UTRAN 7."""

CHINA_TZ = timezone(timedelta(hours=8))
CHINA_TZ_QUARTERS = 32
"""UTC+8 in quarter-hours, as ``+CCLK`` writes the zone."""
RTC_RESET = datetime(1980, 1, 6, tzinfo=UTC)
"""Where the module's RTC starts counting before the network gives time."""

CREG_MODES = (0, 1, 2)
CFUN_MODES = (0, 1, 4)
CMEE_MODES = (0, 1, 2)


class ModemView(Protocol):
    """What the interpreter reads and calls on the modem."""

    @property
    def ready(self) -> bool:
        """The module has finished booting."""

    @property
    def answering(self) -> bool:
        """The module answers AT commands (booted, and not hung)."""

    @property
    def imei(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def firmware_version(self) -> str: ...

    @property
    def operator(self) -> str:
        """The network operator's name as ``+COPS`` prints it."""

    @property
    def rssi(self) -> int:
        """``+CSQ`` RSSI (0..31, 99 unknown)."""

    @property
    def ber(self) -> int:
        """``+CSQ`` bit error rate (0..7, 99 unknown)."""

    @property
    def reg_stat(self) -> RegStat: ...

    @property
    def net_mode(self) -> NetMode:
        """The radio access technology while registered, ``UNREGISTERED`` otherwise."""

    @property
    def cell(self) -> tuple[int, int] | None:
        """(location area code, cell id) of the serving cell while registered, else None."""

    @property
    def creg_mode(self) -> int:
        """The ``AT+CREG=<n>`` setting (0, 1 or 2)."""

    def set_creg_mode(self, mode: int) -> None:
        """Set the ``AT+CREG=<n>`` setting (0, 1 or 2)."""

    @property
    def cfun(self) -> int:
        """The ``AT+CFUN`` functionality level (0, 1 or 4)."""

    def set_cfun(self, fun: int) -> None:
        """Change the functionality level (0, 1 or 4)."""

    @property
    def sim_state(self) -> SimState: ...

    @property
    def sim_blocked(self) -> bool:
        """The card is blocked after too many wrong PINs (it wants its PUK)."""

    @property
    def iccid(self) -> str | None:
        """The card's ICCID, None without a card."""

    @property
    def imsi(self) -> str | None:
        """The IMSI, None unless the card is ready."""

    def unlock_sim(self, pin: str) -> None:
        """Enter the PIN; raises ``ValueError`` when it is refused."""

    def network_time_ms(self) -> int | None:
        """Unix time in ms from the network, None before the network gave time."""

    @property
    def uptime_s(self) -> float:
        """Seconds since the module was powered on."""


def creg_location(cell: tuple[int, int], mode: NetMode) -> str:
    """The location part of a ``+CREG`` line: ``"<lac>","<ci>",<AcT>`` (hex lac and ci).

    Raises:
        ValueError: ``mode`` is ``UNREGISTERED`` (there is no access technology).
    """
    if mode not in ACCESS_TECHNOLOGY:
        raise ValueError(f"net mode must be one of {list(ACCESS_TECHNOLOGY)}, not {mode!r}")
    lac, ci = cell
    return f'"{lac:04X}","{ci:X}",{ACCESS_TECHNOLOGY[mode]}'


def creg_urc(
    stat: RegStat, creg_mode: int, cell: tuple[int, int] | None, mode: NetMode
) -> str | None:
    """The ``+CREG`` unsolicited result code for a change to ``stat``, or None if off.

    ``AT+CREG=1`` gives ``+CREG: <stat>``; ``AT+CREG=2`` adds the serving cell
    while there is one: ``+CREG: <stat>,"<lac>","<ci>",<AcT>``.
    """
    if creg_mode == 0:
        return None
    if creg_mode == 2 and cell is not None:
        return f"+CREG: {int(stat)},{creg_location(cell, mode)}"
    return f"+CREG: {int(stat)}"


def cpin_status(state: SimState, *, blocked: bool) -> str:
    """The ``+CPIN`` status word for a SIM: ``READY``, ``SIM PIN``, ``SIM PUK`` or ``NOT READY``."""
    if state is SimState.READY:
        return "READY"
    if state is SimState.PIN_LOCKED:
        return "SIM PUK" if blocked else "SIM PIN"
    return "NOT READY"


def _int_param(arg: str, allowed: tuple[int, ...]) -> int | None:
    """``arg`` as one of ``allowed``, or None if it is not exactly one of them."""
    if not arg.isdigit() or not arg.isascii():
        return None
    value = int(arg)
    return value if value in allowed else None


class AtInterpreter:
    """Answers AT command lines for one modem.

    Args:
        modem_view: the modem, as far as AT commands see it.
    """

    __slots__ = ("cmee", "forwarding", "view")

    def __init__(self, modem_view: ModemView) -> None:
        self.view = modem_view
        self.forwarding = False
        """Whether the DTU forwards module output to the host (see the module docstring)."""
        self.cmee = 1
        """The ``AT+CMEE`` error report mode."""

    def reset(self) -> None:
        """Power cycle: forwarding off, ``AT+CMEE`` back to 1."""
        self.forwarding = False
        self.cmee = 1

    def execute(self, line: str) -> list[str]:
        """Run one command line.

        Args:
            line: the command, e.g. ``"AT+CSQ"`` (case and surrounding blanks ignored).

        Returns:
            The response lines, the final result last; ``[]`` for an empty line
            or while the module boots.

        Never raises: every malformed line is answered with ``ERROR``.
        Afterwards ``forwarding`` reflects the line (if it was not empty), and
        the modem has changed only through a set command that answered ``OK``
        (``AT+CREG=``, ``AT+CFUN=``, ``AT+CPIN=``) or a counted wrong PIN.
        """
        command = line.strip().upper()
        if not command:
            return []
        self.forwarding = command != "AT+RIL=0"
        if command.startswith("AT+RIL"):
            return [OK] if command in ("AT+RIL=0", "AT+RIL=1") else [ERROR]
        if not self.view.answering:
            return []
        if not command.startswith("AT"):
            return [ERROR]
        body = command[2:]
        if body == "":
            return [OK]
        if body == "I":
            view = self.view
            return [MANUFACTURER, view.model, f"Revision: {view.firmware_version}", OK]
        cut = min((at for at in (body.find("="), body.find("?")) if at >= 0), default=len(body))
        handler = _COMMANDS.get(body[:cut])
        if handler is None:
            return [ERROR]
        return handler(self, body[cut:])

    # Each handler gets the text after the command name: "" (execute), "?"
    # (read), "=?" (test) or "=<args>" (set), and returns the full answer.

    def _error(self, code: int) -> list[str]:
        if self.cmee == 0:
            return [ERROR]
        if self.cmee == 2:
            return [f"+CME ERROR: {CME_TEXT[code]}"]
        return [f"+CME ERROR: {code}"]

    def _cgmi(self, suffix: str) -> list[str]:
        return [ERROR] if suffix else [MANUFACTURER, OK]

    def _cgmm(self, suffix: str) -> list[str]:
        return [ERROR] if suffix else [self.view.model, OK]

    def _cgmr(self, suffix: str) -> list[str]:
        return [ERROR] if suffix else [self.view.firmware_version, OK]

    def _cgsn(self, suffix: str) -> list[str]:
        return [ERROR] if suffix else [self.view.imei, OK]

    def _sim_error(self) -> list[str]:
        """The error a command that needs a ready SIM gets when the SIM is not ready."""
        if self.view.sim_state is SimState.ABSENT:
            return self._error(CME_SIM_NOT_INSERTED)
        if self.view.sim_blocked:
            return self._error(CME_SIM_PUK_REQUIRED)
        return self._error(CME_SIM_PIN_REQUIRED)

    def _csq(self, suffix: str) -> list[str]:
        if suffix == "":
            return [f"+CSQ: {self.view.rssi},{self.view.ber}", OK]
        if suffix == "=?":
            return ["+CSQ: (0-31,99),(0-7,99)", OK]
        return [ERROR]

    def _creg(self, suffix: str) -> list[str]:
        view = self.view
        if suffix == "?":
            line = f"+CREG: {view.creg_mode},{int(view.reg_stat)}"
            if view.creg_mode == 2 and view.cell is not None:
                line += "," + creg_location(view.cell, view.net_mode)
            return [line, OK]
        if suffix == "=?":
            return ["+CREG: (0-2)", OK]
        mode = _int_param(suffix.removeprefix("="), CREG_MODES)
        if not suffix.startswith("=") or mode is None:
            return [ERROR]
        view.set_creg_mode(mode)
        return [OK]

    def _ccid(self, suffix: str) -> list[str]:
        return [ERROR] if suffix else self._iccid("+CCID")

    def _qccid(self, suffix: str) -> list[str]:
        return [ERROR] if suffix else self._iccid("+QCCID")

    def _iccid(self, prefix: str) -> list[str]:
        iccid = self.view.iccid
        if iccid is None:
            return self._error(CME_SIM_NOT_INSERTED)
        return [f"{prefix}: {iccid}", OK]

    def _cimi(self, suffix: str) -> list[str]:
        if suffix:
            return [ERROR]
        imsi = self.view.imsi
        return self._sim_error() if imsi is None else [imsi, OK]

    def _cpin(self, suffix: str) -> list[str]:
        view = self.view
        if suffix == "?":
            if view.sim_state is SimState.ABSENT:
                return self._error(CME_SIM_NOT_INSERTED)
            return [f"+CPIN: {cpin_status(view.sim_state, blocked=view.sim_blocked)}", OK]
        if suffix == "=?":
            return [OK]
        pin = suffix.removeprefix("=")
        if len(pin) >= 2 and pin[0] == pin[-1] == '"':
            pin = pin[1:-1]
        if not suffix.startswith("=") or not (4 <= len(pin) <= 8 and pin.isdigit()):
            return [ERROR]
        if view.sim_state is SimState.READY:
            return self._error(CME_OPERATION_NOT_ALLOWED)
        if view.sim_state is SimState.ABSENT or view.sim_blocked:
            return self._sim_error()
        try:
            view.unlock_sim(pin)
        except ValueError:
            return self._error(CME_INCORRECT_PASSWORD)
        return [OK]

    def _cops(self, suffix: str) -> list[str]:
        if suffix != "?":
            return [ERROR]
        view = self.view
        if view.net_mode is NetMode.UNREGISTERED:
            return ["+COPS: 0", OK]
        return [f'+COPS: 0,0,"{view.operator}",{ACCESS_TECHNOLOGY[view.net_mode]}', OK]

    def _cfun(self, suffix: str) -> list[str]:
        if suffix == "?":
            return [f"+CFUN: {self.view.cfun}", OK]
        if suffix == "=?":
            return ["+CFUN: (0,1,4),(0-1)", OK]
        fun = _int_param(suffix.removeprefix("="), CFUN_MODES)
        if not suffix.startswith("=") or fun is None:
            return [ERROR]
        self.view.set_cfun(fun)
        return [OK]

    def _cclk(self, suffix: str) -> list[str]:
        if suffix != "?":
            return [ERROR]
        network_ms = self.view.network_time_ms()
        if network_ms is None:
            moment = RTC_RESET + timedelta(seconds=int(self.view.uptime_s))
            quarters = 0
        else:
            moment = datetime.fromtimestamp(network_ms // 1000, tz=CHINA_TZ)
            quarters = CHINA_TZ_QUARTERS
        return [f'+CCLK: "{moment:%y/%m/%d,%H:%M:%S}{quarters:+03d}"', OK]

    def _cmee(self, suffix: str) -> list[str]:
        if suffix == "?":
            return [f"+CMEE: {self.cmee}", OK]
        if suffix == "=?":
            return ["+CMEE: (0-2)", OK]
        mode = _int_param(suffix.removeprefix("="), CMEE_MODES)
        if not suffix.startswith("=") or mode is None:
            return [ERROR]
        self.cmee = mode
        return [OK]


_COMMANDS: Mapping[str, Callable[[AtInterpreter, str], list[str]]] = MappingProxyType(
    {
        "+CGMI": AtInterpreter._cgmi,
        "+CGMM": AtInterpreter._cgmm,
        "+CGMR": AtInterpreter._cgmr,
        "+CGSN": AtInterpreter._cgsn,
        "+CSQ": AtInterpreter._csq,
        "+CREG": AtInterpreter._creg,
        "+CCID": AtInterpreter._ccid,
        "+QCCID": AtInterpreter._qccid,
        "+CIMI": AtInterpreter._cimi,
        "+CPIN": AtInterpreter._cpin,
        "+COPS": AtInterpreter._cops,
        "+CFUN": AtInterpreter._cfun,
        "+CCLK": AtInterpreter._cclk,
        "+CMEE": AtInterpreter._cmee,
    }
)
"""Each command's handler, shared by every interpreter (one table, not one per modem)."""
