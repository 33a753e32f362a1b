"""The QuecPython DTU's firmware update (FOTA) exchange with the update server, as data.

Modelled on the v1 firmware's Quectel "cloudota" client (docs/spec/quec.md#12.2), simplified
to what a simulator needs and documented as vdtu's in docs/quec-protocol.md:

1. At boot, when ``fota`` is on, the unit POSTs to ``http://cloudota.quectel.com:8100
   /v1/fota/fw`` the JSON ``check_request`` (its IMEI, its ``version``, module type,
   signal and battery).
2. The answer is ``{"code": 200, "data": {"action": false}}`` (nothing to do) or
   ``{"code": 200, "data": {"action": true, "targetVersion": 101, "url": "...",
   "fileMd5": "...", "config": {"fileSize": n}}}``.
3. The unit GETs ``url``, checks the size and MD5, reports ``{"imei", "version",
   "code": 7}`` (8 on failure) to ``/v1/fota/status/report`` and restarts; from then
   on it reports ``targetVersion`` as its ``version`` (code 2 and the registration
   message).

Pure: the unit and vdtu's update server (``fota_server``) share these shapes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from vdtu.json_limits import JsonLimitError, JsonLimits
from vdtu.json_limits import decode as decode_json

ANSWER_LIMITS = JsonLimits(max_bytes=8192, max_depth=8, max_digits=20, max_string=4096)
"""What the firmware reads from the update server's answer (a small object)."""
FOTA_HOST = "cloudota.quectel.com"
FOTA_PORT = 8100
CHECK_PATH = "/v1/fota/fw"
REPORT_PATH = "/v1/fota/status/report"
FILES_PATH = "/v1/fota/files"
CHECK_URL = f"http://{FOTA_HOST}:{FOTA_PORT}{CHECK_PATH}"
REPORT_URL = f"http://{FOTA_HOST}:{FOTA_PORT}{REPORT_PATH}"
REPORT_OK = 7
REPORT_FAILED = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class FotaOffer:
    """An update the server offers a unit."""

    target_version: int
    url: str
    md5: str
    """Lowercase hex MD5 of the image."""
    size: int

    def to_answer(self) -> dict[str, Any]:
        """The server's answer carrying this offer."""
        return {
            "code": 200,
            "data": {
                "action": True,
                "targetVersion": self.target_version,
                "url": self.url,
                "fileMd5": self.md5,
                "config": {"fileSize": self.size},
            },
        }


NO_UPDATE: dict[str, Any] = {"code": 200, "data": {"action": False}}
"""The server's answer when there is nothing to install."""


def check_request(
    *, imei: str, version: int, module_type: str, rsrp: int, battery: int
) -> dict[str, Any]:
    """The unit's check: what it runs and how it is."""
    return {
        "imei": imei,
        "version": version,
        "moduleType": module_type,
        "rsrp": rsrp,
        "battery": battery,
    }


def parse_check_answer(body: bytes) -> FotaOffer | None:
    """The offer in the server's answer, or None when there is none.

    Raises:
        ValueError: the answer is not in the shape above (naming what is wrong).
    """
    try:
        answer = decode_json(body, ANSWER_LIMITS)
    except JsonLimitError as exc:
        raise ValueError(f"the update server's answer is over the limits: {exc}") from None
    except ValueError as exc:  # not UTF-8 or not JSON
        raise ValueError(f"the update server's answer is not JSON: {exc}") from None
    if not isinstance(answer, dict) or answer.get("code") != 200:
        raise ValueError(f"the update server refused the check: {str(answer)[:120]}")
    data = answer.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("action"), bool):
        raise ValueError(  # noqa: TRY004 (bad input from the network, not a caller's bug)
            f"data.action must be true or false, in {str(answer)[:120]}"
        )
    if not data["action"]:
        return None
    config = data.get("config")
    size = config.get("fileSize") if isinstance(config, dict) else None
    target, url, md5 = data.get("targetVersion"), data.get("url"), data.get("fileMd5")
    if not (
        isinstance(target, int)
        and isinstance(url, str)
        and isinstance(md5, str)
        and isinstance(size, int)
    ):
        raise ValueError(  # noqa: TRY004 (bad input from the network, not a caller's bug)
            "an offer needs targetVersion (int), url, fileMd5 and config.fileSize (int), "
            f"not {str(data)[:120]}"
        )
    return FotaOffer(target_version=target, url=url, md5=md5.lower(), size=size)


def image_problem(offer: FotaOffer, image: bytes) -> str | None:
    """Why a downloaded image does not match its offer (None: it does)."""
    if len(image) != offer.size:
        return f"the image has {len(image)} bytes, the offer says {offer.size}"
    digest = image_md5(image)
    if digest != offer.md5:
        return f"the image's MD5 is {digest}, the offer says {offer.md5}"
    return None


def image_md5(image: bytes) -> str:
    """Lowercase hex MD5, as offers carry it."""
    return hashlib.md5(image, usedforsecurity=False).hexdigest()


def status_report(*, imei: str, version: int, ok: bool) -> dict[str, Any]:
    """The unit's report after a download: 7 installed, 8 failed."""
    return {"imei": imei, "version": version, "code": REPORT_OK if ok else REPORT_FAILED}


def firmware_image(version: int, size: int) -> bytes:
    """A deterministic image of ``size`` bytes for ``version`` (what the server serves)."""
    seed = hashlib.sha256(f"vdtu-quec-firmware-{version}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]
