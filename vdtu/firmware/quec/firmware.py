"""The QuecPython DTU firmware: ``dtu_config.json``, the serial ports, the work modes, the channels.

How it works. At power-on the firmware reads ``dtu_config.json`` from the unit's
flash (writing the unit's default config when there is none). A file that does not
validate stops the boot with an ERROR naming the field (the v2 firmware would
crash there); the unit stays in ``config-error`` until the file is fixed and the
unit reset. After ``firmware_start_s`` it listens on every UART in ``uconf``
(``"0"`` rs232, ``"1"`` rs485, ``"2"`` uart; the baud rate comes from the file),
waits for the SIM and the network, starts one driver per channel in ``conf``
(``channels.py``) and, in modbus mode, the vdtu poll table.

Serial input is cut into chunks at line silences (``SilenceChunker``) and each chunk
is one frame (``frames.parse_chunk``, with the UART's ``PortBinding``):

* ``99,len,crc32,json``: a command on the serial configuration channel, answered
  on the same UART (``ConfigReplyForm``), in every work mode;
* command mode ``cid,[topic_id,]len,crc32,data``: ``{"data": "<data>"}`` goes to
  channel ``cid`` (topic ``topic_id``); passthrough ``[topic_id,]len,crc32,data``:
  the raw data goes to the UART's one channel;
* modbus (and a Modbus-looking chunk in command mode): the bytes go up as the hex
  list ``format_bus_data`` writes, to the UART's first channel;
* a bad length, CRC or shape: dropped, logged and counted (``QuecStats``).

Cloud input (``channel_received``) goes through ``commands.parse_downlink``: a
command is executed (``executor.execute``) and its reply published on the same
channel, on the topic ``topic_id`` picks; a Modbus request becomes RTU frames on
the bus; data is written to the channel's UART as a frame; anything else is
ignored with a WARN and a code 5 diagnostic.

Settings (codes 51-63) are written to ``dtu_config.json`` at once, atomically,
and take effect at the next reset: code 255 restarts the unit. An uplink that
cannot be sent is kept in the offline store (``offline_storage``; 100 items,
oldest dropped and counted), persisted in the flash and replayed in order when its
channel connects again; without offline storage it is logged and counted as lost.

A flash write that fails (``FlashError``: full, read-only, I/O) is a device
condition, never a crash: a setting gets the error reply naming the condition and
nothing is pending; the default config, the offline store and registered secrets stay
in memory for this boot; an update is not installed. Each is an ERROR and counts in
``stats.flash_errors``. Input limits and what happens beyond them are in
docs/quec-protocol.md ("Limits").

With ``fota`` on, the unit asks the update server once per boot (``quec_fota``);
an offered image is downloaded, checked (size, MD5), reported, and installed by a
restart, after which the unit reports the new ``version``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import simpy

from vdtu.clock.rng import RandomSource
from vdtu.cloud.quec_fota import (
    CHECK_URL,
    REPORT_URL,
    check_request,
    image_problem,
    parse_check_answer,
    status_report,
)
from vdtu.errors import ConfigError, RemoteProtocolError
from vdtu.firmware.hardware import Hardware
from vdtu.firmware.personality import NO_COUNTERS, Counters, Phase, UnitState
from vdtu.firmware.processes import ProcessGroup
from vdtu.firmware.quec.channel_schema import AliyunChannel, MqttChannel, TxyunChannel
from vdtu.firmware.quec.channels import Driver, make_driver
from vdtu.firmware.quec.commands import (
    SEED,
    CommandOptions,
    CommandRequest,
    ForwardData,
    Ignored,
    ModbusRequest,
    Refused,
    Reply,
    parse_config_command,
    parse_downlink,
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
    BadCrc,
    BadLength,
    ChannelType,
    CommandFrame,
    ConfigReply,
    ConfigReplyForm,
    ConfigRequest,
    Malformed,
    ModbusChunk,
    PassthroughFrame,
    PortBinding,
    WorkMode,
    parse_chunk,
)
from vdtu.firmware.quec.logins import LoginNeeds
from vdtu.firmware.quec.modbus_mode import (
    ModbusOptions,
    ModbusPlan,
    format_bus_data,
    plan_modbus,
    poll_report,
    poll_requests,
    poll_slaves,
)
from vdtu.firmware.quec.modbus_schema import PollEntry
from vdtu.firmware.quec.net import HttpFailure, HttpRequest, HttpResult, QuecNet
from vdtu.firmware.quec.offline import OfflineStore, Stored
from vdtu.firmware.quec.serial_schema import PORT_UARTS, UART_PORTS
from vdtu.log import LogLevel, UnitLog
from vdtu.storage import FlashError, Storage, TextFile
from vdtu.uart.chunker import SilenceChunker
from vdtu.uart.line import Tap

MAX_DIAGNOSTICS = 20
"""Code 5 reports at most this many records, the newest."""
POLL_ANSWER_S = 1.0
"""How long a poll waits for a slave's answer."""


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
    firmware: QuecFirmware
    uart: str

    def receive(self, data: bytes) -> None:
        self.firmware.on_uart_bytes(self.uart, data)


class QuecFirmware:
    """The QuecPython DTU firmware of one unit.

    Args:
        env: the SimPy environment.
        rng: the firmware's own random source.
        hardware: the models it drives.
        flash: the unit's flash document (offline store, registered secrets).
        config_file: ``dtu_config.json``.
        default_config: the config written when ``config_file`` does not exist.
        log: the unit's log.
        net: the network (None: every channel fails to connect).
        options: behaviour switches.
    """

    def __init__(
        self,
        env: simpy.Environment,
        rng: RandomSource,
        hardware: Hardware,
        *,
        flash: Storage,
        config_file: TextFile,
        default_config: Callable[[], DtuConfig],
        log: UnitLog,
        net: QuecNet | None,
        options: QuecOptions | None = None,
    ) -> None:
        self.env = env
        self.rng = rng
        self.hw = hardware
        self.flash = flash
        self.config_file = config_file
        self.default_config = default_config
        self.log = log
        self.net = net
        self.options = options or QuecOptions()
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
        self.on_reboot_request: list[Callable[[], None]] = []
        """Called for code 255: the unit power-cycles."""
        self.on_uplink: list[Callable[[str, str | None, str], None]] = []
        """Called as ``listener(cid, topic_id, payload)`` for each uplink sent."""
        self.processes = ProcessGroup(env)
        self._past_counters = NO_COUNTERS
        """The counters of the channels of earlier power-on periods."""
        self._network_waiters: list[simpy.Event] = []
        self._poll_waiters: dict[str, simpy.Event] = {}
        self.taps: dict[str, Tap] = {}
        self.chunkers: dict[str, SilenceChunker] = {}
        for uart, port in UART_PORTS.items():
            line = hardware.lines[port]
            self.taps[uart] = line.attach(_PortNode(self, uart), "dtu")
            self.chunkers[uart] = SilenceChunker(env, line.silence_s, partial(self.on_chunk, uart))
        hardware.modem.on_registration_change.append(self._on_registration_change)

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
            config = self.default_config()
            try:
                self._save_config(config)
            except FlashError as exc:
                self._flash_failed("config", f"no dtu_config.json; running on the default: {exc}")
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
                self._flash_failed("fota", f"version {updated} not stored: {exc}")
        self.config = config
        self.bindings = _bindings(config)
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
        self._poll_waiters.clear()
        for chunker in self.chunkers.values():
            chunker.reset()
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
                self.spawn(self._polling(index, entry))
        if config.fota and self.net is not None:
            self.spawn(self._fota_check(config))

    def save_nvram(self) -> None:
        """Write the flash document (atomically).

        Raises:
            FlashError: the flash refused the write (the old document is kept).
        """
        self.flash.save(self.nvram)

    def _flash_failed(self, source: str, text: str) -> None:
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
        return self.hw.modem.registered

    def wait_network(self) -> simpy.Event:
        event = self.env.event()
        if self.network_ready():
            event.succeed()
        else:
            self._network_waiters.append(event)
        return event

    def _on_registration_change(self, _stat: object) -> None:
        if not self.network_ready():
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
            self._flash_failed("flash", f"registered secret kept in memory only: {exc}")

    def http_event(self, request: HttpRequest) -> simpy.Event:
        """Make an HTTP request; the event's value is the ``HttpResult``."""
        waiting = self.env.event()

        def done(result: HttpResult) -> None:
            if not waiting.triggered:
                waiting.succeed(result)

        if self.net is None:
            done(HttpFailure(reason="no network is reachable from this unit"))
        else:
            self.net.request(request, done)
        return waiting

    def _fota_check(self, config: DtuConfig) -> Generator[simpy.Event, Any, None]:
        """Ask the update server; install what it offers and restart (see ``quec_fota``)."""
        check = check_request(
            imei=self.imei,
            version=config.version,
            module_type=self.hw.modem.model,
            rsrp=self.device.csq(),
            battery=self.device.vbatt_mv(),
        )
        answer = yield self.http_event(_json_request("POST", CHECK_URL, check))
        if isinstance(answer, HttpFailure) or answer.status != 200:
            why = answer.reason if isinstance(answer, HttpFailure) else f"HTTP {answer.status}"
            self.write_log(LogLevel.WARN, "fota", f"update check failed: {why}")
            return
        try:
            offer = parse_check_answer(answer.body)
        except ValueError as exc:
            self.write_log(LogLevel.WARN, "fota", f"update check failed: {exc}")
            return
        if offer is None:
            self.write_log(LogLevel.INFO, "fota", f"version {config.version} is up to date")
            return
        self.write_log(LogLevel.INFO, "fota", f"downloading version {offer.target_version}")
        image = yield self.http_event(HttpRequest(method="GET", url=offer.url, timeout_s=300))
        if isinstance(image, HttpFailure):
            problem: str | None = image.reason
        elif image.status != 200:
            problem = f"HTTP {image.status}"
        else:
            problem = image_problem(offer, image.body)
        report = status_report(imei=self.imei, version=offer.target_version, ok=problem is None)
        yield self.http_event(_json_request("POST", REPORT_URL, report))
        if problem is not None:
            self.write_log(LogLevel.ERROR, "fota", f"update refused: {problem}")
            return
        self.nvram["fota_version"] = offer.target_version
        try:
            self.save_nvram()
        except FlashError as exc:
            del self.nvram["fota_version"]
            self._flash_failed("fota", f"version {offer.target_version} not installed: {exc}")
            return
        self.write_log(
            LogLevel.INFO, "fota", f"version {offer.target_version} installed: restarting"
        )
        for listener in tuple(self.on_reboot_request):
            listener()

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

    # -- uplinks -------------------------------------------------------------------------

    def send_uplink(self, cid: str, topic_id: str | None, payload: str) -> None:
        """Send on channel ``cid``; store it (or count it lost) when the channel cannot."""
        driver = self.drivers.get(cid)
        if driver is None:
            self.send_failed(cid, topic_id, payload, f"channel {cid} is not running")
            return
        problem = driver.send(payload, topic_id)
        if problem is not None:
            self.send_failed(cid, topic_id, payload, problem)
            return
        self.stats.uplinks_sent += 1
        for listener in tuple(self.on_uplink):
            listener(cid, topic_id, payload)

    def send_failed(self, cid: str, topic_id: str | None, payload: str, reason: str) -> None:
        config = self.config
        self.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_SEND_ERROR))
        if config is None or not config.offline_storage:
            self.stats.uplinks_lost += 1
            self.write_log(  # the size only: a lost code 4 reply holds the password
                LogLevel.ERROR, f"ch{cid}", f"uplink lost ({reason}): {len(payload)} characters"
            )
            return
        dropped = self.offline.add(Stored(channel=cid, topic_id=topic_id, payload=payload))
        self.stats.uplinks_stored += 1
        self.write_log(LogLevel.WARN, f"ch{cid}", f"uplink stored offline ({reason})")
        if dropped is not None:
            self.write_log(
                LogLevel.ERROR,
                f"ch{dropped.channel}",
                f"offline store full ({self.offline.capacity}): oldest uplink dropped, "
                f"{self.offline.dropped} so far",
            )
        self._save_offline()

    def _save_offline(self) -> None:
        self.nvram["history"] = self.offline.to_json()
        try:
            self.save_nvram()
        except FlashError as exc:
            self._flash_failed("offline", f"offline store kept in memory only: {exc}")

    def channel_up(self, cid: str) -> None:
        """Replay what channel ``cid`` could not send before, in order."""
        items = self.offline.take(cid)
        if not items:
            return
        driver = self.drivers.get(cid)
        sent = 0
        for index, item in enumerate(items):
            problem = None if driver is None else driver.send(item.payload, item.topic_id)
            if driver is None or problem is not None:
                self.offline.put_back(items[index:])
                break
            sent += 1
        self.stats.replayed += sent
        self.stats.uplinks_sent += sent
        self.write_log(LogLevel.INFO, f"ch{cid}", f"replayed {sent} stored uplinks")
        self._save_offline()

    # -- the serial side -----------------------------------------------------------------

    def on_uart_bytes(self, uart: str, data: bytes) -> None:
        """Bytes arrived on a UART (called by the line, in sim time)."""
        if not self.listening:
            self.stats.bytes_lost_booting += len(data)
            return
        self.chunkers[uart].feed(data)

    def on_chunk(self, uart: str, chunk: bytes) -> None:
        """One chunk (bytes between two silences) from UART ``uart``."""
        config = self.config
        if config is None or not self.listening:
            return
        self.stats.chunks += 1
        waiter = self._poll_waiters.pop(uart, None)
        if waiter is not None and not waiter.triggered:
            waiter.succeed(chunk)
            return
        binding = self.bindings.get(uart)
        source = UART_PORTS[uart]
        if binding is None:
            self.stats.unbound_port_chunks += 1
            self.write_log(
                LogLevel.WARN,
                source,
                f"{len(chunk)} bytes dropped: UART {uart} is not in uconf or has no channel",
            )
            return
        result = parse_chunk(chunk, binding)
        match result:
            case ConfigRequest():
                self._serial_command(uart, result)
            case CommandFrame():
                self.stats.frames_up += 1
                if self._topic_known(source, result.cid, result.topic_id):
                    body = json.dumps({"data": result.data}, ensure_ascii=False)
                    self.send_uplink(result.cid, result.topic_id, body)
            case PassthroughFrame():
                self.stats.frames_up += 1
                cid = self._bound_channel(uart)
                if cid is not None and self._topic_known(source, cid, result.topic_id):
                    self.send_uplink(cid, result.topic_id, result.data)
            case ModbusChunk():
                self._bus_data(uart, result.data)
            case BadLength() | BadCrc() | Malformed():
                self._refused(source, result)

    def _topic_known(self, source: str, cid: str, topic_id: str | None) -> bool:
        """Whether a host frame's topic id is a publish topic of its channel; a frame naming
        one the channel lacks can never be sent, so it is dropped and counted, not stored
        (where it would push sendable uplinks out and block its channel's replay)."""
        if _publish_topic_known(self.config, cid, topic_id):
            return True
        self.stats.uplinks_unroutable += 1
        self.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_SEND_ERROR))
        self.write_log(
            LogLevel.WARN,
            source,
            f"frame dropped: topic id {_cut(topic_id)} is not a publish topic of channel {cid}",
        )
        return False

    def _refused(self, source: str, result: BadLength | BadCrc | Malformed) -> None:
        match result:
            case BadLength():
                self.stats.bad_length += 1
            case BadCrc():
                self.stats.bad_crc += 1
            case Malformed():
                self.stats.malformed += 1
        self.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_PARSE_ERROR))
        self.write_log(LogLevel.WARN, source, f"frame dropped: {result.reason}: {_preview(result)}")

    def _bound_channel(self, uart: str) -> str | None:
        """The first channel bound to UART ``uart`` (its only one in passthrough)."""
        config = self.config
        if config is None:
            return None
        for cid, channel in config.conf.items():
            if channel.serial_id == uart:
                return cid
        return None

    def _bus_data(self, uart: str, data: bytes) -> None:
        self.stats.modbus_frames += 1
        cid = self._bound_channel(uart)
        if cid is None:
            self.stats.unbound_port_chunks += 1
            self.write_log(LogLevel.WARN, UART_PORTS[uart], "bus data dropped: no channel")
            return
        self.send_uplink(cid, None, format_bus_data(data, options=self.options.modbus))

    def write_uart(self, uart: str, data: bytes) -> None:
        """Write bytes on UART ``uart``."""
        self.taps[uart].send(data)

    def _serial_command(self, uart: str, request: ConfigRequest) -> None:
        self.stats.config_requests += 1
        command = parse_config_command(request)
        if isinstance(command, Ignored):
            self.stats.config_requests_ignored += 1
            self.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_PARSE_ERROR))
            self.write_log(LogLevel.WARN, UART_PORTS[uart], f"config request: {command.reason}")
            return

        def answer(reply: Reply) -> None:
            self.write_uart(
                uart, ConfigReply(text=reply.to_json()).encode(self.options.config_reply)
            )

        self._run_command(command, answer)

    # -- cloud input ---------------------------------------------------------------------

    def channel_received(self, cid: str, topic_id: str | None, payload: bytes) -> None:
        """A downlink on channel ``cid`` (in sim time)."""
        config = self.config
        if config is None or not self.listening:
            return
        self.stats.downlinks += 1
        message = parse_downlink(payload, mode=config.work_mode, options=self.options.commands)
        match message:
            case CommandRequest():
                self._run_command(message, lambda reply: self._publish_reply(cid, reply))
            case ModbusRequest():
                self._modbus_request(cid, message)
            case ForwardData():
                self._forward(cid, topic_id, message.text)
            case Refused():
                self.stats.downlinks_refused += 1
                self.note(Diagnostic(func_code=0, error_code=DiagnosticCode.DATA_PARSE_ERROR))
                self.write_log(LogLevel.WARN, f"ch{cid}", f"downlink refused: {message.reason}")
                self._publish_reply(cid, message.reply)
            case Ignored():
                self.stats.downlinks_ignored += 1
                self.note(Diagnostic(func_code=0, error_code=DiagnosticCode.JSON_LOAD_ERROR))
                self.write_log(LogLevel.WARN, f"ch{cid}", f"downlink ignored: {message.reason}")

    def _publish_reply(self, cid: str, reply: Reply) -> None:
        """Send a reply on ``publish[topic_id]``; a topic id the channel lacks gets the reply
        on its first publish topic (where v2's offline replay would end up sending it),
        with a WARN: it is never stored, where it would push real uplinks out."""
        topic_id = reply.topic_id
        if not _publish_topic_known(self.config, cid, topic_id):
            self.stats.replies_rerouted += 1
            self.write_log(
                LogLevel.WARN,
                f"ch{cid}",
                f"reply to code {reply.body.get('code')}: topic id {_cut(topic_id)} is not a "
                "publish topic of this channel; sent on its first publish topic",
            )
            topic_id = None
        self.send_uplink(cid, topic_id, reply.to_json())

    def _forward(self, cid: str, topic_id: str | None, data: str) -> None:
        config = self.config
        assert config is not None  # checked by the caller
        channel = config.conf[cid]
        uart = channel.serial_id
        if uart not in self.taps or uart not in config.uconf:
            self._unroutable(cid, f"its serialID {uart!r} is not an open UART")
            return
        kind = channel.protocol
        frame_id = None
        if kind.has_topic_id:
            frame_id = "0" if kind is ChannelType.QUECTHING else (topic_id or "0")
        if config.work_mode is WorkMode.PASSTHROUGH:
            if self._bound_channel(uart) != cid:
                self._unroutable(cid, f"UART {uart} is bound to another channel in passthrough")
                return
            frame: CommandFrame | PassthroughFrame = PassthroughFrame(topic_id=frame_id, data=data)
        else:
            frame = CommandFrame(cid=cid, topic_id=frame_id, data=data)
        self.write_uart(uart, frame.encode())

    def _unroutable(self, cid: str, why: str) -> None:
        self.stats.downlinks_unroutable += 1
        self.note(Diagnostic(func_code=0, error_code=DiagnosticCode.THROUGH_CHANNEL_ERROR))
        self.write_log(LogLevel.WARN, f"ch{cid}", f"downlink dropped: {why}")

    def _run_command(self, request: CommandRequest, answer: Callable[[Reply], None]) -> None:
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
                self._flash_failed("config", f"code {request.code}: not saved: {exc}")
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
                    for listener in tuple(self.on_reboot_request):
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

    # -- modbus --------------------------------------------------------------------------

    def _modbus_request(self, cid: str, request: ModbusRequest) -> None:
        config = self.config
        assert config is not None  # checked by the caller
        plan = plan_modbus(request, config.modbus, options=self.options.modbus)
        if isinstance(plan, Reply):
            self._publish_reply(cid, plan)
            return
        uart = self._bus_uart(cid)
        self.spawn(self._writing_frames(uart, plan, cid))

    def _bus_uart(self, cid: str) -> str:
        """The UART a channel's Modbus frames go out on: its own when it is a bus, else rs485."""
        config = self.config
        assert config is not None  # checked by the callers
        uart = config.conf[cid].serial_id
        return uart if uart in self.taps else PORT_UARTS["rs485"]

    def _writing_frames(
        self, uart: str, plan: ModbusPlan, cid: str
    ) -> Generator[simpy.Event, Any, None]:
        for index, frame in enumerate(plan.frames):
            if index:
                yield self.env.timeout(plan.gap_s)
            self.write_uart(uart, frame)
        self._publish_reply(cid, plan.reply)

    def _polling(self, index: int, entry: PollEntry) -> Generator[simpy.Event, Any, None]:
        """vdtu's poll table: read the slaves every ``interval_s`` and report the readings."""
        config = self.config
        assert config is not None  # set before the boot process started
        cid = entry.channel or self._bound_channel(entry.serial_id)
        if cid is None or cid not in config.conf:
            self.write_log(
                LogLevel.ERROR, "modbus", f"poll {index}: no channel to report to; not polling"
            )
            return
        while True:
            yield self.env.timeout(entry.interval_s)
            slaves = poll_slaves(entry, config.modbus)
            for slave, frame in zip(slaves, poll_requests(entry, config.modbus), strict=True):
                waiter = self.env.event()
                self._poll_waiters[entry.serial_id] = waiter
                self.write_uart(entry.serial_id, frame)
                answered = yield waiter | self.env.timeout(POLL_ANSWER_S)
                self._poll_waiters.pop(entry.serial_id, None)
                answer = answered[waiter] if waiter in answered else None  # noqa: SIM401 (a ConditionValue has no get)
                report = poll_report(entry, slave, answer, float(self.env.now))
                self.stats.polls += 1
                self.send_uplink(cid, None, json.dumps(report))

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
        return UnitState(phase, state)

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


def _publish_topic_known(config: DtuConfig | None, cid: str, topic_id: str | None) -> bool:
    """Whether ``topic_id`` names a publish topic of channel ``cid`` (None always does;
    so does any id on a channel type that has no publish table)."""
    channel = None if config is None else config.conf.get(cid)
    if topic_id is None or not isinstance(channel, MqttChannel | AliyunChannel | TxyunChannel):
        return True
    return topic_id in channel.publish


def _cut(value: str | None) -> str:
    """``repr(value)`` cut to 40 characters (a topic id from the cloud can be any size)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _preview(result: BadLength | BadCrc | Malformed) -> str:
    """The start of a refused chunk, for the log; never a configuration request's JSON,
    which carries the command password."""
    chunk = result.chunk
    if chunk.startswith(b"99,"):
        return f"a 99 frame of {len(chunk)} bytes (content not shown: it may hold the password)"
    return repr(chunk[:60])


def _idle_state(kind: ChannelType) -> int:
    """The state of a channel whose driver has not started (no network yet): MQTT types
    are closed; sockets closed, quecthing uninitialised and http without a response, all 0."""
    if kind in (ChannelType.MQTT, ChannelType.ALIYUN, ChannelType.TXYUN):
        return int(MqttState.SERVER_CLOSED)
    return 0


def _json_request(method: str, url: str, body: dict[str, Any]) -> HttpRequest:
    return HttpRequest(
        method=method,
        url=url,
        body=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )


def _config_text(config: DtuConfig, *, readable: bool = True) -> str:
    """The file's text: indented for a file a user reads, compact for one in memory."""
    indent = 4 if readable else None
    return json.dumps(config.to_json(), ensure_ascii=False, indent=indent) + "\n"


def _bindings(config: DtuConfig) -> dict[str, PortBinding]:
    """Each open UART's binding (docs/spec/quec.md#9): command mode every channel with that
    serialID; passthrough and modbus the first channel on UARTs 0..2."""
    bindings: dict[str, PortBinding] = {}
    for uart in config.uconf:
        if uart not in UART_PORTS:
            continue
        channels = {
            cid: channel.protocol
            for cid, channel in config.conf.items()
            if channel.serial_id == uart
        }
        if config.work_mode is WorkMode.MODBUS:
            bindings[uart] = PortBinding.modbus()
        elif not channels:
            continue
        elif config.work_mode is WorkMode.COMMAND:
            bindings[uart] = PortBinding.command(channels)
        else:
            bindings[uart] = PortBinding.passthrough(next(iter(channels.values())))
    return bindings
