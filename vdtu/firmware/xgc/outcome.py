"""What an XGC action reads (``XgcDevice``) and what it leads to (``Outcome``).

Pure: this module and ``actions.py`` import no scheduler and touch no hardware model.
``actions.execute(request, device)`` reads the unit through an ``XgcDevice`` and returns
an ``Outcome``; the firmware (``firmware.py``) carries it out, in this order::

    outcome.flash   -> written first, all or nothing; a flash that refuses it makes the
                       reply error:flash-full / flash-read-only / flash-io and nothing
                       else happens (memory changes only after the write succeeded)
    outcome.uplink  -> queued next; a full queue makes the reply ``uplink.when_full``
    outcome.reply   -> sent on the port the command came from (None: no reply now)
    outcome.effects -> carried out in order; the long ones (AwaitBusAnswer, SendSms,
                       StartOta) answer later themselves, under the command's action

An error outcome (``ErrorReply``) carries nothing else. Replies and error forms are
docs/spec/xgc.md#4.1 and docs/spec/xgc.md#4.2.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any, Protocol

from vdtu.cloud.xgc_api import Channel
from vdtu.firmware.xgc.codec import Frame
from vdtu.firmware.xgc.options import XgcOptions
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.firmware.xgc.states import DtuState
from vdtu.log import LogLevel
from vdtu.modem.registration import NetMode, NetState, SimState


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A command frame being handled, and the port it came from."""

    frame: Frame
    port: str

    @property
    def content(self) -> str:
        """The content, ``""`` when the frame had none."""
        return self.frame.content or ""


class XgcDevice(Protocol):
    """The unit as the actions read it: identity, modem, power, GPIO, flash, pipe, state.

    Read-only: an action never changes the device; it says what should change in its
    ``Outcome``. The firmware implements it over its hardware models.
    """

    @property
    def imei(self) -> str:
        """The IMEI (GET_IMEI, and the SN of every frame the DTU sends)."""
        ...

    @property
    def model(self) -> str:
        """The box's model (GET_BASE_INFO; OTA file names start with it)."""
        ...

    @property
    def version(self) -> str:
        """The firmware version running."""
        ...

    @property
    def options(self) -> XgcOptions:
        """The firmware's behaviour options."""
        ...

    @property
    def state(self) -> DtuState:
        """The DTU state (docs/spec/xgc.md#8)."""
        ...

    @property
    def pipe(self) -> Pipe:
        """The host pipe (docs/spec/xgc.md#1.2)."""
        ...

    @property
    def flash(self) -> Mapping[str, Any]:
        """What the flash holds (saved keys, project, settings)."""
        ...

    @property
    def busy(self) -> Set[str]:
        """The long actions in progress (SEND_MBR_485, DTU_OTA, SEND_SMS)."""
        ...

    @property
    def has_cloud_session(self) -> bool:
        """Whether a cloud session runs (project info saved and the unit past init)."""
        ...

    @property
    def sim_state(self) -> SimState:
        """What the modem sees in its SIM slot."""
        ...

    @property
    def iccid(self) -> str | None:
        """The SIM's ICCID; None without a card."""
        ...

    @property
    def registered(self) -> bool:
        """Whether the modem is registered on a network."""
        ...

    @property
    def rssi(self) -> int:
        """The ``+CSQ`` RSSI, 0..31 (99: not known)."""
        ...

    @property
    def net_state(self) -> NetState:
        """GET_NET_INFO's ``netState``."""
        ...

    @property
    def net_mode(self) -> NetMode:
        """GET_NET_INFO's ``netMode``."""
        ...

    @property
    def location(self) -> tuple[float, float] | None:
        """(longitude, latitude) of the serving cell; None unregistered."""
        ...

    def network_time_ms(self) -> int | None:
        """Unix time in ms as the network gave it; None before it did (NITZ)."""
        ...

    @property
    def vbat_mv(self) -> int:
        """The battery voltage, mV."""
        ...

    @property
    def vbus(self) -> bool:
        """External power present."""
        ...

    def gpio_levels(self) -> Mapping[str, int]:
        """Every output then every input that exists: ``{"out1": 0, ..., "in1": 1, ...}``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorReply:
    """The one error form, ``error:<code>;msg:<text>`` (docs/spec/xgc.md#4.2).

    The firmware hides secrets in ``message`` and keeps it to the characters a reply may
    carry before sending it.
    """

    code: str
    message: str


# -- effects --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Log:
    """Write a line to the unit's log."""

    level: LogLevel
    source: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetOutputs:
    """Switch relays: ``(index, level)`` pairs, ``(3, 1)`` is ``out3`` on."""

    levels: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchPipe:
    """Move the host protocol to ``pipe`` (the flash already says so)."""

    pipe: Pipe


@dataclass(frozen=True, slots=True, kw_only=True)
class SendOnBus:
    """Put ``data`` on the RS-485 bus."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class AwaitBusAnswer:
    """Wait for a slave's answer (docs/spec/xgc.md#5.14), holding SEND_MBR_485 busy.

    The wait ends ``timeout_s`` after the last byte of the preceding ``SendOnBus`` has
    left. The answer reaches the host as every burst does, as ``485_RECEIVE``; without
    one, the command is answered with ``on_timeout``.
    """

    timeout_s: float
    on_timeout: ErrorReply


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSms:
    """Hand an SMS to the modem (docs/spec/xgc.md#5.20), holding SEND_SMS busy; ``ok`` once
    sent, or the modem's error."""

    phone: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartOta:
    """Download firmware ``version`` (docs/spec/xgc.md#5.19), holding DTU_OTA busy.

    The firmware checks ``actions.ota_refusal`` as the update starts, waits for the
    download, stores the version as pending and answers ``actions.ota_finished`` (or
    ``actions.OTA_FAILED``).
    """

    filename: str
    version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAt:
    """Pass an AT command line to the module; each response line is an ``AT`` reply
    (docs/spec/xgc.md#5.22)."""

    line: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartCloud:
    """The project info changed: once the reply is out, the cloud session starts over
    (state input ``PROJECT_INFO_SET``, docs/spec/xgc.md#8.2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reboot:
    """Restart the unit once the reply has left (docs/spec/xgc.md#5.21)."""


Effect = (
    Log
    | SetOutputs
    | SwitchPipe
    | SendOnBus
    | AwaitBusAnswer
    | SendSms
    | StartOta
    | RunAt
    | RestartCloud
    | Reboot
)
"""What the firmware does for a command besides writing the flash and replying."""


# -- the outcome ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueUplink:
    """Hand ``payload`` to the cloud session for ``channel`` (docs/spec/xgc.md#5.23)."""

    channel: Channel
    payload: bytes
    when_full: ErrorReply
    """The reply instead of the command's when the uplink queue takes no more."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one command leads to (see the module comment for the order).

    Raises:
        ValueError: an error reply with anything else, or no reply and no effect (every
            command answers now or acts).
    """

    reply: str | ErrorReply | None
    """The reply's content, or the error; None: the effects answer later (or never)."""
    flash: Mapping[str, Any] | None = None
    """Top-level flash entries to write, replacing what they held (None: none)."""
    uplink: QueueUplink | None = None
    effects: tuple[Effect, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.reply, ErrorReply) and (self.flash or self.uplink or self.effects):
            raise ValueError(
                "an error outcome carries nothing else, not "
                f"flash={self.flash!r} uplink={self.uplink!r} effects={self.effects!r}"
            )
        if self.reply is None and not self.effects:
            raise ValueError("an outcome without a reply must carry an effect, not ()")


def refused(code: str, message: str) -> Outcome:
    """The outcome of a refused command: ``error:<code>;msg:<message>``."""
    return Outcome(reply=ErrorReply(code=code, message=message))
