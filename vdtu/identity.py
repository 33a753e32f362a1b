"""Device identities: IMEI, ICCID, IMSI and phone numbers with valid check digits.

A fleet seed and a unit id always give the same device, and two units of one
fleet never share a number: the serial part of each number is the unit id added
to an offset drawn from the fleet seed (so up to a million units stay distinct).
IMEIs (15 digits) and ICCIDs (20 digits) end in a Luhn check digit, as real ones
do; IMSIs and MSISDNs have no check digit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

IMEI_TAC = "86743505"
"""Type allocation code of generated IMEIs (the example IMEI of docs/spec/xgc.md#5.1 has it)."""
ICCID_PREFIX = "898600"
"""ICCID issuer prefix: 89 (telecom) 86 (China) 00 (issuer)."""
IMSI_PREFIX = "46000"
"""MCC 460 (China) and MNC 00."""
IMEI_SERIAL = 14 - len(IMEI_TAC)
ICCID_SERIAL = 19 - len(ICCID_PREFIX)
IMSI_SERIAL = 10
PHONE_SERIAL = 9
"""The widths of the serial parts (what the unit id is added to, modulo 10**width)."""


_DOUBLED = str.maketrans("0123456789", "0246813579")
"""Each digit's Luhn value where it is doubled (``2 * d``, less 9 when over 9)."""


def luhn_check_digit(digits: str) -> str:
    """Return the Luhn check digit for ``digits`` (which must all be decimal digits)."""
    if not digits.isdigit():
        raise ValueError(f"expected decimal digits, not {digits!r}")
    if not digits.isascii():  # another script's decimal digits count as their values
        digits = "".join(str(int(char)) for char in digits)
    # From the right, the 1st, 3rd, ... digit is doubled and the others are taken as they
    # are; an ASCII digit's code is its value plus 48.
    total = sum(digits[::-2].translate(_DOUBLED).encode()) + sum(digits[-2::-2].encode())
    total -= 48 * len(digits)
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """True when ``number`` is all digits and its last digit is its Luhn check digit."""
    return len(number) >= 2 and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """What makes one simulated DTU distinct from every other."""

    imei: str
    iccid: str
    imsi: str
    phone: str

    def __post_init__(self) -> None:
        if len(self.imei) != 15 or not luhn_valid(self.imei):
            raise ValueError(f"imei must be 15 digits with a valid Luhn digit, not {self.imei!r}")
        if not 19 <= len(self.iccid) <= 20 or not self.iccid.isalnum():
            raise ValueError(f"iccid must be 19 or 20 letters or digits, not {self.iccid!r}")
        if not (14 <= len(self.imsi) <= 15 and self.imsi.isdigit()):
            raise ValueError(f"imsi must be 14 or 15 digits, not {self.imsi!r}")

    @classmethod
    def for_unit(cls, fleet_seed: int, unit_id: int) -> Identity:
        """The identity of unit ``unit_id`` (0 <= id < 10**6) of fleet ``fleet_seed``."""
        if not 0 <= unit_id < 10**6:
            raise ValueError(f"unit_id must be in 0..999999, not {unit_id}")
        imei_offset, iccid_offset, imsi_offset, phone_digit, phone_offset = _offsets(fleet_seed)

        def serial(offset: int, width: int) -> str:
            return str((offset + unit_id) % 10**width).zfill(width)

        imei_body = IMEI_TAC + serial(imei_offset, IMEI_SERIAL)
        iccid_body = ICCID_PREFIX + serial(iccid_offset, ICCID_SERIAL)
        return cls(
            imei=imei_body + luhn_check_digit(imei_body),
            iccid=iccid_body + luhn_check_digit(iccid_body),
            imsi=IMSI_PREFIX + serial(imsi_offset, IMSI_SERIAL),
            phone="1" + phone_digit + serial(phone_offset, PHONE_SERIAL),
        )


@lru_cache(maxsize=8)
def _offsets(fleet_seed: int) -> tuple[int, int, int, str, int]:
    """A fleet's offsets: the IMEI's, the ICCID's and the IMSI's, the phone number's second
    digit and its offset, drawn in that order from the seed (the same for every unit of the
    fleet, so drawn once per seed: a ``Random`` seeded from a string costs about 5 µs, and a
    fleet asks for each unit's identity several times)."""
    rng = random.Random(f"identity:{fleet_seed}")
    imei = rng.randrange(10**IMEI_SERIAL)
    iccid = rng.randrange(10**ICCID_SERIAL)
    imsi = rng.randrange(10**IMSI_SERIAL)
    phone_digit = rng.choice("3578")
    return imei, iccid, imsi, phone_digit, rng.randrange(10**PHONE_SERIAL)
