"""vdtu's firmware update server for QuecPython units (the shapes are ``quec_fota``'s).

``FotaService`` holds the offers (a target version for every unit, or per IMEI),
answers checks, serves the images and records the units' reports. Its ``routes``
mount on an ``HttpServer``; ``offer`` is how the console and tests publish an update.

Bounded and total (issue 9): bodies are decoded within ``BODY_LIMITS`` (the HTTP server
already refuses a body over its ``max_body`` with 413); a body that is not JSON within
them, or a check without an integer ``version``, is a 400 ``{"code": 400, "msg": ...}``
naming the field; an image path whose version or size is not 1..9 ASCII digits is a 404;
``checks`` and ``reports`` keep the newest ``MAX_RECORDS`` each.
"""

from __future__ import annotations

import re
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
from vdtu.json_limits import JsonLimits
from vdtu.json_limits import decode as decode_json

DEFAULT_IMAGE_SIZE = 64 * 1024
MAX_RECORDS = 1000
"""How many checks and how many reports are kept (the newest)."""
BODY_LIMITS = JsonLimits(max_bytes=4096, max_depth=4, max_digits=20, max_string=1024)
"""A check or report body: one small flat object in real traffic."""
_IMAGE_RE = re.compile(r"([0-9]{1,9})/([0-9]{1,9})\.bin")


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
        """The newest ``MAX_RECORDS`` checks, oldest first."""
        self.reports: list[dict[str, object]] = []
        """The newest ``MAX_RECORDS`` reports, oldest first."""

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
        check = _body(request)
        if isinstance(check, Reply):
            return check
        if not isinstance(check, dict) or not isinstance(check.get("version"), int):
            return Reply.json(400, {"code": 400, "msg": "version (int) and imei are required"})
        self.checks.append(check)
        del self.checks[:-MAX_RECORDS]
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
        found = _IMAGE_RE.fullmatch(request.path.removeprefix(FILES_PATH + "/"))
        if found is None or not 1 <= int(found.group(2)) <= 16 * 1024 * 1024:
            shown = request.path if len(request.path) <= 80 else f"{request.path[:77]}..."
            return Reply.json(404, {"error": f"no image {shown}"})
        version, size = int(found.group(1)), int(found.group(2))
        return Reply(status=200, body=firmware_image(version, size))

    def _report(self, request: Request) -> Reply:
        report = _body(request)
        if isinstance(report, Reply):
            return report
        self.reports.append(report if isinstance(report, dict) else {"body": report})
        del self.reports[:-MAX_RECORDS]
        return Reply.json(200, {"code": 200})


def _body(request: Request) -> object:
    """The request's JSON body, or the 400 reply naming what is wrong with it."""
    try:
        return decode_json(request.body, BODY_LIMITS)
    except ValueError as exc:  # not UTF-8, not JSON, or over BODY_LIMITS
        message = f"body must be JSON within the limits: {str(exc)[:100]}"
        return Reply.json(400, {"code": 400, "msg": message})
