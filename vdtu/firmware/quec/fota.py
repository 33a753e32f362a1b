"""The QuecPython firmware's update check: one per boot, with ``fota`` on.

How it works (docs/spec/quec.md#12.2; the exchange itself is ``vdtu.cloud.quec_fota``):
the unit POSTs its IMEI, ``version``, module type, signal and battery to the update
server; an offered image is downloaded, checked (size, MD5) and the outcome reported.
A good image is installed by writing its version to the flash (``fota_version``) and
restarting; the next boot applies it to ``dtu_config.json``. A failed check or download
is a WARN or an ERROR and the unit runs on; a flash that cannot take the version
leaves the update uninstalled.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from vdtu.cloud.quec_fota import (
    CHECK_URL,
    REPORT_URL,
    check_request,
    image_problem,
    parse_check_answer,
    status_report,
)
from vdtu.firmware.quec.net import HttpFailure, HttpRequest
from vdtu.log import LogLevel
from vdtu.storage import FlashError

if TYPE_CHECKING:
    from vdtu.firmware.quec.config import DtuConfig
    from vdtu.firmware.quec.firmware import QuecFirmware


def fota_check(firmware: QuecFirmware, config: DtuConfig) -> Generator[simpy.Event, Any, None]:
    """Ask the update server; install what it offers and restart (see ``quec_fota``)."""
    check = check_request(
        imei=firmware.imei,
        version=config.version,
        module_type=firmware.hw.modem.model,
        rsrp=firmware.device.csq(),
        battery=firmware.device.vbatt_mv(),
    )
    answer = yield firmware.http_event(_json_request("POST", CHECK_URL, check))
    if isinstance(answer, HttpFailure) or answer.status != 200:
        why = answer.reason if isinstance(answer, HttpFailure) else f"HTTP {answer.status}"
        firmware.write_log(LogLevel.WARN, "fota", f"update check failed: {why}")
        return
    try:
        offer = parse_check_answer(answer.body)
    except ValueError as exc:
        firmware.write_log(LogLevel.WARN, "fota", f"update check failed: {exc}")
        return
    if offer is None:
        firmware.write_log(LogLevel.INFO, "fota", f"version {config.version} is up to date")
        return
    firmware.write_log(LogLevel.INFO, "fota", f"downloading version {offer.target_version}")
    image = yield firmware.http_event(HttpRequest(method="GET", url=offer.url, timeout_s=300))
    if isinstance(image, HttpFailure):
        problem: str | None = image.reason
    elif image.status != 200:
        problem = f"HTTP {image.status}"
    else:
        problem = image_problem(offer, image.body)
    report = status_report(imei=firmware.imei, version=offer.target_version, ok=problem is None)
    yield firmware.http_event(_json_request("POST", REPORT_URL, report))
    if problem is not None:
        firmware.write_log(LogLevel.ERROR, "fota", f"update refused: {problem}")
        return
    firmware.nvram["fota_version"] = offer.target_version
    try:
        firmware.save_nvram()
    except FlashError as exc:
        del firmware.nvram["fota_version"]
        firmware.flash_failed("fota", f"version {offer.target_version} not installed: {exc}")
        return
    firmware.write_log(
        LogLevel.INFO, "fota", f"version {offer.target_version} installed: restarting"
    )
    for listener in firmware.on_reboot_request:
        listener()


def _json_request(method: str, url: str, body: dict[str, Any]) -> HttpRequest:
    return HttpRequest(
        method=method,
        url=url,
        body=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
