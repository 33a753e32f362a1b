"""The XGC DTU firmware: the serial side of seed 004 running on the hardware models.

How it works. The firmware attaches one node to each serial line (``uart``,
``rs232``, ``rs485``) and keeps a ``FrameReader`` per port (made when the port first
hears bytes after power-on, so idle ports cost nothing). The host protocol runs on
the port that SET_DTU_PIPE selected (persisted; ``uart`` by default); on the other
ports only the shortcut ``SET_DTU_PIPE#...`` is recognised, so a host that only has
RS-485 can switch the pipe. While the pipe is not 485,
whatever arrives on the RS-485 bus is collected until the line has been silent
for t3.5 and reported to the host as ``485_RECEIVE`` (hex).

Boot (``start``): the firmware listens ``firmware_start_s`` after power-on
(earlier bytes are lost and counted), notifies GET_GPIO_ALL, waits until the
modem is registered (which needs the SIM), notifies ``init-ok``, then either
``no-project-info`` or starts the cloud session. ``stop`` interrupts every
process it started; a reboot is ``stop`` + hardware reset + ``start`` by the
unit, so the lines (and the PTYs on them) stay.

Replies and notifications carry the IMEI as SN and ``0`` as timestamp, as the
seed's replies do. Errors have one form, ``error:<code>;msg:<text>``, under the
action they answer (``ERROR`` when the action could not be read); see
docs/xgc-protocol.md for the list. Actions live in ``actions.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import simpy

from vdtu.errors import RemoteProtocolError
from vdtu.firmware.hardware import Hardware
from vdtu.firmware.personality import NO_COUNTERS, Counters, Phase, UnitState
from vdtu.firmware.processes import ProcessGroup
from vdtu.firmware.xgc.actions import ACTIONS, DEFAULT_UPDATE_PROPS, Request, base_info
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
from vdtu.firmware.xgc.options import CheckMode, XgcOptions
from vdtu.firmware.xgc.pipe import Pipe
from vdtu.firmware.xgc.session import CloudSession, Outbox
from vdtu.firmware.xgc.states import DtuInput, DtuState, DtuStateMachine
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
        self.firmware.on_port_bytes(self.port, data)


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
        "_bus",
        "_past_counters",
        "_registered",
        "_running",
        "at",
        "base_version",
        "busy",
        "cloud",
        "env",
        "flash",
        "hw",
        "listening",
        "log",
        "machine",
        "mbr_answer",
        "nvram",
        "on_reboot_request",
        "on_state_change",
        "options",
        "outbox",
        "pipe",
        "processes",
        "readers",
        "rng",
        "session",
        "stats",
        "taps",
        "version",
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
        self.env = env
        self.rng = rng
        self.hw = hardware
        self.flash = flash
        self.log = log
        self.options = options
        self.base_version = base_version
        self.cloud = cloud
        self.session: CloudSession | None = None
        self.outbox = Outbox(options.uplink_queue)
        self.stats = XgcStats()
        self.machine = DtuStateMachine()
        self.at = AtInterpreter(hardware.modem)
        self.nvram: dict[str, Any] = {}
        self.pipe = Pipe.UART
        self.version = base_version
        self.listening = False
        self.on_reboot_request: list[Callable[[], None]] = []
        """Called when the host asked for DTU_REBOOT and the reply has left."""
        self.on_state_change: list[Callable[[DtuState], None]] = []
        self.busy: dict[str, simpy.Process] = {}
        """Long actions in progress (SEND_MBR_485, DTU_OTA, SEND_SMS), by action."""
        self.mbr_answer: simpy.Event | None = None
        self.processes = ProcessGroup(env)
        self._running = False
        self._past_counters = NO_COUNTERS
        """The counters of cloud sessions that have ended."""
        self._registered: simpy.Event | None = None
        self._bus = SilenceChunker(env, hardware.lines["rs485"].silence_s, self._bus_burst)
        self.readers: dict[str, FrameReader] = {}
        """The frame reader of each port that has heard bytes since power-on (made on first
        use: most units only ever hear their host pipe)."""
        self.taps: dict[str, Tap] = {
            port: line.attach(_PortNode(self, port), "dtu") for port, line in hardware.lines.items()
        }
        hardware.gpio.on_input_change.append(self._on_input_change)
        hardware.battery.on_vbus_change.append(self._on_vbus_change)
        hardware.modem.on_registration_change.append(self._on_registration_change)
        hardware.modem.on_urc.append(self._on_urc)

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def imei(self) -> str:
        """The unit's IMEI, the SN of every frame it sends."""
        return self.hw.modem.imei

    @property
    def state(self) -> DtuState:
        """The DTU state (GET_DTU_STATE)."""
        return self.machine.state

    def start(self) -> None:
        """Power-on: read the flash and boot."""
        self.nvram = self.flash.load()
        pending = self.nvram.get("pending_fw_version")
        if pending is not None:
            try:
                self.store({"fw_version": pending}, remove=("pending_fw_version",))
            except RemoteProtocolError:
                # The new firmware is in place; the pending mark stays and applies again.
                self.nvram["fw_version"] = pending
        self.version = str(self.nvram.get("fw_version", self.base_version))
        self.pipe = Pipe(self.nvram.get("pipe", Pipe.UART.value))
        self.log.threshold = LogLevel[self.nvram.get("log_level", LogLevel.INFO.name)]
        self.machine = DtuStateMachine()
        self.at.reset()
        self.outbox = Outbox(self.options.uplink_queue)
        self._running = True
        self.spawn(self._booting())

    def stop(self) -> None:
        """Power-off: every process ends, nothing more is heard or said."""
        self.listening = False
        self._running = False
        self._end_session()
        lost = len(self.outbox.pending)
        if lost:
            self.stats.uplinks_lost_at_power_off += lost
            self.write_log(
                LogLevel.ERROR, "cloud", f"{lost} queued uplinks lost: the unit lost power"
            )
        self.processes.interrupt_all()
        self.busy.clear()
        self.mbr_answer = None
        self._registered = None
        self._bus.reset()
        self.readers.clear()

    def spawn(self, generator: Generator[simpy.Event, Any, None]) -> simpy.Process:
        """Run ``generator`` as a firmware process that ends quietly at power-off."""
        return self.processes.spawn(generator)

    def store(self, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> None:
        """Write ``changes`` (and the removal of ``remove``) to the flash, then to memory.

        All or nothing: the flash write is atomic, and ``nvram`` changes only after it
        succeeded.

        Raises:
            RemoteProtocolError: the flash could not be written; its ``reply_hint`` is the
                condition (``flash-full``, ``flash-read-only``, ``flash-io``). Flash and
                ``nvram`` hold what they held before; the failure is logged and counted.
        """
        document = {k: v for k, v in self.nvram.items() if k not in remove} | changes
        try:
            self.flash.save(document)
        except FlashError as exc:
            self.stats.flash_errors += 1
            self.write_log(LogLevel.ERROR, "flash", f"write failed: {exc}")
            raise RemoteProtocolError(
                f"the flash could not be written ({exc.reason}); nothing was changed",
                reply_hint=exc.reason,
            ) from exc
        self.nvram = document

    def _booting(self) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(self.options.firmware_start_s)
        self.listening = True
        self.write_log(LogLevel.INFO, "firmware", f"firmware {self.version} started")
        self.notify("GET_GPIO_ALL", self.gpio_all())
        while not self.hw.modem.registered:
            self._registered = self.env.event()
            yield self._registered
        self._registered = None
        self.advance(DtuInput.INIT_DONE)
        if "project" in self.nvram:
            self.start_cloud_session()
        else:
            self.advance(DtuInput.PROJECT_INFO_MISSING)

    def start_cloud_session(self) -> None:
        """(Re)start the cloud session for the saved project (see ``session.py``)."""
        self._end_session()
        if self.cloud is None:
            self.write_log(LogLevel.WARN, "cloud", "no XGC platform is reachable from this unit")
            self.advance(DtuInput.MQTT_INFO_FAILED)
            return
        project = self.nvram["project"]
        self.session = CloudSession(
            self,
            self.cloud,
            project_id=project["pid"],
            project_secret=project["secret"],
            outbox=self.outbox,
        )
        self.spawn(self.session.run())

    def _end_session(self) -> None:
        """Close the cloud session, keeping its counters."""
        if self.session is not None:
            self._past_counters = self.counters()
            self.session.close()
            self.session = None

    # -- the personality interface (vdtu.firmware.personality) ------------------------------

    @property
    def unit_state(self) -> UnitState:
        """The common phase of the DTU state."""
        state = self.machine.state
        if not self._running:
            phase = Phase.OFF
        elif state is DtuState.MQTT_CONNECTED:
            phase = Phase.CONNECTED
        elif state in (DtuState.NO_INIT, DtuState.INIT_OK):
            phase = Phase.BOOTING
        elif state in (DtuState.NO_PROJECT_INFO, DtuState.ERROR) or self.session is None:
            phase = Phase.NO_CLOUD
        else:
            phase = Phase.NO_CLOUD if self.session.gave_up else Phase.CONNECTING
        return UnitState(phase, state.value)

    @property
    def cloud_connected(self) -> bool:
        """Whether the DTU is connected to its broker."""
        return self.machine.state is DtuState.MQTT_CONNECTED

    def counters(self) -> Counters:
        """The connection counters of every cloud session since the unit was built."""
        past, session = self._past_counters, self.session
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
            "state": self.machine.state.value,
            "pipe": self.pipe.value,
            "version": self.version,
            "outbox": {"queued": len(self.outbox.pending), "refused": self.outbox.refused},
            "stats": {name: getattr(self.stats, name) for name in self.stats.__slots__},
        }

    def update_props(self) -> dict[str, Any]:
        """The SET_UPDATE_PROPS settings in the flash (a copy), or the defaults."""
        return dict(self.nvram.get("update_props", DEFAULT_UPDATE_PROPS))

    def update_interval_s(self) -> float:
        """The property upload interval (SET_UPDATE_PROPS), in seconds."""
        return int(self.update_props()["interval"]) / 1000

    def update_location(self) -> bool:
        """Whether properties carry the cell location (SET_UPDATE_PROPS updateLoc)."""
        return bool(self.update_props()["updateLoc"])

    def advance(self, event: DtuInput) -> None:
        """Move the DTU state on and notify the host of a change."""
        old = self.machine.state
        new = self.machine.process(event)
        if new is not old:
            self.write_log(LogLevel.INFO, "firmware", f"state {old.value} -> {new.value}")
            self.notify("GET_DTU_STATE", new.value)
            for listener in self.on_state_change:
                listener(new)

    # -- the serial side ----------------------------------------------------------------------

    def on_port_bytes(self, port: str, data: bytes) -> None:
        """Bytes arrived on a port (called by the line, in sim time)."""
        if not self.listening:
            self.stats.bytes_lost_booting += len(data)
            self.write_log(
                LogLevel.WARN, port, f"{len(data)} bytes lost: the firmware is not running yet"
            )
            return
        if port == "rs485" and self.pipe is not Pipe.RS485:
            self._bus.feed(data)
        reader = self.readers.get(port)
        if reader is None:
            reader = self.readers[port] = FrameReader(
                max_line=self.options.max_line, lone_cr_ends_line=self.options.lone_cr_ends_line
            )
        reader.receive_data(data)
        for event in reader.events():
            if port == self.pipe.port:
                self._handle(port, event)
            elif isinstance(event, ShortcutReceived):
                self._switch_pipe_shortcut(port, event.value)
            elif isinstance(event, FrameReceived):
                self.stats.frames_on_other_ports += 1
                self.write_log(
                    LogLevel.WARN,
                    port,
                    f"{event.frame.action} ignored: the host pipe is {self.pipe.value}, not {port}",
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
                self.reply_error(port, event.action or "ERROR", "malformed-frame", event.reason)
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
                self.reply_error(
                    port,
                    "ERROR",
                    "line-too-long",
                    f"{event.size} bytes without a line end; the limit is {self.options.max_line}",
                )

    def _handle_frame(self, port: str, event: FrameReceived) -> None:
        frame = event.frame
        self.stats.frames += 1
        if frame.kind is FrameKind.ACK:
            self.write_log(
                LogLevel.WARN, port, f"{frame.action}: $XGC_ACK frames are sent by the DTU; ignored"
            )
            return
        if not event.code_ok and self.options.check_mode is not CheckMode.OFF:
            self.stats.bad_check_codes += 1
            expected = event.expected_code
            detail = f"got {event.code} expected {expected:02X} (hex) or {expected} (decimal)"
            self.write_log(LogLevel.WARN, port, f"{frame.action}: bad check code, {detail}")
            if self.options.check_mode is CheckMode.STRICT:
                self.reply_error(port, frame.action, "bad-check-code", detail)
                return
        if not event.crlf:
            self.write_log(LogLevel.DEBUG, port, f"{frame.action}: line ended in LF without CR")
        handler = ACTIONS.get(frame.action)
        if handler is None:
            self.reply_error(
                port, frame.action, "unknown-action", f"{frame.action} is not an XGC command"
            )
            return
        try:
            content = handler(self, Request(frame=frame, port=port))
        except RemoteProtocolError as exc:
            self.reply_error(port, frame.action, exc.reply_hint, str(exc))
            return
        if content is not None:
            self.reply(port, frame.action, content)

    def _switch_pipe_shortcut(self, port: str, value: str) -> None:
        try:
            pipe = Pipe.parse(value)
        except RemoteProtocolError as exc:
            self.write_log(LogLevel.WARN, port, f"shortcut SET_DTU_PIPE#{value}: {exc}")
            self.taps[port].send(encode_shortcut(f"{sanitize(value, 20)}-error"))
            return
        try:
            self.set_pipe(pipe)
        except RemoteProtocolError as exc:
            self.write_log(LogLevel.WARN, port, f"shortcut SET_DTU_PIPE#{value}: {exc}")
            self.taps[port].send(encode_shortcut(f"{pipe.value}-error"))
            return
        self.taps[port].send(encode_shortcut(f"{pipe.value}-ok"))

    def set_pipe(self, pipe: Pipe) -> None:
        """Move the host protocol to ``pipe`` (persisted first).

        Raises:
            RemoteProtocolError: the flash could not be written; the pipe stays.
        """
        if pipe is self.pipe:
            return
        self.store({"pipe": pipe.value})
        self.write_log(LogLevel.INFO, "firmware", f"host pipe {self.pipe.value} -> {pipe.value}")
        self.pipe = pipe
        self.readers.pop(pipe.port, None)

    # -- sending ------------------------------------------------------------------------------

    def frame(self, action: str, content: str, kind: FrameKind = FrameKind.ACK) -> Frame:
        """A frame from this DTU."""
        return Frame(kind=kind, action=action, sn=self.imei, timestamp="0", content=content)

    def send_frame(self, port: str, frame: Frame) -> float:
        """Encode and transmit; returns when the last byte has arrived."""
        return self.taps[port].send(frame.encode(self.options.code_format))

    def reply(self, port: str, action: str, content: str) -> float:
        """Answer a command on the port it came from."""
        return self.send_frame(port, self.frame(action, content))

    def reply_error(self, port: str, action: str, code: str, message: str) -> None:
        """Answer with the one error form: ``error:<code>;msg:<text>``."""
        self.stats.error_replies += 1
        self.reply(port, action, f"error:{code};msg:{sanitize(redact(message))}")

    def notify(self, action: str, content: str, kind: FrameKind = FrameKind.ACK) -> None:
        """Send a notification to the host on the current pipe (only while running)."""
        if not self.listening:
            return
        self.stats.notifications += 1
        self.send_frame(self.pipe.port, self.frame(action, content, kind))

    def refuse_downlink(self, channel: str, reason: str) -> None:
        """Drop a cloud message for the host: one WARN line saying why, and a count."""
        self.stats.downlinks_refused += 1
        self.write_log(LogLevel.WARN, "cloud", f"{channel} downlink refused: {reason}")

    def notify_frame(self, frame: Frame) -> None:
        """Send a prepared frame (a cloud message) to the host on the current pipe."""
        if not self.listening:
            return
        self.stats.notifications += 1
        self.send_frame(self.pipe.port, frame)

    def write_log(self, level: LogLevel, source: str, text: str) -> None:
        """Write to the unit's log at the current sim time (secret values hidden)."""
        if level >= self.log.threshold:
            self.log.write(float(self.env.now), level, source, redact(text))

    # -- hardware events ----------------------------------------------------------------------

    def gpio_all(self) -> str:
        """Every output then every input that exists, e.g. ``out1:0;...;in1:1``."""
        levels = self.hw.gpio.output_levels() | self.hw.gpio.input_levels()
        return ";".join(f"{name}:{level}" for name, level in levels.items())

    def _on_input_change(self, name: str, level: int) -> None:
        self.notify("GPIO_INT", f"{name}:{level}")

    def _on_vbus_change(self, _vbus: bool) -> None:
        self.notify("GET_BASE_INFO", base_info(self))

    def _on_registration_change(self, _stat: RegStat) -> None:
        if self.session is not None:
            self.session.network_changed()
        if (
            self._registered is not None
            and not self._registered.triggered
            and self.hw.modem.registered
        ):
            self._registered.succeed()

    def _on_urc(self, line: str) -> None:
        if self.at.forwarding:
            self.notify("AT", " ".join(line.splitlines()))

    # -- the RS-485 bus -----------------------------------------------------------------------

    def _bus_burst(self, burst: bytes) -> None:
        if not self.listening:
            return
        self.stats.bus_bursts += 1
        self.notify("485_RECEIVE", burst.hex().upper())
        if self.mbr_answer is not None and not self.mbr_answer.triggered:
            self.mbr_answer.succeed(burst)
