"""The XGC DTU firmware: the serial side of docs/spec/xgc.md running on the hardware models.

How it works. The firmware attaches one node to each serial line (``uart``,
``rs232``, ``rs485``) and keeps a ``FrameReader`` per port (made when the port first
hears bytes after power-on, so idle ports cost nothing). The host protocol runs on
the port that SET_DTU_PIPE selected (persisted; ``uart`` by default); on the other
ports only the shortcut ``SET_DTU_PIPE#...`` is recognised (docs/spec/xgc.md#7), so a
host that only has RS-485 can switch the pipe. While the pipe is not 485, whatever
arrives on the RS-485 bus is collected until the line has been silent for t3.5 and
reported to the host as ``485_RECEIVE`` (docs/spec/xgc.md#6.8).

Commands. A frame on the pipe goes to ``actions.execute`` with a ``UnitDevice``
(``device.py``), a read-only view of the unit made for that command; the action decides and this
module carries its ``Outcome`` out (``outcome.py`` gives the order): the flash
write first, and memory only after it succeeded (a flash error answers
``error:flash-full`` / ``flash-read-only`` / ``flash-io`` and nothing changes),
then the uplink, the reply on the port the command came from, then the effects.
The long ones run as processes that hold their action in ``_busy`` and answer
later: the bus answer's wait, the SMS, the OTA download.

Boot (``start``): the firmware listens ``firmware_start_s`` after power-on
(earlier bytes are lost and counted), notifies GET_GPIO_ALL, waits until the
modem is registered (which needs the SIM), notifies ``init-ok``, then either
``no-project-info`` or starts the cloud session (docs/spec/xgc.md#8.3). ``stop``
interrupts every process it started; a reboot is ``stop`` + hardware reset +
``start`` by the unit, so the lines (and the PTYs on them) stay.

The cloud session (``session.py``) reaches the firmware only through its
``SessionHost`` protocol, which this class implements (``imei``, ``registered``,
``advance``, ``write_log``, ``spawn``, ``properties``, ``update_interval_s``,
``notify_frame``, ``refuse_downlink``). Replies and notifications carry the
IMEI as SN and ``0`` as timestamp; errors have one form (docs/spec/xgc.md#4.2).

One file of about 760 lines (over the 700 the file-size rule aims at): what is left
here is the driver of the pure parts, and every piece of it (the serial side, the
outcome runner and its long processes, the session host) works on the same private
state (ports, readers, flash copy, busy actions, the bus answer). Split into modules,
each would reach into that state again, which is what ``actions.py`` stopped doing.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, assert_never

import simpy

from vdtu.errors import RemoteProtocolError
from vdtu.firmware.hardware import Hardware
from vdtu.firmware.personality import NO_COUNTERS, Counters, Phase, UnitState
from vdtu.firmware.processes import ProcessGroup
from vdtu.firmware.xgc.actions import (
    OTA_FAILED,
    base_info,
    execute,
    gpio_all,
    ota_finished,
    ota_refusal,
    property_report,
    switch_pipe,
    update_props,
)
from vdtu.firmware.xgc.cloud import XgcCloud
from vdtu.firmware.xgc.codec import (
    Frame,
    FrameKind,
    FrameReader,
    FrameReceived,
    GarbageDiscarded,
    LineTooLong,
    MalformedFrame,
    ReaderEvent,
    ShortcutReceived,
    encode_shortcut,
)
from vdtu.firmware.xgc.content import redact, redact_line, sanitize
from vdtu.firmware.xgc.device import UnitDevice
from vdtu.firmware.xgc.options import CheckMode, XgcOptions
from vdtu.firmware.xgc.outcome import (
    AwaitBusAnswer,
    Effect,
    ErrorReply,
    Log,
    Outcome,
    Reboot,
    Request,
    RestartCloud,
    RunAt,
    SendOnBus,
    SendSms,
    SetOutputs,
    StartOta,
    SwitchPipe,
)
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.firmware.xgc.session import CloudSession, Outbox
from vdtu.firmware.xgc.states import DtuInput, DtuState, DtuStateMachine, notification
from vdtu.log import LogLevel, UnitLog
from vdtu.modem import AtInterpreter, RegStat
from vdtu.storage import FlashError, Storage
from vdtu.uart.chunker import SilenceChunker
from vdtu.uart.line import Tap

if TYPE_CHECKING:
    from vdtu.clock.rng import RandomSource


@dataclass(slots=True)
class XgcStats:
    """Counters that are never lost, whatever the log level."""

    frames: int = 0
    bad_check_codes: int = 0
    malformed: int = 0
    garbage_bytes: int = 0
    long_lines: int = 0
    error_replies: int = 0
    notifications: int = 0
    bytes_lost_booting: int = 0
    frames_on_other_ports: int = 0
    bus_bursts: int = 0
    uplinks_lost_at_power_off: int = 0
    flash_errors: int = 0
    """Flash writes that failed (full, read-only, I/O); the command got its error reply."""
    downlinks_refused: int = 0
    """Cloud messages not passed on to the host (over a limit, or unfit for the line)."""


@dataclass(slots=True)
class _PortNode:
    firmware: XgcFirmware
    port: str

    def receive(self, data: bytes) -> None:
        self.firmware._on_port_bytes(self.port, data)


class XgcFirmware:
    """The XGC firmware of one unit.

    Args:
        env: the SimPy environment.
        rng: the firmware's own random source.
        hardware: the models it drives.
        flash: the unit's persistent storage.
        log: the unit's log.
        options: behaviour options.
        base_version: the firmware version flashed at the factory.
        cloud: the platform and broker it reaches (None: none, get-mqtt-info fails).
    """

    __slots__ = (
        "_at",
        "_base_version",
        "_bus",
        "_busy",
        "_cloud",
        "_env",
        "_flash",
        "_hw",
        "_listening",
        "_log",
        "_machine",
        "_mbr_answer",
        "_nvram",
        "_options",
        "_outbox",
        "_past_counters",
        "_pipe",
        "_processes",
        "_readers",
        "_registered",
        "_rng",
        "_running",
        "_session",
        "_taps",
        "_version",
        "on_reboot_request",
        "stats",
    )

    def __init__(
        self,
        env: simpy.Environment,
        rng: RandomSource,
        hardware: Hardware,
        *,
        flash: Storage,
        log: UnitLog,
        options: XgcOptions,
        base_version: str,
        cloud: XgcCloud | None = None,
    ) -> None:
        self._env = env
        self._rng = rng
        self._hw = hardware
        self._flash = flash
        self._log = log
        self._options = options
        self._base_version = base_version
        self._cloud = cloud
        self._session: CloudSession | None = None
        self._outbox = Outbox(options.uplink_queue)
        self.stats = XgcStats()
        self._machine = DtuStateMachine()
        self._at = AtInterpreter(hardware.modem)
        self._nvram: dict[str, Any] = {}
        self._pipe = Pipe.UART
        self._version = base_version
        self._listening = False
        self.on_reboot_request: list[Callable[[], None]] = []
        """Called when the host asked for DTU_REBOOT and the reply has left."""
        self._busy: dict[str, simpy.Process] = {}
        """Long actions in progress (SEND_MBR_485, DTU_OTA, SEND_SMS), by action."""
        self._mbr_answer: simpy.Event | None = None
        self._processes = ProcessGroup(env)
        self._running = False
        self._past_counters = NO_COUNTERS
        """The counters of cloud sessions that have ended."""
        self._registered: simpy.Event | None = None
        self._bus = SilenceChunker(env, hardware.lines["rs485"].silence_s, self._bus_burst)
        self._readers: dict[str, FrameReader] = {}
        """The frame reader of each port that has heard bytes since power-on (made on first
        use: most units only ever hear their host pipe)."""
        self._taps: dict[str, Tap] = {
            port: line.attach(_PortNode(self, port), "dtu") for port, line in hardware.lines.items()
        }
        hardware.gpio.on_input_change.append(self._on_input_change)
        hardware.battery.on_vbus_change.append(self._on_vbus_change)
        hardware.modem.on_registration_change.append(self._on_registration_change)
        hardware.modem.on_urc.append(self._on_urc)

    # -- what others read -----------------------------------------------------------------------

    @property
    def imei(self) -> str:
        """The unit's IMEI, the SN of every frame it sends."""
        return self._hw.modem.imei

    @property
    def state(self) -> DtuState:
        """The DTU state (GET_DTU_STATE)."""
        return self._machine.state

    @property
    def pipe(self) -> Pipe:
        """The host pipe (GET_DTU_PIPE)."""
        return self._pipe

    @property
    def version(self) -> str:
        """The firmware version running."""
        return self._version

    @property
    def listening(self) -> bool:
        """Whether the firmware hears its ports (from ``firmware_start_s`` after power-on)."""
        return self._listening

    @property
    def nvram(self) -> Mapping[str, Any]:
        """What the flash holds, as the firmware last read or wrote it (read-only)."""
        return MappingProxyType(self._nvram)

    @property
    def outbox(self) -> Outbox:
        """The uplink queue of this boot (read it; the cloud session fills and drains it)."""
        return self._outbox

    def sending_until(self, port: str) -> float:
        """When what the unit has sent on ``port`` will have left (its transmitter is idle)."""
        return self._taps[port].busy_until

    def buffered(self, port: str) -> int:
        """Bytes ``port``'s frame reader holds (0 when the port has none)."""
        reader = self._readers.get(port)
        return 0 if reader is None else reader.buffered

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Power-on: read the flash and boot."""
        self._nvram = self._flash.load()
        pending = self._nvram.get("pending_fw_version")
        if pending is not None:
            failure = self._store({"fw_version": pending}, remove=("pending_fw_version",))
            if failure is not None:
                # The new firmware is in place; the pending mark stays and applies again.
                self._nvram["fw_version"] = pending
        self._version = str(self._nvram.get("fw_version", self._base_version))
        self._pipe = Pipe(self._nvram.get("pipe", Pipe.UART.value))
        self._log.threshold = LogLevel[self._nvram.get("log_level", LogLevel.INFO.name)]
        self._machine = DtuStateMachine()
        self._at.reset()
        self._outbox = Outbox(self._options.uplink_queue)
        self._running = True
        self.spawn(self._booting())

    def stop(self) -> None:
        """Power-off: every process ends, nothing more is heard or said."""
        self._listening = False
        self._running = False
        self._end_session()
        lost = len(self._outbox.pending)
        if lost:
            self.stats.uplinks_lost_at_power_off += lost
            self.write_log(
                LogLevel.ERROR, "cloud", f"{lost} queued uplinks lost: the unit lost power"
            )
        self._processes.interrupt_all()
        self._busy.clear()
        self._mbr_answer = None
        self._registered = None
        self._bus.reset()
        self._readers.clear()

    def spawn(self, generator: Generator[simpy.Event, Any, None]) -> simpy.Process:
        """Run ``generator`` as a firmware process that ends quietly at power-off."""
        return self._processes.spawn(generator)

    def _store(
        self, changes: Mapping[str, Any], *, remove: tuple[str, ...] = ()
    ) -> ErrorReply | None:
        """Write ``changes`` (and the removal of ``remove``) to the flash, then to memory.

        All or nothing: the flash write is atomic, and ``_nvram`` changes only after it
        succeeded.

        Returns:
            None when written; else the error reply (``flash-full``, ``flash-read-only``,
            ``flash-io``). Flash and ``_nvram`` then hold what they held before; the
            failure is logged and counted.
        """
        document = {k: v for k, v in self._nvram.items() if k not in remove} | dict(changes)
        try:
            self._flash.save(document)
        except FlashError as exc:
            self.stats.flash_errors += 1
            self.write_log(LogLevel.ERROR, "flash", f"write failed: {exc}")
            return ErrorReply(
                code=exc.reason,
                message=f"the flash could not be written ({exc.reason}); nothing was changed",
            )
        self._nvram = document
        return None

    def _device(self) -> UnitDevice:
        """The unit as the actions read it, now."""
        return UnitDevice(
            hardware=self._hw,
            version=self._version,
            options=self._options,
            state=self._machine.state,
            pipe=self._pipe,
            flash=MappingProxyType(self._nvram),
            busy=self._busy.keys(),
            has_cloud_session=self._session is not None,
        )

    def _booting(self) -> Generator[simpy.Event, Any, None]:
        yield self._env.timeout(self._options.firmware_start_s)
        self._listening = True
        self.write_log(LogLevel.INFO, "firmware", f"firmware {self._version} started")
        self._notify("GET_GPIO_ALL", gpio_all(self._device().gpio_levels()))
        while not self._hw.modem.registered:
            self._registered = self._env.event()
            yield self._registered
        self._registered = None
        self.advance(DtuInput.INIT_DONE)
        if "project" in self._nvram:
            self._start_cloud_session()
        else:
            self.advance(DtuInput.PROJECT_INFO_MISSING)

    def _start_cloud_session(self) -> None:
        """(Re)start the cloud session for the saved project (see ``session.py``)."""
        self._end_session()
        if self._cloud is None:
            self.write_log(LogLevel.WARN, "cloud", "no XGC platform is reachable from this unit")
            self.advance(DtuInput.MQTT_INFO_FAILED)
            return
        project = self._nvram["project"]
        self._session = CloudSession(
            self,
            self._cloud,
            env=self._env,
            rng=self._rng,
            options=self._options,
            project_id=project["pid"],
            project_secret=project["secret"],
            outbox=self._outbox,
        )
        self.spawn(self._session.run())

    def _end_session(self) -> None:
        """Close the cloud session, keeping its counters."""
        if self._session is not None:
            self._past_counters = self.counters()
            self._session.close()
            self._session = None

    # -- the personality interface (vdtu.firmware.personality) ------------------------------

    @property
    def unit_state(self) -> UnitState:
        """The common phase of the DTU state."""
        state = self._machine.state
        if not self._running:
            phase = Phase.OFF
        elif state is DtuState.MQTT_CONNECTED:
            phase = Phase.CONNECTED
        elif state in (DtuState.NO_INIT, DtuState.INIT_OK):
            phase = Phase.BOOTING
        elif state in (DtuState.NO_PROJECT_INFO, DtuState.ERROR) or self._session is None:
            phase = Phase.NO_CLOUD
        else:
            phase = Phase.NO_CLOUD if self._session.gave_up else Phase.CONNECTING
        return UnitState(phase, state.value)

    @property
    def cloud_connected(self) -> bool:
        """Whether the DTU is connected to its broker."""
        return self._machine.state is DtuState.MQTT_CONNECTED

    def counters(self) -> Counters:
        """The connection counters of every cloud session since the unit was built."""
        past, session = self._past_counters, self._session
        if session is None:
            return past
        return Counters(
            connections=past.connections + session.connections,
            connect_failures=past.connect_failures + session.failures,
            reconnects=past.reconnects + session.reconnects,
            links_lost=past.links_lost + session.links_lost,
        )

    def snapshot(self) -> dict[str, Any]:
        """The firmware's own view: state, host pipe, version, uplink queue and stats."""
        return {
            "state": self._machine.state.value,
            "pipe": self._pipe.value,
            "version": self._version,
            "outbox": {"queued": len(self._outbox.pending), "refused": self._outbox.refused},
            "stats": {name: getattr(self.stats, name) for name in self.stats.__slots__},
        }

    # -- what the cloud session needs (session.SessionHost) -----------------------------------

    @property
    def registered(self) -> bool:
        """Whether the modem is registered on a network."""
        return self._hw.modem.registered

    def update_interval_s(self) -> float:
        """The property upload interval (SET_UPDATE_PROPS), in seconds."""
        return int(update_props(self._nvram)["interval"]) / 1000

    def properties(self) -> dict[str, Any]:
        """The periodic property report (``actions.property_report``)."""
        return property_report(self._device())

    def advance(self, event: DtuInput) -> None:
        """Move the DTU state on and notify the host of a change (docs/spec/xgc.md#6.4)."""
        old = self._machine.state
        new = self._machine.process(event)
        notified = notification(old, new)
        if notified is not None:
            self.write_log(LogLevel.INFO, "firmware", f"state {old.value} -> {new.value}")
            self._notify("GET_DTU_STATE", notified)

    def notify_frame(self, frame: Frame) -> None:
        """Send a prepared frame (a cloud message) to the host on the current pipe."""
        if not self._listening:
            return
        self.stats.notifications += 1
        self._send_frame(self._pipe.port, frame)

    def refuse_downlink(self, channel: str, reason: str) -> None:
        """Drop a cloud message for the host: one WARN line saying why, and a count."""
        self.stats.downlinks_refused += 1
        self.write_log(LogLevel.WARN, "cloud", f"{channel} downlink refused: {reason}")

    def write_log(self, level: LogLevel, source: str, text: str) -> None:
        """Write to the unit's log at the current sim time (secret values hidden)."""
        if level >= self._log.threshold:
            self._log.write(float(self._env.now), level, source, redact(text))

    # -- the serial side ----------------------------------------------------------------------

    def _on_port_bytes(self, port: str, data: bytes) -> None:
        """Bytes arrived on a port (called by the line, in sim time)."""
        if not self._listening:
            self.stats.bytes_lost_booting += len(data)
            self.write_log(
                LogLevel.WARN, port, f"{len(data)} bytes lost: the firmware is not running yet"
            )
            return
        if port == "rs485" and self._pipe is not Pipe.RS485:
            self._bus.feed(data)
        reader = self._readers.get(port)
        if reader is None:
            reader = self._readers[port] = FrameReader(
                max_line=self._options.max_line, lone_cr_ends_line=self._options.lone_cr_ends_line
            )
        reader.receive_data(data)
        for event in reader.events():
            if port == self._pipe.port:
                self._handle(port, event)
            elif isinstance(event, ShortcutReceived):
                self._switch_pipe_shortcut(port, event.value)
            elif isinstance(event, FrameReceived):
                self.stats.frames_on_other_ports += 1
                self.write_log(
                    LogLevel.WARN,
                    port,
                    f"{event.frame.action} ignored: the host pipe is {self._pipe.value}, "
                    f"not {port}",
                )

    def _handle(self, port: str, event: ReaderEvent) -> None:
        match event:
            case FrameReceived():
                self._handle_frame(port, event)
            case ShortcutReceived():
                self._switch_pipe_shortcut(port, event.value)
            case MalformedFrame():
                self.stats.malformed += 1
                self.write_log(
                    LogLevel.WARN,
                    port,
                    f"malformed frame ({event.reason}): {redact_line(event.line)!r}",
                )
                self._reply_error(port, event.action or "ERROR", "malformed-frame", event.reason)
            case GarbageDiscarded():
                self.stats.garbage_bytes += len(event.data)
                self.write_log(
                    LogLevel.WARN,
                    port,
                    f"{len(event.data)} bytes outside any frame: {redact_line(event.data, 40)!r}",
                )
            case LineTooLong():
                self.stats.long_lines += 1
                self.write_log(
                    LogLevel.WARN, port, f"line of {event.size} bytes without a line end dropped"
                )
                self._reply_error(
                    port,
                    "ERROR",
                    "line-too-long",
                    f"{event.size} bytes without a line end; the limit is {self._options.max_line}",
                )

    def _handle_frame(self, port: str, event: FrameReceived) -> None:
        frame = event.frame
        self.stats.frames += 1
        if frame.kind is FrameKind.ACK:
            self.write_log(
                LogLevel.WARN, port, f"{frame.action}: $XGC_ACK frames are sent by the DTU; ignored"
            )
            return
        if not event.code_ok and self._options.check_mode is not CheckMode.OFF:
            self.stats.bad_check_codes += 1
            expected = event.expected_code
            detail = f"got {event.code} expected {expected:02X} (hex) or {expected} (decimal)"
            self.write_log(LogLevel.WARN, port, f"{frame.action}: bad check code, {detail}")
            if self._options.check_mode is CheckMode.STRICT:
                self._reply_error(port, frame.action, "bad-check-code", detail)
                return
        if not event.crlf:
            self.write_log(LogLevel.DEBUG, port, f"{frame.action}: line ended in LF without CR")
        request = Request(frame=frame, port=port)
        self._carry_out(request, execute(request, self._device()))

    def _switch_pipe_shortcut(self, port: str, value: str) -> None:
        try:
            pipe = Pipe.parse(value)
        except RemoteProtocolError as exc:
            self.write_log(LogLevel.WARN, port, f"shortcut SET_DTU_PIPE#{value}: {exc}")
            self._taps[port].send(encode_shortcut(f"{sanitize(value, 20)}-error"))
            return
        outcome = switch_pipe(self._device(), pipe)
        failure = self._commit(outcome)
        if failure is not None:
            self.write_log(LogLevel.WARN, port, f"shortcut SET_DTU_PIPE#{value}: {failure.message}")
            self._taps[port].send(encode_shortcut(f"{pipe.value}-error"))
            return
        assert isinstance(outcome.reply, str)  # switch_pipe always answers
        done_at = self._taps[port].send(encode_shortcut(outcome.reply))
        self._run_effects(port, "SET_DTU_PIPE", outcome.effects, done_at)

    # -- carrying out an action's outcome (outcome.py) -------------------------------------------

    def _carry_out(self, request: Request, outcome: Outcome) -> None:
        port, action = request.port, request.frame.action
        failure = self._commit(outcome)
        reply = outcome.reply if failure is None else failure
        if isinstance(reply, ErrorReply):
            self._reply_error(port, action, reply.code, reply.message)
            return
        done_at = float(self._env.now) if reply is None else self._reply(port, action, reply)
        self._run_effects(port, action, outcome.effects, done_at)

    def _commit(self, outcome: Outcome) -> ErrorReply | None:
        """The flash write, then the uplink; the error reply instead if either is refused."""
        if outcome.flash:
            failure = self._store(outcome.flash)
            if failure is not None:
                return failure
        uplink = outcome.uplink
        if uplink is not None:
            assert self._session is not None  # the action checked has_cloud_session
            if not self._session.submit(uplink.channel, uplink.payload):
                return uplink.when_full
        return None

    def _run_effects(
        self, port: str, action: str, effects: tuple[Effect, ...], reply_done_at: float
    ) -> None:
        sent_at = reply_done_at
        for effect in effects:
            match effect:
                case Log():
                    self.write_log(effect.level, effect.source, effect.text)
                case SetOutputs():
                    self._set_outputs(effect)
                case SwitchPipe():
                    self._pipe = effect.pipe
                    self._readers.pop(effect.pipe.port, None)
                case SendOnBus():
                    sent_at = self._taps["rs485"].send(effect.data)
                case AwaitBusAnswer():
                    self._start_long(action, self._awaiting_answer(port, action, sent_at, effect))
                case SendSms():
                    self._start_long(action, self._sending_sms(port, action, effect))
                case StartOta():
                    self._start_long(action, self._updating(port, action, effect))
                case RunAt():
                    self._run_at(port, action, effect)
                case RestartCloud():
                    self.spawn(self._restarting_cloud())
                case Reboot():
                    self.spawn(self._rebooting(reply_done_at))
                case _:
                    assert_never(effect)

    def _set_outputs(self, outputs: SetOutputs) -> None:
        for index, level in outputs.levels:
            self._hw.gpio.set_output(index, level)

    def _run_at(self, port: str, action: str, at: RunAt) -> None:
        for response in self._at.execute(at.line):
            if response:
                self._reply(port, action, response)

    def _start_long(self, action: str, work: Generator[simpy.Event, Any, None]) -> None:
        process = self.spawn(work)
        self._busy[action] = process

        def finished(_event: simpy.Event) -> None:
            self._busy.pop(action, None)

        process.callbacks.append(finished)

    def _awaiting_answer(
        self, port: str, action: str, sent_at: float, wait: AwaitBusAnswer
    ) -> Generator[simpy.Event, Any, None]:
        answer = self._env.event()
        self._mbr_answer = answer
        wait_s = sent_at - float(self._env.now) + wait.timeout_s
        result = yield answer | self._env.timeout(wait_s)
        self._mbr_answer = None
        if answer not in result:
            self._reply_error(port, action, wait.on_timeout.code, wait.on_timeout.message)

    def _sending_sms(
        self, port: str, action: str, sms: SendSms
    ) -> Generator[simpy.Event, Any, None]:
        try:
            yield self._env.process(self._hw.modem.send_sms(sms.phone, sms.text))
        except RemoteProtocolError as exc:
            self._reply_error(port, action, exc.reply_hint, str(exc))
            return
        self._reply(port, action, "ok")

    def _updating(self, port: str, action: str, ota: StartOta) -> Generator[simpy.Event, Any, None]:
        version = ota.version
        reason = ota_refusal(self._device(), ota.filename)
        if reason is None:
            yield self._env.timeout(self._rng.uniform(*self._options.ota_download_s))
            if not self._hw.modem.registered:
                reason = "the network was lost during the download"
        if reason is None:
            failure = self._store({"pending_fw_version": version})
            reason = None if failure is None else failure.message
        if reason is not None:
            self.write_log(LogLevel.WARN, "ota", f"update to {version} failed: {reason}")
            self._reply(port, action, OTA_FAILED)
            return
        self.write_log(
            LogLevel.INFO, "ota", f"firmware {version} downloaded; active after a reboot"
        )
        self._reply(port, action, ota_finished(version))

    def _restarting_cloud(self) -> Generator[simpy.Event, Any, None]:
        yield self._env.timeout(0)  # the ``ok`` reply goes out first
        self.advance(DtuInput.PROJECT_INFO_SET)
        self._start_cloud_session()

    def _rebooting(self, reply_done_at: float) -> Generator[simpy.Event, Any, None]:
        yield self._env.timeout(max(0.0, reply_done_at - float(self._env.now)))
        for listener in self.on_reboot_request:
            listener()

    # -- sending ------------------------------------------------------------------------------

    def _send_frame(self, port: str, frame: Frame) -> float:
        """Encode and transmit; returns when the last byte has arrived."""
        return self._taps[port].send(frame.encode(self._options.code_format))

    def _frame(self, action: str, content: str) -> Frame:
        return Frame(
            kind=FrameKind.ACK, action=action, sn=self.imei, timestamp="0", content=content
        )

    def _reply(self, port: str, action: str, content: str) -> float:
        """Answer a command on the port it came from."""
        return self._send_frame(port, self._frame(action, content))

    def _reply_error(self, port: str, action: str, code: str, message: str) -> None:
        """Answer with the one error form: ``error:<code>;msg:<text>``."""
        self.stats.error_replies += 1
        self._reply(port, action, f"error:{code};msg:{sanitize(redact(message))}")

    def _notify(self, action: str, content: str) -> None:
        """Send a notification to the host on the current pipe (only while running)."""
        self.notify_frame(self._frame(action, content))

    # -- hardware events ----------------------------------------------------------------------

    def _on_input_change(self, name: str, level: int) -> None:
        self._notify("GPIO_INT", f"{name}:{level}")

    def _on_vbus_change(self, _vbus: bool) -> None:
        self._notify("GET_BASE_INFO", base_info(self._device()))

    def _on_registration_change(self, _stat: RegStat) -> None:
        if self._session is not None:
            self._session.network_changed()
        if (
            self._registered is not None
            and not self._registered.triggered
            and self._hw.modem.registered
        ):
            self._registered.succeed()

    def _on_urc(self, line: str) -> None:
        if self._at.forwarding:
            self._notify("AT", " ".join(line.splitlines()))

    # -- the RS-485 bus -----------------------------------------------------------------------

    def _bus_burst(self, burst: bytes) -> None:
        if not self._listening:
            return
        self.stats.bus_bursts += 1
        self._notify("485_RECEIVE", burst.hex().upper())
        if self._mbr_answer is not None and not self._mbr_answer.triggered:
            self._mbr_answer.succeed(burst)
