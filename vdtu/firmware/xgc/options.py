"""Behaviour options of the XGC firmware that a user may want either way.

These are vdtu's choices where the seed is silent or ambiguous (see
docs/xgc-protocol.md); none of them is persisted in the unit's flash.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vdtu.firmware.xgc.codec import CodeFormat


class CheckMode(StrEnum):
    """What the firmware does with a frame whose check code is wrong."""

    STRICT = "strict"
    """Reject it with an ``error:bad-check-code`` reply (the default)."""
    WARN = "warn"
    """Log a warning and act on it."""
    OFF = "off"
    """Do not look at check codes."""


class Raw485Encoding(StrEnum):
    """How SEND_RAW_485 content becomes bus bytes."""

    HEX = "hex"
    """``010300000001`` is six bytes 01 03 00 00 00 01 (the default; 485_RECEIVE is hex too)."""
    TEXT = "text"
    """The content's UTF-8 bytes go on the bus as they are."""


@dataclass(frozen=True, slots=True, kw_only=True)
class XgcOptions:
    """Options of one XGC unit's firmware."""

    check_mode: CheckMode = CheckMode.STRICT
    code_format: CodeFormat = CodeFormat.DECIMAL
    max_line: int = 4096
    """Longest line the serial reader takes (bytes, its line end not counted)."""
    lone_cr_ends_line: bool = True
    """A CR alone ends a line, as a LF or CR LF does (a terminal like picocom sends only CR
    on Enter). The seed asks for CR LF; False makes LF the only line end (a lone CR is then
    a byte of the line)."""
    firmware_start_s: float = 1.0
    """Power-on to the firmware listening on its serial port; earlier bytes are lost."""
    mbr_timeout_s: float = 1.0
    """How long SEND_MBR_485 waits for a slave's answer before ``error:timeout``."""
    raw485: Raw485Encoding = Raw485Encoding.HEX
    ota_download_s: tuple[float, float] = (5.0, 15.0)
    """A simulated OTA download takes a uniform time in this range."""
    tz_offset_h: float = 8.0
    """Time zone of GET_NOW's date form (the seed's device is in UTC+8)."""
    uplink_queue: int = 1000
    """Host messages kept while the cloud is unreachable; beyond it DATA_PACK is refused."""
    keepalive_s: int = 60
    """MQTT keep-alive, s: 0 (off) or 10..65535 (the MQTT hub pings once a second)."""
    reconnect_s: float = 5.0
    """The first reconnect after a loss (the seed: 5 s); later ones back off."""
    reconnect_max_s: float = 300.0
    """The longest wait between reconnect attempts."""
    jitter_first_reconnect: bool = False
    """Draw the first reconnect after a loss within +/-20 % of ``reconnect_s`` too (the
    seed: exactly 5 s, so a fleet that lost its broker at one instant comes back at one
    instant; ``vdtu fleet`` turns this on)."""
    data_pack_trailing_separator: bool = False
    """End DATA_PACK pairs with ';' (the seed's case one does, case two does not)."""

    def __post_init__(self) -> None:
        if self.max_line < 64:
            raise ValueError(f"max_line must be >= 64, not {self.max_line}")
        if self.firmware_start_s < 0 or self.mbr_timeout_s <= 0:
            raise ValueError(
                f"firmware_start_s must be >= 0 and mbr_timeout_s > 0, not "
                f"{self.firmware_start_s} and {self.mbr_timeout_s}"
            )
        low, high = self.ota_download_s
        if not 0 <= low <= high:
            raise ValueError(
                "ota_download_s must be (low, high) with 0 <= low <= high, "
                f"not {self.ota_download_s}"
            )
        if not 1 <= self.uplink_queue <= 1_000_000:
            raise ValueError(f"uplink_queue must be 1..1000000, not {self.uplink_queue}")
        if not 0 < self.reconnect_s <= self.reconnect_max_s:
            raise ValueError(
                "reconnect_s must be > 0 and <= reconnect_max_s, "
                f"not {self.reconnect_s} and {self.reconnect_max_s}"
            )
        if not (self.keepalive_s == 0 or 10 <= self.keepalive_s <= 65535):
            raise ValueError(f"keepalive_s must be 0 (off) or 10..65535, not {self.keepalive_s}")
        if not -12 <= self.tz_offset_h <= 14:
            raise ValueError(f"tz_offset_h must be in -12..14, not {self.tz_offset_h}")


DEFAULT_OPTIONS = XgcOptions()
"""The options of a unit given none: one frozen instance for all of them."""
