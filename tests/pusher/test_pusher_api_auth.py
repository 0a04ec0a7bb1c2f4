"""Pusher's HTTP API signatures checked server-side (leadrelay.pusher.api_auth), against
requests signed by the real `pusher` package: what it signs verifies, and any change to
what it signed is a 401."""

from __future__ import annotations

import hashlib
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pusher.http
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pusher.pusher_client import PusherClient

from leadrelay.errors import PusherApiRefused
from leadrelay.pusher.api_auth import parse_query, signature, verify

APP = {"app_id": "4321", "key": "the-key", "secret": "the-secret-0123456789"}
SDK = PusherClient(APP["app_id"], APP["key"], APP["secret"], host="h", port=80, ssl=False)


def signed(method: str, path: str, params: dict[str, Any]) -> tuple[str, bytes, bytes]:
    """What the package sends: the path, the raw query and the body."""
    request = pusher.http.Request(SDK, method, path, params)
    parts = urlsplit(request.signed_path)
    return parts.path, parts.query.encode(), request.body


def check(
    method: str, path: str, query: bytes, body: bytes, *, secret: str = APP["secret"]
) -> dict[str, str]:
    return verify(
        method, path, parse_query(query), body, key=APP["key"], secret=secret, now=time.time()
    )


def refusal(method: str, path: str, query: bytes, body: bytes, **kw: Any) -> str:
    with pytest.raises(PusherApiRefused) as caught:
        check(method, path, query, body, **kw)
    assert caught.value.status == 401
    return str(caught.value)


def test_api_auth_verifies_what_the_pusher_package_signs() -> None:
    trigger = {"name": "e", "channels": ["a"], "data": "{}"}
    assert check("POST", *signed("POST", "/apps/4321/events", trigger)) == {}
    # a GET with its own parameters: they come back for the read to pass on
    path, query, body = signed(
        "GET", "/apps/4321/channels", {"filter_by_prefix": "presence-", "info": "user_count"}
    )
    assert check("GET", path, query, body) == {
        "filter_by_prefix": "presence-",
        "info": "user_count",
    }


@given(
    params=st.dictionaries(
        st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True).filter(
            lambda key: not key.startswith(("auth_", "body_md5"))
        ),
        st.from_regex(r"[A-Za-z0-9_\-=@,.;]{0,20}", fullmatch=True),
        max_size=4,
    )
)
def test_api_auth_any_parameters_signed_by_the_package_verify(params: dict[str, str]) -> None:
    path, query, body = signed("GET", "/apps/4321/channels", dict(params))
    assert check("GET", path, query, body) == params


def test_api_auth_refuses_a_wrong_secret_in_pushers_words() -> None:
    path, query, body = signed("POST", "/apps/4321/events", {"name": "e", "data": "x"})
    text = refusal("POST", path, query, body, secret="another-secret")
    assert text.startswith('Invalid signature: you should have sent HmacSHA256Hex("POST\\n')
    assert "your_secret_key), but you sent" in text
    assert APP["secret"] not in text and "another-secret" not in text


def test_api_auth_refuses_any_change_to_what_was_signed() -> None:
    path, query, body = signed("POST", "/apps/4321/events", {"name": "e", "data": "x"})
    assert "Invalid body_md5" in refusal("POST", path, query, body + b" ")
    assert "Invalid signature" in refusal("POST", "/apps/4321/batch_events", query, body)
    assert "Invalid signature" in refusal("GET", path, query, body)
    # a parameter added to the query after signing
    assert "Invalid signature" in refusal("POST", path, query + b"&info=user_count", body)


def test_api_auth_refuses_a_stale_or_future_timestamp(monkeypatch: pytest.MonkeyPatch) -> None:
    for skew in (-601, 601):
        clock = SimpleNamespace(time=lambda skew=skew: time.time() + skew)
        monkeypatch.setattr(pusher.http, "time", clock)
        text = refusal("GET", *signed("GET", "/apps/4321/channels", {}))
        assert text.startswith("Timestamp expired: Given timestamp (")
        assert "not within 600s of server time" in text
    # inside the window is fine, either way
    for skew in (-590, 590):
        clock = SimpleNamespace(time=lambda skew=skew: time.time() + skew)
        monkeypatch.setattr(pusher.http, "time", clock)
        assert check("GET", *signed("GET", "/apps/4321/channels", {})) == {}


def test_api_auth_refuses_missing_or_foreign_parameters() -> None:
    path, query, body = signed("POST", "/apps/4321/events", {"name": "e", "data": "x"})
    params = parse_query(query)
    for name in ("auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"):
        without = b"&".join(p for p in query.split(b"&") if not p.startswith(name.encode()))
        assert name in refusal("POST", path, without, body)
    assert "Unknown auth_key" in refusal(
        "POST", path, query.replace(b"auth_key=the-key", b"auth_key=other"), body
    )
    assert "auth_version" in refusal(
        "POST", path, query.replace(b"auth_version=1.0", b"auth_version=2.0"), body
    )
    bad_time = query.replace(params["auth_timestamp"].encode(), b"12x")
    assert "auth_timestamp" in refusal("POST", path, bad_time, body)
    far = query.replace(params["auth_timestamp"].encode(), b"999999999999")
    assert "Timestamp expired" in refusal("POST", path, far, body)


def test_api_auth_reads_the_query_as_the_sdks_write_it() -> None:
    # values unescaped as signed ('+' is not a space), or percent-escaped by a stricter client
    assert parse_query(b"a=1+2&b=x%2Cy&C=%41") == {"a": "1+2", "b": "x,y", "c": "A"}
    with pytest.raises(PusherApiRefused) as caught:
        parse_query(b"a=1&a=2")
    assert caught.value.status == 400
    with pytest.raises(PusherApiRefused):
        parse_query(b"&".join(b"k%d=1" % n for n in range(40)))


def test_api_auth_signature_is_pushers() -> None:
    # the example of Pusher's HTTP API reference, recomputed
    params = {
        "auth_key": "278d425bdf160c739803",
        "auth_timestamp": "1353088179",
        "auth_version": "1.0",
        "body_md5": hashlib.md5(
            b'{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}'
        ).hexdigest(),
    }
    assert params["body_md5"] == "ec365a775a4cd0599faeb73354201b6f"
    assert (
        signature("7ad3773142a6692b25b8", "POST", "/apps/3/events", params)
        == "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
    )
