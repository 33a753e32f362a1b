"""The local XGC platform: projects, and the HTTP endpoint that gives devices MQTT credentials.

``POST /xgc/v1/mqtt-info`` with ``{"projectId", "projectSecret", "imei"}`` answers
200 with the broker address and the device's credentials (see ``xgc_api``), 401
when the project id or secret is wrong, 400 for a malformed request and 413 for a
body over ``MAX_BODY``. Every error answer is ``{"error": "...", "field": "..."}``
naming the field (``body`` when the body as a whole is wrong) and never echoing a
value. The body is decoded within ``REQUEST_LIMITS`` (``vdtu.json_limits``: no
recursion, no interpreter digit limit), the id and secret must follow SET_PRJINFO's
rules and the IMEI must be 15 digits, so no request can make the handler raise or
get credentials for a made-up identity. The HTTP side
is vdtu's one HTTP server (``http_server``, h11 on asyncio streams), with this one
route; it answers other paths (404) and methods (405) itself. The broker's
authenticator (``authenticate``) accepts a device whose password is the HMAC of its
IMEI under one of the project secrets, and the console user whose token the platform
made at start.

Per-unit conditions (``set_conditions``, by IMEI; the ``platform-refuse`` and
``platform-slow`` faults): a refused
unit's well-formed request is answered 503 Service Unavailable with ``Retry-After``, as
a cloud service's front end answers while the service is down (the unit retries with
its back-off; a 401 would tell it its project is wrong for good); a slow unit's answer,
whatever it is, is sent ``delay_ms`` late.

``answer_mqtt_info`` is the endpoint's answer without HTTP: the same request body in, the
same ``Reply`` out (status, JSON body, delay). ``answer_request`` is the same answer one step
earlier, without JSON either way: the request's decoded object in, an ``Answer`` (status,
the JSON body's object, headers, delay) out, for units in this process that are told to skip
the HTTP round trip (``vdtu fleet``: ``vdtu.links.mqtt_xgc``); the endpoint is
``answer_request`` on the decoded body, its ``Answer`` encoded.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from vdtu.cloud.http_server import HttpServer, Reply, Request
from vdtu.cloud.xgc_api import (
    IMEI_RE,
    MQTT_INFO_PATH,
    PROJECT_ID_RE,
    PROJECT_SECRET_RE,
    MqttInfo,
    device_password,
)
from vdtu.errors import ConfigError
from vdtu.json_limits import JsonLimits, decode

UNAVAILABLE = 503
"""What the platform answers a refused unit (``vdtu.net.conditions.REFUSE_STATUS``)."""
RETRY_AFTER_S = 30
"""The ``Retry-After`` a refusing platform sends with its 503."""

CONSOLE_USER = "vdtu-console"
MAX_BODY = 16 * 1024
"""The largest credential request body (larger: 413, answered by the HTTP server)."""
REQUEST_LIMITS = JsonLimits(max_bytes=MAX_BODY, max_depth=4, max_digits=32, max_string=MAX_BODY)
"""How much JSON a credential request may hold."""
REQUEST_FIELDS: dict[str, tuple[re.Pattern[str], str]] = {
    "projectId": (PROJECT_ID_RE, "1..64 letters or digits"),
    "projectSecret": (PROJECT_SECRET_RE, "1..128 letters or digits"),
    "imei": (IMEI_RE, "15 digits"),
}
"""Each field of a credential request: its rule, and the rule in words."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The platform's answer to a credential request, before it is encoded as a ``Reply``."""

    status: int
    value: dict[str, Any]
    """What the JSON body holds (decoding the body gives an equal object)."""
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    """How late the answer comes (a slow unit's condition); 0: at once."""

    def reply(self) -> Reply:
        """The answer as the HTTP endpoint sends it."""
        reply = Reply.json(self.status, self.value, headers=self.headers)
        return replace(reply, delay_s=self.delay_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerAddress:
    """Where the platform tells devices to connect."""

    host: str
    port: int
    tls: bool = False


class XgcPlatform:
    """Projects, credentials, and the HTTP server that gives them out.

    Args:
        projects: ProjectId -> ProjectSecret.
        broker: the broker devices are sent to.
        console_token: the console user's password (a random one when not given).
        device_login: give every device this user name and password instead of its own
            (an external broker with one account, from ``--broker mqtt://user:pass@...``).
    """

    def __init__(
        self,
        *,
        projects: dict[str, str],
        broker: BrokerAddress,
        console_token: str | None = None,
        device_login: tuple[str, str | None] | None = None,
    ) -> None:
        if not projects:
            raise ConfigError("the platform needs at least one project")
        self.projects = dict(projects)
        self.broker = broker
        self.console_token = console_token or secrets.token_hex(16)
        self.device_login = device_login
        self.refused = 0
        self.conditions: dict[str, tuple[bool, float]] = {}
        """Per-unit conditions by IMEI, as (refuse, delay_s) (only units that have some)."""
        self._server = HttpServer({("POST", MQTT_INFO_PATH): self._mqtt_info}, max_body=MAX_BODY)

    @property
    def requests(self) -> int:
        """HTTP requests read so far, whatever their answer."""
        return self._server.requests

    # -- credentials ----------------------------------------------------------------------------

    def mqtt_info(self, *, project_id: str, project_secret: str, imei: str) -> MqttInfo | None:
        """The device's credentials, or None when the project id or secret is wrong."""
        known = self.projects.get(project_id)
        if known is None or not hmac.compare_digest(known, project_secret):
            return None
        username, password = imei, device_password(known, imei)
        if self.device_login is not None:
            username, password = self.device_login[0], self.device_login[1] or ""
        return MqttInfo(
            host=self.broker.host,
            port=self.broker.port,
            tls=self.broker.tls,
            client_id=f"xgc-{imei}",
            username=username,
            password=password,
            project_id=project_id,
        )

    def authenticate(self, username: str | None, password: str | None, client_id: str) -> bool:
        """The broker's check: a provisioned device, or the console."""
        del client_id
        if username is None or password is None:
            return False
        if username == CONSOLE_USER:
            return hmac.compare_digest(password, self.console_token)
        return any(
            hmac.compare_digest(password, device_password(secret, username))
            for secret in self.projects.values()
        )

    def set_conditions(self, imei: str, *, refuse: bool = False, delay_s: float = 0.0) -> None:
        """Refuse (503) and/or delay unit ``imei``'s credential requests from now on;
        neither: answer them normally again.

        Raises:
            ValueError: ``delay_s`` is not a finite number >= 0.
        """
        if not (isinstance(delay_s, int | float) and 0 <= delay_s < float("inf")):
            raise ValueError(f"delay_s must be a finite number of seconds >= 0, not {delay_s!r}")
        if refuse or delay_s:
            self.conditions[imei] = (refuse, float(delay_s))
        else:
            self.conditions.pop(imei, None)

    # -- HTTP -----------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen for HTTP requests."""
        await self._server.start(host, port)

    @property
    def port(self) -> int:
        """The HTTP port (after ``start``)."""
        return self._server.port

    @property
    def url(self) -> str:
        """The platform's base URL."""
        return self._server.url

    async def stop(self) -> None:
        """Stop listening."""
        await self._server.stop()

    def _mqtt_info(self, request: Request) -> Reply:
        return self.answer_mqtt_info(request.body)

    def answer_mqtt_info(self, body: bytes) -> Reply:
        """The reply to a credential request's body: what ``POST /xgc/v1/mqtt-info`` answers,
        for a caller in this process that hands the request over without HTTP."""
        try:
            data = decode(body, REQUEST_LIMITS)
        except ValueError as exc:  # JSON syntax, UTF-8 or a limit: all ValueErrors
            return _bad_request("body", f"body is not a JSON request within limits: {exc}").reply()
        return self.answer_request(data).reply()

    def answer_request(self, data: object) -> Answer:
        """The answer to a credential request's decoded body (``{"projectId", "projectSecret",
        "imei"}``), for a caller in this process that hands over the request's object: what
        ``answer_mqtt_info`` answers its JSON with, not yet encoded.

        An object of strings is answered as its JSON would be: every value a request may hold
        is ASCII and at most 128 characters (``REQUEST_FIELDS``), well within
        ``REQUEST_LIMITS``, and any other is a 400 either way.
        """
        if not isinstance(data, dict):
            return _bad_request("body", f"expected a JSON object with {list(REQUEST_FIELDS)}")
        for name, (rule, words) in REQUEST_FIELDS.items():
            value = data.get(name)
            if not (isinstance(value, str) and rule.fullmatch(value)):
                return _bad_request(name, f"{name} must be a string of {words}")
        conditions = self.conditions.get(data["imei"])
        answer = self._answer(data)
        if conditions is None:
            return answer
        refuse, delay_s = conditions
        if refuse:
            return Answer(
                UNAVAILABLE,
                {"error": "the service is unavailable; try again later", "field": "body"},
                (("retry-after", str(RETRY_AFTER_S)),),
                delay_s,
            )
        return Answer(answer.status, answer.value, answer.headers, delay_s)

    def _answer(self, data: Mapping[str, str]) -> Answer:
        info = self.mqtt_info(
            project_id=data["projectId"], project_secret=data["projectSecret"], imei=data["imei"]
        )
        if info is None:
            self.refused += 1
            return Answer(
                401, {"error": "unknown project or wrong project secret", "field": "projectSecret"}
            )
        return Answer(200, info.to_json())


def _bad_request(field: str, message: str) -> Answer:
    return Answer(400, {"error": message, "field": field})
