"""The local XGC platform: projects, and the HTTP endpoint that gives devices MQTT credentials.

``POST /xgc/v1/mqtt-info`` with ``{"projectId", "projectSecret", "imei"}`` answers
200 with the broker address and the device's credentials (see ``xgc_api``), 401
when the project id or secret is wrong, 400 for a malformed request. HTTP/1.1 is
parsed with h11 (sans-I/O) on asyncio streams; each connection serves one
request and is closed. The broker's authenticator (``authenticate``) accepts a
device whose password is the HMAC of its IMEI under one of the project secrets,
and the console user whose token the platform made at start.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import h11

from vdtu.cloud.xgc_api import MQTT_INFO_PATH, MqttInfo, device_password
from vdtu.errors import ConfigError

CONSOLE_USER = "vdtu-console"
MAX_BODY = 16 * 1024


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
        self.requests = 0
        self.refused = 0
        self._server: asyncio.Server | None = None

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

    # -- HTTP -----------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen for HTTP requests."""
        self._server = await asyncio.start_server(self._serve, host, port)

    @property
    def port(self) -> int:
        """The HTTP port (after ``start``)."""
        if self._server is None:
            raise RuntimeError("the platform is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """The platform's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        try:
            status, body = await asyncio.wait_for(self._request(connection, reader), timeout=10)
        except (TimeoutError, h11.RemoteProtocolError, ConnectionError) as exc:
            status, body = 400, {"error": f"bad request: {exc or type(exc).__name__}"}
        payload = json.dumps(body).encode()
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(payload))),
            ("connection", "close"),
        ]
        try:
            if connection.our_state is h11.SEND_RESPONSE:
                writer.write(
                    connection.send(h11.Response(status_code=status, headers=headers)) or b""
                )
                writer.write(connection.send(h11.Data(data=payload)) or b"")
                writer.write(connection.send(h11.EndOfMessage()) or b"")
                await writer.drain()
        except (ConnectionError, h11.LocalProtocolError):
            pass  # the client went away; nothing to answer
        finally:
            writer.close()

    async def _request(
        self, connection: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[int, dict[str, Any]]:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(4096)
                connection.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    return 413, {"error": f"body over {MAX_BODY} bytes"}
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        if request is None:
            return 400, {"error": "no request"}
        return self._route(request, bytes(body))

    def _route(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        target = request.target.decode("latin-1")
        if target != MQTT_INFO_PATH:
            return 404, {"error": f"no such endpoint {target}; the endpoint is {MQTT_INFO_PATH}"}
        if request.method != b"POST":
            return 405, {"error": "use POST"}
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            return 400, {"error": f"body is not JSON: {exc}"}
        fields = ("projectId", "projectSecret", "imei")
        if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in fields):
            return 400, {"error": f"expected a JSON object with string fields {list(fields)}"}
        info = self.mqtt_info(
            project_id=data["projectId"], project_secret=data["projectSecret"], imei=data["imei"]
        )
        if info is None:
            self.refused += 1
            return 401, {"error": "unknown project or wrong project secret"}
        return 200, info.to_json()
