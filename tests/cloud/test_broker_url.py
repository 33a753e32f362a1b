"""Broker URLs: accepted forms, refused ones (naming the bad part), and the hidden password."""

from __future__ import annotations

from pathlib import Path

import pytest

from vdtu.cloud.broker_url import BrokerUrl, Scheme, parse_broker_url
from vdtu.errors import ConfigError

GOOD = [
    # text, scheme, host, port, username, password
    ("mqtt://127.0.0.1:1883", Scheme.MQTT, "127.0.0.1", 1883, None, None),
    ("mqtt://broker.example", Scheme.MQTT, "broker.example", 1883, None, None),
    ("mqtts://broker.example", Scheme.MQTTS, "broker.example", 8883, None, None),
    ("MQTT://h:1/", Scheme.MQTT, "h", 1, None, None),
    ("mqtt://dtu@h:65535", Scheme.MQTT, "h", 65535, "dtu", None),
    ("mqtt://dtu:@h", Scheme.MQTT, "h", 1883, "dtu", ""),
    ("mqtts://dtu:s3cret@h:8884", Scheme.MQTTS, "h", 8884, "dtu", "s3cret"),
    ("mqtt://a%40b:p%3Aw%2Fd%25@h", Scheme.MQTT, "h", 1883, "a@b", "p:w/d%"),
    ("mqtt://[::1]:1884", Scheme.MQTT, "::1", 1884, None, None),
    ("mqtt://u:p@[fe80::1]", Scheme.MQTT, "fe80::1", 1883, "u", "p"),
    ("  mqtt://h:2  ", Scheme.MQTT, "h", 2, None, None),
]


@pytest.mark.parametrize(("text", "scheme", "host", "port", "username", "password"), GOOD)
def test_accepted_forms_parse(
    text: str, scheme: Scheme, host: str, port: int, username: str | None, password: str | None
) -> None:
    """Each accepted form gives its scheme, host, port (or the default) and decoded login."""
    url = parse_broker_url(text)
    assert (url.scheme, url.host, url.port, url.username, url.password) == (
        scheme,
        host,
        port,
        username,
        password,
    )
    assert url.tls is (scheme is Scheme.MQTTS)


@pytest.mark.parametrize(("text", "scheme", "host", "port", "username", "password"), GOOD)
def test_str_parses_back_without_the_password(
    text: str, scheme: Scheme, host: str, port: int, username: str | None, password: str | None
) -> None:
    """``str()`` gives a URL that parses back to the same place and user, password masked."""
    url = parse_broker_url(text)
    again = parse_broker_url(str(url))
    assert (again.scheme, again.host, again.port, again.username) == (scheme, host, port, username)
    assert again.password == (None if password is None else "***")


def test_password_never_shown() -> None:
    """Neither ``str()`` nor ``repr()`` shows the password."""
    url = parse_broker_url("mqtt://dtu:hunter2@h:1883")
    assert str(url) == "mqtt://dtu:***@h:1883"
    assert "hunter2" not in repr(url)
    assert url.password == "hunter2"


BAD = [
    # text, the part the message must name
    ("broker.example:1883", "no scheme"),
    ("http://h:80", "scheme 'http' is not mqtt or mqtts"),
    ("mqtt://", "no host"),
    ("mqtt://:1883", "no host"),
    ("mqtt://h:0", "port '0' is not 1..65535"),
    ("mqtt://h:65536", "port '65536' is not 1..65535"),
    ("mqtt://h:x1", "port 'x1' is not 1..65535"),
    ("mqtt://h:", "port '' is not 1..65535"),
    ("mqtt://h:1883/topic", "unexpected path, query or fragment '/topic'"),
    ("mqtt://h?x=1", "unexpected path, query or fragment '?x=1'"),
    ("mqtt://h#frag", "unexpected path, query or fragment '#frag'"),
    ("mqtt://@h", "empty user name"),
    ("mqtt://::1:1883", "IPv6 host '::1:1883' must be in brackets"),
    ("mqtt://[::1:1883", "unclosed '['"),
    ("mqtt://[::1]x", "unexpected 'x' after the host"),
]


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_refused_forms_name_the_bad_part_and_the_allowed_forms(text: str, problem: str) -> None:
    """A bad URL raises ConfigError quoting it, naming the bad part and the accepted forms."""
    with pytest.raises(ConfigError) as caught:
        parse_broker_url(text)
    message = str(caught.value)
    assert problem in message
    assert repr(text) in message
    assert "mqtt://[user[:password]@]host[:port]" in message


def test_error_masks_the_password() -> None:
    """An error about a URL with a password quotes the URL with the password masked."""
    with pytest.raises(ConfigError) as caught:
        parse_broker_url("mqtt://dtu:hunter2@h:99999")
    assert "hunter2" not in str(caught.value)
    assert "'mqtt://dtu:***@h:99999'" in str(caught.value)


def test_ca_file_goes_with_mqtts_only() -> None:
    """A CA file is kept for an mqtts URL and refused for a plain one."""
    ca = Path("/etc/ssl/certs/ca.pem")
    assert parse_broker_url("mqtts://h", ca_file=ca).ca_file == ca
    with pytest.raises(ConfigError, match=r"CA file.*'/etc/ssl/certs/ca\.pem'.*mqtts"):
        parse_broker_url("mqtt://h", ca_file=ca)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"host": "", "port": 1883}, "host must not be empty"),
        ({"host": "h", "port": 0}, "1..65535, not 0"),
        ({"host": "h", "port": 1883, "password": "pw"}, "password needs a user name"),
    ],
)
def test_invalid_url_cannot_be_built(kwargs: dict[str, object], match: str) -> None:
    """Building a BrokerUrl directly is checked like parsing one."""
    with pytest.raises(ConfigError, match=match):
        BrokerUrl(scheme=Scheme.MQTT, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "reached_at"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("10.1.2.3", "10.1.2.3")],
)
def test_listener_url_reaches_wildcards_through_loopback(host: str, reached_at: str) -> None:
    """A broker listening on a wildcard address is reached at the loopback of its family."""
    url = BrokerUrl.for_listener(host, 1883)
    assert (url.scheme, url.host, url.port) == (Scheme.MQTT, reached_at, 1883)


def test_listener_url_needs_an_ip_address() -> None:
    """A host name is refused as a listener address."""
    with pytest.raises(ConfigError, match="IP address, not 'localhost'"):
        BrokerUrl.for_listener("localhost", 1883)
