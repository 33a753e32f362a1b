"""The QuecPython DTU's command codes, executed: request in, outcome out.

The codes are docs/spec/quec.md#3 (the table and the rules); each code's behaviour is in
#4 (queries), #5 (reset) and #6 (settings).

Pure (standard library and vdtu's pure modules). ``execute`` takes one
``CommandRequest``, the configuration in force, the settings a previous command
left pending, a ``QuecDevice`` (what the firmware reads from its hardware models)
and returns an ``Outcome``: the reply to send, the new configuration to store,
the effects the firmware must carry out, and a diagnostic record for a failure.
It never stores, sends or waits; the firmware does, so this module is tested
without a clock.

The order is the firmware's: ``check_password`` (so an unknown code without the
password gets "Password verify error"), then ``validate_params`` (an unknown
code, or 52 under ``plate_removed``, gets "Command code error"; a bad parameter a
reply naming it), then the command::

    request -> password? -> code and parameters? -> query:   reply (data read from the device)
                                                  -> setting: reply + new_config
                                                  -> 50:      SendSms effect, reply later
                                                  -> 255:     Restart effect, no reply

Invariants:

* **Settings take effect after a reset** (docs/spec/quec.md#6: the firmware only
  rewrites its file; nothing is applied live). A setting command (51-63)
  returns ``new_config``, built on ``pending`` when there is one (so two setting
  commands in a row both stick) and on ``config`` otherwise; 63 replaces
  everything. The firmware persists ``new_config`` atomically as its pending
  settings and applies them at the next reset (code 255 or a power cycle).
  Until then everything reads the configuration in force: the password check,
  code 2's version and code 4's dump. A refused setting returns no
  ``new_config``; the pending settings stay as they were.
* **Every failure names its cause** in the reply's ``error`` (the field and the
  bad value for parameters; the config field for a value the configuration
  refuses) and comes with a ``Diagnostic`` for code 5.
* **The device contract is checked**: a state value outside the seed's tables
  (docs/spec/quec.md#4.12) raises ``LocalProtocolError`` (a bug in the adapter,
  which must stop the run), while an absent ADC channel or GPIO pin (``ValueError``
  from the device) is the requester's mistake and gets a failure reply.

Reply data, code by code (docs/spec/quec.md#4.1 to #4.14, one section per query).
The seed's samples are followed where they show a concrete form; the firmware's behaviour
where they show a placeholder:

===== ===================================== ===========================================
code  data                                  notes
===== ===================================== ===========================================
0     ``"867435059800763"``                 the IMEI
1     ``"17201593988"``                     failure without a ready SIM
2     ``"v 100"``                           the ``version`` in force, in the seed's
                                            format ``v <n>``: quec.md#4.3 and #6.5
                                            describe one number, the one FOTA compares,
                                            and v1 returns it (v1: the bare number;
                                            v2: its project version ``"2.0.0"``)
3     ``"CSQ17"``                           the seed's form (firmware: the number);
                                            ``"CSQ99"`` when the signal is not known
4     the whole config (``to_json()``)      the firmware's behaviour (the seed shows
                                            "req config"), password included unless
                                            ``include_password=False``; the config in
                                            force, not the pending one
5     ``[{"func_code": "5",                 the seed's form, from the records the
      "error_code": "6001"}]``              firmware passes in (v1/v2 always ``"[]"``)
6     ``"8986..."``                         failure without a SIM
7     ``"3.7"``                             volts as a decimal string, as the seed
                                            shows (firmware: mV); ``{"adcn": n}``,
                                            default 0
8     ``0`` or ``1``                        the pin's level (the seed: "gpio_msg");
                                            ``{"pins": n}``
9     ``"3590"``                            mV as a string, as the seed shows
10    ``{"temperature": 26.0,               as the seed
      "humidity": 60.0}``
11    ``{"1": 0, "2": 4}``                  channel id -> its state (seed table for
                                            its type; v1's raw values), config order
12    ``{"voice_state": 1,                  3GPP registration stat 0..11
      "data_state": 1}``
13    ``[117.1138, 31.82279, 550]``         the seed's tuple: longitude, latitude,
                                            accuracy in m; failure when unregistered
50    no reply from ``execute``             ``SendSms``; ``sms_reply`` when sent
51-63 no ``data``                           ``new_config``
255   no reply                              ``Restart``
===== ===================================== ===========================================

Codes 59 and 63 are refused when they would leave no channel at all (``conf``
empty): the v2 firmware stores it, and the unit is then unreachable from its cloud
and from the serial 99 channel (which v2 and vdtu only read on a UART that has a
channel), recoverable only by rewriting ``dtu_config.json`` over USB. vdtu refuses
it with a reply naming ``conf`` (docs/quec-protocol.md, "Limits").

Codes 58-61 are refused while the configuration in force runs in passthrough
mode (docs/spec/quec.md#6.15; v1 enforces it, v2 does not). In passthrough, commands
arrive only on the serial configuration channel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Protocol

from vdtu.errors import ConfigError, LocalProtocolError
from vdtu.firmware.quec.commands import (
    CODE_ERROR,
    NO_DATA,
    CommandCode,
    CommandOptions,
    CommandRequest,
    Reply,
    check_password,
    failure_reply,
    ok_reply,
)
from vdtu.firmware.quec.config import (
    DtuConfig,
    replace_all,
    with_apn,
    with_conf,
    with_fota,
    with_nolog,
    with_ota,
    with_password,
    with_pins,
    with_plate,
    with_reg,
    with_service_acquire,
    with_uconf,
    with_version,
)
from vdtu.firmware.quec.frames import ChannelType, WorkMode
from vdtu.firmware.quec.params import CommandParams, validate_params

# --- what the executor reads from the unit ----------------------------------------------


class QuecDevice(Protocol):
    """What the commands read from the unit; the firmware adapts its hardware models to it."""

    @property
    def imei(self) -> str:
        """The module's IMEI (code 0)."""
        ...

    @property
    def phone_number(self) -> str | None:
        """The SIM's number (code 1); None without a ready SIM."""
        ...

    @property
    def iccid(self) -> str | None:
        """The SIM's ICCID (code 6); None without a SIM."""
        ...

    def csq(self) -> int:
        """The ``+CSQ`` RSSI: 0..31, or 99 when not known (code 3)."""
        ...

    def adc_mv(self, channel: int) -> int:
        """Convert ADC ``channel``, in mV (code 7).

        Raises:
            ValueError: the channel does not exist (the message says which do).
        """
        ...

    def gpio_level(self, pin: int) -> int:
        """The level, 0 or 1, of GPIO ``pin`` (code 8).

        Raises:
            ValueError: the pin does not exist (the message says which do).
        """
        ...

    def vbatt_mv(self) -> int:
        """The battery voltage in mV (code 9)."""
        ...

    def temperature_humidity(self) -> tuple[float, float]:
        """The sensor's (temperature °C, relative humidity %) (code 10)."""
        ...

    def channel_states(self) -> Mapping[str, int]:
        """Every channel of the config in force -> its live state (code 11).

        The value follows the seed's table for the channel's type (docs/spec/quec.md#4.12):
        ``SocketState`` for tcp/udp, ``MqttState`` for mqtt/aliyun/txyun,
        ``QuecthingState`` for quecthing, and for http the status code of the last
        response (100..599; 0 before any response).
        """
        ...

    def cell_status(self) -> tuple[int, int]:
        """(voice, data) registration stat, 3GPP 0..11 each (code 12)."""
        ...

    def cell_location(self) -> tuple[float, float, int] | None:
        """(longitude, latitude, accuracy in m) of the serving cell; None unregistered (code 13)."""
        ...


class SocketState(IntEnum):
    """A tcp/udp channel's state for code 11 (docs/spec/quec.md#4.12)."""

    CLOSED = 0
    LISTEN = 1
    SYN_SENT = 2
    SYN_RCVD = 3
    ESTABLISHED = 4
    FIN_WAIT_1 = 5
    FIN_WAIT_2 = 6
    CLOSE_WAIT = 7
    CLOSING = 8
    LAST_ACK = 9
    TIME_WAIT = 10


class MqttState(IntEnum):
    """An mqtt, aliyun or txyun channel's state for code 11 (docs/spec/quec.md#4.12)."""

    ERROR = -1
    CONNECTED = 0
    CONNECTING = 1
    SERVER_CLOSED = 2


class QuecthingState(IntEnum):
    """A quecthing channel's state for code 11 (docs/spec/quec.md#4.12)."""

    UNINITIALISED = 0
    INITIALISED = 1
    AUTHENTICATING = 2
    AUTHENTICATED = 3
    AUTHENTICATION_FAILED = 4
    REGISTERING = 5
    REGISTERED = 6
    """Registered, waiting for the subscription."""
    REGISTRATION_FAILED = 7
    SUBSCRIBED = 8
    """Subscribed: data can be sent."""
    SUBSCRIPTION_FAILED = 9
    LOGGING_OUT = 10
    LOGGED_OUT = 11
    LOGOUT_FAILED = 12


_CHANNEL_STATES: Mapping[ChannelType, tuple[frozenset[int], str]] = MappingProxyType(
    {
        ChannelType.TCP: (frozenset(SocketState), "a SocketState (0..10)"),
        ChannelType.UDP: (frozenset(SocketState), "a SocketState (0..10)"),
        ChannelType.MQTT: (frozenset(MqttState), "an MqttState (-1..2)"),
        ChannelType.ALIYUN: (frozenset(MqttState), "an MqttState (-1..2)"),
        ChannelType.TXYUN: (frozenset(MqttState), "an MqttState (-1..2)"),
        ChannelType.QUECTHING: (frozenset(QuecthingState), "a QuecthingState (0..12)"),
        ChannelType.HTTP: (
            frozenset({0, *range(100, 600)}),
            "an HTTP status 100..599 (0: no response yet)",
        ),
    }
)
"""The state values code 11 may report, by channel type (``hwyun`` is never configured)."""
_REG_STATS = range(12)
"""3GPP ``+CREG``/``+CGREG`` stat values 0..11 (docs/spec/quec.md#4.13)."""

# --- diagnostics (code 5) -----------------------------------------------------------------


class DiagnosticCode(IntEnum):
    """Error codes of diagnostic records, from the status table of v1 (docs/spec/quec.md#3.4).

    The executor produces the password, parameter, command-code, SIM, network and
    passthrough ones; the others are for the firmware's own failures.
    """

    SIM_ERROR = 3001
    """Read SIM card error: codes 1 and 6 without a SIM."""
    DIALING_ERROR = 3002
    """No network (no data call): code 13 while unregistered."""
    HTTP_ERROR = 4001
    TCP_CONNECT_FAILED = 4003
    UDP_CONNECT_FAILED = 4004
    MQTT_CONNECT_FAILED = 4005
    ALIYUN_CONNECT_FAILED = 4006
    TXYUN_CONNECT_FAILED = 4007
    QUECTHING_CONNECT_FAILED = 4010
    PASSWORD_VERIFY_ERROR = 5002
    THROUGH_CHANNEL_ERROR = 5004
    """Codes 58-61 refused in passthrough mode."""
    DATA_SEND_ERROR = 5007
    """Data (an uplink, an SMS) could not be sent."""
    JSON_LOAD_ERROR = 6001
    """A downlink that is not JSON (the firmware drops it)."""
    DATA_PARSE_ERROR = 6004
    """A command's ``data`` refused: a bad parameter, a value the config refuses, an
    ADC channel or GPIO pin that does not exist."""
    COMMAND_CODE_ERROR = 6005
    FILE_ERROR = 6006
    """v1's "read file error"; vdtu's record of a setting the flash could not store."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One record of code 5's list: which command failed, and how."""

    func_code: int
    """The command code (or, for the firmware's own records, the code of the activity)."""
    error_code: DiagnosticCode

    def to_json(self) -> dict[str, str]:
        """The seed's form (docs/spec/quec.md#4.6): ``{"func_code": "5", "error_code": "6001"}``."""
        return {"func_code": str(self.func_code), "error_code": str(int(self.error_code))}


# --- the outcome -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSms:
    """Send an SMS through the modem, then answer with ``sms_reply(request, ...)``."""

    number: str
    text: str
    request: CommandRequest
    """The code-50 request, to build the reply from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Restart:
    """Restart the unit now (``Power.powerRestart()``), which applies the pending settings."""


Effect = SendSms | Restart
"""What the firmware must do for a command beyond replying."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one command leads to.

    Raises:
        ValueError: no reply and no effect (every command answers or acts).
    """

    reply: Reply | None
    """The reply to send now; None for 50 (``sms_reply`` later) and 255 (never)."""
    new_config: DtuConfig | None = None
    """A setting command's result: persist it atomically as the pending settings."""
    effects: tuple[Effect, ...] = ()
    diagnostic: Diagnostic | None = None
    """For a failure: the record to keep for code 5."""

    def __post_init__(self) -> None:
        if self.reply is None and not self.effects:
            raise ValueError("an outcome without a reply must carry an effect, not ()")


def sms_reply(request: CommandRequest, *, sent: bool, error: str | None = None) -> Reply:
    """The reply to code 50 once the modem has sent the SMS, or failed to.

    On failure the firmware keeps ``Diagnostic(func_code=50,
    error_code=DiagnosticCode.DATA_SEND_ERROR)`` for code 5.

    Args:
        request: ``SendSms.request``.
        sent: whether the modem sent it.
        error: why not (default: "the SMS was not sent"); only with ``sent=False``.

    Raises:
        ValueError: ``request`` is not code 50, or an ``error`` with ``sent=True``.
    """
    if request.code != CommandCode.SEND_SMS:
        raise ValueError(f"sms_reply answers code 50 only, not code {request.code!r}")
    if sent:
        if error is not None:
            raise ValueError(f"error must be None when the SMS was sent, not {error!r}")
        return ok_reply(request)
    return failure_reply(request, error or "the SMS was not sent")


def failed_to_store(request: CommandRequest, error: Exception) -> Outcome:
    """The outcome of a setting whose ``new_config`` the flash refused to store.

    The firmware answers this instead of the setting's success: nothing was stored
    and nothing is pending. ``error`` names the condition (``FlashError``:
    ``flash-full``, ``flash-read-only``, ``flash-io``).
    """
    return _failed(
        failure_reply(request, f"the setting was not stored: {error}"),
        request.code,
        DiagnosticCode.FILE_ERROR,
    )


# --- execution ---------------------------------------------------------------------------


def _failed(reply: Reply, code: int, error_code: DiagnosticCode) -> Outcome:
    return Outcome(reply=reply, diagnostic=Diagnostic(func_code=code, error_code=error_code))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Call:
    """One validated command being run."""

    request: CommandRequest
    params: CommandParams
    config: DtuConfig
    pending: DtuConfig | None
    device: QuecDevice
    diagnostics: Sequence[Diagnostic]
    include_password: bool

    def ok(self, data: Any = NO_DATA, *, new_config: DtuConfig | None = None) -> Outcome:
        return Outcome(reply=ok_reply(self.request, data), new_config=new_config)

    def fail(self, error: str, error_code: DiagnosticCode) -> Outcome:
        return _failed(failure_reply(self.request, error), self.request.code, error_code)


def _broken(what: str, value: object, allowed: str) -> LocalProtocolError:
    return LocalProtocolError(f"QuecDevice.{what} must be {allowed}, not {value!r}")


def _volts(mv: int) -> str:
    """``3700`` -> ``"3.7"``: volts with at most three decimals, no trailing zeros."""
    return f"{mv / 1000:.3f}".rstrip("0").rstrip(".")


def _get_imei(call: _Call) -> Outcome:
    return call.ok(call.device.imei)


def _get_number(call: _Call) -> Outcome:
    number = call.device.phone_number
    if number is None:
        return call.fail(
            "the phone number cannot be read: no SIM card is ready", DiagnosticCode.SIM_ERROR
        )
    return call.ok(number)


def _get_version(call: _Call) -> Outcome:
    return call.ok(f"v {call.config.version}")


def _get_csq(call: _Call) -> Outcome:
    rssi = call.device.csq()
    if isinstance(rssi, bool) or not (rssi == 99 or 0 <= rssi <= 31):
        raise _broken("csq()", rssi, "0..31 or 99")
    return call.ok(f"CSQ{rssi}")


def _get_config(call: _Call) -> Outcome:
    dump = call.config.to_json()
    if not call.include_password:
        del dump["password"]
    return call.ok(dump)


def _get_diagnostics(call: _Call) -> Outcome:
    return call.ok([record.to_json() for record in call.diagnostics])


def _get_iccid(call: _Call) -> Outcome:
    iccid = call.device.iccid
    if iccid is None:
        return call.fail("the ICCID cannot be read: no SIM card", DiagnosticCode.SIM_ERROR)
    return call.ok(iccid)


def _get_adc(call: _Call) -> Outcome:
    try:
        mv = call.device.adc_mv(call.params.get_int("adcn"))
    except ValueError as exc:
        return call.fail(f"data.adcn: {exc}", DiagnosticCode.DATA_PARSE_ERROR)
    return call.ok(_volts(mv))


def _get_gpio(call: _Call) -> Outcome:
    try:
        level = call.device.gpio_level(call.params.get_int("pins"))
    except ValueError as exc:
        return call.fail(f"data.pins: {exc}", DiagnosticCode.DATA_PARSE_ERROR)
    if level not in (0, 1) or isinstance(level, bool):
        raise _broken("gpio_level()", level, "0 or 1")
    return call.ok(level)


def _get_vbatt(call: _Call) -> Outcome:
    return call.ok(str(call.device.vbatt_mv()))


def _get_temp_humidity(call: _Call) -> Outcome:
    temperature, humidity = call.device.temperature_humidity()
    if not (math.isfinite(temperature) and math.isfinite(humidity)):
        raise _broken("temperature_humidity()", (temperature, humidity), "finite numbers")
    return call.ok({"temperature": float(temperature), "humidity": float(humidity)})


def _get_network_connection(call: _Call) -> Outcome:
    states = call.device.channel_states()
    if set(states) != set(call.config.conf):
        raise _broken(
            "channel_states()", sorted(states), f"the channel ids {sorted(call.config.conf)}"
        )
    for channel_id, channel in call.config.conf.items():
        state = states[channel_id]
        valid, allowed = _CHANNEL_STATES[channel.protocol]
        if isinstance(state, bool) or state not in valid:
            raise _broken(f"channel_states()[{channel_id!r}] ({channel.protocol})", state, allowed)
    return call.ok({channel_id: int(states[channel_id]) for channel_id in call.config.conf})


def _get_network_state(call: _Call) -> Outcome:
    voice, data = call.device.cell_status()
    for name, stat in (("voice", voice), ("data", data)):
        if isinstance(stat, bool) or stat not in _REG_STATS:
            raise _broken(f"cell_status() {name} stat", stat, "0..11")
    return call.ok({"voice_state": voice, "data_state": data})


def _get_cell_location(call: _Call) -> Outcome:
    location = call.device.cell_location()
    if location is None:
        return call.fail(
            "no cell location: the modem is not registered on a network",
            DiagnosticCode.DIALING_ERROR,
        )
    longitude, latitude, accuracy = location
    if not (math.isfinite(longitude) and -180 <= longitude <= 180):
        raise _broken("cell_location() longitude", longitude, "-180..180")
    if not (math.isfinite(latitude) and -90 <= latitude <= 90):
        raise _broken("cell_location() latitude", latitude, "-90..90")
    if isinstance(accuracy, bool) or accuracy < 0:
        raise _broken("cell_location() accuracy", accuracy, "an integer >= 0 (metres)")
    return call.ok([longitude, latitude, accuracy])


def _send_sms(call: _Call) -> Outcome:
    effect = SendSms(
        number=call.params.get_text("number"),
        text=call.params.get_text("sms_msg"),
        request=call.request,
    )
    return Outcome(reply=None, effects=(effect,))


def _restart(_call: _Call) -> Outcome:
    return Outcome(reply=None, effects=(Restart(),))


_QUERIES: Mapping[CommandCode, Callable[[_Call], Outcome]] = MappingProxyType(
    {
        CommandCode.GET_IMEI: _get_imei,
        CommandCode.GET_NUMBER: _get_number,
        CommandCode.GET_VERSION: _get_version,
        CommandCode.GET_CSQ: _get_csq,
        CommandCode.GET_CONFIG: _get_config,
        CommandCode.GET_DIAGNOSTICS: _get_diagnostics,
        CommandCode.GET_ICCID: _get_iccid,
        CommandCode.GET_ADC: _get_adc,
        CommandCode.GET_GPIO: _get_gpio,
        CommandCode.GET_VBATT: _get_vbatt,
        CommandCode.GET_TEMP_HUMIDITY: _get_temp_humidity,
        CommandCode.GET_NETWORK_CONNECTION: _get_network_connection,
        CommandCode.GET_NETWORK_STATE: _get_network_state,
        CommandCode.GET_CELL_LOCATION: _get_cell_location,
        CommandCode.SEND_SMS: _send_sms,
        CommandCode.RESTART: _restart,
    }
)
"""The commands that read or act; the setting commands are ``_SETTINGS``."""


def _replace_all(_base: DtuConfig, value: object) -> DtuConfig:
    return replace_all(value)


_SETTINGS: Mapping[CommandCode, tuple[str, Callable[[DtuConfig, object], DtuConfig]]] = (
    MappingProxyType(
        {
            CommandCode.SET_PASSWORD: ("new_password", with_password),
            CommandCode.SET_PLATE: ("plate", with_plate),
            CommandCode.SET_REG: ("reg", with_reg),
            CommandCode.SET_VERSION: ("version", with_version),
            CommandCode.SET_FOTA: ("fota", with_fota),
            CommandCode.SET_NOLOG: ("nolog", with_nolog),
            CommandCode.SET_SERVICE_ACQUIRE: ("service_acquire", with_service_acquire),
            CommandCode.SET_UCONF: ("uconf", with_uconf),
            CommandCode.SET_CONF: ("conf", with_conf),
            CommandCode.SET_APN: ("apn", with_apn),
            CommandCode.SET_PINS: ("pins", with_pins),
            CommandCode.SET_OTA: ("ota", with_ota),
            CommandCode.SET_PARAMS: ("dtu_config", _replace_all),
        }
    )
)
"""Setting command -> (its parameter, the ``config.py`` function that applies it)."""

_NOT_IN_PASSTHROUGH = frozenset(
    {CommandCode.SET_UCONF, CommandCode.SET_CONF, CommandCode.SET_APN, CommandCode.SET_PINS}
)
"""Codes 58-61 cannot be set in passthrough mode (docs/spec/quec.md#6.15)."""


def _set(call: _Call, name: str, apply: Callable[[DtuConfig, object], DtuConfig]) -> Outcome:
    code = call.params.code
    if code in _NOT_IN_PASSTHROUGH and call.config.work_mode is WorkMode.PASSTHROUGH:
        return call.fail(
            f"{name} cannot be set (code {int(code)}) while the DTU runs in passthrough mode",
            DiagnosticCode.THROUGH_CHANNEL_ERROR,
        )
    base = call.config if call.pending is None else call.pending
    try:
        changed = apply(base, call.params.values[name])
    except ConfigError as exc:
        return call.fail(str(exc), DiagnosticCode.DATA_PARSE_ERROR)
    if not changed.conf and base.conf:
        field = "conf" if code is CommandCode.SET_CONF else f"{name}.conf"
        return call.fail(
            f"{field} must keep at least one channel: a unit without one is cut off from "
            "its cloud and from the 99 channel (which needs a channel on its UART)",
            DiagnosticCode.DATA_PARSE_ERROR,
        )
    return call.ok(new_config=changed)


def execute(
    request: CommandRequest,
    *,
    config: DtuConfig,
    pending: DtuConfig | None,
    device: QuecDevice,
    options: CommandOptions,
    diagnostics: Sequence[Diagnostic] = (),
    include_password: bool = True,
) -> Outcome:
    """Run one command.

    Args:
        request: the command, from the cloud or the serial configuration channel.
        config: the configuration in force (loaded at the last reset).
        pending: the settings earlier setting commands produced since then (the
            firmware's stored, not yet applied ``new_config``), or None.
        device: the unit, read by the queries.
        options: seed or firmware behaviour (password exemptions, parameter forms,
            code 52).
        diagnostics: the records code 5 reports, oldest first (the firmware keeps
            them, bounded, from ``Outcome.diagnostic`` and its own failures).
        include_password: whether code 4's dump includes the password, as the
            device's does; False leaves the key out.

    Returns:
        The reply, the new configuration (setting commands), the effects (50,
        255) and, for a failure, its diagnostic record. ``config`` and ``pending``
        are never changed (they are immutable).

    Raises:
        LocalProtocolError: ``device`` returned a value outside its contract.
    """
    allowed = check_password(request, config.password, options=options)
    if allowed is not True:
        return _failed(allowed, request.code, DiagnosticCode.PASSWORD_VERIFY_ERROR)
    params = validate_params(request, options=options)
    if isinstance(params, Reply):
        unknown = params.body.get("error") == CODE_ERROR
        error_code = (
            DiagnosticCode.COMMAND_CODE_ERROR if unknown else DiagnosticCode.DATA_PARSE_ERROR
        )
        return _failed(params, request.code, error_code)
    call = _Call(
        request=request,
        params=params,
        config=config,
        pending=pending,
        device=device,
        diagnostics=diagnostics,
        include_password=include_password,
    )
    setting = _SETTINGS.get(params.code)
    if setting is not None:
        return _set(call, *setting)
    return _QUERIES[params.code](call)
