"""vdtu's local stand-in for the Aliyun, Tencent and Quectel IoT clouds.

No sockets: ``IotCloud`` is the registry of products and devices, the broker's login
check (``authenticator``) and the two HTTP registration endpoints as plain functions
of the request; vdtu's broker and HTTP server call them. Wire formats and signatures
are in ``iot_sign``, shared with the simulated firmware.

Device secrets are derived, not stored, so every device name of a known product
exists (as if the product created devices on first registration) and keeps its
secret across registrations and restarts::

    aliyun     first 32 hex digits of HMAC-SHA256(ProductSecret, "aliyun:<dn>")
    txyun      base64 of the first 16 bytes of HMAC-SHA256(ProductSecret, "txyun:<dn>")
    quecthing  iot_sign.quecthing_device_secret (the DS a one-type-one-secret device gets)

A device added with ``add_device`` keeps the secret given (a config copied from a real
console). A second registration of the same device is answered again with the same
secret; a real cloud may refuse a device that is already active.

Registration answers are HTTP 200 with the outcome in the JSON ``code``, as the real
endpoints answer. Aliyun: 200 success, 460 request parameter error (Aliyun's own
code); 6250 unknown product and 6288 sign mismatch are the stand-in's. Tencent: 0
success; 1001 bad request, 1002 unknown product, 1003 timestamp outside
``TXYUN_TIMESTAMP_WINDOW_S`` of the cloud's clock and 1004 signature mismatch are the
stand-in's.

Every refused login or registration is recorded in ``refusals`` with its reason (the
last ``MAX_REFUSALS``), for tests and logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from vdtu.cloud.broker_auth import Authenticator
from vdtu.cloud.iot_sign import (
    SIGN_METHODS,
    TXYUN_PRODUCT_ID_RE,
    Vendor,
    aliyun_register_answer,
    aliyun_register_sign,
    identify_vendor,
    login_refusal,
    parse_login,
    quecthing_device_secret,
    txyun_register_answer,
    txyun_register_signature,
)
from vdtu.errors import ConfigError
from vdtu.json_limits import JsonLimits
from vdtu.json_limits import decode as decode_json

REGISTER_LIMITS = JsonLimits(max_bytes=4096, max_depth=4, max_digits=20, max_string=1024)
"""A Tencent registration body: 4 KiB, 4 levels of nesting, 20 digits, 1 KiB strings (the
real body is one flat object of about 200 bytes). Aliyun's form is bounded by the HTTP
server's body limit; refusals quote at most 40 characters of a field."""


def _cut(value: object) -> str:
    """``repr(value)`` cut to 40 characters: a field of a request can be any size."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


__all__ = [
    "ALIYUN_REGISTER_PATH",
    "MAX_REFUSALS",
    "TXYUN_REGISTER_PATH",
    "TXYUN_TIMESTAMP_WINDOW_S",
    "IotCloud",
    "Product",
    "Vendor",
]

ALIYUN_REGISTER_PATH = "/auth/register/device"
"""Aliyun's HTTP dynamic registration (POST, form-urlencoded)."""
TXYUN_REGISTER_PATH = "/register/dev"
"""Tencent's HTTP dynamic registration (POST, JSON)."""
TXYUN_TIMESTAMP_WINDOW_S = 300
"""How far a Tencent registration's timestamp may be from the cloud's clock."""
MAX_REFUSALS = 1000
"""How many refusal reasons ``IotCloud.refusals`` keeps."""

_ALIYUN_DEVICE_NAME_RE = re.compile(r"[A-Za-z0-9_\-@.:]{4,32}")
"""Aliyun's rule for a DeviceName."""
_TXYUN_DEVICE_NAME_RE = re.compile(r"[A-Za-z0-9:_\-]{1,48}")
"""Tencent's rule for a DeviceName."""
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_ALIYUN_FIELDS = ("productKey", "deviceName", "random", "sign", "signMethod")
_TXYUN_FIELDS: dict[str, type] = {
    "deviceName": str,
    "nonce": int,
    "productId": str,
    "timestamp": int,
    "signature": str,
}


class _RegistrationRefusedError(Exception):
    """A registration request is refused with this answer code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Product:
    """One product of one cloud."""

    vendor: Vendor
    product_key: str
    """Aliyun's ProductKey, Tencent's ProductId, Quectel's PK."""
    product_secret: str = field(repr=False)


def _check_product(vendor: Vendor, product_key: str, product_secret: str) -> None:
    if not product_key or not product_secret:
        raise ConfigError(f"a {vendor} product needs a product key and a product secret")
    forbidden = {Vendor.ALIYUN: "&|", Vendor.TXYUN: "", Vendor.QUECTHING: ":;"}[vendor]
    if any(char in product_key for char in forbidden):
        raise ConfigError(f"a {vendor} product key must not contain {forbidden!r}: {product_key!r}")
    if vendor is Vendor.TXYUN and not TXYUN_PRODUCT_ID_RE.fullmatch(product_key):
        raise ConfigError(f"a txyun ProductId must be 10 of [A-Z0-9], not {product_key!r}")
    if vendor is Vendor.TXYUN and len(product_secret.encode()) < 16:
        raise ConfigError("a txyun ProductSecret must have at least 16 bytes (the AES key)")


def _derive_secret(vendor: Vendor, product_secret: str, device_name: str) -> str:
    if vendor is Vendor.QUECTHING:
        return quecthing_device_secret(product_secret=product_secret, device_name=device_name)
    digest = hmac.new(
        product_secret.encode(), f"{vendor}:{device_name}".encode(), hashlib.sha256
    ).digest()
    if vendor is Vendor.TXYUN:
        return base64.b64encode(digest[:16]).decode()
    return digest.hex()[:32]


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _random_text(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


class IotCloud:
    """Products and devices of the three clouds, their login check and registration."""

    def __init__(self) -> None:
        self._products: dict[tuple[Vendor, str], Product] = {}
        self._devices: dict[tuple[Vendor, str, str], str] = {}
        self.refusals: list[str] = []
        """Why logins and registrations were refused, oldest first (the last ``MAX_REFUSALS``)."""

    @classmethod
    def for_seed(cls, seed: int) -> IotCloud:
        """A cloud with one demo product per vendor, the same for the same seed.

        Args:
            seed: the fleet seed.

        Returns:
            The cloud; ``product(vendor)`` gives each demo product.
        """
        rng = random.Random(f"iot-cloud:{seed}")
        alnum = string.ascii_letters + string.digits
        cloud = cls()
        cloud.add_product(
            Vendor.ALIYUN, "a1" + _random_text(rng, alnum, 9), _random_text(rng, alnum, 16)
        )
        upper = string.ascii_uppercase + string.digits
        cloud.add_product(Vendor.TXYUN, _random_text(rng, upper, 10), _random_text(rng, alnum, 24))
        lower = string.ascii_lowercase + string.digits
        cloud.add_product(
            Vendor.QUECTHING, "p1" + _random_text(rng, lower, 4), _random_text(rng, alnum, 16)
        )
        return cloud

    # -- registry ---------------------------------------------------------------------------

    def add_product(self, vendor: Vendor, product_key: str, product_secret: str) -> None:
        """Create (or replace) a product.

        Args:
            vendor: its cloud.
            product_key: Aliyun's ProductKey (no ``&`` or ``|``), Tencent's ProductId
                (10 of ``[A-Z0-9]``), Quectel's PK (no ``:`` or ``;``).
            product_secret: its secret (Tencent: at least 16 bytes, the AES key).

        Raises:
            ConfigError: naming the value that breaks the vendor's rule.
        """
        _check_product(vendor, product_key, product_secret)
        self._products[vendor, product_key] = Product(vendor, product_key, product_secret)

    def add_device(
        self, vendor: Vendor, product_key: str, device_name: str, device_secret: str
    ) -> None:
        """Give one device of a known product a fixed secret instead of the derived one.

        Args:
            vendor: its cloud.
            product_key: its product.
            device_name: the DeviceName.
            device_secret: its secret (Tencent: the base64 PSK).

        Raises:
            ConfigError: for an unknown product, an empty name or secret, or a Tencent
                secret that is not base64.
        """
        self._known_product(vendor, product_key)
        if not device_name or not device_secret:
            raise ConfigError(f"a {vendor} device needs a name and a secret")
        if vendor is Vendor.TXYUN:
            try:
                base64.b64decode(device_secret, validate=True)
            except ValueError as exc:
                raise ConfigError(
                    f"the PSK of txyun device {device_name!r} must be base64 (value not shown)"
                ) from exc
        self._devices[vendor, product_key, device_name] = device_secret

    def products(self) -> tuple[Product, ...]:
        """Every product, in the order they were added."""
        return tuple(self._products.values())

    def product(self, vendor: Vendor) -> Product:
        """The first product of a vendor (the demo product of ``for_seed``).

        Raises:
            ConfigError: if the vendor has no product.
        """
        for product in self._products.values():
            if product.vendor is vendor:
                return product
        raise ConfigError(f"the cloud has no {vendor} product")

    def _known_product(self, vendor: Vendor, product_key: str) -> Product:
        product = self._products.get((vendor, product_key))
        if product is None:
            known = sorted(key for v, key in self._products if v is vendor)
            raise ConfigError(f"unknown {vendor} product {product_key!r}; known: {known}")
        return product

    def device_secret(self, vendor: Vendor, product_key: str, device_name: str) -> str:
        """The secret of a device (Tencent: the base64 PSK).

        Raises:
            ConfigError: for an unknown product.
        """
        product = self._known_product(vendor, product_key)
        fixed = self._devices.get((vendor, product_key, device_name))
        return fixed or _derive_secret(vendor, product.product_secret, device_name)

    def find_product_secret(self, vendor: Vendor, product_key: str) -> str | None:
        """The product's secret, or None for an unknown product (``SecretSource``)."""
        product = self._products.get((vendor, product_key))
        return None if product is None else product.product_secret

    def find_device_secret(self, vendor: Vendor, product_key: str, device_name: str) -> str | None:
        """The device's secret, or None for an unknown product (``SecretSource``)."""
        if (vendor, product_key) not in self._products:
            return None
        return self.device_secret(vendor, product_key, device_name)

    def _refuse(self, reason: str) -> None:
        self.refusals.append(reason)
        del self.refusals[:-MAX_REFUSALS]

    # -- MQTT logins ------------------------------------------------------------------------

    def authenticator(
        self, fallback: Authenticator, *, clock: Callable[[], float]
    ) -> Authenticator:
        """The broker's login check: cloud logins here, every other client to ``fallback``.

        Args:
            fallback: decides CONNECTs that are not shaped as an Aliyun, Tencent or
                quecthing login.
            clock: the cloud's time, epoch seconds (``time.time`` on a real-time broker),
                for Tencent's expiry.

        Returns:
            The check. A cloud login that is malformed, names an unknown product or is
            not signed with the right secret is refused, and the reason recorded.
        """

        def check(username: str | None, password: str | None, client_id: str) -> bool:
            vendor = identify_vendor(username, client_id)
            if vendor is None:
                return fallback(username, password, client_id)
            try:
                claim = parse_login(vendor, username, password, client_id)
            except ValueError as exc:
                self._refuse(f"{vendor} login {client_id!r}: {exc}")
                return False
            refusal = login_refusal(claim, self, now=int(clock()))
            if refusal is not None:
                self._refuse(f"{vendor} login {client_id!r}: {refusal}")
                return False
            return True

        return check

    # -- HTTP registration ------------------------------------------------------------------

    def aliyun_register(self, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
        """Answer ``POST /auth/register/device`` (Aliyun one type one secret).

        Args:
            body: the form-urlencoded fields productKey, deviceName, random, sign, signMethod.
            content_type: the request's Content-Type.

        Returns:
            HTTP status 200 and Aliyun's JSON answer: the DeviceSecret, or an error code
            and a message naming the problem.
        """
        try:
            product, device_name = self._aliyun_request(body, content_type)
        except _RegistrationRefusedError as exc:
            self._refuse(f"aliyun register: {exc.message}")
            return 200, {"code": exc.code, "message": exc.message}
        secret = self.device_secret(Vendor.ALIYUN, product.product_key, device_name)
        return 200, aliyun_register_answer(
            product_key=product.product_key, device_name=device_name, device_secret=secret
        )

    def _aliyun_request(self, body: bytes, content_type: str) -> tuple[Product, str]:
        bad = 460
        if _media_type(content_type) != _FORM:
            raise _RegistrationRefusedError(bad, f"Content-Type must be {_FORM}")
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _RegistrationRefusedError(bad, f"the form does not parse: {exc}") from exc
        missing = [name for name in _ALIYUN_FIELDS if not fields.get(name)]
        if missing:
            raise _RegistrationRefusedError(bad, f"missing or empty fields {missing}")
        pk, dn, method = fields["productKey"], fields["deviceName"], fields["signMethod"]
        if not _ALIYUN_DEVICE_NAME_RE.fullmatch(dn):
            raise _RegistrationRefusedError(
                bad, f"deviceName must be 4..32 of [A-Za-z0-9_-@.:], not {_cut(dn)}"
            )
        if method not in SIGN_METHODS:
            raise _RegistrationRefusedError(
                bad, f"signMethod must be one of {sorted(SIGN_METHODS)}, not {_cut(method)}"
            )
        product = self._products.get((Vendor.ALIYUN, pk))
        if product is None:
            raise _RegistrationRefusedError(6250, f"product not found: {_cut(pk)}")
        expected = aliyun_register_sign(
            product_key=pk,
            device_name=dn,
            product_secret=product.product_secret,
            random=fields["random"],
            digest=SIGN_METHODS[method],
        )
        if not hmac.compare_digest(expected.encode(), fields["sign"].lower().encode()):
            raise _RegistrationRefusedError(
                6288,
                f"sign check failed: the sign of {_cut(dn)} is not made with the ProductSecret",
            )
        return product, dn

    def txyun_register(
        self, body: bytes, content_type: str, now: int
    ) -> tuple[int, dict[str, Any]]:
        """Answer ``POST /register/dev`` (Tencent dynamic registration).

        Args:
            body: JSON ``{deviceName, nonce, productId, timestamp, signature}``.
            content_type: the request's Content-Type.
            now: the cloud's clock, epoch seconds.

        Returns:
            HTTP status 200 and Tencent's JSON answer: the PSK in the encrypted payload,
            or an error code and a message naming the problem.
        """
        try:
            product, device_name = self._txyun_request(body, content_type, now)
        except _RegistrationRefusedError as exc:
            self._refuse(f"txyun register: {exc.message}")
            return 200, {"code": exc.code, "message": exc.message}
        psk = self.device_secret(Vendor.TXYUN, product.product_key, device_name)
        return 200, txyun_register_answer(psk=psk, product_secret=product.product_secret)

    def _txyun_request(self, body: bytes, content_type: str, now: int) -> tuple[Product, str]:
        bad = 1001
        if _media_type(content_type) != _JSON:
            raise _RegistrationRefusedError(bad, f"Content-Type must be {_JSON}")
        try:
            request = decode_json(body, REGISTER_LIMITS)
        except ValueError as exc:  # not UTF-8, not JSON, or over REGISTER_LIMITS
            raise _RegistrationRefusedError(
                bad, f"the body is not JSON within the limits: {str(exc)[:100]}"
            ) from exc
        if not isinstance(request, dict) or not all(
            type(request.get(name)) is kind for name, kind in _TXYUN_FIELDS.items()
        ):
            raise _RegistrationRefusedError(
                bad,
                f"expected a JSON object with {list(_TXYUN_FIELDS)}: "
                "nonce and timestamp integers, the others strings",
            )
        pid, dn, timestamp = request["productId"], request["deviceName"], request["timestamp"]
        if not _TXYUN_DEVICE_NAME_RE.fullmatch(dn):
            raise _RegistrationRefusedError(
                bad, f"deviceName must be 1..48 of [A-Za-z0-9:_-], not {_cut(dn)}"
            )
        product = self._products.get((Vendor.TXYUN, pid))
        if product is None:
            raise _RegistrationRefusedError(1002, f"product not found: {_cut(pid)}")
        if abs(timestamp - now) > TXYUN_TIMESTAMP_WINDOW_S:
            raise _RegistrationRefusedError(
                1003, f"timestamp {timestamp} is over {TXYUN_TIMESTAMP_WINDOW_S} s from {now}"
            )
        expected = txyun_register_signature(
            product_id=pid,
            device_name=dn,
            product_secret=product.product_secret,
            nonce=request["nonce"],
            timestamp=timestamp,
        )
        if not hmac.compare_digest(expected.encode(), request["signature"].encode()):
            raise _RegistrationRefusedError(
                1004, f"signature check failed: {_cut(dn)} did not sign with the ProductSecret"
            )
        return product, dn
