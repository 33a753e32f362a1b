"""IoT cloud login signing and its checks: known answers computed independently, and refusals.

The known answers are recomputed here with ``hmac``/``hashlib``/``base64`` directly (and,
for AES, with ``cryptography``'s primitives and a vector checked once against
``openssl enc -aes-128-cbc -nopad``), from the seed's example credentials
(docs/spec/quec.md#8.6, #8.7).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Literal

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from vdtu.cloud.iot_sign import (
    KeyKind,
    MqttLogin,
    Vendor,
    aliyun_login,
    aliyun_register_answer,
    aliyun_register_form,
    identify_vendor,
    login_refusal,
    parse_aliyun_register_answer,
    parse_login,
    parse_txyun_register_answer,
    quecthing_device_secret,
    quecthing_login,
    txyun_decrypt_payload,
    txyun_encrypt_payload,
    txyun_login,
    txyun_register_answer,
    txyun_register_body,
)

# The seed's examples (docs/spec/quec.md#8.6 and #8.7).
ALI_PK, ALI_DN, ALI_DS = "a1QNbCDxIWM", "light01", "0bceb8010ade0df2e6989982e63f7601"
TX_PID, TX_DN, TX_PSK = "H7MBLRYXN9", "Smart_test01", "89c7tXT3s3grZTr/YFjxSg=="
TX_PS = "ABCDEFGHIJKLMNOPQRSTUVWX"
QT_PK, QT_PS, QT_DN = "p1abcd", "quecProductSecret", "867435053362828"
NOW = 1_700_000_000

# txyun_encrypt_payload({"encryptionType": 2, "psk": TX_PSK}, TX_PS), checked with
# openssl enc -aes-128-cbc -K hex(TX_PS[:16]) -iv hex("0"*16) -nopad on the zero-padded JSON.
TX_VECTOR = (
    "XTv6+/pNsmYOjNuQMIRnuFxuHUQVku+U92TIpe/fPXdnYrimdDNOaohYayihtJPfk91WULHos9YrBo7+jURXww=="
)


class Secrets:
    """A ``SecretSource`` over plain dicts."""

    def __init__(
        self,
        products: dict[tuple[Vendor, str], str],
        devices: dict[tuple[Vendor, str, str], str],
    ) -> None:
        self.products = products
        self.devices = devices

    def find_product_secret(self, vendor: Vendor, product_key: str) -> str | None:
        return self.products.get((vendor, product_key))

    def find_device_secret(self, vendor: Vendor, product_key: str, device_name: str) -> str | None:
        return self.devices.get((vendor, product_key, device_name))


SECRETS = Secrets(
    {
        (Vendor.ALIYUN, ALI_PK): "aliProductSecret",
        (Vendor.TXYUN, TX_PID): TX_PS,
        (Vendor.QUECTHING, QT_PK): QT_PS,
    },
    {
        (Vendor.ALIYUN, ALI_PK, ALI_DN): ALI_DS,
        (Vendor.TXYUN, TX_PID, TX_DN): TX_PSK,
        (Vendor.QUECTHING, QT_PK, QT_DN): "quecDeviceSecret",
    },
)


def refusal(login: MqttLogin, secrets: Secrets = SECRETS, now: int = NOW) -> str | None:
    """What the cloud says to a login (None: accepted)."""
    vendor = identify_vendor(login.username, login.client_id)
    assert vendor is not None
    claim = parse_login(vendor, login.username, login.password, login.client_id)
    return login_refusal(claim, secrets, now=now)


def hmac_hex(key: bytes, text: str, digest: str = "sha256") -> str:
    return hmac.new(key, text.encode(), getattr(hashlib, digest)).hexdigest()


# -- Aliyun ---------------------------------------------------------------------------------


def test_aliyun_login_signs_client_id_device_name_and_product_key() -> None:
    """Client id, user name and the HMAC-SHA256 password follow the firmware's aLiYun."""
    login = aliyun_login(
        product_key=ALI_PK, device_name=ALI_DN, device_secret=ALI_DS, client_id="test_mos"
    )
    assert login.client_id == "test_mos|securemode=3,signmethod=hmacsha256|"
    assert login.username == "light01&a1QNbCDxIWM"
    expected = hmac.new(
        ALI_DS.encode(), b"clientIdtest_mosdeviceNamelight01productKeya1QNbCDxIWM", hashlib.sha256
    ).hexdigest()
    assert login.password == expected
    assert ALI_DS not in repr(login)


def test_aliyun_login_without_client_id_uses_the_device_name() -> None:
    """An empty clientID signs and sends the device name in its place."""
    login = aliyun_login(product_key=ALI_PK, device_name=ALI_DN, device_secret=ALI_DS, client_id="")
    assert login.client_id.startswith("light01|")
    assert login.password == hmac_hex(
        ALI_DS.encode(), f"clientId{ALI_DN}deviceName{ALI_DN}productKey{ALI_PK}"
    )


@pytest.mark.parametrize("empty", ["product_key", "device_name", "device_secret"])
def test_aliyun_login_refuses_an_empty_field(empty: str) -> None:
    """Each required field, when empty, is named in the error."""
    fields = {"product_key": ALI_PK, "device_name": ALI_DN, "device_secret": ALI_DS}
    fields[empty] = ""
    with pytest.raises(ValueError, match=empty):
        aliyun_login(**fields, client_id="x")


def test_aliyun_register_form_signs_with_the_product_secret() -> None:
    """The form has the five fields; sign is HMAC-SHA256(ProductSecret, deviceName..random..)."""
    form = aliyun_register_form(
        product_key=ALI_PK, device_name=ALI_DN, product_secret="ps123", random=4711
    )
    assert form == {
        "productKey": ALI_PK,
        "deviceName": ALI_DN,
        "random": "4711",
        "sign": hmac_hex(b"ps123", f"deviceName{ALI_DN}productKey{ALI_PK}random4711"),
        "signMethod": "hmacsha256",
    }


def test_aliyun_register_answer_parses_back_to_the_secret() -> None:
    """The success answer carries the DeviceSecret in data.deviceSecret."""
    answer = aliyun_register_answer(product_key=ALI_PK, device_name=ALI_DN, device_secret=ALI_DS)
    assert answer["code"] == 200
    assert parse_aliyun_register_answer(json.dumps(answer).encode()) == ALI_DS


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"code": 6288, "message": "sign check failed"}', "code 6288: 'sign check failed'"),
        (b"<html>", "not JSON"),
        (b"[200]", "JSON object"),
        (b'{"code": 200, "data": {}}', "deviceSecret"),
        (b'{"code": 200, "data": "x"}', "deviceSecret"),
    ],
)
def test_parse_aliyun_register_answer_refuses_errors_and_bad_answers(
    body: bytes, match: str
) -> None:
    """An error code, non-JSON or a missing secret is a ValueError that says which."""
    with pytest.raises(ValueError, match=match):
        parse_aliyun_register_answer(body)


# -- Tencent --------------------------------------------------------------------------------


def test_txyun_login_signs_the_username_with_the_decoded_psk() -> None:
    """Client id = ProductId + DeviceName; the password is HMAC(base64decode(PSK), username)."""
    login = txyun_login(
        product_id=TX_PID, device_name=TX_DN, psk_b64=TX_PSK, connid=12345, expiry=NOW + 3600
    )
    assert login.client_id == "H7MBLRYXN9Smart_test01"
    assert login.username == f"H7MBLRYXN9Smart_test01;12010126;12345;{NOW + 3600}"
    key = base64.b64decode(TX_PSK)
    assert login.password == hmac_hex(key, login.username) + ";hmacsha256"


def test_txyun_login_refuses_a_psk_that_is_not_base64() -> None:
    """A DeviceSecret that is not base64 is named, without its value."""
    with pytest.raises(ValueError, match="psk_b64 must be base64") as caught:
        txyun_login(product_id=TX_PID, device_name=TX_DN, psk_b64="not*b64", connid=1, expiry=1)
    assert "not*b64" not in str(caught.value)


def test_txyun_register_body_signature_is_base64_of_hex_hmac_sha1() -> None:
    """signature = base64(hex(HMAC-SHA1(ProductSecret, deviceName=..&nonce=..&...)))."""
    body = txyun_register_body(
        product_id=TX_PID, device_name=TX_DN, product_secret=TX_PS, nonce=42, timestamp=NOW
    )
    signed = f"deviceName={TX_DN}&nonce=42&productId={TX_PID}&timestamp={NOW}"
    hex_sha1 = hmac_hex(TX_PS.encode(), signed, "sha1")
    assert body == {
        "deviceName": TX_DN,
        "nonce": 42,
        "productId": TX_PID,
        "timestamp": NOW,
        "signature": base64.b64encode(hex_sha1.encode()).decode(),
    }


def test_txyun_payload_encryption_matches_a_fixed_vector_and_aes_primitives() -> None:
    """JSON zero-padded to 16, AES-128-CBC (key PS[:16], IV "0"*16), base64; and back."""
    payload = {"encryptionType": 2, "psk": TX_PSK}
    text = txyun_encrypt_payload(payload, TX_PS)
    assert text == TX_VECTOR
    decryptor = Cipher(algorithms.AES(TX_PS[:16].encode()), modes.CBC(b"0" * 16)).decryptor()
    plain = decryptor.update(base64.b64decode(text)) + decryptor.finalize()
    assert plain == b'{"encryptionType":2,"psk":"89c7tXT3s3grZTr/YFjxSg=="}' + b"\0" * 11
    assert txyun_decrypt_payload(TX_VECTOR, TX_PS) == payload


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=40), max_size=4))
def test_txyun_payload_round_trips(payload: dict[str, str]) -> None:
    """Any JSON object of strings decrypts to itself (trailing NULs never belong to JSON)."""
    assert txyun_decrypt_payload(txyun_encrypt_payload(payload, TX_PS), TX_PS) == payload


@pytest.mark.parametrize(
    ("text", "secret", "match"),
    [
        ("not base64!", TX_PS, "not base64"),
        (base64.b64encode(b"x" * 15).decode(), TX_PS, "16-byte AES blocks, not 15"),
        ("", TX_PS, "not 0 bytes"),
        (TX_VECTOR, "ZYXWVUTSRQPONMLKJIHGFEDCBA", "does not decrypt to JSON"),
        (TX_VECTOR, "short", "at least 16 bytes"),
    ],
)
def test_txyun_decrypt_payload_refuses_bad_input(text: str, secret: str, match: str) -> None:
    """Bad base64, partial blocks, a wrong or short ProductSecret: each a specific ValueError."""
    with pytest.raises(ValueError, match=match):
        txyun_decrypt_payload(text, secret)


def test_txyun_register_answer_parses_back_to_the_psk() -> None:
    """The answer's payload decrypts to the PSK; len is the JSON's length before padding."""
    answer = txyun_register_answer(psk=TX_PSK, product_secret=TX_PS)
    assert (answer["code"], answer["message"], answer["len"]) == (0, "", 53)
    assert answer["payload"] == TX_VECTOR
    assert parse_txyun_register_answer(json.dumps(answer).encode(), TX_PS) == TX_PSK


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        ({"code": 1004, "message": "signature check failed"}, "code 1004"),
        ({"code": 0, "message": ""}, "no payload"),
        (
            {"code": 0, "payload": txyun_encrypt_payload({"encryptionType": 1}, TX_PS)},
            "encryptionType 2",
        ),
        ({"code": 0, "payload": txyun_encrypt_payload({"encryptionType": 2}, TX_PS)}, "no psk"),
    ],
)
def test_parse_txyun_register_answer_refuses_errors_and_bad_payloads(
    answer: dict[str, object], match: str
) -> None:
    """An error code, no payload, a certificate payload or one without psk: ValueError."""
    with pytest.raises(ValueError, match=match):
        parse_txyun_register_answer(json.dumps(answer).encode(), TX_PS)


# -- quecthing ----------------------------------------------------------------------------------


def test_quecthing_login_prefers_the_device_secret() -> None:
    """With a DS the login is mode ds, signed with it; the PS is not used."""
    login = quecthing_login(
        product_key=QT_PK, product_secret=QT_PS, device_name=QT_DN, device_secret="ds1"
    )
    assert login.client_id == f"qd:{QT_PK}:{QT_DN}"
    assert login.username == f"{QT_PK};ds"
    assert login.password == hmac_hex(b"ds1", f"deviceName{QT_DN}modedsproductKey{QT_PK}")


def test_quecthing_login_without_device_secret_signs_with_the_product_secret() -> None:
    """Without a DS the login is mode ps, signed with the PS."""
    login = quecthing_login(
        product_key=QT_PK, product_secret=QT_PS, device_name=QT_DN, device_secret=""
    )
    assert login.username == f"{QT_PK};ps"
    assert login.password == hmac_hex(QT_PS.encode(), f"deviceName{QT_DN}modepsproductKey{QT_PK}")


def test_quecthing_login_needs_a_secret_and_a_clean_product_key() -> None:
    """No secret at all, or a PK with the client id's separator, is refused."""
    with pytest.raises(ValueError, match="both are empty"):
        quecthing_login(product_key=QT_PK, product_secret="", device_name=QT_DN, device_secret="")
    with pytest.raises(ValueError, match="must not contain"):
        quecthing_login(product_key="p:1", product_secret="s", device_name=QT_DN, device_secret="")


def test_quecthing_device_secret_is_32_hex_of_an_hmac() -> None:
    """The DS a ps device gets: the first 32 hex digits of HMAC-SHA256(PS, quecthing:<dn>)."""
    expected = hmac_hex(QT_PS.encode(), f"quecthing:{QT_DN}")[:32]
    assert quecthing_device_secret(product_secret=QT_PS, device_name=QT_DN) == expected


# -- the cloud side -----------------------------------------------------------------------------


def aliyun() -> MqttLogin:
    return aliyun_login(product_key=ALI_PK, device_name=ALI_DN, device_secret=ALI_DS, client_id="c")


def txyun(expiry: int = NOW + 3600) -> MqttLogin:
    return txyun_login(
        product_id=TX_PID, device_name=TX_DN, psk_b64=TX_PSK, connid=12345, expiry=expiry
    )


def quecthing(device_secret: str = "quecDeviceSecret") -> MqttLogin:
    return quecthing_login(
        product_key=QT_PK, product_secret=QT_PS, device_name=QT_DN, device_secret=device_secret
    )


@pytest.mark.parametrize(
    ("username", "client_id", "vendor"),
    [
        ("dn&pk", "c|securemode=3,signmethod=hmacsha256|", Vendor.ALIYUN),
        ("dn&pk", "|securemode=2,signmethod=hmacsha1,timestamp=1|", Vendor.ALIYUN),
        ("H7MBLRYXN9d;12010126;1;2", "H7MBLRYXN9d", Vendor.TXYUN),
        ("pk;ds", "qd:pk:dn", Vendor.QUECTHING),
        ("867435053362828", "xgc-867435053362828", None),
        (None, "c|signmethod=hmacsha256|", None),
        (None, "console", None),
    ],
)
def test_identify_vendor_by_the_shape_of_the_connect(
    username: str | None, client_id: str, vendor: Vendor | None
) -> None:
    """Aliyun by its client id parameters, Tencent by its user name, quecthing by qd:."""
    assert identify_vendor(username, client_id) == vendor


def test_valid_logins_of_each_vendor_are_accepted() -> None:
    """Logins signed with the registered secrets pass ``login_refusal``."""
    assert refusal(aliyun()) is None
    assert refusal(txyun()) is None
    assert refusal(quecthing()) is None
    assert refusal(quecthing(device_secret="")) is None


def test_wrong_device_secret_is_refused() -> None:
    """A login signed with another secret is refused, naming the device and the key kind."""
    wrong = aliyun_login(
        product_key=ALI_PK, device_name=ALI_DN, device_secret="x" * 32, client_id="c"
    )
    assert refusal(wrong) == "the password is not signed with the DeviceSecret of 'light01'"
    wrong_psk = txyun_login(
        product_id=TX_PID,
        device_name=TX_DN,
        psk_b64=base64.b64encode(b"another key 16 b").decode(),
        connid=1,
        expiry=NOW + 60,
    )
    assert refusal(wrong_psk) == "the password is not signed with the device PSK of 'Smart_test01'"
    assert refusal(quecthing(device_secret="guess")) is not None


def test_unknown_product_and_device_are_refused() -> None:
    """A product the cloud does not know, or a device it has no secret for, is refused."""
    other = aliyun_login(
        product_key="a1Other", device_name=ALI_DN, device_secret=ALI_DS, client_id="c"
    )
    assert refusal(other) == "unknown aliyun product 'a1Other'"
    stranger = aliyun_login(
        product_key=ALI_PK, device_name="stranger", device_secret=ALI_DS, client_id="c"
    )
    assert refusal(stranger) == "unknown device 'stranger' in product 'a1QNbCDxIWM'"


def test_expired_tencent_login_is_refused() -> None:
    """expiry < now is refused; expiry == now still holds."""
    assert refusal(txyun(expiry=NOW - 1)) == f"login expired at {NOW - 1} (now {NOW})"
    assert refusal(txyun(expiry=NOW)) is None


def test_aliyun_check_takes_other_sdks_sign_methods_and_timestamp() -> None:
    """hmacsha1 with a timestamp parameter: the timestamp joins the signed text."""
    signed = f"clientIdsdk-1deviceName{ALI_DN}productKey{ALI_PK}timestamp1524448722000"
    password = hmac_hex(ALI_DS.encode(), signed, "sha1").upper()
    login = MqttLogin(
        "sdk-1|securemode=2,signmethod=hmacsha1,timestamp=1524448722000,_v=sdk-c-1.0|",
        f"{ALI_DN}&{ALI_PK}",
        password,
    )
    assert refusal(login) is None


def test_tampered_claims_are_refused() -> None:
    """Changing the signed text or the device after signing breaks the signature."""
    login = txyun()
    claim = parse_login(Vendor.TXYUN, login.username, login.password, login.client_id)
    assert (claim.product_key, claim.device_name, claim.key) == (TX_PID, TX_DN, KeyKind.DEVICE_PSK)
    assert login_refusal(claim, SECRETS, now=NOW) is None
    later = replace(claim, signed=claim.signed.replace(str(NOW + 3600), str(NOW + 99999)))
    assert login_refusal(later, SECRETS, now=NOW) == (
        "the password is not signed with the device PSK of 'Smart_test01'"
    )
    other = replace(claim, device_name="Smart_test02")
    assert login_refusal(other, SECRETS, now=NOW) == (
        "unknown device 'Smart_test02' in product 'H7MBLRYXN9'"
    )


ALI_CID = "c|securemode=3,signmethod=hmacsha256|"
TX_USER = "H7MBLRYXN9d;12010126;1;2"
A, T, Q = Vendor.ALIYUN, Vendor.TXYUN, Vendor.QUECTHING
MALFORMED = [
    (A, None, "ab", ALI_CID, "user name and a password"),
    (A, "dn&pk", "ab", "c|securemode=3,authType=register,random=1|", "register over HTTP"),
    (A, "dn&pk", "ab", "c|securemode=1,signmethod=hmacsha256|", "securemode must be 2 or 3"),
    (A, "dn&pk", "ab", "c|securemode=3,signmethod=sha512|", "signmethod must be one of"),
    (A, "dn&pk", "ab", "c|securemode=3,bogus|", "'bogus' is not name=value"),
    (A, "dnpk", "ab", ALI_CID, "<DeviceName>&<ProductKey>"),
    (A, "dn&pk", "xyz", ALI_CID, "hex HMAC"),
    (A, "dn&pk", "\u00e9", ALI_CID, "hex HMAC"),
    (T, "H7MBLRYXN9d;12010126;1", "ab;hmacsha256", "H7MBLRYXN9d", "<connid>;<expiry>"),
    (T, TX_USER, "ab;hmacsha256", "H7MBLRYXN9e", "not the client id"),
    (T, "H7MBLRYXN9d;1;12010126;2", "ab;hmacsha256", "H7MBLRYXN9d", "second field"),
    (T, "H7MBLRYXN9d;12010126;1;soon", "ab;hmacsha256", "H7MBLRYXN9d", "expiry decimal"),
    (T, "h7mblryxn9d;12010126;1;2", "ab;hmacsha256", "h7mblryxn9d", "10-character ProductId"),
    (T, "H7MBLRYXN9;12010126;1;2", "ab;hmacsha256", "H7MBLRYXN9", "10-character ProductId"),
    (T, TX_USER, "ab;hmacmd5", "H7MBLRYXN9d", "hmacsha256 or ;hmacsha1"),
    (T, TX_USER, "zz;hmacsha256", "H7MBLRYXN9d", "hex HMAC"),
    (Q, "pk;ds", "ab", "qd:pk", "qd:<ProductKey>:<DeviceName>"),
    (Q, "other;ds", "ab", "qd:pk:dn", "pk;ds or pk;ps"),
    (Q, "pk;xx", "ab", "qd:pk:dn", "pk;ds or pk;ps"),
]


@pytest.mark.parametrize(("vendor", "username", "password", "client_id", "match"), MALFORMED)
def test_malformed_logins_are_named(
    vendor: Vendor, username: str | None, password: str, client_id: str, match: str
) -> None:
    """A login shaped for a vendor but broken raises ValueError naming the bad field."""
    with pytest.raises(ValueError, match=match):
        parse_login(vendor, username, password, client_id)


names = st.text(st.characters(categories=("L", "N"), include_characters="_-@."), min_size=1)


NO_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
"""Lone surrogates cannot be sent as UTF-8 (a separate test checks they are refused)."""
texts = st.characters(exclude_categories=NO_SURROGATES)


@given(
    dn=names,
    ds=st.text(texts, min_size=1),
    cid=st.text(st.characters(exclude_categories=NO_SURROGATES, exclude_characters="|")),
)
def test_any_aliyun_login_verifies_with_its_own_secret(dn: str, ds: str, cid: str) -> None:
    """Whatever the name, secret and client id, the cloud side accepts what the device signed."""
    login = aliyun_login(product_key=ALI_PK, device_name=dn, device_secret=ds, client_id=cid)
    secrets = Secrets({(Vendor.ALIYUN, ALI_PK): "ps"}, {(Vendor.ALIYUN, ALI_PK, dn): ds})
    assert refusal(login, secrets) is None


def test_a_login_with_a_lone_surrogate_is_a_value_error() -> None:
    """Text that cannot go on the wire as UTF-8 is refused, not sent half-encoded."""
    with pytest.raises(ValueError, match="surrogates"):
        aliyun_login(product_key=ALI_PK, device_name="dn", device_secret="ds", client_id="\ud800")


@given(dn=names, key=st.binary(min_size=1, max_size=32), connid=st.integers(0, 99999))
def test_any_txyun_login_verifies_with_its_own_psk(dn: str, key: bytes, connid: int) -> None:
    """Whatever the name and PSK, the cloud side accepts what the device signed."""
    psk = base64.b64encode(key).decode()
    login = txyun_login(
        product_id=TX_PID, device_name=dn, psk_b64=psk, connid=connid, expiry=NOW + 1
    )
    secrets = Secrets({(Vendor.TXYUN, TX_PID): TX_PS}, {(Vendor.TXYUN, TX_PID, dn): psk})
    assert refusal(login, secrets) is None
