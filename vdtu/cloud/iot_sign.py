"""MQTT logins and dynamic registration for the IoT clouds of a QuecPython DTU, both ends.

Pure (standard library and ``cryptography``): the simulated firmware signs with these
functions and vdtu's local cloud checks with them, so the two ends cannot drift apart.
Every HMAC is written as lower-case hex. Secrets never appear in error messages.

Aliyun, one device one secret (firmware ``aLiYun``, docs/spec/quec.md#8.6)::

    clientId  <clientID>|securemode=3,signmethod=hmacsha256|
    username  <DeviceName>&<ProductKey>
    password  HMAC-SHA256(DeviceSecret, "clientId<clientID>deviceName<dn>productKey<pk>")

The DTU's ``clientID`` may be empty; the signer then uses the device name, as Aliyun
recommends a device-unique client id. The checker also takes what Aliyun takes from
other SDKs: ``securemode=2`` (TLS), ``signmethod`` hmacsha1 or hmacmd5, and a
``timestamp`` parameter, which then joins the signed text (the keys in alphabetical
order). MQTT-based registration (``authType=register``) is refused: the DTU registers
over HTTP (``aliyun_register_form``; the answer carries the DeviceSecret).

Tencent (firmware ``TXyun``, docs/spec/quec.md#8.7)::

    clientId  <ProductId><DeviceName>            ProductId: 10 of [A-Z0-9]
    username  <clientId>;12010126;<connid>;<expiry>
    password  HMAC-SHA256(base64decode(PSK), username) + ";hmacsha256"

A login whose ``expiry`` (epoch seconds) has passed is refused. HTTP registration
sends ``signature = base64(hex(HMAC-SHA1(ProductSecret, "deviceName=..&nonce=..&
productId=..&timestamp=..")))`` and gets the PSK back inside a payload encrypted with
AES-128-CBC (key ``ProductSecret[:16]``, IV sixteen ASCII ``0``, zero padding, base64).

Quectel's cloud (``quecthing``): quecIot's wire protocol is not public, so this is
vdtu's own stand-in, shaped like the Aliyun login::

    clientId  qd:<ProductKey>:<DeviceName>
    username  <ProductKey>;<mode>                mode: ds (DeviceSecret) or ps (ProductSecret)
    password  HMAC-SHA256(secret, "deviceName<dn>mode<mode>productKey<pk>")

A device with only the ProductSecret logs in with ``ps`` (one type one secret); the
DeviceSecret the platform would then hand out is ``quecthing_device_secret``, which
the stand-in cloud uses for the same device, so quecIot's ``getDkDs()`` can return it.

Cloud side: ``identify_vendor`` recognises a CONNECT by its shape, ``parse_login``
turns it into a ``LoginClaim`` (what it claims and the proof), and ``login_refusal``
checks the claim against a ``SecretSource`` in constant time. The registration answers
are built here too (``aliyun_register_answer``, ``txyun_register_answer``), next to
their parsers.

Why one file of over 700 lines: each signature is written once and used by both
ends, the firmware's signer and the cloud's checker, so that they cannot drift apart;
the three vendors share the HMAC, PSK and AES helpers, and ``parse_login`` dispatches
over all three. A file per vendor would split each pair of wire formats documented
above from the others it is checked beside, and move the shared helpers into a fourth
module.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vdtu.json_limits import JsonLimitError, JsonLimits
from vdtu.json_limits import decode as decode_json

TXYUN_SDK_APPID = "12010126"
"""The fixed second field of a Tencent user name."""
TXYUN_PRODUCT_ID_RE = re.compile(r"[A-Z0-9]{10}")
"""What a Tencent ProductId looks like; the client id is ProductId + DeviceName."""
TXYUN_AES_IV = b"0" * 16
"""The IV of the registration payload: sixteen ASCII zeros."""
QUECTHING_TOPIC_ROOT = "quecthing"
"""First level of vdtu's quecthing stand-in topics (see ``quecthing_topics``)."""
QUECTHING_CLIENT_PREFIX = "qd:"
"""Start of a quecthing stand-in client id."""

SIGN_METHODS = {"hmacsha256": "sha256", "hmacsha1": "sha1", "hmacmd5": "md5"}
"""Aliyun's signature method names -> hashlib names (Tencent's are the first two)."""
_HEX_RE = re.compile(r"[0-9a-f]+")


class Vendor(StrEnum):
    """The IoT clouds, named as the DTU config's ``protocol`` names them."""

    ALIYUN = "aliyun"
    TXYUN = "txyun"
    QUECTHING = "quecthing"


class KeyKind(StrEnum):
    """Which secret signs a login."""

    DEVICE_SECRET = "DeviceSecret"
    DEVICE_PSK = "device PSK"
    """Tencent's: base64 text; the HMAC key is the decoded bytes."""
    PRODUCT_SECRET = "ProductSecret"


@dataclass(frozen=True, slots=True)
class MqttLogin:
    """The three CONNECT fields a cloud login consists of."""

    client_id: str
    username: str
    password: str = field(repr=False)


def _hmac_hex(key: bytes, text: str, digest: str = "sha256") -> str:
    return hmac.new(key, text.encode(), digest).hexdigest()


def _require(**fields: str) -> None:
    """Raise ValueError naming the first empty field."""
    for name, value in fields.items():
        if not value:
            raise ValueError(f"{name} must not be empty")


def _psk_bytes(psk_b64: str) -> bytes:
    try:
        key = base64.b64decode(psk_b64, validate=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII string
        raise ValueError("psk_b64 must be base64 (Tencent's device PSK; value not shown)") from exc
    if not key:
        raise ValueError("psk_b64 decodes to no bytes")
    return key


# -- Aliyun ---------------------------------------------------------------------------------


def aliyun_login(
    *, product_key: str, device_name: str, device_secret: str, client_id: str
) -> MqttLogin:
    """The Aliyun one-device-one-secret login (securemode 3, HMAC-SHA256, no timestamp).

    Args:
        product_key: the product's ProductKey.
        device_name: the DeviceName.
        device_secret: the DeviceSecret (configured, or got from registration).
        client_id: the DTU config's ``clientID``; empty means the device name.

    Returns:
        The CONNECT fields.

    Raises:
        ValueError: if product_key, device_name or device_secret is empty.
    """
    _require(product_key=product_key, device_name=device_name, device_secret=device_secret)
    cid = client_id or device_name
    signed = f"clientId{cid}deviceName{device_name}productKey{product_key}"
    return MqttLogin(
        f"{cid}|securemode=3,signmethod=hmacsha256|",
        f"{device_name}&{product_key}",
        _hmac_hex(device_secret.encode(), signed),
    )


def aliyun_register_sign(
    *, product_key: str, device_name: str, product_secret: str, random: str, digest: str = "sha256"
) -> str:
    """The ``sign`` of an Aliyun HTTP registration (hex HMAC under the ProductSecret).

    Args:
        product_key: the ProductKey.
        device_name: the DeviceName.
        product_secret: the HMAC key.
        random: the request's ``random`` field, as sent.
        digest: the hashlib name for the request's signMethod (``SIGN_METHODS``).

    Returns:
        Lower-case hex of HMAC(ProductSecret, "deviceName<dn>productKey<pk>random<r>").
    """
    signed = f"deviceName{device_name}productKey{product_key}random{random}"
    return _hmac_hex(product_secret.encode(), signed, digest)


def aliyun_register_form(
    *, product_key: str, device_name: str, product_secret: str, random: int
) -> dict[str, str]:
    """The form fields of ``POST /auth/register/device`` (one type one secret).

    Args:
        product_key: the ProductKey.
        device_name: the DeviceName to register.
        product_secret: the ProductSecret (signs the request; never sent).
        random: the nonce; the firmware draws 0..99999.

    Returns:
        productKey, deviceName, random, sign and signMethod, ready for url-encoding.

    Raises:
        ValueError: if product_key, device_name or product_secret is empty.
    """
    _require(product_key=product_key, device_name=device_name, product_secret=product_secret)
    return {
        "productKey": product_key,
        "deviceName": device_name,
        "random": str(random),
        "sign": aliyun_register_sign(
            product_key=product_key,
            device_name=device_name,
            product_secret=product_secret,
            random=str(random),
        ),
        "signMethod": "hmacsha256",
    }


ANSWER_LIMITS = JsonLimits(max_bytes=8192, max_depth=8, max_digits=20, max_string=4096)
"""What the firmware reads from a registration answer (or the Tencent payload inside one)."""


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        answer = decode_json(body, ANSWER_LIMITS)
    except JsonLimitError as exc:
        raise ValueError(f"{what} is over the limits of an answer: {exc}") from exc
    except ValueError as exc:  # not UTF-8 or not JSON
        raise ValueError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(answer, dict):
        raise ValueError(  # noqa: TRY004 (a bad answer, not a bad argument)
            f"{what} must be a JSON object, not {type(answer).__name__}"
        )
    return answer


def aliyun_register_answer(
    *, product_key: str, device_name: str, device_secret: str
) -> dict[str, Any]:
    """Aliyun's answer to a successful registration (``parse_aliyun_register_answer`` reads it).

    Args:
        product_key: the ProductKey.
        device_name: the registered DeviceName.
        device_secret: its DeviceSecret.

    Returns:
        ``{"code": 200, "data": {productKey, deviceName, deviceSecret}, "message": "success"}``.
    """
    data = {"productKey": product_key, "deviceName": device_name, "deviceSecret": device_secret}
    return {"code": 200, "data": data, "message": "success"}


def parse_aliyun_register_answer(body: bytes) -> str:
    """The DeviceSecret from Aliyun's registration answer.

    Args:
        body: ``{"code": 200, "data": {..., "deviceSecret": ...}, "message": "success"}``.

    Returns:
        The DeviceSecret.

    Raises:
        ValueError: on an error answer (naming its code and message) or a malformed one.
    """
    answer = _json_object(body, "the Aliyun registration answer")
    code = answer.get("code")
    if code != 200:
        raise ValueError(f"Aliyun registration refused: code {code!r}: {answer.get('message')!r}")
    data = answer.get("data")
    secret = data.get("deviceSecret") if isinstance(data, dict) else None
    if not isinstance(secret, str) or not secret:
        raise ValueError("the Aliyun registration answer has no data.deviceSecret string")
    return secret


# -- Tencent --------------------------------------------------------------------------------


def txyun_login(
    *, product_id: str, device_name: str, psk_b64: str, connid: int, expiry: int
) -> MqttLogin:
    """The Tencent key-authenticated login.

    Args:
        product_id: the ProductId (the DTU config's ProductKey).
        device_name: the DeviceName.
        psk_b64: the device PSK, base64 (the DTU config's DeviceSecret).
        connid: the random connection id (the firmware draws five digits 1..10 each).
        expiry: when the login stops being valid, epoch seconds (firmware: now + 3600).

    Returns:
        The CONNECT fields.

    Raises:
        ValueError: if product_id or device_name is empty or psk_b64 is not base64.
    """
    _require(product_id=product_id, device_name=device_name)
    client_id = product_id + device_name
    username = f"{client_id};{TXYUN_SDK_APPID};{connid};{expiry}"
    password = _hmac_hex(_psk_bytes(psk_b64), username) + ";hmacsha256"
    return MqttLogin(client_id, username, password)


def txyun_register_signature(
    *, product_id: str, device_name: str, product_secret: str, nonce: int, timestamp: int
) -> str:
    """The ``signature`` of a Tencent registration.

    Args:
        product_id: the ProductId.
        device_name: the DeviceName.
        product_secret: the HMAC key.
        nonce: the request's nonce.
        timestamp: the request's timestamp.

    Returns:
        base64 of the hex HMAC-SHA1 of "deviceName=..&nonce=..&productId=..&timestamp=..".
    """
    signed = f"deviceName={device_name}&nonce={nonce}&productId={product_id}&timestamp={timestamp}"
    return base64.b64encode(_hmac_hex(product_secret.encode(), signed, "sha1").encode()).decode()


def txyun_register_body(
    *, product_id: str, device_name: str, product_secret: str, nonce: int, timestamp: int
) -> dict[str, str | int]:
    """The JSON body of Tencent's ``POST /register/dev``.

    Args:
        product_id: the ProductId.
        device_name: the DeviceName to register.
        product_secret: the ProductSecret (signs the request; never sent).
        nonce: a random integer.
        timestamp: now, epoch seconds (the cloud accepts a window around its own clock).

    Returns:
        deviceName, nonce, productId, timestamp and signature.

    Raises:
        ValueError: if product_id, device_name or product_secret is empty.
    """
    _require(product_id=product_id, device_name=device_name, product_secret=product_secret)
    return {
        "deviceName": device_name,
        "nonce": nonce,
        "productId": product_id,
        "timestamp": timestamp,
        "signature": txyun_register_signature(
            product_id=product_id,
            device_name=device_name,
            product_secret=product_secret,
            nonce=nonce,
            timestamp=timestamp,
        ),
    }


def _txyun_cipher(product_secret: str) -> Cipher[modes.CBC]:
    key = product_secret.encode()[:16]
    if len(key) < 16:
        raise ValueError(
            f"the Tencent ProductSecret must have at least 16 bytes (the AES key), not {len(key)}"
        )
    return Cipher(algorithms.AES(key), modes.CBC(TXYUN_AES_IV))


def txyun_encrypt_payload(payload: dict[str, Any], product_secret: str) -> str:
    """Encrypt a registration payload as Tencent does: JSON, zero-padded, AES-128-CBC, base64.

    Args:
        payload: the JSON object (for example ``{"encryptionType": 2, "psk": ...}``).
        product_secret: the ProductSecret; its first 16 bytes are the key.

    Returns:
        The base64 text.

    Raises:
        ValueError: if the ProductSecret is shorter than 16 bytes.
    """
    encryptor = _txyun_cipher(product_secret).encryptor()
    plain = json.dumps(payload, separators=(",", ":")).encode()
    plain += b"\0" * (-len(plain) % 16)
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def txyun_decrypt_payload(text: str, product_secret: str) -> dict[str, Any]:
    """Decrypt a registration payload (the firmware's way: trailing NULs stripped).

    Args:
        text: the base64 ciphertext.
        product_secret: the ProductSecret; its first 16 bytes are the key.

    Returns:
        The JSON object inside.

    Raises:
        ValueError: if the text is not base64 of whole AES blocks, or does not decrypt
            to a JSON object (a wrong ProductSecret usually ends here).
    """
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the Tencent payload is not base64: {exc}") from exc
    if not data or len(data) % 16:
        raise ValueError(
            f"the Tencent payload must be whole 16-byte AES blocks, not {len(data)} bytes"
        )
    decryptor = _txyun_cipher(product_secret).decryptor()
    plain = (decryptor.update(data) + decryptor.finalize()).rstrip(b"\0")
    try:
        payload = decode_json(plain, ANSWER_LIMITS)
    except JsonLimitError as exc:
        raise ValueError(f"the Tencent payload is over the limits of an answer: {exc}") from exc
    except ValueError as exc:  # not UTF-8 or not JSON
        raise ValueError(
            "the Tencent payload does not decrypt to JSON (wrong ProductSecret?)"
        ) from exc
    if not isinstance(payload, dict):
        raise ValueError(  # noqa: TRY004 (a bad payload, not a bad argument)
            f"the Tencent payload must be a JSON object, not {type(payload).__name__}"
        )
    return payload


def txyun_register_answer(*, psk: str, product_secret: str) -> dict[str, Any]:
    """Tencent's answer to a successful registration (what ``parse_txyun_register_answer`` reads).

    Args:
        psk: the device PSK, base64.
        product_secret: the ProductSecret, to encrypt the payload.

    Returns:
        ``{"code": 0, "message": "", "len": N, "payload": ...}``; ``len`` counts the
        characters of the payload's JSON before padding and encryption.

    Raises:
        ValueError: if the ProductSecret is shorter than 16 bytes.
    """
    payload = {"encryptionType": 2, "psk": psk}
    plain_len = len(json.dumps(payload, separators=(",", ":")))
    text = txyun_encrypt_payload(payload, product_secret)
    return {"code": 0, "message": "", "len": plain_len, "payload": text}


def parse_txyun_register_answer(body: bytes, product_secret: str) -> str:
    """The device PSK from Tencent's registration answer.

    Args:
        body: ``{"code": 0, "message": "", "len": N, "payload": "<base64>"}``.
        product_secret: the ProductSecret, to decrypt the payload.

    Returns:
        The PSK (base64 text, as the DTU config's DeviceSecret holds it).

    Raises:
        ValueError: on an error answer (naming its code and message), a payload that does
            not decrypt, or one without a key-authentication ``psk``.
    """
    answer = _json_object(body, "the Tencent registration answer")
    code = answer.get("code")
    if code != 0:
        raise ValueError(f"Tencent registration refused: code {code!r}: {answer.get('message')!r}")
    text = answer.get("payload")
    if not isinstance(text, str):
        raise ValueError(  # noqa: TRY004 (a bad answer, not a bad argument)
            "the Tencent registration answer has no payload string"
        )
    payload = txyun_decrypt_payload(text, product_secret)
    if payload.get("encryptionType", 2) != 2:
        raise ValueError(
            f"expected encryptionType 2 (key authentication), not {payload['encryptionType']!r}"
        )
    psk = payload.get("psk")
    if not isinstance(psk, str) or not psk:
        raise ValueError("the Tencent registration payload has no psk string")
    return psk


# -- quecthing (vdtu's stand-in) --------------------------------------------------------------


def quecthing_topics(product_key: str, device_name: str) -> tuple[str, str]:
    """(down, up): the topics of vdtu's quecthing stand-in, ``quecthing/<pk>/<dn>/down|up``."""
    base = f"{QUECTHING_TOPIC_ROOT}/{product_key}/{device_name}"
    return f"{base}/down", f"{base}/up"


def quecthing_device_secret(*, product_secret: str, device_name: str) -> str:
    """The DeviceSecret the stand-in platform gives a one-type-one-secret device.

    Args:
        product_secret: the ProductSecret the device logged in with.
        device_name: the device key (DK).

    Returns:
        The first 32 hex digits of HMAC-SHA256(ProductSecret, "quecthing:<dn>").
    """
    return _hmac_hex(product_secret.encode(), f"quecthing:{device_name}")[:32]


def _quecthing_signed(product_key: str, device_name: str, mode: str) -> str:
    return f"deviceName{device_name}mode{mode}productKey{product_key}"


def quecthing_login(
    *, product_key: str, product_secret: str, device_name: str, device_secret: str
) -> MqttLogin:
    """The quecthing stand-in login, signed with the DeviceSecret, or else the ProductSecret.

    Args:
        product_key: the ProductKey (PK).
        product_secret: the ProductSecret (PS); used only without a DeviceSecret.
        device_name: the device key (DK; the firmware's default is the IMEI).
        device_secret: the DeviceSecret (DS), or empty.

    Returns:
        The CONNECT fields.

    Raises:
        ValueError: if product_key or device_name is empty, or both secrets are.
    """
    _require(product_key=product_key, device_name=device_name)
    if ":" in product_key or ";" in product_key:
        raise ValueError(f"product_key must not contain ':' or ';', not {product_key!r}")
    if device_secret:
        mode, secret = "ds", device_secret
    elif product_secret:
        mode, secret = "ps", product_secret
    else:
        raise ValueError(
            "a quecthing login needs a device_secret or a product_secret; both are empty"
        )
    return MqttLogin(
        f"{QUECTHING_CLIENT_PREFIX}{product_key}:{device_name}",
        f"{product_key};{mode}",
        _hmac_hex(secret.encode(), _quecthing_signed(product_key, device_name, mode)),
    )


# -- cloud side ---------------------------------------------------------------------------------


class SecretSource(Protocol):
    """Where the cloud looks secrets up (``IotCloud`` is one)."""

    def find_product_secret(self, vendor: Vendor, product_key: str) -> str | None:
        """The product's secret, or None for an unknown product."""
        ...

    def find_device_secret(self, vendor: Vendor, product_key: str, device_name: str) -> str | None:
        """The device's secret (Tencent: the base64 PSK), or None for an unknown device."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginClaim:
    """What a CONNECT claims, and its proof, before any secret is looked up."""

    vendor: Vendor
    product_key: str
    device_name: str
    key: KeyKind
    """The secret that must have signed it."""
    signed: str = field(repr=False)
    """The text the password signs."""
    digest: str
    """The hashlib name of the HMAC."""
    signature: str = field(repr=False)
    """The password's HMAC, lower-case hex."""
    expires_at: int | None = None
    """Tencent's expiry, epoch seconds."""


def identify_vendor(username: str | None, client_id: str) -> Vendor | None:
    """Which cloud a CONNECT is shaped for, or None for any other client.

    Aliyun: the client id ends in ``|...securemode=...|``; Tencent: the user name holds
    ``;12010126;``; quecthing: the client id starts with ``qd:``.

    Args:
        username: the CONNECT's user name.
        client_id: the CONNECT's client id.

    Returns:
        The vendor whose ``parse_login`` reads it, or None.
    """
    if client_id.endswith("|") and "securemode=" in client_id[:-1].rpartition("|")[2]:
        return Vendor.ALIYUN
    if username is not None and f";{TXYUN_SDK_APPID};" in username:
        return Vendor.TXYUN
    if client_id.startswith(QUECTHING_CLIENT_PREFIX):
        return Vendor.QUECTHING
    return None


def _hex_signature(text: str) -> str:
    signature = text.lower()
    if not _HEX_RE.fullmatch(signature):
        raise ValueError("the password must be a hex HMAC")
    return signature


def _aliyun_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in text.split(","):
        name, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"client id parameter {item!r} is not name=value")
        params[name] = value
    return params


def _parse_aliyun(username: str, password: str, client_id: str) -> LoginClaim:
    cid, _, param_text = client_id[:-1].rpartition("|")
    params = _aliyun_params(param_text)
    if "authType" in params:
        raise ValueError(
            f"authType={params['authType']} (MQTT registration) is not served; register over HTTP"
        )
    if params.get("securemode") not in {"2", "3"}:
        raise ValueError(f"securemode must be 2 or 3, not {params.get('securemode')!r}")
    method = params.get("signmethod", "")
    if method not in SIGN_METHODS:
        raise ValueError(f"signmethod must be one of {sorted(SIGN_METHODS)}, not {method!r}")
    device_name, amp, product_key = username.rpartition("&")
    if not amp or not device_name or not product_key:
        raise ValueError(f"username must be <DeviceName>&<ProductKey>, not {username!r}")
    signed = f"clientId{cid}deviceName{device_name}productKey{product_key}"
    if "timestamp" in params:
        signed += f"timestamp{params['timestamp']}"
    return LoginClaim(
        vendor=Vendor.ALIYUN,
        product_key=product_key,
        device_name=device_name,
        key=KeyKind.DEVICE_SECRET,
        signed=signed,
        digest=SIGN_METHODS[method],
        signature=_hex_signature(password),
    )


def _parse_txyun(username: str, password: str, client_id: str) -> LoginClaim:
    parts = username.split(";")
    if len(parts) != 4:
        raise ValueError(
            f"username must be <clientId>;{TXYUN_SDK_APPID};<connid>;<expiry>, not {username!r}"
        )
    user_client, appid, connid, expiry = parts
    if appid != TXYUN_SDK_APPID:
        raise ValueError(f"the username's second field must be {TXYUN_SDK_APPID}, not {appid!r}")
    if user_client != client_id:
        raise ValueError(f"username starts with {user_client!r}, not the client id {client_id!r}")
    if not connid or not expiry.isdigit():
        raise ValueError(f"connid must be non-empty and expiry decimal, not {connid!r}, {expiry!r}")
    product_id, device_name = client_id[:10], client_id[10:]
    if not TXYUN_PRODUCT_ID_RE.fullmatch(product_id) or not device_name:
        raise ValueError(
            f"client id must be a 10-character ProductId + DeviceName, not {client_id!r}"
        )
    token, _, method = password.rpartition(";")
    if method not in {"hmacsha256", "hmacsha1"}:
        raise ValueError(f"password must end in ;hmacsha256 or ;hmacsha1, not ;{method!r}")
    return LoginClaim(
        vendor=Vendor.TXYUN,
        product_key=product_id,
        device_name=device_name,
        key=KeyKind.DEVICE_PSK,
        signed=username,
        digest=SIGN_METHODS[method],
        signature=_hex_signature(token),
        expires_at=int(expiry),
    )


def _parse_quecthing(username: str, password: str, client_id: str) -> LoginClaim:
    product_key, colon, device_name = client_id.removeprefix(QUECTHING_CLIENT_PREFIX).partition(":")
    if not colon or not product_key or not device_name:
        raise ValueError(f"client id must be qd:<ProductKey>:<DeviceName>, not {client_id!r}")
    user_key, _, mode = username.partition(";")
    if user_key != product_key or mode not in {"ds", "ps"}:
        raise ValueError(f"username must be {product_key};ds or {product_key};ps, not {username!r}")
    return LoginClaim(
        vendor=Vendor.QUECTHING,
        product_key=product_key,
        device_name=device_name,
        key=KeyKind.DEVICE_SECRET if mode == "ds" else KeyKind.PRODUCT_SECRET,
        signed=_quecthing_signed(product_key, device_name, mode),
        digest="sha256",
        signature=_hex_signature(password),
    )


_PARSERS = {
    Vendor.ALIYUN: _parse_aliyun,
    Vendor.TXYUN: _parse_txyun,
    Vendor.QUECTHING: _parse_quecthing,
}


def parse_login(
    vendor: Vendor, username: str | None, password: str | None, client_id: str
) -> LoginClaim:
    """Read a CONNECT that ``identify_vendor`` gave to ``vendor``.

    Args:
        vendor: the cloud it is shaped for.
        username: the CONNECT's user name.
        password: the CONNECT's password.
        client_id: the CONNECT's client id.

    Returns:
        The claim, ready for ``login_refusal``.

    Raises:
        ValueError: naming the field that does not have the vendor's form.
    """
    if username is None or password is None:
        raise ValueError(f"a {vendor} login needs a user name and a password")
    return _PARSERS[vendor](username, password, client_id)


def _key_bytes(kind: KeyKind, secret: str) -> bytes:
    return _psk_bytes(secret) if kind is KeyKind.DEVICE_PSK else secret.encode()


def login_refusal(claim: LoginClaim, secrets: SecretSource, *, now: int) -> str | None:
    """Why the cloud refuses a login, or None when it holds.

    Args:
        claim: from ``parse_login``.
        secrets: the cloud's products and devices.
        now: the cloud's clock, epoch seconds (for Tencent's expiry).

    Returns:
        A reason naming the product, device or check that failed; None for a valid login.
    """
    if claim.expires_at is not None and claim.expires_at < now:
        return f"login expired at {claim.expires_at} (now {now})"
    product_secret = secrets.find_product_secret(claim.vendor, claim.product_key)
    if product_secret is None:
        return f"unknown {claim.vendor} product {claim.product_key!r}"
    secret = product_secret
    if claim.key is not KeyKind.PRODUCT_SECRET:
        device_secret = secrets.find_device_secret(
            claim.vendor, claim.product_key, claim.device_name
        )
        if device_secret is None:
            return f"unknown device {claim.device_name!r} in product {claim.product_key!r}"
        secret = device_secret
    expected = _hmac_hex(_key_bytes(claim.key, secret), claim.signed, claim.digest)
    if not hmac.compare_digest(expected, claim.signature):
        owner = claim.product_key if claim.key is KeyKind.PRODUCT_SECRET else claim.device_name
        return f"the password is not signed with the {claim.key} of {owner!r}"
    return None
