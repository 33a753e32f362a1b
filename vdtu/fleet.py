"""Many units in one process, in real time, with their ports on PTYs.

A ``Fleet`` owns the ``RealtimeClock`` (one SimPy environment for every unit)
and, for each unit, a ``PtyEndpoint`` per exposed port with a stable link
``<pty_dir>/dtu<N>/<port>``, optional socat TCP bridges and real serial devices,
and its flash file ``<state_dir>/<IMEI>/flash.json`` (so saved keys survive a
restart of vdtu with the same seed). ``profile`` picks the personality: one for
every unit, or ``mix`` (unit id modulo the number of personalities picks one in the
registry's order: even ids XGC, odd ones QuecPython).

What a personality needs from the fleet its fleet side does (``vdtu.links.side``,
one per personality in use, from ``vdtu.links.sides``): its cloud part, the network
its units reach, the options a unit gets, a unit's named flash files (checked
before the fleet starts: a bad one stops ``vdtu up`` with a message naming the file
and the field), what it provisions in a unit's flash, its keys in a unit's JSON line
and in ``up.json``. One side hosts the broker every unit shares; it is started first.
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
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vdtu.clock import RealtimeClock
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.errors import ConfigError
from vdtu.firmware.registry import DEFAULT, PERSONALITIES, personality
from vdtu.identity import Identity
from vdtu.links.discovery import DISCOVERY_FILE
from vdtu.links.side import FleetSide, SideContext
from vdtu.links.sides import SIDES, fleet_sides
from vdtu.log import LogRecord, UnitLog
from vdtu.net.mqtt import MqttHub
from vdtu.storage import FileStorage, MemoryStorage, Storage, TextFile
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
MIX = "mix"
PROFILES = (*PERSONALITIES, MIX)
"""``FleetConfig.profile`` values: one personality for every unit, or all of them (``mix``)."""


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
    """Give every unit's flash what its fleet side provisions (XGC: the fleet's project,
    where the flash has none: a project the host set with SET_PRJINFO is kept); False:
    erase it (XGC: no-project-info)."""
    template: UnitConfig | None = None
    """Settings every unit shares (identity, id, profile and options are replaced per unit)."""
    options: Mapping[str, object] = field(default_factory=dict)
    """Each personality's unit options, by its name (one not named runs with its defaults)."""
    profile: str = DEFAULT
    """A personality's name, or ``mix`` (unit id modulo the number of personalities)."""
    log_records: int = 500
    """How many log records each unit keeps (its ring; fleets of thousands keep few)."""
    first_unit: int = 0
    """The fleet id of the first unit (a shard of a larger fleet starts further on)."""
    direct_logins: bool = False
    """Units get their logins from the fleet's own platform by a call in this process
    instead of over HTTP (``SideContext.direct_logins``; ``vdtu fleet`` by default)."""

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
        self.hub = MqttHub(loop)
        context = SideContext(
            clock=self.clock,
            hub=self.hub,
            seed=config.seed,
            broker=config.broker,
            state_dir=config.state_dir,
            provision=config.provision,
            direct_logins=config.direct_logins,
        )
        in_use = PERSONALITIES if config.profile == MIX else (config.profile,)
        self.host, self.sides = fleet_sides(context, in_use)
        """The side that hosts the broker, and the side of each personality in use."""
        self.project_id, self.project_secret = self.host.project_id, self.host.project_secret
        self.unit_files: list[Mapping[str, TextFile]] = []
        self._profiles: dict[int, str] = {}
        """Units started with a personality of their own (``start_unit(profile=...)``)."""
        self.on_unit: list[Callable[[Unit], None]] = []
        """Called with each unit once it is built and wired, before it is powered on (the
        control API observes its events from there)."""

    def profile_of(self, unit_id: int) -> str:
        """The personality of unit ``unit_id`` (its name)."""
        chosen = self._profiles.get(unit_id)
        if chosen is not None:
            return chosen
        profile = self.config.profile
        if profile == MIX:
            names = tuple(PERSONALITIES)
            return names[unit_id % len(names)]
        return profile

    @property
    def broker_url(self) -> BrokerUrl | None:
        """Where the fleet's broker is (None before ``start``)."""
        return self.host.broker_url

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
            seed = self.config.seed
            ids = self.unit_ids if units else range(0)
            identities = [Identity.for_unit(seed, unit_id) for unit_id in ids]
            files = [
                self._files(unit_id, identity)
                for unit_id, identity in zip(ids, identities, strict=True)
            ]
            await self.host.start_broker([side.login_check for side in self.sides.values()])
            for side in self.sides.values():
                await side.start(self.host)
            for unit_id, identity, unit_files in zip(ids, identities, files, strict=True):
                self._start_unit(unit_id, identity, unit_files)
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

    def start_unit(
        self,
        unit_id: int,
        *,
        tags: tuple[str, ...] | None = None,
        profile: str | None = None,
        options: object | None = None,
        settings: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Unit:
        """Build, wire and power on unit ``unit_id`` now (after ``start(units=False)``, or
        to add a unit to a running fleet).

        Args:
            unit_id: its fleet id.
            tags: its tags (None: the template's).
            profile: its personality, one of the fleet's (None: as ``profile_of`` says).
            options: its personality's options (None: the fleet's for that personality).
            settings: ``UnitConfig`` fields that differ from the template's (``rssi``, ...).
            config: changes to the configuration it starts with (``Personality.configured``),
                written into its named flash files before it starts.

        Raises:
            ConfigError: one of its named flash files is not valid, or the fleet has no side
                for ``profile``.
            ValueError: a tag, a setting or a configuration change is not valid.
        """
        if profile is not None:
            if profile not in self.sides:
                raise ConfigError(
                    f"profile {profile!r} is not one of this fleet's: {', '.join(self.sides)}"
                )
            self._profiles[unit_id] = profile
        identity = Identity.for_unit(self.config.seed, unit_id)
        self._start_unit(
            unit_id,
            identity,
            self._files(unit_id, identity),
            tags=tags,
            settings=settings or {},
            options=options,
            changes=config,
        )
        return self.units[-1]

    def side_of(self, unit_id: int) -> FleetSide:
        """The fleet side of unit ``unit_id``'s personality."""
        return self.sides[self.profile_of(unit_id)]

    def _flash(self, identity: Identity, side: FleetSide) -> Storage:
        flash: Storage
        if self.config.state_dir is None:
            flash = MemoryStorage()
        else:
            flash = FileStorage(self.config.state_dir / identity.imei / "flash.json")
        document = flash.load()
        if side.provision(document):
            flash.save(document)
        return flash

    def _files(self, unit_id: int, identity: Identity) -> Mapping[str, TextFile]:
        """Unit ``unit_id``'s named flash files, checked by its side.

        Raises:
            ConfigError: a file exists and is not valid (naming the file and the field).
        """
        return self.side_of(unit_id).unit_files(identity.imei)

    def _start_unit(
        self,
        unit_id: int,
        identity: Identity,
        files: Mapping[str, TextFile],
        *,
        tags: tuple[str, ...] | None = None,
        settings: Mapping[str, Any] | None = None,
        options: object | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        config = self.config
        profile = self.profile_of(unit_id)
        side = self.sides[profile]
        # without a template, the config is made directly (not a default one, then replaced)
        make: Callable[..., UnitConfig] = (
            UnitConfig if config.template is None else partial(replace, config.template)
        )
        unit_config = make(
            unit_id=unit_id,
            seed=config.seed,
            identity=identity,
            profile=profile,
            options=side.unit_options(
                options if options is not None else config.options.get(profile)
            ),
            **(({} if tags is None else {"tags": tags}) | dict(settings or {})),
        )
        if changes:
            configured = personality(profile).configured(
                unit_config.options, identity.imei, changes
            )
            for name, text in configured.items():
                files[name].write(text)
        log = UnitLog(unit_config.name, capacity=config.log_records)
        if self.sink is not None:
            log.sinks += (self.sink,)
        side.prepare_files(files, identity.imei, log)
        unit = Unit(
            self.clock.env,
            unit_config,
            network=side.network,
            files=files,
            epoch_s=self.clock.epoch_s,
            flash=self._flash(identity, side),
            log=log,
        )
        self.unit_files.append(files)
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
        for listener in self.on_unit:
            listener(unit)
        unit.power_on()

    def _poll_hosts(self) -> None:
        for endpoints in self.endpoints:
            for endpoint in endpoints.values():
                if isinstance(endpoint, PtyEndpoint):
                    endpoint.poll_host_settings()
        self._poll = self.loop.call_later(HOST_POLL_S, self._poll_hosts)

    def discovery(self) -> dict[str, Any]:
        """What ``up.json`` holds: the broker and console login, each unit's profile, and
        each side's own part (the QuecPython side's servers)."""
        document = self.host.broker_discovery()
        document["units"] = {unit.imei: unit.config.profile for unit in self.units}
        for side in self.sides.values():
            document |= side.discovery()
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
        return self.host.console_login()

    def watch_topics(self) -> tuple[str, ...]:
        """Topic filters that cover every unit's default traffic: ``xgc/#``, ``quec/#``."""
        profiles = {self.profile_of(unit_id) for unit_id in self.unit_ids}
        return tuple(entry.watch_topic for name, entry in SIDES.items() if name in profiles)

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
            "broker": str(self.broker_url),
            "console": login_url(self.console_login()),
            "project": self.project_id,
            "project_secret": self.project_secret,
        }
        described |= self.sides[unit.config.profile].unit_keys(self.unit_files[unit_id])
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
        for side in self.sides.values():
            await side.stop()
        self.hub.close()
        await self.host.stop_broker()
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
