"""Offer a unit's port on a TCP socket through socat, driven with pexpect.

``socat TCP-LISTEN:<port>,bind=<addr>,reuseaddr,fork,max-children=1 <pty>,raw,echo=0``
accepts one TCP client at a time and joins it to the PTY, so host code in a
container or on another machine reaches the port (with socat, or pyserial's
``socket://host:port`` URL). socat's log is read continuously (its output
must not fill its PTY and stall it) and kept at DEBUG level in the unit's log.
"""

from __future__ import annotations

import asyncio
import errno
import re
import shutil
import socket

import pexpect

from vdtu.clock import Clock
from vdtu.errors import ConfigError
from vdtu.log import LogLevel, UnitLog

INSTALL_HINT = (
    "socat is not installed; install it with 'sudo apt-get install socat' (Debian, Ubuntu), "
    "'sudo dnf install socat' (Fedora) or 'brew install socat' (macOS)"
)


_SOCAT_ERROR = re.compile(r" E (.*)")
"""An error line of socat's log (``2026/01/01 00:00:00 socat[12] E bind(...): ...``)."""


def check_port_free(bind: str, tcp_port: int) -> None:
    """Raise ConfigError if ``bind:tcp_port`` cannot be listened on (bound as socat binds it,
    with SO_REUSEADDR), naming the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, tcp_port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"tcp port {tcp_port} is in use on {bind} (--serial-tcp PORT=TCP gives "
                    "unit N the TCP port TCP+N); stop what holds it or pick another TCP base"
                ) from None
            raise ConfigError(f"tcp port {tcp_port} on {bind}: {exc.strerror}") from None


def socat_binary() -> str:
    """The path of socat, or a ConfigError saying how to install it."""
    path = shutil.which("socat")
    if path is None:
        raise ConfigError(INSTALL_HINT)
    return path


class SocatBridge:
    """A running socat joining a TCP port to a PTY.

    Args:
        clock: the clock whose sim time stamps log records.
        loop: the loop that drains socat's log.
        device: the PTY (or its link) to join.
        tcp_port: the TCP port to listen on.
        log: the unit's log.
        bind: the address to listen on.
    """

    def __init__(
        self,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        device: str,
        tcp_port: int,
        log: UnitLog,
        *,
        bind: str = "127.0.0.1",
    ) -> None:
        if not 1 <= tcp_port <= 65535:
            raise ConfigError(f"TCP port must be 1..65535, not {tcp_port}")
        binary = socat_binary()
        check_port_free(bind, tcp_port)
        self.clock = clock
        self.loop = loop
        self.log = log
        self.tcp_port = tcp_port
        self.bind = bind
        self.child = pexpect.spawn(
            binary,
            [
                "-d",
                "-d",
                f"TCP-LISTEN:{tcp_port},bind={bind},reuseaddr,fork,max-children=1",
                f"{device},raw,echo=0",
            ],
            encoding="utf-8",
            codec_errors="replace",
        )
        index = self.child.expect([r"listening on", pexpect.EOF, pexpect.TIMEOUT], timeout=5)
        if index != 0:
            output = (self.child.before or "").strip().splitlines()
            self.child.close(force=True)
            errors = [found.group(1) for found in map(_SOCAT_ERROR.search, output) if found]
            detail = errors[-1] if errors else output[-1] if output else "no output"
            raise ConfigError(f"socat could not listen on {bind}:{tcp_port}: {detail}")
        log.write(clock.now, LogLevel.INFO, "socat", f"{device} offered on tcp://{bind}:{tcp_port}")
        loop.add_reader(self.child.child_fd, self._drain)

    @property
    def url(self) -> str:
        """The pyserial URL of the bridged port."""
        return f"socket://{self.bind}:{self.tcp_port}"

    def _drain(self) -> None:
        try:
            text = self.child.read_nonblocking(65536, timeout=0)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.loop.remove_reader(self.child.child_fd)
            self.log.write(
                self.clock.now, LogLevel.WARN, "socat", f"socat for port {self.tcp_port} exited"
            )
            return
        for line in str(text).splitlines():
            if line.strip():
                self.log.write(self.clock.now, LogLevel.DEBUG, "socat", line.strip())

    def close(self) -> None:
        """Stop socat."""
        if self.child.isalive() or not self.child.closed:
            self.loop.remove_reader(self.child.child_fd)
            self.child.terminate(force=True)
            self.child.close(force=True)
