"""Many units in one process, in real time, with their ports on PTYs.

A ``Fleet`` owns the ``RealtimeClock`` (one SimPy environment for every unit)
and, for each unit, a ``PtyEndpoint`` per exposed port with a stable link
``<pty_dir>/dtu<N>/<port>``, optional socat TCP bridges and real serial devices,
and its flash file ``<state_dir>/<IMEI>/flash.json`` (so saved keys survive a
restart of vdtu with the same seed). A QuecPython unit also keeps
``<state_dir>/<IMEI>/dtu_config.json``, which the user may edit: every one is
validated before the fleet starts, and a bad one stops ``vdtu up`` with a message
naming the file and the field. ``profile`` picks the personality: every unit XGC,
every unit QuecPython, or ``mix`` (even unit ids XGC, odd ones QuecPython).
Everything runs on one asyncio loop: no thread per unit, per PTY or per bridge.

Control from outside (the CLI, a dashboard) goes through ``Fleet.control``,
which enters sim time through the clock's one door.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vdtu.clock import RealtimeClock
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.cloud.xgc_api import TOPIC_ROOT, device_password
from vdtu.errors import ConfigError
from vdtu.firmware.quec.config import PUBLISH_TOPIC, DtuConfig, default_config, load_config
from vdtu.firmware.quec.firmware import QuecOptions
from vdtu.firmware.quec.personality import CONFIG_FILE, QUEC
from vdtu.firmware.xgc.personality import XGC
from vdtu.identity import Identity
from vdtu.links.mqtt_xgc import MqttXgcCloud
from vdtu.links.quec_net import RealQuecNet
from vdtu.links.quec_stack import (
    BROKER_NAME,
    BROKER_NAME_PORT,
    QuecCloudStack,
    migrate_default_channel,
)
from vdtu.links.xgc_stack import (
    DISCOVERY_FILE,
    CloudSettings,
    XgcCloudStack,
    default_project,
    url_from_discovery,
)
from vdtu.log import LogLevel, LogRecord, UnitLog
from vdtu.net.mqtt import MqttHub
from vdtu.storage import (
    FileStorage,
    FlashError,
    HostTextFile,
    MemoryStorage,
    MemoryTextFile,
    Storage,
    TextFile,
)
from vdtu.uart.fd_endpoint import FdEndpoint
from vdtu.uart.pty import BaudMismatch, PtyEndpoint
from vdtu.uart.serial_device import SerialDeviceEndpoint
from vdtu.uart.socat import SocatBridge
from vdtu.unit import DEFAULT_BAUDS, Unit, UnitConfig

PORTS = tuple(DEFAULT_BAUDS)
HOST_POLL_S = 1.0
"""How often the host's line settings are read from every PTY."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What ends a fleet cleanly (links, up.json and reports taken care of): Ctrl-C, kill, and
the terminal closing."""
LOCK_FILE = ".lock"
"""In ``--pty-dir``: the lock of the one ``vdtu up`` that uses the directory, and its pid."""
PROFILES = ("xgc", "quec", "mix")
"""``FleetConfig.profile`` values: one personality for every unit, or both (``mix``)."""


def write_discovery(path: Path, document: dict[str, Any]) -> None:
    """Write the console's discovery document, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    temporary.touch(mode=0o600)
    temporary.chmod(0o600)
    temporary.write_text(json.dumps(document, indent=1))
    temporary.replace(path)


def login_url(url: BrokerUrl) -> str:
    """``url`` with its login in full (percent-encoded), for a user to copy into a client:
    ``mqtt://vdtu-console:TOKEN@127.0.0.1:PORT`` (``str(url)`` masks the password)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    login = ""
    if url.username is not None:
        login = quote(url.username, safe="")
        if url.password is not None:
            login += ":" + quote(url.password, safe="")
        login += "@"
    return f"{url.scheme}://{login}{host}:{url.port}"


def default_pty_dir() -> Path:
    """``$XDG_RUNTIME_DIR/vdtu``, else ``/tmp/vdtu-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / "vdtu" if runtime else Path(f"/tmp/vdtu-{os.getuid()}")


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/vdtu``, else ``~/.local/state/vdtu``."""
    state = os.environ.get("XDG_STATE_HOME")
    return (Path(state) if state else Path.home() / ".local" / "state") / "vdtu"


class PtyDirLock:
    """The one fleet that owns a ``--pty-dir``: an exclusive ``flock`` on ``<dir>/.lock``.

    The kernel drops the lock when its process ends, however it ends (``kill -9`` too), so a
    directory a killed run left behind is taken over, while one a live run holds is refused
    with that run's pid (written into the lock file). The owner removes the file when it
    closes; a second process that opened the file just before is told by the inode check.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_FILE
        self.stale_pid: int | None = None
        """The pid of a run that held the directory and ended without cleaning up, if any."""
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the directory, or raise ConfigError naming the live run that has it."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    owner = _pid_in(fd)
                    os.close(fd)
                    raise ConfigError(
                        f"--pty-dir {self.directory} is in use by a running vdtu up "
                        f"(pid {owner if owner is not None else 'unknown'}); stop it, or give "
                        "this one a directory of its own with --pty-dir DIR"
                    ) from None
                if _same_file(fd, self.path):
                    break
                os.close(fd)  # its owner removed it meanwhile: lock the new one
        except OSError as exc:
            raise ConfigError(f"--pty-dir {self.directory}: {exc.strerror}") from None
        self.stale_pid = _pid_in(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and drop the lock (in that order: see the class comment)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def _pid_in(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetConfig:
    """What ``vdtu up`` starts."""

    units: int = 1
    seed: int = 0
    pty_dir: Path = field(default_factory=default_pty_dir)
    state_dir: Path | None = field(default_factory=default_state_dir)
    """Where flash files live; None keeps them in memory."""
    ports: tuple[str, ...] = PORTS
    """Which ports get a PTY."""
    serial_tcp: Mapping[str, int] = field(default_factory=dict)
    """Port -> TCP port for unit 0 (unit N gets TCP port + N)."""
    serial_devices: Mapping[str, str] = field(default_factory=dict)
    """Port -> real serial device, for unit 0 (instead of its PTY)."""
    baud_mismatch: BaudMismatch = BaudMismatch.WARN
    broker: BrokerUrl | None = None
    """The MQTT broker; None starts the embedded one on 127.0.0.1."""
    provision: bool = True
    """Write the fleet's project into every unit's flash that has none (a project already
    there, e.g. set by the host with SET_PRJINFO, is kept); False: erase it, no-project-info."""
    template: UnitConfig | None = None
    """Settings every unit shares (identity, id, profile and options are replaced per unit)."""
    options: Mapping[str, object] = field(default_factory=dict)
    """Each personality's unit options, by its name (one not named runs with its defaults)."""
    profile: str = "xgc"
    """``xgc``, ``quec`` or ``mix`` (even unit ids XGC, odd ones QuecPython)."""
    log_records: int = 500
    """How many log records each unit keeps (its ring; fleets of thousands keep few)."""
    first_unit: int = 0
    """The fleet id of the first unit (a shard of a larger fleet starts further on)."""
    quec_config: DtuConfig | None = None
    """The ``dtu_config.json`` a QuecPython unit starts with when it has none (None:
    ``default_config`` with an MQTT channel to the fleet's broker)."""

    def __post_init__(self) -> None:
        if not 1 <= self.units <= 100_000:
            raise ConfigError(f"units must be 1..100000, not {self.units}")
        if not 0 <= self.first_unit <= 1_000_000 - self.units:
            raise ConfigError(
                f"first_unit must be 0..{1_000_000 - self.units} for {self.units} units, "
                f"not {self.first_unit}"
            )
        if self.profile not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        for port in (*self.ports, *self.serial_tcp, *self.serial_devices):
            if port not in PORTS:
                raise ConfigError(f"unknown port {port!r}; the ports are {', '.join(PORTS)}")


class Fleet:
    """Units, their endpoints and the real-time clock.

    Args:
        loop: the asyncio loop everything runs on.
        config: what to start.
        sink: called with every log record of every unit that passes its threshold.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: FleetConfig,
        *,
        sink: Callable[[str, LogRecord], None] | None = None,
    ) -> None:
        self.loop = loop
        self.config = config
        self.sink = sink
        self.clock = RealtimeClock(loop)
        self.units: list[Unit] = []
        self.endpoints: list[dict[str, FdEndpoint]] = []
        self.bridges: list[SocatBridge] = []
        self._poll: asyncio.TimerHandle | None = None
        self.pty_dir_lock = PtyDirLock(config.pty_dir)
        self.took_over: str | None = None
        """What a killed run had left in ``pty_dir`` and this fleet took over (None: nothing)."""
        self.project_id, self.project_secret = default_project(config.seed)
        self.hub = MqttHub(loop)
        self.stack = XgcCloudStack(
            self.clock,
            self.hub,
            CloudSettings(
                broker=config.broker, project_id=self.project_id, project_secret=self.project_secret
            ),
        )
        self.cloud: MqttXgcCloud | None = None
        self.quec = (
            QuecCloudStack(self.clock, self.hub, seed=config.seed, broker=config.broker)
            if config.profile != "xgc"
            else None
        )
        self.quec_net: RealQuecNet | None = None
        self.config_files: list[TextFile | None] = []

    def profile_of(self, unit_id: int) -> str:
        """The personality of unit ``unit_id``: ``xgc`` or ``quec``."""
        profile = self.config.profile
        if profile == "mix":
            return QUEC.name if unit_id % 2 else XGC.name
        return profile

    @property
    def discovery_path(self) -> Path:
        """Where ``vdtu cloud`` finds this fleet's broker: ``<pty_dir>/up.json``."""
        return self.config.pty_dir / DISCOVERY_FILE

    async def start(self, *, units: bool = True) -> None:
        """Start the cloud side, build and power on every unit, open its ports, start the clock.

        Args:
            units: False starts only the cloud side and the clock; the caller then adds
                the units with ``start_unit`` (at its own pace: a ramp).
        """
        try:
            if units or self.config.ports:
                self._take_pty_dir()
            files = [self._config_file(unit_id) for unit_id in self.unit_ids] if units else []
            quec = self.quec
            self.cloud = await self.stack.start(logins=quec.login_check if quec else None)
            if quec is not None:
                quec.broker = self.stack.broker_url
                broker = self.config.broker
                self.quec_net = await quec.start(tls_ca=broker.ca_file if broker else None)
            for unit_id, config_file in zip(self.unit_ids, files, strict=False):
                self._start_unit(unit_id, config_file)
            if units:
                write_discovery(self.discovery_path, self.discovery())
        except BaseException:
            await self.close()
            raise
        self.clock.start()
        self._poll = self.loop.call_later(HOST_POLL_S, self._poll_hosts)

    def _take_pty_dir(self) -> None:
        """Lock ``pty_dir`` (a ConfigError if a live run has it) and clear what a killed run
        left there: its ``up.json`` and its port links (every ``dtu<N>/<port>`` link is a
        fleet's, and the fleet that made it is gone)."""
        self.pty_dir_lock.acquire()
        left = [path for path in self.config.pty_dir.glob("dtu*/*") if path.name in PORTS]
        links = [path for path in left if path.is_symlink()]
        stale_pid = self.pty_dir_lock.stale_pid
        left_discovery = self.discovery_path.exists()
        if stale_pid is None and not links and not left_discovery:
            return
        self.discovery_path.unlink(missing_ok=True)
        for path in links:
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
        owner = "a vdtu up" if stale_pid is None else f"vdtu up pid {stale_pid}"
        found = [f"{len(links)} port links"] + (["up.json"] if left_discovery else [])
        self.took_over = f"{' and '.join(found)} of {owner}, which ended without cleaning up"

    @property
    def unit_ids(self) -> range:
        """The fleet ids of this process's units (a shard's block of a larger fleet)."""
        return range(self.config.first_unit, self.config.first_unit + self.config.units)

    def start_unit(self, unit_id: int) -> Unit:
        """Build, wire and power on unit ``unit_id`` now (after ``start(units=False)``).

        Raises:
            ConfigError: its ``dtu_config.json`` exists and is not valid.
        """
        self._start_unit(unit_id, self._config_file(unit_id))
        return self.units[-1]

    def _flash(self, identity: Identity) -> Storage:
        flash: Storage
        if self.config.state_dir is None:
            flash = MemoryStorage()
        else:
            flash = FileStorage(self.config.state_dir / identity.imei / "flash.json")
        document = flash.load()
        if self.config.provision:
            # The default only fills an empty slot: a project the host set is its data.
            project = {"pid": self.project_id, "secret": self.project_secret}
            changed = document.setdefault("project", project) is project
        else:
            changed = document.pop("project", None) is not None
        if changed:
            flash.save(document)
        return flash

    def _config_file(self, unit_id: int) -> TextFile | None:
        """A QuecPython unit's ``dtu_config.json``, checked; None for an XGC unit.

        Raises:
            ConfigError: the file exists and is not a valid config (naming the field).
        """
        if self.profile_of(unit_id) != QUEC.name:
            return None
        if self.config.state_dir is None:
            return MemoryTextFile()
        imei = Identity.for_unit(self.config.seed, unit_id).imei
        file = HostTextFile(self.config.state_dir / imei / CONFIG_FILE)
        text = file.read()
        if text is not None:
            try:
                load_config(text)
            except ConfigError as exc:
                raise ConfigError(f"{file.path}: {exc}") from None
        return file

    def _quec_default(self, imei: str) -> DtuConfig:
        """The config a QuecPython unit starts with: ``--quec-config``, else vdtu's default."""
        if self.config.quec_config is not None:
            return self.config.quec_config
        return self._vdtu_default(imei)

    def _vdtu_default(self, imei: str) -> DtuConfig:
        """vdtu's default config: MQTT to the fleet's broker by its local name ``broker.vdtu``
        (so the file outlives this run's port), with the unit's login on the embedded broker
        or the ``--broker`` URL's login."""
        broker = self.config.broker
        if broker is None:
            username, password = imei, device_password(self.project_secret, imei)
        else:
            username, password = broker.username or "", broker.password or ""
        return default_config(
            imei,
            broker_host=BROKER_NAME,
            broker_port=BROKER_NAME_PORT,
            broker_username=username,
            broker_password=password,
        )

    def _migrate_config(self, file: TextFile, imei: str, log: UnitLog) -> None:
        """Move a default config an older vdtu wrote (``127.0.0.1`` and that run's port) to
        ``broker.vdtu``, saying so at INFO; a user's config is left as it is."""
        text = file.read()
        if text is None:
            return
        stored = load_config(text)  # checked by _config_file
        migrated = migrate_default_channel(stored, self._vdtu_default(imei))
        if migrated is None:
            return
        old = stored.conf["1"].to_json()
        was = f"channel 1 is vdtu's default to {old['url']}:{old['port']} (an older vdtu's broker)"
        try:  # the form the firmware writes a file a user reads in: indented
            file.write(json.dumps(migrated.to_json(), ensure_ascii=False, indent=4) + "\n")
        except FlashError as exc:
            log.write(self.clock.env.now, LogLevel.ERROR, "config", f"{was}; not moved: {exc}")
            return
        log.write(
            self.clock.env.now,
            LogLevel.INFO,
            "config",
            f"dtu_config.json: {was}; now {BROKER_NAME}, the fleet's broker",
        )

    def _start_unit(self, unit_id: int, config_file: TextFile | None) -> None:
        config = self.config
        identity = Identity.for_unit(config.seed, unit_id)
        profile = self.profile_of(unit_id)
        template = config.template or UnitConfig(identity=identity)
        options = config.options.get(profile)
        if profile == QUEC.name:
            quec = options if isinstance(options, QuecOptions) else QuecOptions()
            options = replace(quec, default_config=self._quec_default)
        unit_config = replace(
            template,
            unit_id=unit_id,
            seed=config.seed,
            identity=identity,
            profile=profile,
            options=options,
        )
        log = UnitLog(unit_config.name, capacity=config.log_records)
        if self.sink is not None:
            log.sinks.append(self.sink)
        if config_file is not None:
            self._migrate_config(config_file, identity.imei, log)
        unit = Unit(
            self.clock.env,
            unit_config,
            network=self.quec_net if profile == QUEC.name else self.cloud,
            files=None if config_file is None else {CONFIG_FILE: config_file},
            epoch_s=self.clock.epoch_s,
            flash=self._flash(identity),
            log=log,
        )
        self.config_files.append(config_file)
        endpoints: dict[str, FdEndpoint] = {}
        self.units.append(unit)
        self.endpoints.append(endpoints)
        for port in config.ports:
            line = unit.lines[port]
            device = config.serial_devices.get(port) if unit_id == 0 else None
            if device is not None:
                endpoints[port] = SerialDeviceEndpoint(
                    self.clock, self.loop, line, log, device=device
                )
                continue
            try:
                endpoint = PtyEndpoint(
                    self.clock,
                    self.loop,
                    line,
                    log,
                    link=config.pty_dir / unit.name / port,
                    mismatch=config.baud_mismatch,
                )
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise ConfigError(
                        f"out of PTYs at unit {unit_id} (the machine allows "
                        f"{Path('/proc/sys/kernel/pty/max').read_text().strip()}); "
                        "expose fewer ports per unit, e.g. --ports uart"
                    ) from exc
                raise
            endpoints[port] = endpoint
            if port in config.serial_tcp:
                self.bridges.append(
                    SocatBridge(
                        self.clock, self.loop, endpoint.path, config.serial_tcp[port] + unit_id, log
                    )
                )
        unit.power_on()

    def _poll_hosts(self) -> None:
        for endpoints in self.endpoints:
            for endpoint in endpoints.values():
                if isinstance(endpoint, PtyEndpoint):
                    endpoint.poll_host_settings()
        self._poll = self.loop.call_later(HOST_POLL_S, self._poll_hosts)

    def discovery(self) -> dict[str, Any]:
        """What ``up.json`` holds: the broker and console login, each unit's profile, and
        the QuecPython side's servers."""
        document = self.stack.discovery()
        document["units"] = {unit.imei: unit.config.profile for unit in self.units}
        if self.quec is not None:
            document["quec"] = self.quec.discovery()
        return document

    def control(self, unit_id: int, action: Callable[[Unit], Any]) -> None:
        """Run ``action(unit)`` in sim time (the one door for outside commands), in the unit's
        failure domain."""
        unit = self.units[unit_id]
        self.clock.inject(action, unit, domain=unit.domain)

    def console_login(self) -> BrokerUrl:
        """The broker with the login ``vdtu cloud`` uses: on the embedded broker the console
        login (``vdtu-console`` and this run's token; its access rule lets it read and write
        every topic), with ``--broker`` that URL's own login."""
        return url_from_discovery(self.stack.discovery())

    def watch_topics(self) -> tuple[str, ...]:
        """Topic filters that cover every unit's default traffic: ``xgc/#``, ``quec/#``."""
        profiles = {self.profile_of(unit_id) for unit_id in self.unit_ids}
        roots = {XGC.name: TOPIC_ROOT, QUEC.name: PUBLISH_TOPIC.split("/", 1)[0]}
        return tuple(f"{root}/#" for profile, root in roots.items() if profile in profiles)

    def describe(self, unit_id: int) -> dict[str, Any]:
        """What ``vdtu up --json`` prints for a unit."""
        unit = self.units[unit_id]
        ports = {port: endpoint.device for port, endpoint in self.endpoints[unit_id].items()}
        described: dict[str, Any] = {
            "unit": unit_id,
            "name": unit.name,
            "profile": unit.config.profile,
            "imei": unit.imei,
            "iccid": unit.config.identity.iccid,
            "ports": ports,
            "broker": str(self.stack.broker_url),
            "console": login_url(self.console_login()),
            "project": self.project_id,
            "project_secret": self.project_secret,
        }
        config_file = self.config_files[unit_id]
        if config_file is not None:
            described["config"] = None if config_file.path is None else str(config_file.path)
        tcp = {
            port: f"tcp://127.0.0.1:{base + unit_id}"
            for port, base in self.config.serial_tcp.items()
        }
        if tcp:
            described["tcp"] = tcp
        return described

    async def close(self) -> None:
        """Power the units off, stop the clock and the cloud side, close every endpoint and
        bridge, remove the links and the discovery file."""
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None
        for unit in self.units:
            unit.power_off()
        self.clock.stop()
        if self.quec is not None:
            await self.quec.stop()
        self.hub.close()
        await self.stack.stop()
        if self.pty_dir_lock.held:  # never another run's up.json
            self.discovery_path.unlink(missing_ok=True)
        for bridge in self.bridges:
            bridge.close()
        self.bridges.clear()
        for endpoints in self.endpoints:
            for endpoint in endpoints.values():
                endpoint.close()
        for unit in self.units:
            unit_dir = self.config.pty_dir / unit.name
            if unit_dir.is_dir() and not any(unit_dir.iterdir()):
                unit_dir.rmdir()
        self.endpoints.clear()
        self.pty_dir_lock.release()
