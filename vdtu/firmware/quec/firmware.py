"""The QuecPython DTU firmware: ``dtu_config.json``, boot, dispatch, and its views.

How it works. At power-on the firmware reads ``dtu_config.json`` from the unit's
flash (writing the unit's default config when there is none). A file that does not
validate stops the boot with an ERROR naming the field (the v2 firmware would
crash there); the unit stays in ``config-error`` until the file is fixed and the
unit reset. After ``firmware_start_s`` it listens on every UART in ``uconf``
(``"0"`` rs232, ``"1"`` rs485, ``"2"`` uart; the baud rate comes from the file),
waits for the SIM and the network, starts one driver per channel in ``conf``
(``channels.py``), in modbus mode the vdtu poll table, and with ``fota`` on the
update check.

``QuecFirmware`` holds the unit's state and is what the rest of vdtu sees (the
``Firmware`` interface: ``start``/``stop``, ``unit_state``, ``cloud_connected``,
``counters``, ``snapshot``) and what the channel drivers report to (their
``ChannelHost``). The work is done by one module per side, on this state:

* ``serial_side``: chunks from the UARTs, framed by work mode, up to the channels;
* ``cloud_side``: downlinks, to a command, the bus or a UART;
* ``modbus_side``: cloud Modbus requests on the bus, and the poll table;
* ``uplinks``: sending on a channel, the offline store and its replay, replies;
* ``fota``: the update check.

Commands from either side run here (``run_command``): settings (codes 51-63) are
written to ``dtu_config.json`` at once, atomically, and take effect at the next
reset; code 255 restarts the unit; code 50 sends an SMS and answers when it went.

A flash write that fails (``FlashError``: full, read-only, I/O) is a device
condition, never a crash: a setting gets the error reply naming the condition and
nothing is pending; the default config, the offline store and registered secrets stay
in memory for this boot; an update is not installed. Each is an ERROR and counts in
``stats.flash_errors``. Input limits and what happens beyond them are in
docs/quec-protocol.md ("Limits").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

import simpy

from vdtu.clock.domain import DomainEnvironment
from vdtu.clock.rng import RandomSource, SplitMix64
from vdtu.errors import ConfigError, RemoteProtocolError
from vdtu.firmware.hardware import Hardware
from vdtu.firmware.personality import NO_COUNTERS, Counters, Phase, UnitState
from vdtu.firmware.processes import ProcessGroup
from vdtu.firmware.quec import cloud_side, fota, modbus_side, serial_side, uplinks
from vdtu.firmware.quec.channels import Driver, make_driver
from vdtu.firmware.quec.commands import (
    SEED,
    CommandOptions,
    CommandRequest,
    Reply,
)
from vdtu.firmware.quec.config import DtuConfig, load_config, with_version
from vdtu.firmware.quec.device import HardwareDevice
from vdtu.firmware.quec.executor import (
    Diagnostic,
    DiagnosticCode,
    MqttState,
    Restart,
    SendSms,
    execute,
    failed_to_store,
    sms_reply,
)
from vdtu.firmware.quec.frames import (
    ChannelType,
    ConfigReplyForm,
    PortBinding,
    WorkMode,
    describe,
    parse_chunk,
    read_written,
)
from vdtu.firmware.quec.logins import LoginNeeds
from vdtu.firmware.quec.modbus_mode import (
    ModbusOptions,
)
from vdtu.firmware.quec.net import HttpFailure, HttpRequest, HttpResult, QuecNet
from vdtu.firmware.quec.offline import OfflineStore
from vdtu.firmware.quec.serial_schema import UART_PORTS
from vdtu.log import LogLevel, UnitLog, preview
from vdtu.net.conditions import Impairment, LinkConditions, PlatformConditions
from vdtu.storage import FlashError, Storage, TextFile
from vdtu.uart.chunker import SilenceChunker
from vdtu.uart.line import Tap

MAX_DIAGNOSTICS = 20
"""Code 5 reports at most this many records, the newest."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuecOptions:
    """The QuecPython personality's behaviour switches (defaults: the seed; docs/spec/quec.md#1)."""

    commands: CommandOptions = SEED
    modbus: ModbusOptions = field(default_factory=ModbusOptions)
    config_reply: ConfigReplyForm = ConfigReplyForm.DOCUMENTED
    """``99,len,crc,json`` as documented, or ``len,crc,json`` as the firmware writes it."""
    firmware_start_s: float = 3.0
    """From power-on to the firmware reading its UARTs (MicroPython boot)."""
    include_password: bool = True
    """Code 4's config dump includes the password, as the device's does."""
    script_version: str = "2.0.0"
    """The project version ``ver`` of the registration message when ``version`` is 0."""
    default_config: Callable[[str], DtuConfig] | None = None
    """The ``dtu_config.json`` a unit writes when its flash has none, made from its IMEI
    (None: vdtu's default, MQTT to 127.0.0.1:1883)."""


DEFAULT_OPTIONS = QuecOptions()
"""The options of a unit given none: one instance for all of them (nothing changes options
after they are made; ``ModbusOptions`` is not frozen, but nobody writes to it)."""


@dataclass(slots=True)
class QuecStats:
    """Counters that are never lost, whatever the log level."""

    chunks: int = 0
    frames_up: int = 0
    config_requests: int = 0
    config_requests_ignored: int = 0
    bad_length: int = 0
    bad_crc: int = 0
    malformed: int = 0
    unbound_port_chunks: int = 0
    bytes_lost_booting: int = 0
    downlinks: int = 0
    downlinks_ignored: int = 0
    downlinks_refused: int = 0
    downlinks_unroutable: int = 0
    uplinks_unroutable: int = 0
    replies_rerouted: int = 0
    commands: int = 0
    uplinks_sent: int = 0
    uplinks_stored: int = 0
    uplinks_lost: int = 0
    replayed: int = 0
    modbus_frames: int = 0
    polls: int = 0
    flash_errors: int = 0


@dataclass(slots=True)
class _PortNode:
    """The firmware on one UART. Its chunker comes with the port's first bytes (most
    ports of a fleet's unit never hear any), cutting at the silence the line had when
    the firmware was built."""

    firmware: QuecFirmware
    uart: str
    silence_s: float
    chunker: SilenceChunker | None = None

    def receive(self, data: bytes) -> None:
        self.firmware.on_uart_bytes(self.uart, data)

    def feed(self, data: bytes) -> None:
        """Bytes for the firmware to read, cut into chunks at silences."""
        chunker = self.chunker
        if chunker is None:
            firmware = self.firmware
            env = cast("DomainEnvironment", firmware.env)  # what QuecFirmware was built with
            chunker = self.chunker = SilenceChunker(
                env, self.silence_s, partial(firmware.on_chunk, self.uart)
            )
        chunker.feed(data)

    def reset(self) -> None:
        """Forget the bytes of a chunk not yet handed over (power-off)."""
        if self.chunker is not None:
            self.chunker.reset()


class QuecFirmware:
    """The QuecPython DTU firmware of one unit.

    Args:
        env: the SimPy environment.
        rng: the firmware's own random source.
        hardware: the models it drives.
        flash: the unit's flash document (offline store, registered secrets).
        config_file: ``dtu_config.json``.
        default_config: the config written when ``config_file`` does not exist, made from
            the unit's IMEI.
        log: the unit's log.
        net: the network (None: every channel fails to connect).
        options: behaviour switches.
    """

    __slots__ = (
        "_link_rng",
        "_network_waiters",
        "_past_counters",
        "bindings",
        "config",
        "config_error",
        "config_file",
        "default_config",
        "device",
        "diagnostics",
        "drivers",
        "env",
        "flash",
        "hw",
        "impairment",
        "listening",
        "log",
        "net",
        "nvram",
        "offline",
        "on_reboot_request",
        "on_uplink",
        "options",
        "pending",
        "platform_conditions",
        "poll_waiters",
        "processes",
        "rng",
        "stats",
        "taps",
    )

    def __init__(
        self,
        env: DomainEnvironment,
        rng: RandomSource,
        hardware: Hardware,
        *,
        flash: Storage,
        config_file: TextFile,
        default_config: Callable[[str], DtuConfig],
        log: UnitLog,
        net: QuecNet | None,
        options: QuecOptions | None = None,
    ) -> None:
        self.env: simpy.Environment = env
        self.rng = rng
        self.hw = hardware
        self.flash = flash
        self.config_file = config_file
        self.default_config = default_config
        self.log = log
        self.net = net
        self.options = options or DEFAULT_OPTIONS
        self.device = HardwareDevice(hardware, self)
        self.stats = QuecStats()
        self.config: DtuConfig | None = None
        """The configuration in force (read at the last reset); None before boot or on error."""
        self.pending: DtuConfig | None = None
        """Settings written since the last reset (applied by the next one)."""
        self.config_error: str | None = None
        self.nvram: dict[str, Any] = {}
        self.offline = OfflineStore()
        self.diagnostics: list[Diagnostic] = []
        self.drivers: dict[str, Driver] = {}
        self.bindings: dict[str, PortBinding] = {}
        self.listening = False
        self.on_reboot_request: tuple[Callable[[], None], ...] = ()
        """Called for code 255: the unit power-cycles."""
        self.on_uplink: tuple[Callable[[str, str | None, str], None], ...] = ()
        """Called as ``listener(cid, topic_id, payload)`` for each uplink sent."""
        self.processes = ProcessGroup(env)
        self._past_counters = NO_COUNTERS
        """The counters of the channels of earlier power-on periods."""
        self._network_waiters: list[simpy.Event] = []
        self.impairment: Impairment | None = None
        """The unit's link conditions (the network's: kept across power cycles)."""
        self._link_rng: RandomSource | None = None
        self.platform_conditions: PlatformConditions | None = None
        """What the IoT cloud does with the unit's registrations (None: answers)."""
        self.poll_waiters: dict[str, simpy.Event] = {}
        """UART -> the poll waiting for its next chunk (``modbus_side.polling``)."""
        self.taps: dict[str, Tap] = {}
        for uart, port in UART_PORTS.items():
            line = hardware.lines[port]
            self.taps[uart] = line.attach(_PortNode(self, uart, line.silence_s), "dtu")
        hardware.modem.on_registration_change += (self._on_registration_change,)

    # -- life cycle ----------------------------------------------------------------------

    @property
    def imei(self) -> str:
        return self.hw.modem.imei

    @property
    def state(self) -> str:
        """``booting``, ``config-error``, ``waiting-network``, ``running`` or ``off``."""
        if self.config_error is not None:
            return "config-error"
        if self.config is None:
            return "booting" if self.processes else "off"
        if not self.drivers:
            return "waiting-network" if self.listening else "booting"
        return "running"

    def start(self) -> None:
        """Power-on: read the flash and ``dtu_config.json``, then boot."""
        self.nvram = self.flash.load()
        try:
            self.offline = OfflineStore.from_json(self.nvram.get("history", {"data": []}))
        except ConfigError as exc:
            self.write_log(LogLevel.ERROR, "offline", f"stored uplinks unreadable, dropped: {exc}")
            self.offline = OfflineStore()
        self.pending = None
        self.config_error = None
        self.config = None
        text = self.config_file.read()
        if text is None:
            config = self.default_config(self.imei)
            try:
                self._save_config(config)
            except FlashError as exc:
                self.flash_failed("config", f"no dtu_config.json; running on the default: {exc}")
            else:
                self.write_log(LogLevel.INFO, "config", "no dtu_config.json: wrote the default")
        else:
            try:
                config = load_config(text)
            except ConfigError as exc:
                self.config_error = f"dtu_config.json refused: {exc}"
                self.write_log(LogLevel.ERROR, "config", self.config_error)
                return
        updated = self.nvram.get("fota_version")
        if isinstance(updated, int):
            config = with_version(config, updated)
            self.write_log(LogLevel.INFO, "fota", f"updated: now version {updated}")
            try:  # on failure the flash still says "updated": the next boot tries again
                self._save_config(config)
                del self.nvram["fota_version"]
                self.save_nvram()
            except FlashError as exc:
                self.flash_failed("fota", f"version {updated} not stored: {exc}")
        self.config = config
        self.bindings = serial_side.bindings(config)
        self.spawn(self._booting())

    def _save_config(self, config: DtuConfig) -> None:
        """Write ``dtu_config.json`` (atomically; indented when a user can read it).

        Raises:
            FlashError: the flash refused the write (the old file is kept).
        """
        self.config_file.write(_config_text(config, readable=self.config_file.path is not None))

    def stop(self) -> None:
        """Power-off: every process and channel ends, nothing more is heard or said."""
        self.listening = False
        for driver in self.drivers.values():
            driver.close()
        self._past_counters = self.counters()
        self.drivers.clear()
        self.processes.interrupt_all()
        self._network_waiters.clear()
        self.poll_waiters.clear()
        for tap in self.taps.values():
            cast("_PortNode", tap.node).reset()
        self.config = None

    def spawn(self, generator: Generator[simpy.Event, Any, None]) -> simpy.Process:
        """Run ``generator`` as a firmware process that ends quietly at power-off."""
        return self.processes.spawn(generator)

    def _booting(self) -> Generator[simpy.Event, Any, None]:
        config = self.config
        assert config is not None  # start() set it before spawning
        yield self.env.timeout(self.options.firmware_start_s)
        for uart, settings in config.uconf.items():
            port = UART_PORTS.get(uart)
            if port is not None:
                self.hw.lines[port].set_baud(settings.baudrate)
        self.listening = True
        self.write_log(
            LogLevel.INFO,
            "firmware",
            f"started in {config.work_mode} mode, version {config.version}",
        )
        if not self.network_ready():
            yield self.wait_network()
        for cid, channel in config.conf.items():
            if self.net is None:
                self.write_log(LogLevel.WARN, f"ch{cid}", "no network is reachable from this unit")
                continue
            driver = make_driver(self, self.net, cid, channel)
            self.drivers[cid] = driver
            self.spawn(driver.run())
        if config.work_mode is WorkMode.MODBUS:
            for index, entry in enumerate(config.modbus.poll):
                self.spawn(modbus_side.polling(self, index, entry))
        if config.fota and self.net is not None:
            self.spawn(fota.fota_check(self, config))

    def save_nvram(self) -> None:
        """Write the flash document (atomically).

        Raises:
            FlashError: the flash refused the write (the old document is kept).
        """
        self.flash.save(self.nvram)

    def flash_failed(self, source: str, text: str) -> None:
        """A flash write failed: a device condition, logged and counted; the unit runs on."""
        self.stats.flash_errors += 1
        self.write_log(LogLevel.ERROR, source, text)

    def write_log(self, level: LogLevel, source: str, text: str) -> None:
        self.log.write(float(self.env.now), level, source, text)

    def note(self, diagnostic: Diagnostic) -> None:
        """Keep a record for code 5 (the newest ``MAX_DIAGNOSTICS``)."""
        self.diagnostics.append(diagnostic)
        del self.diagnostics[:-MAX_DIAGNOSTICS]

    # -- the network ---------------------------------------------------------------------

    def network_ready(self) -> bool:
        """Registered with an active data context (the module's data call): data can flow."""
        return self.hw.modem.data_ready

    def dns_error(self, host: str) -> str | None:
        """Why the module cannot look ``host`` up now (its DNS fails), or None."""
        return self.hw.modem.resolve_error(host)

    def wait_network(self) -> simpy.Event:
        event = self.env.event()
        if self.network_ready():
            event.succeed()
        else:
            self._network_waiters.append(event)
        return event

    def _on_registration_change(self, _stat: object) -> None:
        if not self.network_ready():
            for driver in self.drivers.values():
                driver.network_lost("the data call was lost")
            return
        waiters, self._network_waiters = self._network_waiters, []
        for event in waiters:
            if not event.triggered:
                event.succeed()

    def login_needs(self) -> LoginNeeds:
        time_ms = self.hw.modem.network_time_ms()
        return LoginNeeds(
            imei=self.imei,
            now_s=0 if time_ms is None else time_ms // 1000,
            rng=self.rng,
            secrets=self.nvram.get("secrets", {}),
            save_secret=self._save_secret,
        )

    def _save_secret(self, key: str, secret: str) -> None:
        self.nvram.setdefault("secrets", {})[key] = secret
        try:
            self.save_nvram()
        except FlashError as exc:
            self.flash_failed("flash", f"registered secret kept in memory only: {exc}")

    def http_event(self, request: HttpRequest, *, credential: bool = False) -> simpy.Event:
        """Make an HTTP request; the event's value is the ``HttpResult``. ``credential``:
        a dynamic registration (the platform's conditions for the unit apply)."""
        waiting = self.env.event()

        def done(result: HttpResult) -> None:
            if not waiting.triggered:
                waiting.succeed(result)

        dns_error = self.dns_error(urlsplit(request.url).hostname or "")
        if self.net is None:
            done(HttpFailure(reason="no network is reachable from this unit"))
        elif dns_error is not None:
            done(HttpFailure(reason=dns_error))
        else:
            self.net.request(
                request,
                done,
                impairment=self.impairment,
                platform=self.platform_conditions if credential else None,
            )
        return waiting

    # -- the network's conditions (the personality interface) ----------------------------

    @property
    def link_conditions(self) -> LinkConditions | None:
        """The conditions of the unit's IP link (None: healthy)."""
        return None if self.impairment is None else self.impairment.conditions

    def set_link_conditions(self, conditions: LinkConditions | None) -> None:
        """Put every link of the unit under ``conditions`` (None clears): the links of the
        moment take them at once, later links and requests are made under them; they
        outlast a reboot."""
        conditions = None if conditions is None else conditions.normalized()
        if conditions is None:
            self.impairment = None
        else:
            if self._link_rng is None:
                self._link_rng = SplitMix64(self.rng.randrange(1 << 63))
            self.impairment = Impairment(conditions=conditions, rng=self._link_rng)
        for driver in self.drivers.values():
            driver.impair(self.impairment)

    def reset_link(self) -> None:
        """The network resets every channel's link of the moment (one-shot): each is lost
        and reconnects by the channels' back-off; UDP and HTTP have no connection."""
        for driver in self.drivers.values():
            driver.reset_link()

    def set_platform_conditions(self, conditions: PlatformConditions | None) -> None:
        """Have the IoT cloud refuse (HTTP 503) or delay this unit's dynamic registrations
        (the only credential request a QuecPython unit makes; a secret it has saved needs
        none); None clears it."""
        self.platform_conditions = None if conditions is None else conditions.normalized()

    def registration_message(self) -> str:
        """Config ``reg`` (docs/spec/quec.md#6.4): 1 the seed's JSON, a string itself, 0 nothing."""
        config = self.config
        if config is None or config.reg in (0, ""):
            return ""
        if isinstance(config.reg, str):
            return config.reg
        return json.dumps(
            {
                "csq": self.device.csq(),
                "imei": self.imei,
                "iccid": self.device.iccid or "",
                "ver": config.version or self.options.script_version,
            }
        )

    # -- the channels' host: uplinks, offline replay, downlinks ----------------------------

    def send_uplink(self, cid: str, topic_id: str | None, payload: str) -> None:
        """Send on channel ``cid``; store it (or count it lost) when the channel cannot."""
        uplinks.send_uplink(self, cid, topic_id, payload)

    def send_failed(self, cid: str, topic_id: str | None, payload: str, reason: str) -> None:
        """An uplink the channel had accepted was not acknowledged: store it or count it."""
        uplinks.send_failed(self, cid, topic_id, payload, reason)

    def channel_up(self, cid: str) -> None:
        """Replay what channel ``cid`` could not send before, in order."""
        uplinks.replay(self, cid)

    def channel_received(self, cid: str, topic_id: str | None, payload: bytes) -> None:
        """A downlink on channel ``cid`` (in sim time)."""
        cloud_side.channel_received(self, cid, topic_id, payload)

    # -- the serial side -----------------------------------------------------------------

    def on_uart_bytes(self, uart: str, data: bytes) -> None:
        """Bytes arrived on a UART (called by the line, in sim time)."""
        if not self.listening:
            self.stats.bytes_lost_booting += len(data)
            return
        cast("_PortNode", self.taps[uart].node).feed(data)

    def on_chunk(self, uart: str, chunk: bytes) -> None:
        """One chunk (bytes between two silences) from UART ``uart``."""
        if self.log.observer is not None:
            port = UART_PORTS.get(uart, uart)  # the unit's port, as XGC units name theirs
            seen: dict[str, Any] = {"port": port, "uart": uart, "text": preview(chunk)}
            if self.log.describe_frames:
                binding = self.bindings.get(uart)
                seen["frames"] = [] if binding is None else [describe(parse_chunk(chunk, binding))]
            self.event("from-host", seen)
        serial_side.on_chunk(self, uart, chunk)

    def write_uart(self, uart: str, data: bytes) -> None:
        """Write bytes on UART ``uart``."""
        if self.log.observer is not None:
            port = UART_PORTS.get(uart, uart)
            written: dict[str, Any] = {"port": port, "uart": uart, "text": preview(data)}
            if self.log.describe_frames:
                binding = self.bindings.get(uart)
                written["frames"] = (
                    [] if binding is None else [describe(read_written(data, binding))]
                )
            self.event("to-host", written)
        self.taps[uart].send(data)

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Hand an event of the unit to its observer (``UnitLog.event``)."""
        self.log.event(float(self.env.now), kind, data)

    # -- commands, from the cloud or the serial configuration channel ---------------------

    def run_command(self, request: CommandRequest, answer: Callable[[Reply], None]) -> None:
        """Run a command from the cloud or the serial configuration channel; ``answer`` sends
        its reply (at once, or when an SMS went), a setting is saved as pending."""
        config = self.config
        assert config is not None  # checked by the callers
        self.stats.commands += 1
        outcome = execute(
            request,
            config=config,
            pending=self.pending,
            device=self.device,
            options=self.options.commands,
            diagnostics=tuple(self.diagnostics),
            include_password=self.options.include_password,
        )
        if outcome.new_config is not None:
            try:
                self._save_config(outcome.new_config)
            except FlashError as exc:  # neither stored nor pending: the setting is refused
                self.flash_failed("config", f"code {request.code}: not saved: {exc}")
                outcome = failed_to_store(request, exc)
            else:
                self.pending = outcome.new_config
                self.write_log(
                    LogLevel.INFO,
                    "config",
                    f"code {request.code}: saved, applied at the next reset",
                )
        if outcome.diagnostic is not None:
            self.note(outcome.diagnostic)
        if outcome.reply is not None:
            answer(outcome.reply)
        for effect in outcome.effects:
            match effect:
                case SendSms():
                    self.spawn(self._sending_sms(effect, answer))
                case Restart():
                    self.write_log(LogLevel.INFO, "firmware", "code 255: restarting")
                    for listener in self.on_reboot_request:
                        listener()

    def _sending_sms(
        self, effect: SendSms, answer: Callable[[Reply], None]
    ) -> Generator[simpy.Event, Any, None]:
        try:
            yield self.env.process(self.hw.modem.send_sms(effect.number, effect.text))
        except RemoteProtocolError as exc:
            self.note(Diagnostic(func_code=50, error_code=DiagnosticCode.DATA_SEND_ERROR))
            answer(sms_reply(effect.request, sent=False, error=str(exc)))
            return
        answer(sms_reply(effect.request, sent=True))

    # -- views ---------------------------------------------------------------------------

    @property
    def unit_state(self) -> UnitState:
        """The common phase: connected when every channel is, connecting while one is not."""
        state = self.state
        match state:
            case "off":
                phase = Phase.OFF
            case "booting":
                phase = Phase.BOOTING
            case "config-error":
                phase = Phase.NO_CLOUD
            case "waiting-network":
                phase = Phase.CONNECTING
            case _:
                connected = all(driver.connected for driver in self.drivers.values())
                phase = Phase.CONNECTED if connected else Phase.CONNECTING
        return UnitState.of(phase, state)

    @property
    def cloud_connected(self) -> bool:
        """Whether a channel is connected (a host's uplinks can go out)."""
        return any(driver.connected for driver in self.drivers.values())

    def counters(self) -> Counters:
        """Every channel's connection counters, added up over every power-on period."""
        past = self._past_counters
        drivers = self.drivers.values()
        return Counters(
            connections=past.connections + sum(d.connections for d in drivers),
            connect_failures=past.connect_failures + sum(d.failures for d in drivers),
            reconnects=past.reconnects + sum(d.reconnects for d in drivers),
            links_lost=past.links_lost + sum(d.links_lost for d in drivers),
        )

    def snapshot(self) -> dict[str, Any]:
        """The firmware's own view: state, config in force, channels, offline store, stats."""
        config = self.config
        return {
            "state": self.state,
            "config_error": self.config_error,
            "work_mode": None if config is None else config.work_mode.value,
            "version": None if config is None else config.version,
            "channels": dict(self.channel_states()),
            "offline": {"stored": len(self.offline), "dropped": self.offline.dropped},
            "stats": {name: getattr(self.stats, name) for name in self.stats.__slots__},
        }

    def channel_states(self) -> Mapping[str, int]:
        """Each channel of the config in force -> its live state (code 11)."""
        config = self.config
        if config is None:
            return {}
        return {
            cid: self.drivers[cid].state() if cid in self.drivers else _idle_state(channel.protocol)
            for cid, channel in config.conf.items()
        }


def _idle_state(kind: ChannelType) -> int:
    """The state of a channel whose driver has not started (no network yet): MQTT types
    are closed; sockets closed, quecthing uninitialised and http without a response, all 0."""
    if kind in (ChannelType.MQTT, ChannelType.ALIYUN, ChannelType.TXYUN):
        return int(MqttState.SERVER_CLOSED)
    return 0


def _config_text(config: DtuConfig, *, readable: bool = True) -> str:
    """The file's text: indented for a file a user reads, compact for one in memory."""
    indent = 4 if readable else None
    return json.dumps(config.to_json(), ensure_ascii=False, indent=indent) + "\n"
