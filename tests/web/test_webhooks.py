"""Tests for Standard Webhooks signing and verification."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadrelay.web.webhooks import (
    WebhookVerificationError,
    decode_secret,
    generate_secret,
    sign,
    sign_headers,
    verify,
    verify_and_match,
)

# The vector from the standard-webhooks reference libraries' tests (test_sign_function).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_700_000_000
FIXED_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()

PROPERTY = settings(max_examples=200, deadline=None)

# Visible ASCII: what fits in an HTTP header value without being trimmed or re-encoded.
id_characters = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
msg_ids = st.text(alphabet=id_characters, min_size=1, max_size=64)
bodies = st.binary(max_size=2048)
timestamps = st.integers(min_value=0, max_value=10**12)


def bogus_v1() -> st.SearchStrategy[str]:
    return st.binary(min_size=32, max_size=32).map(
        lambda raw: "v1," + base64.b64encode(raw).decode()
    )


def headers_for(
    secret: str, body: bytes, msg_id: str = "msg_1", timestamp: int = NOW
) -> dict[str, str]:
    return sign_headers(secret, body, msg_id=msg_id, timestamp=timestamp)


def code_of(excinfo: pytest.ExceptionInfo[WebhookVerificationError]) -> str:
    return excinfo.value.code


def test_sign_matches_spec_test_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_verify_accepts_spec_test_vector() -> None:
    headers = {
        "webhook-id": SPEC_MSG_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    assert verify([SPEC_SECRET], headers, SPEC_BODY, now=SPEC_TIMESTAMP) == SPEC_MSG_ID


def test_sign_accepts_secret_without_prefix() -> None:
    bare = SPEC_SECRET.removeprefix("whsec_")
    assert sign(bare, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_generate_secret_is_prefixed_random_and_long_enough() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_")
    assert first != second
    assert 24 <= len(decode_secret(first)) <= 32


def test_decode_secret_rejects_malformed_without_echoing_it() -> None:
    with pytest.raises(ValueError) as excinfo:
        decode_secret("whsec_not*base64!")
    assert "not*base64" not in str(excinfo.value)
    with pytest.raises(ValueError):
        decode_secret("whsec_")


def test_sign_headers_fills_id_and_timestamp() -> None:
    headers = sign_headers(FIXED_SECRET, b"{}")
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-id"] != sign_headers(FIXED_SECRET, b"{}")["webhook-id"]
    assert verify([FIXED_SECRET], headers, b"{}") == headers["webhook-id"]


def test_verify_looks_headers_up_case_insensitively() -> None:
    headers = {name.title(): value for name, value in headers_for(FIXED_SECRET, b"x").items()}
    assert "Webhook-Signature" in headers
    assert verify([FIXED_SECRET], headers, b"x", now=NOW) == "msg_1"


@pytest.mark.parametrize("dropped", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_rejects_missing_header(dropped: str) -> None:
    headers = headers_for(FIXED_SECRET, b"x")
    del headers[dropped]
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"x", now=NOW)
    assert code_of(excinfo) == "webhook_headers_missing"
    assert dropped in excinfo.value.message


def test_verify_rejects_empty_header() -> None:
    headers = headers_for(FIXED_SECRET, b"x") | {"webhook-id": ""}
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"x", now=NOW)
    assert code_of(excinfo) == "webhook_headers_missing"


@pytest.mark.parametrize("value", ["hello", "1700000000.5", "-1700000000", "1e9", "١٧٠٠٠٠٠٠٠٠"])
def test_verify_rejects_malformed_timestamp(value: str) -> None:
    headers = headers_for(FIXED_SECRET, b"x") | {"webhook-timestamp": value}
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"x", now=NOW)
    assert code_of(excinfo) == "webhook_timestamp_invalid"


@pytest.mark.parametrize("offset", [-301, 301])
def test_verify_rejects_timestamp_just_outside_tolerance(offset: int) -> None:
    headers = headers_for(FIXED_SECRET, b"x", timestamp=NOW + offset)
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"x", now=NOW)
    assert code_of(excinfo) == "webhook_timestamp_out_of_tolerance"
    assert "301 seconds" in excinfo.value.message


@pytest.mark.parametrize("offset", [-300, 300])
def test_verify_accepts_timestamp_at_tolerance_edge(offset: int) -> None:
    headers = headers_for(FIXED_SECRET, b"x", timestamp=NOW + offset)
    assert verify([FIXED_SECRET], headers, b"x", now=NOW) == "msg_1"


def test_verify_rejects_wrong_secret_without_leaking_either() -> None:
    headers = headers_for(OTHER_SECRET, b"x")
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"x", now=NOW)
    assert code_of(excinfo) == "webhook_signature_invalid"
    text = str(excinfo.value) + repr(excinfo.value)
    for secret in (FIXED_SECRET, OTHER_SECRET):
        assert secret.removeprefix("whsec_") not in text


@pytest.mark.parametrize(
    "signature",
    ["", "v2,abc", "v1a,aGVsbG8=", "v1,", "v1,***not-base64***", "garbage", "v1 , x"],
)
def test_verify_rejects_header_without_usable_v1_signature(signature: str) -> None:
    headers = headers_for(FIXED_SECRET, b"x")
    headers["webhook-signature"] = signature or " "
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"x", now=NOW)
    assert code_of(excinfo) == "webhook_signature_invalid"


def test_verify_ignores_valid_digest_under_other_version() -> None:
    headers = headers_for(FIXED_SECRET, b"x")
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"x", now=NOW)
    assert code_of(excinfo) == "webhook_signature_invalid"


def test_verify_refuses_misconfiguration() -> None:
    headers = headers_for(FIXED_SECRET, b"x")
    with pytest.raises(ValueError):
        verify([], headers, b"x", now=NOW)
    with pytest.raises(ValueError):
        verify([FIXED_SECRET], headers, b"x", now=NOW, tolerance=-1)


@PROPERTY
@given(body=bodies, msg_id=msg_ids, timestamp=timestamps)
def test_verify_roundtrips_any_signed_message(body: bytes, msg_id: str, timestamp: int) -> None:
    headers = sign_headers(FIXED_SECRET, body, msg_id=msg_id, timestamp=timestamp)
    assert verify([FIXED_SECRET], headers, body, now=timestamp) == msg_id


@PROPERTY
@given(body=bodies.filter(bool), data=st.data())
def test_verify_rejects_any_single_byte_change_to_body(body: bytes, data: st.DataObject) -> None:
    headers = headers_for(FIXED_SECRET, body)
    index = data.draw(st.integers(0, len(body) - 1))
    delta = data.draw(st.integers(1, 255))
    tampered = bytearray(body)
    tampered[index] ^= delta
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, bytes(tampered), now=NOW)
    assert code_of(excinfo) == "webhook_signature_invalid"


@PROPERTY
@given(msg_id=msg_ids, data=st.data())
def test_verify_rejects_any_single_character_change_to_id(msg_id: str, data: st.DataObject) -> None:
    headers = headers_for(FIXED_SECRET, b"{}", msg_id=msg_id)
    index = data.draw(st.integers(0, len(msg_id) - 1))
    replacement = data.draw(id_characters.filter(lambda c: c != msg_id[index]))
    headers["webhook-id"] = msg_id[:index] + replacement + msg_id[index + 1 :]
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"{}", now=NOW)
    assert code_of(excinfo) == "webhook_signature_invalid"


@PROPERTY
@given(timestamp=timestamps, data=st.data())
def test_verify_rejects_any_single_digit_change_to_timestamp(
    timestamp: int, data: st.DataObject
) -> None:
    headers = headers_for(FIXED_SECRET, b"{}", timestamp=timestamp)
    text = str(timestamp)
    index = data.draw(st.integers(0, len(text) - 1))
    digit = data.draw(st.sampled_from("0123456789").filter(lambda d: d != text[index]))
    headers["webhook-timestamp"] = text[:index] + digit + text[index + 1 :]
    # A tolerance wider than any drawn change isolates the signature check from the clock check.
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"{}", now=timestamp, tolerance=10**13)
    assert code_of(excinfo) == "webhook_signature_invalid"


@PROPERTY
@given(
    body=bodies,
    decoys=st.lists(
        st.one_of(
            bogus_v1(),
            st.sampled_from(["v1a,aGVsbG8=", "v2,abc", "v1,!!", "junk", "v1,"]),
        ),
        max_size=6,
    ),
    data=st.data(),
)
def test_verify_accepts_one_valid_signature_among_many(
    body: bytes, decoys: list[str], data: st.DataObject
) -> None:
    headers = headers_for(FIXED_SECRET, body)
    position = data.draw(st.integers(0, len(decoys)))
    signatures = decoys[:position] + [headers["webhook-signature"]] + decoys[position:]
    headers["webhook-signature"] = " ".join(signatures)
    assert verify([FIXED_SECRET], headers, body, now=NOW) == "msg_1"


@PROPERTY
@given(body=bodies, decoys=st.lists(bogus_v1(), min_size=1, max_size=6))
def test_verify_rejects_when_every_signature_is_wrong(body: bytes, decoys: list[str]) -> None:
    headers = headers_for(FIXED_SECRET, body) | {"webhook-signature": " ".join(decoys)}
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, body, now=NOW)
    assert code_of(excinfo) == "webhook_signature_invalid"


@PROPERTY
@given(body=bodies, old_first=st.booleans())
def test_verify_accepts_old_secret_during_rotation(body: bytes, old_first: bool) -> None:
    new_secret = FIXED_SECRET
    headers = headers_for(OTHER_SECRET, body)
    grace = [OTHER_SECRET, new_secret] if old_first else [new_secret, OTHER_SECRET]
    assert verify(grace, headers, body, now=NOW) == "msg_1"
    with pytest.raises(WebhookVerificationError):
        verify([new_secret], headers, body, now=NOW)


@PROPERTY
@given(
    tolerance=st.integers(0, 3600),
    excess=st.integers(1, 10**9),
    future=st.booleans(),
    fraction=st.floats(0, 0.999),
)
def test_verify_rejects_any_timestamp_out_of_tolerance(
    tolerance: int, excess: int, future: bool, fraction: float
) -> None:
    offset = (tolerance + excess) * (1 if future else -1)
    headers = headers_for(FIXED_SECRET, b"{}", timestamp=NOW + offset)
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify([FIXED_SECRET], headers, b"{}", now=NOW + fraction, tolerance=tolerance)
    assert code_of(excinfo) == "webhook_timestamp_out_of_tolerance"


def test_verify_and_match_names_the_secret_that_signed() -> None:
    headers = sign_headers(OTHER_SECRET, SPEC_BODY, msg_id="msg_x", timestamp=NOW)
    found = verify_and_match([FIXED_SECRET, OTHER_SECRET], headers, SPEC_BODY, now=NOW)
    assert found == ("msg_x", 1)
    both = {**headers, "webhook-signature": sign(FIXED_SECRET, "msg_x", NOW, SPEC_BODY)
            + " " + headers["webhook-signature"]}  # fmt: skip
    assert verify_and_match([OTHER_SECRET, FIXED_SECRET], both, SPEC_BODY, now=NOW)[1] == 0
