"""The error tree of vdtu.

``VdtuError`` is the root. Protocol errors split by who is at fault:
``LocalProtocolError`` means our own code asked for something illegal (a bug or a
misuse of an API); ``RemoteProtocolError`` means the host, the bus or the cloud
sent something bad, which is normal life for a DTU. A remote error carries
``reply_hint``: the short error code the firmware puts on the wire for it.
Transport errors split as trio's do: ``LinkClosedError`` (we closed it) and
``LinkBrokenError`` (it went away under us).
"""

from __future__ import annotations


class VdtuError(Exception):
    """Root of every error raised by vdtu."""


class ConfigError(VdtuError, ValueError):
    """A configuration value is invalid; the message names the field and the allowed values."""


class ProtocolError(VdtuError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """Our side asked for something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow.

    Both arguments are kept in ``args``, so the error can be rebuilt from them: SimPy
    re-creates an exception as ``type(exc)(*exc.args)`` when it crosses from one
    process to the process waiting for it.

    Args:
        message: what was wrong, naming the bad value.
        reply_hint: the error code the firmware answers with (e.g. ``bad-param``).
    """

    def __init__(self, message: str, reply_hint: str = "protocol-error") -> None:
        super().__init__(message, reply_hint)
        self.message = message
        self.reply_hint = reply_hint

    def __str__(self) -> str:
        return self.message


class LinkError(VdtuError):
    """A transport (PTY, serial device, socket) failed."""


class LinkClosedError(LinkError):
    """The link was closed by our side."""


class LinkBrokenError(LinkError):
    """The link went away under us (device removed, peer gone, fault injected)."""
