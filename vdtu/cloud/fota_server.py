"""vdtu's firmware update server for QuecPython units (the shapes are ``quec_fota``'s).

``FotaService`` holds the offers (a target version for every unit, or per IMEI),
answers checks, serves the images and records the units' reports. Its ``routes``
mount on an ``HttpServer``; ``offer`` is how the console and tests publish an update.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vdtu.cloud.http_server import Handler, Reply, Request
from vdtu.cloud.quec_fota import (
    CHECK_PATH,
    FILES_PATH,
    NO_UPDATE,
    REPORT_PATH,
    FotaOffer,
    firmware_image,
    image_md5,
)

DEFAULT_IMAGE_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class _Plan:
    version: int
    size: int


class FotaService:
    """Offers, images and reports.

    Args:
        base_url: how units reach this server (``http://cloudota.quectel.com:8100``:
            the unit's network maps that name to the local server).
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._plans: dict[str | None, _Plan] = {}
        self.checks: list[dict[str, object]] = []
        self.reports: list[dict[str, object]] = []

    def offer(
        self, version: int, *, imei: str | None = None, size: int = DEFAULT_IMAGE_SIZE
    ) -> None:
        """Offer ``version`` to unit ``imei`` (None: every unit) from now on."""
        if not 1 <= size <= 16 * 1024 * 1024:
            raise ValueError(f"size must be 1..16777216 bytes, not {size}")
        self._plans[imei] = _Plan(version=version, size=size)

    def routes(self) -> dict[tuple[str, str], Handler]:
        return {
            ("POST", CHECK_PATH): self._check,
            ("POST", REPORT_PATH): self._report,
            ("GET", FILES_PATH + "/*"): self._image,
        }

    def _check(self, request: Request) -> Reply:
        try:
            check = json.loads(request.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return Reply.json(400, {"code": 400, "msg": "body must be JSON"})
        if not isinstance(check, dict) or not isinstance(check.get("version"), int):
            return Reply.json(400, {"code": 400, "msg": "version (int) and imei are required"})
        self.checks.append(check)
        plan = self._plans.get(str(check.get("imei")), self._plans.get(None))
        if plan is None or plan.version <= check["version"]:
            return Reply.json(200, NO_UPDATE)
        image = firmware_image(plan.version, plan.size)
        offer = FotaOffer(
            target_version=plan.version,
            url=f"{self.base_url}{FILES_PATH}/{plan.version}/{plan.size}.bin",
            md5=image_md5(image),
            size=plan.size,
        )
        return Reply.json(200, offer.to_answer())

    def _image(self, request: Request) -> Reply:
        parts = request.path.removeprefix(FILES_PATH + "/").removesuffix(".bin").split("/")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            return Reply.json(404, {"error": f"no image {request.path}"})
        version, size = int(parts[0]), int(parts[1])
        if not 1 <= size <= 16 * 1024 * 1024:
            return Reply.json(404, {"error": f"no image {request.path}"})
        return Reply(status=200, body=firmware_image(version, size))

    def _report(self, request: Request) -> Reply:
        try:
            report = json.loads(request.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return Reply.json(400, {"code": 400, "msg": "body must be JSON"})
        self.reports.append(report if isinstance(report, dict) else {"body": report})
        return Reply.json(200, {"code": 200})
