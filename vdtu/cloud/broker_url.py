"""Broker URLs: where an MQTT broker is and how to log in to it.

Two forms are accepted, as ``vdtu up --broker URL`` takes them::

    mqtt://[user[:password]@]host[:port]      plain TCP, port 1883 by default
    mqtts://[user[:password]@]host[:port]     TLS, port 8883 by default

The user name and password are percent-decoded (``%40`` for ``@``, ``%3A`` for
``:``), an IPv6 host goes in brackets (``mqtt://[::1]:1883``), and a trailing ``/``
is allowed; a path, a query or a fragment is refused.

Invariants: a ``BrokerUrl`` is valid once built (``__post_init__`` checks it, so an
invalid one cannot exist), and it never shows its password: ``str()`` prints
``***`` in its place and ``repr()`` leaves it out, so a URL can go into logs and
error messages as it is. Errors from ``parse_broker_url`` mask the password of the
text they quote for the same reason.

Pure: standard library only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote, unquote

from vdtu.errors import ConfigError

FORMS = "mqtt://[user[:password]@]host[:port] or mqtts://[user[:password]@]host[:port]"
"""The accepted forms, as error messages quote them."""


class Scheme(StrEnum):
    """How to reach the broker: plain TCP or TLS."""

    MQTT = "mqtt"
    MQTTS = "mqtts"

    @property
    def default_port(self) -> int:
        """The IANA port of the scheme: 1883 for ``mqtt``, 8883 for ``mqtts``."""
        return 8883 if self is Scheme.MQTTS else 1883


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerUrl:
    """An MQTT broker's address and the credentials to log in with.

    Raises:
        ConfigError: on an empty host, a port outside 1..65535, a password without
            a user name (MQTT 3.1.1 forbids it, [MQTT-3.1.2-22]), or a CA file with
            a plain ``mqtt`` URL.
    """

    scheme: Scheme
    """``mqtt`` (plain TCP) or ``mqtts`` (TLS)."""
    host: str
    """Host name or IP address, without brackets for IPv6."""
    port: int
    """TCP port, 1..65535."""
    username: str | None = None
    """The MQTT user name, decoded; ``None`` logs in anonymously."""
    password: str | None = field(default=None, repr=False)
    """The MQTT password, decoded; never shown by ``str()`` or ``repr()``."""
    ca_file: Path | None = None
    """PEM file of the CAs that may sign the broker's certificate (``mqtts`` only);
    ``None`` trusts the system's CAs."""

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError(f"broker host must not be empty; expected {FORMS}")
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"broker port must be 1..65535, not {self.port!r}")
        if self.password is not None and self.username is None:
            raise ConfigError("a broker password needs a user name (MQTT 3.1.1 [MQTT-3.1.2-22])")
        if self.ca_file is not None and self.scheme is not Scheme.MQTTS:
            raise ConfigError(
                f"a CA file ({str(self.ca_file)!r}) needs an mqtts:// broker URL, not {self}"
            )

    @classmethod
    def for_listener(cls, host: str, port: int) -> BrokerUrl:
        """The plain ``mqtt`` URL a local client uses for a broker listening on ``host:port``.

        Args:
            host: the IP address the broker listens on; a wildcard (``0.0.0.0``, ``::``)
                becomes the loopback address of its family.
            port: the port it listens on.

        Raises:
            ConfigError: if ``host`` is not an IP address or ``port`` is not 1..65535.
        """
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"a listener's host must be an IP address, not {host!r}") from None
        if address.is_unspecified:
            address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
        return cls(scheme=Scheme.MQTT, host=str(address), port=port)

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS (an ``mqtts`` URL)."""
        return self.scheme is Scheme.MQTTS

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        login = ""
        if self.username is not None:
            login = quote(self.username, safe="")
            login += ":***@" if self.password is not None else "@"
        return f"{self.scheme}://{login}{host}:{self.port}"


def parse_broker_url(text: str, *, ca_file: Path | None = None) -> BrokerUrl:
    """Parse ``mqtt://[user[:password]@]host[:port]`` or its ``mqtts://`` form.

    Args:
        text: the URL as the user wrote it.
        ca_file: the CA bundle that verifies the broker (``mqtts`` only).

    Returns:
        The URL, with the scheme's default port when none is given.

    Raises:
        ConfigError: naming the bad part (scheme, user name, host, port, or an extra
            path, query or fragment) and the accepted forms; the password is masked.
    """
    try:
        scheme, netloc = _split_scheme(text.strip())
        userinfo, at, hostport = netloc.rpartition("@")
        username, password = _split_login(userinfo) if at else (None, None)
        host, port = _split_host_port(hostport, scheme.default_port)
    except _BadPartError as exc:
        raise ConfigError(f"broker URL {_masked(text)!r}: {exc}; expected {FORMS}") from None
    return BrokerUrl(
        scheme=scheme,
        host=host,
        port=port,
        username=username,
        password=password,
        ca_file=ca_file,
    )


class _BadPartError(Exception):
    """One part of a URL is wrong; ``parse_broker_url`` adds the URL and the forms."""


def _split_scheme(text: str) -> tuple[Scheme, str]:
    scheme_text, sep, rest = text.partition("://")
    if not sep:
        raise _BadPartError("no scheme")
    try:
        scheme = Scheme(scheme_text.lower())
    except ValueError:
        raise _BadPartError(f"scheme {scheme_text!r} is not mqtt or mqtts") from None
    netloc = rest.removesuffix("/")
    extra = min((netloc.find(c) for c in "/?#" if c in netloc), default=-1)
    if extra >= 0:
        raise _BadPartError(f"unexpected path, query or fragment {netloc[extra:]!r}")
    return scheme, netloc


def _split_login(userinfo: str) -> tuple[str, str | None]:
    user_text, colon, password_text = userinfo.partition(":")
    if not user_text:
        raise _BadPartError("empty user name")
    return unquote(user_text), (unquote(password_text) if colon else None)


def _split_host_port(hostport: str, default_port: int) -> tuple[str, int]:
    port_text: str | None
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise _BadPartError(f"unclosed '[' in host {hostport!r}")
        host, after = hostport[1:close], hostport[close + 1 :]
        if after and not after.startswith(":"):
            raise _BadPartError(f"unexpected {after!r} after the host")
        port_text = after[1:] if after else None
    else:
        host, colon, port_part = hostport.partition(":")
        if ":" in port_part:
            raise _BadPartError(f"IPv6 host {hostport!r} must be in brackets")
        port_text = port_part if colon else None
    if not host:
        raise _BadPartError("no host")
    if port_text is None:
        return host, default_port
    if port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535:
        return host, int(port_text)
    raise _BadPartError(f"port {port_text!r} is not 1..65535")


def _masked(text: str) -> str:
    """``text`` with the password of its ``user:password@`` part replaced by ``***``."""
    head, sep, rest = text.partition("://")
    if not sep:
        return text
    netloc_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:netloc_end].rpartition("@")
    if not at or ":" not in userinfo:
        return text
    user = userinfo.partition(":")[0]
    return f"{head}://{user}:***@{hostport}{rest[netloc_end:]}"
