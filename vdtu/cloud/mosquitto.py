"""A private mosquitto: the Debian broker as a child process, for tests, benchmarks and users.

``Mosquitto`` writes a config into a fresh temporary directory, runs
``mosquitto -c`` on it and waits until mosquitto logs that it runs and its port
accepts TCP connections. The
config is what measurements of mosquitto 2.0.11 call for (the figures are with each item):

* one listener on ``host`` (127.0.0.1 by default) and a free port (picked by
  binding port 0 and closing; if mosquitto then finds it taken, ``start()`` picks
  another, up to three times);
* ``persistence false``: nothing survives a restart, nothing is written but the log;
* ``max_queued_messages 100000``: the default 1000 silently dropped 90 % of a
  10 000-message QoS 1 burst to one subscriber;
* ``max_inflight_messages 20`` (mosquitto's default; the burst above arrived at
  8.8k msg/s with it, and raising it only grows what a slow subscriber must absorb);
* ``set_tcp_nodelay true``, so small messages are not held back by Nagle;
* anonymous clients, or only the given users: their passwords are hashed here into
  mosquitto's ``$7$`` format (PBKDF2-SHA512, 101 rounds, 12-byte salt, as
  ``mosquitto_passwd`` writes them), so the ``mosquitto_passwd`` tool is not needed;
* with ``acl``, an ``acl_file`` holding it: the device rule of ``broker_acl.mosquitto_acl``
  (admins may do everything, a device only its own topics), which cannot tie a client
  id to a login; or, with ``dynsec`` (``dynsec_config``), the dynamic-security plugin
  with one client per login: a device's user name is its IMEI, it must connect with its
  one client id and has a role holding exactly its grant (``broker_acl.device_grant``),
  so a device can neither read another's topics nor take another's client id;
* ``user`` set to the current user, so mosquitto started as root does not switch to
  the ``mosquitto`` account and lose access to its own files;
* everything logged to ``log_path``, mosquitto's own messages and its stderr.

``stop()`` sends SIGTERM, waits, then SIGKILL, and removes the directory; ``start()``
after ``stop()`` uses the same port again. ``pause()`` and ``resume()`` send
SIGSTOP and SIGCONT: a paused broker still completes TCP handshakes (the kernel
does that) but answers nothing, which is what a hung or unreachable broker looks
like to a client.

The API is synchronous: starting takes a few milliseconds to a few hundred.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import ipaddress
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from vdtu.cloud.broker_acl import QuecTopics, device_grant
from vdtu.cloud.broker_url import BrokerUrl
from vdtu.errors import ConfigError, LocalProtocolError, VdtuError

DEBIAN_PATH = "/usr/sbin/mosquitto"
"""Where Debian installs the broker (``/usr/sbin`` is not on every user's PATH)."""
DYNSEC_PLUGINS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)
"""Where Debian (and a source build) put the dynamic-security plugin."""

_PORT_ATTEMPTS = 3
_STOP_TIMEOUT_S = 5.0
_PBKDF2_ROUNDS = 101
_RUNNING = re.compile(r"mosquitto version \S+ running")
"""mosquitto's log line once its listeners are open (the same since 1.x)."""


def find_mosquitto() -> str:
    """The path of the mosquitto binary.

    Raises:
        ConfigError: if mosquitto is not installed, saying how to install it.
    """
    path = shutil.which("mosquitto") or (DEBIAN_PATH if os.access(DEBIAN_PATH, os.X_OK) else None)
    if path is None:
        raise ConfigError(
            "mosquitto is not installed (not on PATH, not at /usr/sbin/mosquitto): "
            "install it with 'apt-get install mosquitto' (Debian, Ubuntu)"
        )
    return path


@dataclass(frozen=True, slots=True)
class DeviceLogin:
    """A device's login on a private mosquitto with per-device access (``dynsec_config``)."""

    password: str
    client_id: str
    """The one client id it may connect with (``xgc-<IMEI>``, or ``<IMEI>`` for QuecPython)."""


def dynsec_config(
    *,
    project: str,
    devices: Mapping[str, DeviceLogin],
    admins: Mapping[str, str],
    quec: QuecTopics | None = None,
) -> dict[str, Any]:
    """The dynamic-security plugin's document for a project's devices and admins.

    Each device (user name = its IMEI) gets a client bound to its client id and a role
    ``device-<IMEI>`` with exactly its grant: send on its own uplink topics, subscribe to
    and receive its own downlinks. Each admin gets full access and any client id. By
    default nothing is allowed.

    Args:
        project: the ProjectId whose device topics are served.
        devices: IMEI -> its login.
        admins: user name -> password, with full access.
        quec: the QuecPython default channel's topics, or None.
    """
    roles: list[dict[str, Any]] = [{"rolename": "admin", "acls": _acls(
        send=["#"], receive=["#"], subscribe_patterns=["#"]
    )}]  # fmt: skip
    clients = [_client(user, password, None, "admin") for user, password in admins.items()]
    for imei, device in devices.items():
        grant = device_grant(project, imei, quec)
        prefixes = [f"{prefix}#" for prefix in grant.subscribe_prefixes]
        acls = _acls(
            send=[*sorted(grant.publish), *(f"{p}#" for p in grant.publish_prefixes)],
            receive=[*sorted(grant.subscribe), *prefixes],
            subscribe_literals=sorted(grant.subscribe),
            subscribe_patterns=prefixes,
        )
        roles.append({"rolename": f"device-{imei}", "acls": acls})
        clients.append(_client(imei, device.password, device.client_id, f"device-{imei}"))
    return {
        "clients": clients,
        "groups": [],
        "roles": roles,
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
    }


def _acls(
    *,
    send: Sequence[str],
    receive: Sequence[str],
    subscribe_literals: Sequence[str] = (),
    subscribe_patterns: Sequence[str] = (),
) -> list[dict[str, Any]]:
    kinds = (
        ("publishClientSend", send),
        ("publishClientReceive", receive),
        ("subscribeLiteral", subscribe_literals),
        ("subscribePattern", subscribe_patterns),
    )
    return [
        {"acltype": kind, "topic": topic, "allow": True}
        for kind, topics in kinds
        for topic in topics
    ]


def _client(username: str, password: str, client_id: str | None, role: str) -> dict[str, Any]:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ROUNDS)
    client: dict[str, Any] = {
        "username": username,
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": _PBKDF2_ROUNDS,
        "roles": [{"rolename": role}],
    }
    if client_id is not None:
        client["clientid"] = client_id
    return client


def find_dynsec_plugin() -> str:
    """The path of mosquitto's dynamic-security plugin.

    Raises:
        ConfigError: it is not installed (Debian ships it with the mosquitto package).
    """
    for path in DYNSEC_PLUGINS:
        if os.path.exists(path):
            return path
    raise ConfigError(
        "mosquitto's dynamic-security plugin is not installed (looked in "
        f"{', '.join(DYNSEC_PLUGINS)}); it comes with 'apt-get install mosquitto' (2.0 or later)"
    )


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A mosquitto 2.0 password hash: ``$7$101$<salt>$<PBKDF2-SHA512>``, both base64.

    Args:
        password: the clear password.
        salt: 12 bytes; random by default.

    Returns:
        The hash, as it goes after ``user:`` in a mosquitto password file.
    """
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ROUNDS)
    return (
        f"$7${_PBKDF2_ROUNDS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )


class Mosquitto:
    """A mosquitto broker run as a child process with a generated config.

    Use it as a context manager (``with Mosquitto() as broker:``), or call
    ``start()`` and ``stop()``.

    Args:
        host: IP address to listen on.
        port: TCP port; 0 picks a free one at the first ``start()``.
        users: user name -> password; clients must log in as one of them. ``None``
            lets anonymous clients in.
        max_queued_messages: QoS 1/2 messages queued per client beyond those in
            flight (0: no limit).
        max_inflight_messages: QoS 1/2 messages in flight per client (0: no limit).
        binary: the mosquitto executable; found on PATH or at /usr/sbin by default.
        start_timeout_s: how long ``start()`` waits for the port to accept connections.
        persistence: keep sessions, subscriptions and queued messages across ``stop()``
            and ``start()`` in a store on disk, as a production broker does (removed when
            the context manager exits).
        acl: the text of a mosquitto ACL file (``broker_acl.mosquitto_acl``); needs
            ``users``. ``None``: every login may use every topic.
        dynsec: the dynamic-security plugin's document (``dynsec_config``): the logins
            and what each may do; instead of ``users`` and ``acl``.

    Raises:
        ConfigError: if mosquitto is not installed, or an argument is out of range
            (the message names it and the allowed values).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        max_queued_messages: int = 100_000,
        max_inflight_messages: int = 20,
        binary: str | None = None,
        start_timeout_s: float = 5.0,
        persistence: bool = False,
        acl: str | None = None,
        dynsec: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(
                f"mosquitto host must be an IP address such as 127.0.0.1, not {host!r}"
            ) from None
        if not 0 <= port <= 65535:
            raise ConfigError(f"mosquitto port must be 0..65535 (0: any free port), not {port!r}")
        for name, value in (
            ("max_queued_messages", max_queued_messages),
            ("max_inflight_messages", max_inflight_messages),
        ):
            if not 0 <= value <= 2**31 - 1:
                raise ConfigError(f"{name} must be 0 (no limit) .. 2147483647, not {value!r}")
        for user, password in (users or {}).items():
            if not user or ":" in user or any(c in user + password for c in "\r\n\0"):
                raise ConfigError(
                    f"mosquitto user names must be non-empty without ':', and neither a name "
                    f"nor a password may hold a line break or NUL: user {user!r}"
                )
        if dynsec is not None and (users is not None or acl is not None):
            raise ConfigError("give dynsec (its document holds the logins), or users and acl")
        self._dynsec_plugin = find_dynsec_plugin() if dynsec is not None else None
        if acl is not None and users is None:
            raise ConfigError(
                "an ACL needs users: mosquitto's pattern lines name the user (%u), "
                "and anonymous clients would get no topic at all"
            )
        if start_timeout_s <= 0:
            raise ConfigError(f"start_timeout_s must be positive, not {start_timeout_s!r}")
        if binary is not None and not os.access(binary, os.X_OK):
            raise ConfigError(
                f"mosquitto binary {binary!r} is not an executable file; "
                "install mosquitto with 'apt-get install mosquitto'"
            )
        self.host = str(address)
        """The address mosquitto listens on."""
        self.binary = binary if binary is not None else find_mosquitto()
        """The mosquitto executable."""
        self._port = port
        self._users = dict(users) if users is not None else None
        self._acl = acl
        self._dynsec = dict(dynsec) if dynsec is not None else None
        self._max_queued = max_queued_messages
        self._max_inflight = max_inflight_messages
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._paused = False
        self._store: Path | None = (
            Path(tempfile.mkdtemp(prefix="vdtu-mosquitto-store-")) if persistence else None
        )

    @property
    def running(self) -> bool:
        """Whether the child process is alive (paused counts as alive)."""
        return self._process is not None and self._process.poll() is None

    @property
    def port(self) -> int:
        """The TCP port; 0 until the first ``start()`` picks one when 0 was asked for."""
        return self._port

    @property
    def paused(self) -> bool:
        """Whether the broker is stopped with SIGSTOP."""
        return self._paused

    @property
    def url(self) -> BrokerUrl:
        """Where clients reach the broker (without credentials).

        Raises:
            LocalProtocolError: before the first ``start()`` of a port-0 broker.
        """
        if self.port == 0:
            raise LocalProtocolError("the mosquitto port is chosen by start(); call it first")
        return BrokerUrl.for_listener(self.host, self.port)

    @property
    def log_path(self) -> Path:
        """mosquitto's log file (it lives until ``stop()``).

        Raises:
            LocalProtocolError: if the broker is not started.
        """
        if self._dir is None:
            raise LocalProtocolError("mosquitto is not started, so it has no log")
        return self._dir / "mosquitto.log"

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log, or ``""`` when not started."""
        if self._dir is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        """Write the config, start mosquitto and wait until its port accepts connections.

        Raises:
            LocalProtocolError: if it is already running.
            VdtuError: if mosquitto exits or does not listen within the start timeout
                (the message holds the end of its log), or its port is in use. Nothing
                is left running.
        """
        if self._process is not None:
            raise LocalProtocolError(f"mosquitto is already running on port {self.port}")
        pick_port = self._port == 0
        for _attempt in range(_PORT_ATTEMPTS):
            if pick_port:
                self._port = _free_port(self.host)
            self._dir = Path(tempfile.mkdtemp(prefix="vdtu-mosquitto-"))
            self._process = self._spawn(self._dir)
            listening = False
            try:
                listening = self._wait_listening(self._process)
            finally:
                if not listening:
                    self.stop()
            if listening:
                return
            if not pick_port:
                raise VdtuError(f"mosquitto could not listen on {self.host}:{self.port}: in use")
            self._port = 0
        raise VdtuError(
            f"mosquitto found each of {_PORT_ATTEMPTS} free ports on {self.host} taken "
            "by the time it started"
        )

    def stop(self) -> None:
        """Stop mosquitto (SIGTERM, then SIGKILL after 5 s) and remove its directory.

        Does nothing if it is not running. The port is kept for the next ``start()``.
        """
        process, self._process = self._process, None
        if process is not None:
            if self._paused:
                process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._paused = False
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered.

        Raises:
            LocalProtocolError: if it is not running.
        """
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Let a paused broker run again (SIGCONT); it catches up on what queued meanwhile.

        Raises:
            LocalProtocolError: if it is not running.
        """
        self._signal(signal.SIGCONT)
        self._paused = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if self._store is not None:
            shutil.rmtree(self._store, ignore_errors=True)

    def _signal(self, signum: int) -> None:
        if self._process is None or self._process.poll() is not None:
            raise LocalProtocolError("mosquitto is not running")
        self._process.send_signal(signum)

    def _spawn(self, directory: Path) -> subprocess.Popen[bytes]:
        config = directory / "mosquitto.conf"
        lines = [
            "# written by vdtu.cloud.mosquitto",
            f"listener {self.port} {self.host}",
            *(
                ["persistence false"]
                if self._store is None
                else ["persistence true", f"persistence_location {self._store}/"]
            ),
            f"max_queued_messages {self._max_queued}",
            f"max_inflight_messages {self._max_inflight}",
            "set_tcp_nodelay true",
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            f"log_dest file {directory / 'mosquitto.log'}",
            *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
            "connection_messages true",
        ]
        if self._dynsec is not None:
            document = directory / "dynamic-security.json"
            document.write_text(json.dumps(self._dynsec, indent=1), encoding="utf-8")
            document.chmod(0o600)
            lines += [
                "allow_anonymous false",
                f"plugin {self._dynsec_plugin}",
                f"plugin_opt_config_file {document}",
            ]
        elif self._users is None:
            lines.append("allow_anonymous true")
        else:
            passwords = directory / "passwd"
            passwords.write_text(
                "".join(f"{user}:{hash_password(pw)}\n" for user, pw in self._users.items()),
                encoding="utf-8",
            )
            passwords.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        if self._acl is not None:
            acl_path = directory / "acl"
            acl_path.write_text(self._acl, encoding="utf-8")
            acl_path.chmod(0o600)
            lines.append(f"acl_file {acl_path}")
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with (directory / "mosquitto.log").open("ab") as log:
            return subprocess.Popen(
                [self.binary, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_listening(self, process: subprocess.Popen[bytes]) -> bool:
        """True once mosquitto says it runs and its port answers; False if the port was taken.

        Both are needed: mosquitto logs "running" only after its listener is open, and
        a successful connect alone could come from another program on the same port.
        """
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            if process.poll() is not None:
                tail = self.log_tail()
                if "Address already in use" in tail:
                    return False
                raise VdtuError(
                    f"mosquitto exited with status {process.returncode} before listening on "
                    f"{self.host}:{self.port}; its log ends:\n{tail}"
                )
            if _RUNNING.search(self.log_tail()) and _accepts(self.host, self.port):
                return True
            if time.monotonic() > deadline:
                raise VdtuError(
                    f"mosquitto did not listen on {self.host}:{self.port} within "
                    f"{self._start_timeout_s} s; its log ends:\n{self.log_tail()}"
                )
            time.sleep(0.01)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, None):
            raise
        return False


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port
