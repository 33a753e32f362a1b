"""Logging in to the embedded broker: an amqtt auth plugin that asks a plain callable.

amqtt's own password plugin checks an argon2 hash for every CONNECT: about 105 ms
of CPU, synchronously, inside the broker's event loop, so a fleet of 1000 DTUs
would need some 100 s just to log in (measured, ``dependencies.md`` section 2).
vdtu's credentials are not stored passwords but tokens the caller can recompute or
look up (an HMAC of the IMEI, a fixed user and password), so the check here is the
caller's ``Authenticator``: ``(username, password, client_id) -> bool``, called once
per CONNECT, expected to be cheap and constant-time (``hmac.compare_digest``).

How the callable reaches the plugin: amqtt builds plugin instances itself from
dotted class paths in its config, so the plugin cannot take constructor arguments;
but each plugin's ``Config`` dataclass is filled from the dict given in the broker
config, and that dict may hold any object. ``EmbeddedBroker`` puts its
authenticator there, so every broker's plugin is born with its own callable: no
class-level or module-level registry, and no window in which a built plugin has no
check yet. amqtt's config loader (dacite, strict mode) refuses a field typed as a
``Callable``, so the field is typed ``object`` and the plugin checks that it is
callable when it is built.

The plugin also records its verdict in the session's ``attributes`` (the dict amqtt
keeps on each session for plugins), under ``AUTHORIZED``: amqtt keeps a refused
session registered as "connected", and the broker wrapper uses the mark to leave
refused sessions out of its client count and to drop them.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from amqtt.plugins.base import BaseAuthPlugin  # type: ignore[import-untyped]  # no py.typed
from amqtt.session import Session  # type: ignore[import-untyped]  # no py.typed

from vdtu.errors import ConfigError

Authenticator = Callable[[str | None, str | None, str], bool]
"""Decides a CONNECT: ``(username, password, client_id) -> allowed``."""

AUTHORIZED = "vdtu.authorized"
"""Key of the plugin's verdict (a bool) in ``Session.attributes``."""


def allow_all(username: str | None, password: str | None, client_id: str) -> bool:
    """The authenticator of an open broker: every client, with or without credentials."""
    return True


def credentials_authenticator(username: str, password: str) -> Authenticator:
    """An authenticator that accepts one user name and password, compared in constant time.

    Args:
        username: the only user name accepted.
        password: its password.

    Returns:
        The check, for ``EmbeddedBroker(authenticator=...)``.
    """
    expected_user = username.encode()
    expected_password = password.encode()

    def check(user: str | None, given_password: str | None, client_id: str) -> bool:
        # Both comparisons always run, so the time taken does not tell which one failed.
        user_ok = hmac.compare_digest((user or "").encode(), expected_user)
        password_ok = hmac.compare_digest((given_password or "").encode(), expected_password)
        return user is not None and given_password is not None and user_ok and password_ok

    return check


class CallbackAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped: its base is Any
    """amqtt auth plugin that lets the configured ``Authenticator`` decide each CONNECT.

    Configured in the broker config as
    ``{"vdtu.cloud.broker_auth.CallbackAuthPlugin": {"authenticator": check}}``.

    Raises:
        ConfigError: (when amqtt builds it) if ``authenticator`` is not callable.
    """

    @dataclass
    class Config:
        """The plugin's configuration, filled by amqtt from the broker config."""

        authenticator: object = None
        """The ``Authenticator``; typed ``object`` because amqtt's loader refuses
        ``Callable`` fields."""

    def __init__(self, context: object) -> None:
        super().__init__(context)
        check = self.config.authenticator
        if not callable(check):
            raise ConfigError(
                f"CallbackAuthPlugin needs a callable 'authenticator' in its config, not {check!r}"
            )
        self._authenticator: Authenticator = check

    async def authenticate(self, *, session: Session) -> bool:
        """Ask the authenticator; refuses a session without a client id.

        Args:
            session: the connecting client's session (amqtt has already generated
                a client id for a clean session that sent an empty one).

        Returns:
            Whether the client may connect; also recorded as ``session.attributes[AUTHORIZED]``.
        """
        client_id: str | None = session.client_id
        allowed = client_id is not None and self._authenticator(
            session.username, session.password, client_id
        )
        session.attributes[AUTHORIZED] = allowed
        return allowed
