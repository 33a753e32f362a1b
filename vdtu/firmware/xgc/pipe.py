"""The host pipe: which serial port speaks the XGC protocol (SET_DTU_PIPE / GET_DTU_PIPE)."""

from __future__ import annotations

from enum import StrEnum

from vdtu.errors import RemoteProtocolError


class Pipe(StrEnum):
    """The host pipe, spelled as GET_DTU_PIPE answers."""

    UART = "uart"
    RS232 = "232"
    RS485 = "485"

    @property
    def port(self) -> str:
        """The serial port this pipe is."""
        return {Pipe.UART: "uart", Pipe.RS232: "rs232", Pipe.RS485: "rs485"}[self]

    @classmethod
    def parse(cls, text: str) -> Pipe:
        """``uart``/``UART``/``232``/``485``, or a ``bad-param`` error."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise RemoteProtocolError(
                f"pipe must be uart, 232 or 485, not {text!r}", reply_hint="bad-param"
            ) from None
