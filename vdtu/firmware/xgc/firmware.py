"""The XGC DTU firmware: docs/spec/xgc.md running on the hardware models.

How it works. The serial side (``host_link.py``: ports, the host pipe, frames in
and replies out) hands every command frame on the pipe to ``run_command``, which
passes it to ``actions.execute`` with a ``UnitDevice`` (``device.py``), a read-only
view of the unit made for that command; the action decides and this module carries
its ``Outcome`` out (``outcome.py`` gives the order): the flash write first, and
memory only after it succeeded (a flash error answers ``error:flash-full`` /
``flash-read-only`` / ``flash-io`` and nothing changes), then the uplink, the reply
on the port the command came from, then the effects. The long ones run as processes
that hold their action in ``_busy`` and answer later: the bus answer's wait, the
SMS, the OTA download.

Boot (``start``): the firmware listens ``firmware_start_s`` after power-on
(earlier bytes are lost and counted), notifies GET_GPIO_ALL, waits until the
modem is registered (which needs the SIM), notifies ``init-ok``, then either
``no-project-info`` or starts the cloud session (docs/spec/xgc.md#8.3). ``stop``
interrupts every process it started; a reboot is ``stop`` + hardware reset +
``start`` by the unit, so the lines (and the PTYs on them) stay.

The serial side and the cloud session (``session.py``) reach the firmware only
through their protocols, ``LinkHost`` and ``SessionHost``, which this class
implements (``run_command``, ``run_shortcut``, ``bus_burst``; ``imei``,
``registered``, ``advance``, ``write_log``, ``spawn``, ``properties``,
``update_interval_s``, ``notify_frame``, ``refuse_downlink``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, assert_never

import simpy

from vdtu.clock.domain import DomainEnvironment
from vdtu.clock.rng import SplitMix64
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
from vdtu.firmware.xgc.codec import Frame, encode_shortcut
from vdtu.firmware.xgc.content import redact, sanitize
from vdtu.firmware.xgc.device import UnitDevice
from vdtu.firmware.xgc.host_link import HostLink, XgcStats
from vdtu.firmware.xgc.options import XgcOptions
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
from vdtu.net.conditions import Impairment, LinkConditions, PlatformConditions
from vdtu.storage import FlashError, Storage

if TYPE_CHECKING:
    from vdtu.clock.rng import RandomSource

_STATE_PHASES = {
    DtuState.MQTT_CONNECTED: Phase.CONNECTED,
    DtuState.NO_INIT: Phase.BOOTING,
    DtuState.INIT_OK: Phase.BOOTING,
    DtuState.NO_PROJECT_INFO: Phase.NO_CLOUD,
    DtuState.ERROR: Phase.NO_CLOUD,
}
"""The phase of a running unit in each state whose phase is the state's alone (in any
other it is trying to reach the cloud, unless it has no session or its session gave up)."""


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
        "_busy",
        "_cloud",
        "_env",
        "_flash",
        "_hw",
        "_impairment",
        "_link",
        "_link_rng",
        "_log",
        "_machine",
        "_mbr_answer",
        "_nvram",
        "_options",
        "_outbox",
        "_past_counters",
        "_platform_conditions",
        "_processes",
        "_registered",
        "_rng",
        "_running",
        "_session",
        "_version",
        "on_reboot_request",
        "stats",
    )

    def __init__(
        self,
        env: DomainEnvironment,
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
        self._version = base_version
        self.on_reboot_request: tuple[Callable[[], None], ...] = ()
        """Called when the host asked for DTU_REBOOT and the reply has left."""
        self._busy: dict[str, simpy.Process] = {}
        """Long actions in progress (SEND_MBR_485, DTU_OTA, SEND_SMS), by action."""
        self._mbr_answer: simpy.Event | None = None
        self._processes = ProcessGroup(env)
        self._running = False
        self._past_counters = NO_COUNTERS
        """The counters of cloud sessions that have ended."""
        self._registered: simpy.Event | None = None
        self._impairment: Impairment | None = None
        """The unit's link conditions (the network's: kept across power cycles)."""
        self._link_rng: RandomSource | None = None
        """The random source of the link's jitter, made when conditions are first set."""
        self._platform_conditions: PlatformConditions | None = None
        self._link = HostLink(env, hardware.lines, host=self, options=options, stats=self.stats)
        hardware.gpio.on_input_change += (self._on_input_change,)
        hardware.battery.on_vbus_change += (self._on_vbus_change,)
        hardware.modem.on_registration_change += (self._on_registration_change,)
        hardware.modem.on_urc += (self._on_urc,)

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
        return self._link.pipe

    @property
    def version(self) -> str:
        """The firmware version running."""
        return self._version

    @property
    def listening(self) -> bool:
        """Whether the firmware hears its ports (from ``firmware_start_s`` after power-on)."""
        return self._link.listening

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
        return self._link.sending_until(port)

    def buffered(self, port: str) -> int:
        """Bytes ``port``'s frame reader holds (0 when the port has none)."""
        return self._link.buffered(port)

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
        self._link.pipe = Pipe(self._nvram.get("pipe", Pipe.UART.value))
        self._log.threshold = LogLevel[self._nvram.get("log_level", LogLevel.INFO.name)]
        self._machine = DtuStateMachine()
        self._at.reset()
        self._outbox = Outbox(self._options.uplink_queue)
        self._running = True
        self.spawn(self._booting())

    def stop(self) -> None:
        """Power-off: every process ends, nothing more is heard or said."""
        self._link.reset()
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
            pipe=self._link.pipe,
            flash=MappingProxyType(self._nvram),
            busy=self._busy.keys(),
            has_cloud_session=self._session is not None,
        )

    def _booting(self) -> Generator[simpy.Event, Any, None]:
        yield self._env.timeout(self._options.firmware_start_s)
        self._link.listening = True
        self.write_log(LogLevel.INFO, "firmware", f"firmware {self._version} started")
        self._link.notify("GET_GPIO_ALL", gpio_all(self._device().gpio_levels()))
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
            impairment=self._impairment,
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
            return UnitState.of(Phase.OFF, state.value)
        phase = _STATE_PHASES.get(state)
        if phase is None:
            session = self._session
            phase = Phase.NO_CLOUD if session is None or session.gave_up else Phase.CONNECTING
        return UnitState.of(phase, state.value)

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
            "pipe": self._link.pipe.value,
            "version": self._version,
            "outbox": {"queued": len(self._outbox.pending), "refused": self._outbox.refused},
            "link_conditions": None
            if self._impairment is None
            else self._impairment.conditions.snapshot(),
            "platform_conditions": None
            if self._platform_conditions is None
            else self._platform_conditions.snapshot(),
            "stats": {name: getattr(self.stats, name) for name in self.stats.__slots__},
        }

    # -- the network's conditions (the personality interface) ----------------------------------

    @property
    def link_conditions(self) -> LinkConditions | None:
        """The conditions of the unit's IP link (None: healthy)."""
        return None if self._impairment is None else self._impairment.conditions

    def set_link_conditions(self, conditions: LinkConditions | None) -> None:
        """Put the link under ``conditions`` (None clears); the connection of the moment
        takes them at once, later ones are made under them; they outlast a reboot."""
        conditions = None if conditions is None else conditions.normalized()
        if conditions is None:
            self._impairment = None
        else:
            if self._link_rng is None:
                self._link_rng = SplitMix64(self._rng.randrange(1 << 63))
            self._impairment = Impairment(conditions=conditions, rng=self._link_rng)
        if self._session is not None:
            self._session.impair(self._impairment)

    def reset_link(self) -> None:
        """The network resets the broker connection of the moment (one-shot): the host sees
        ``mqtt-disconnected``, the broker publishes the will, the session reconnects."""
        if self._session is not None:
            self._session.reset_link()

    @property
    def platform_conditions(self) -> PlatformConditions | None:
        """What the platform does with this unit's credential requests (None: answers)."""
        return self._platform_conditions

    def set_platform_conditions(self, conditions: PlatformConditions | None) -> None:
        """Have the platform refuse (503: ``get-mqtt-info-fail``, retried with the back-off)
        or delay this unit's credential requests; None clears it."""
        conditions = None if conditions is None else conditions.normalized()
        self._platform_conditions = conditions
        if self._cloud is not None:
            self._cloud.set_platform_conditions(self.imei, conditions)

    # -- what the cloud session needs (session.SessionHost) -----------------------------------

    @property
    def registered(self) -> bool:
        """Whether the modem is registered with an active data context (data can flow)."""
        return self._hw.modem.data_ready

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
            self._link.notify("GET_DTU_STATE", notified)

    def notify_frame(self, frame: Frame) -> None:
        """Send a prepared frame (a cloud message) to the host on the current pipe."""
        self._link.notify_frame(frame)

    def refuse_downlink(self, channel: str, reason: str) -> None:
        """Drop a cloud message for the host: one WARN line saying why, and a count."""
        self.stats.downlinks_refused += 1
        self.write_log(LogLevel.WARN, "cloud", f"{channel} downlink refused: {reason}")

    def write_log(self, level: LogLevel, source: str, text: str) -> None:
        """Write to the unit's log at the current sim time (secret values hidden)."""
        if level >= self._log.threshold:
            self._log.write(float(self._env.now), level, source, redact(text))

    @property
    def observed(self) -> bool:
        """Whether anyone takes the unit's events."""
        return self._log.observer is not None

    @property
    def describes_frames(self) -> bool:
        """Whether its serial events carry the frames decoded (``UnitLog.describe_frames``)."""
        return self._log.describe_frames

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Hand an event of the unit to its observer (``UnitLog.event``)."""
        self._log.event(float(self._env.now), kind, data)

    # -- what the serial side needs (host_link.LinkHost) -------------------------------------

    def run_command(self, port: str, frame: Frame) -> None:
        """Run a command frame from the pipe (docs/spec/xgc.md#5) and carry its outcome out."""
        request = Request(frame=frame, port=port)
        self._carry_out(request, execute(request, self._device()))

    def run_shortcut(self, port: str, value: str) -> None:
        """The shortcut ``SET_DTU_PIPE#<value>`` (docs/spec/xgc.md#7), answered on ``port``."""
        try:
            pipe = Pipe.parse(value)
        except RemoteProtocolError as exc:
            self.write_log(LogLevel.WARN, port, f"shortcut SET_DTU_PIPE#{value}: {exc}")
            self._link.send(port, encode_shortcut(f"{sanitize(value, 20)}-error"))
            return
        outcome = switch_pipe(self._device(), pipe)
        failure = self._commit(outcome)
        if failure is not None:
            self.write_log(LogLevel.WARN, port, f"shortcut SET_DTU_PIPE#{value}: {failure.message}")
            self._link.send(port, encode_shortcut(f"{pipe.value}-error"))
            return
        assert isinstance(outcome.reply, str)  # switch_pipe always answers
        done_at = self._link.send(port, encode_shortcut(outcome.reply))
        self._run_effects(port, "SET_DTU_PIPE", outcome.effects, done_at)

    # -- carrying out an action's outcome (outcome.py) -------------------------------------------

    def _carry_out(self, request: Request, outcome: Outcome) -> None:
        port, action = request.port, request.frame.action
        failure = self._commit(outcome)
        reply = outcome.reply if failure is None else failure
        if isinstance(reply, ErrorReply):
            self._link.reply_error(port, action, reply.code, reply.message)
            return
        done_at = float(self._env.now) if reply is None else self._link.reply(port, action, reply)
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
                    self._link.switch(effect.pipe)
                case SendOnBus():
                    sent_at = self._link.send("rs485", effect.data)
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
                self._link.reply(port, action, response)

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
            self._link.reply_error(port, action, wait.on_timeout.code, wait.on_timeout.message)

    def _sending_sms(
        self, port: str, action: str, sms: SendSms
    ) -> Generator[simpy.Event, Any, None]:
        try:
            yield self._env.process(self._hw.modem.send_sms(sms.phone, sms.text))
        except RemoteProtocolError as exc:
            self._link.reply_error(port, action, exc.reply_hint, str(exc))
            return
        self._link.reply(port, action, "ok")

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
            self._link.reply(port, action, OTA_FAILED)
            return
        self.write_log(
            LogLevel.INFO, "ota", f"firmware {version} downloaded; active after a reboot"
        )
        self._link.reply(port, action, ota_finished(version))

    def _restarting_cloud(self) -> Generator[simpy.Event, Any, None]:
        yield self._env.timeout(0)  # the ``ok`` reply goes out first
        self.advance(DtuInput.PROJECT_INFO_SET)
        self._start_cloud_session()

    def _rebooting(self, reply_done_at: float) -> Generator[simpy.Event, Any, None]:
        yield self._env.timeout(max(0.0, reply_done_at - float(self._env.now)))
        for listener in self.on_reboot_request:
            listener()

    # -- hardware events ----------------------------------------------------------------------

    def _on_input_change(self, name: str, level: int) -> None:
        self._link.notify("GPIO_INT", f"{name}:{level}")

    def _on_vbus_change(self, _vbus: bool) -> None:
        self._link.notify("GET_BASE_INFO", base_info(self._device()))

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
            self._link.notify("AT", " ".join(line.splitlines()))

    def bus_burst(self, burst: bytes) -> None:
        """A burst heard on the bus is the answer a SEND_MBR_485 waits for, if one waits."""
        if self._mbr_answer is not None and not self._mbr_answer.triggered:
            self._mbr_answer.succeed(burst)
