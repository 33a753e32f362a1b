"""Logging in to the embedded broker: an amqtt auth plugin that asks a plain callable.

amqtt's own password plugin checks an argon2 hash for every CONNECT: about 105 ms
of CPU, synchronously, inside the broker's event loop, so a fleet of 1000 DTUs
would need some 100 s just to log in (measured).
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

Access control: with an ``Access`` rule (``broker_acl.FleetAccess``), a login the
authenticator accepted is also asked for its ``Grant`` (``decide``): a refused one (a
device using another client id, or a will it may not publish) is not let in, and the
grant is kept in ``attributes[GRANT]``, where ``topic_allowed`` reads it for every
publish, subscribe and delivery (the broker wrapper calls it in place of amqtt's topic
plugins). The broker wrapper runs ``decide`` itself before amqtt
sees a CONNECT (amqtt drops an existing session of the same client id before it asks
the auth plugins); the plugin runs it again on the session amqtt builds.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

from amqtt.contexts import Action as AmqttAction  # type: ignore[import-untyped]  # no py.typed
from amqtt.plugins.base import (  # type: ignore[import-untyped]  # no py.typed
    BaseAuthPlugin,
)
from amqtt.session import Session  # type: ignore[import-untyped]  # no py.typed

from vdtu.cloud.broker_acl import FULL_ACCESS, Action, Grant, Refusal
from vdtu.errors import ConfigError

LOG = logging.getLogger("vdtu.cloud.broker")
"""The embedded broker's log: refusals, one line per client and kind."""

Authenticator = Callable[[str | None, str | None, str], bool]
"""Decides a CONNECT: ``(username, password, client_id) -> allowed``."""

Access = Callable[[str | None, str | None, str], Grant | Refusal]
"""The access rule: ``(username, password, client_id) -> Grant | Refusal``, asked once per
CONNECT the authenticator accepted (``broker_acl.FleetAccess``)."""

Verdicts = dict[tuple[str, int], Grant]
"""Grants of CONNECTs the broker wrapper accepted, by the client's (address, port), until
the auth plugin takes them for the session amqtt builds."""

AUTHORIZED = "vdtu.authorized"
"""Key of the plugin's verdict (a bool) in ``Session.attributes``."""
GRANT = "vdtu.grant"
"""Key of the session's ``Grant`` in ``Session.attributes``."""
_REFUSALS_LOGGED = "vdtu.refusals_logged"
"""Key of the actions already logged as refused for a session (a set)."""


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


def decide(
    authenticator: Authenticator,
    access: Access | None,
    *,
    username: str | None,
    password: str | None,
    client_id: str,
    will_topic: str | None,
) -> Grant | Refusal | None:
    """Whether a CONNECT may log in: its grant, a refusal by the access rule, or None.

    Args:
        authenticator: checks the credentials.
        access: the access rule; None gives every accepted login full access.
        username: the CONNECT's user name.
        password: its password.
        client_id: its client id.
        will_topic: its will's topic, or None without a will.

    Returns:
        The grant; a ``Refusal`` saying why (client id, will topic); None when the
        authenticator refused the credentials.
    """
    if not authenticator(username, password, client_id):
        return None
    if access is None:
        return FULL_ACCESS
    grant = access(username, password, client_id)
    if isinstance(grant, Refusal):
        return grant
    if will_topic is not None and not grant.may_publish(will_topic):
        return Refusal(f"{grant.label} may not have a will on {will_topic!r}")
    return grant


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
        access: object = None
        """The ``Access`` rule, or None (every login has full access)."""
        verdicts: object = None
        """The broker wrapper's ``Verdicts`` (a dict), or None."""

    def __init__(self, context: object) -> None:
        super().__init__(context)
        check = self.config.authenticator
        if not callable(check):
            raise ConfigError(
                f"CallbackAuthPlugin needs a callable 'authenticator' in its config, not {check!r}"
            )
        self._authenticator: Authenticator = check
        access = self.config.access
        if access is not None and not callable(access):
            raise ConfigError(f"CallbackAuthPlugin's 'access' must be callable, not {access!r}")
        self._access: Access | None = access
        verdicts = self.config.verdicts
        self._verdicts: Verdicts = verdicts if isinstance(verdicts, dict) else {}

    async def authenticate(self, *, session: Session) -> bool:
        """Take the broker wrapper's verdict, or ask the authenticator and the access rule.

        The wrapper has decided every CONNECT with a client id before amqtt saw it;
        the others (amqtt made their client id up) are decided here. A session without
        a client id is refused.

        Args:
            session: the connecting client's session (amqtt has already generated
                a client id for a clean session that sent an empty one).

        Returns:
            Whether the client may connect; also recorded as ``session.attributes[AUTHORIZED]``.
        """
        client_id: str | None = session.client_id
        verdict: Grant | Refusal | None = self._verdicts.pop(
            (str(session.remote_address), int(session.remote_port or 0)), None
        )
        if verdict is None and client_id is not None:
            verdict = decide(
                self._authenticator,
                self._access,
                username=session.username,
                password=session.password,
                client_id=client_id,
                will_topic=session.will_topic if session.will_flag else None,
            )
        allowed = isinstance(verdict, Grant)
        session.attributes[AUTHORIZED] = allowed
        if isinstance(verdict, Grant):
            session.attributes[GRANT] = verdict
        return allowed


def topic_allowed(session: Session, topic: str, action: AmqttAction) -> bool:
    """Whether the session's grant allows ``action`` (publish, subscribe, or the delivery
    of a message to it) on ``topic``; the first refusal of each kind per session is logged
    at WARNING with the login and the topic. A session without a grant may do nothing."""
    grant: Grant | None = session.attributes.get(GRANT)
    if grant is None:
        return False
    if grant.everything:
        return True
    kind = Action.PUBLISH if action == AmqttAction.PUBLISH else Action.SUBSCRIBE
    if grant.allows(kind, topic):
        return True
    if action != AmqttAction.RECEIVE:
        log_refusal(session, str(action), f"{grant.label} may not {action} {topic!r}")
    return False


def log_refusal(session: Session, kind: str, text: str) -> None:
    """Log ``text`` at WARNING unless a refusal of ``kind`` was logged for this session."""
    logged: set[str] = session.attributes.setdefault(_REFUSALS_LOGGED, set())
    if kind not in logged:
        logged.add(kind)
        LOG.warning("refused client %r: %s (further refusals not logged)", session.client_id, text)
