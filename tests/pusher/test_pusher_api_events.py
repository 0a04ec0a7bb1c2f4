"""The bodies of Pusher's trigger and batch trigger (leadrelay.pusher.api_events): what the
SDKs send becomes PusherApiEvents, data untouched; what Pusher refuses is refused with its
status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leadrelay.errors import PusherApiRefused
from leadrelay.pusher.api_events import PusherApiEvent, parse_batch, parse_trigger

SEALED = json.dumps({"nonce": "bm9uY2U=", "ciphertext": "Y2lwaGVy"})


def refused(parse: Any, body: Any) -> tuple[int, str]:
    with pytest.raises(PusherApiRefused) as caught:
        parse(body)
    return caught.value.status, str(caught.value)


def test_api_events_trigger_as_the_sdks_send_it() -> None:
    body = {"name": "App\\Events\\Shipped", "channels": ["a", "b", "a"], "data": '{"x":1}'}
    event = parse_trigger({**body, "socket_id": "123.456", "info": "subscription_count"})
    # a channel named twice is one channel: it would otherwise get the event twice
    assert event == PusherApiEvent(
        ("a", "b"), "App\\Events\\Shipped", '{"x":1}', "123.456", "subscription_count"
    )
    assert list(event.per_channel()) == [
        PusherApiEvent(("a",), event.name, event.data, "123.456", "subscription_count"),
        PusherApiEvent(("b",), event.name, event.data, "123.456", "subscription_count"),
    ]
    # `channel` instead of `channels`; the data string is kept exactly, ciphertext and all
    one = parse_trigger({"name": "e", "channel": "private-encrypted-x", "data": SEALED})
    assert one == PusherApiEvent(("private-encrypted-x",), "e", SEALED)


def test_api_events_batch_as_the_sdks_send_it() -> None:
    batch = [{"channel": f"c{n}", "name": "e", "data": str(n)} for n in range(10)]
    batch[3]["socket_id"] = "1.2"
    events = parse_batch({"batch": batch})
    assert [e.channels for e in events] == [(f"c{n}",) for n in range(10)]
    assert [e.data for e in events] == [str(n) for n in range(10)]
    assert events[3].socket_id == "1.2" and events[2].socket_id is None


def test_api_events_limits_are_pushers() -> None:
    ok = {"name": "e", "data": "x" * 10240}
    assert parse_trigger({**ok, "channels": [f"c{n}" for n in range(100)]}).data == ok["data"]
    assert parse_trigger({**ok, "channel": "c" * 164}).channels == ("c" * 164,)
    assert refused(parse_trigger, {**ok, "channels": [f"c{n}" for n in range(101)]})[0] == 400
    assert refused(parse_trigger, {**ok, "channel": "c" * 165})[0] == 400
    # 10 KB is of bytes in UTF-8, not characters: 3414 euro signs are 10242 bytes
    assert refused(parse_trigger, {"name": "e", "channel": "c", "data": "x" * 10241})[0] == 413
    status, text = refused(parse_trigger, {"name": "e", "channel": "c", "data": "€" * 3414})
    assert status == 413 and "exceeds the allowed maximum (10240 bytes)" in text
    batch = [{"channel": "c", "name": "e", "data": "x"}] * 11
    assert refused(parse_batch, {"batch": batch}) == (
        400,
        "Expected 1 to 10 events in a batch, got 11",
    )
    too_big = [{"channel": "c", "name": "e", "data": "x" * 10241}]
    assert refused(parse_batch, {"batch": too_big})[0] == 413


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([], "JSON object"),
        ({"name": "e", "data": "x"}, "channels or a channel"),
        ({"name": "e", "data": "x", "channel": "a", "channels": ["a"]}, "not both"),
        ({"name": "e", "data": "x", "channels": []}, "non-empty array"),
        ({"name": "e", "data": "x", "channels": "a"}, "non-empty array"),
        ({"name": "e", "data": "x", "channels": [1]}, "string"),
        ({"name": "e", "data": "x", "channel": "a b"}, "Invalid channel name"),
        ({"name": "e", "data": "x", "channel": "#server-to-user-1"}, "Invalid channel name"),
        ({"name": "e", "data": "x", "channel": "é"}, "Invalid channel name"),
        ({"data": "x", "channel": "a"}, "Expected name parameter to be a string"),
        ({"name": "", "data": "x", "channel": "a"}, "Expected name parameter to be a string"),
        ({"name": "e" * 201, "data": "x", "channel": "a"}, "Event name too long"),
        ({"name": "e", "channel": "a"}, "Expected data parameter to be a string"),
        ({"name": "e", "data": {"x": 1}, "channel": "a"}, "data parameter to be a string"),
        ({"name": "e", "data": "x", "channel": "a", "socket_id": "1"}, "Invalid socket_id"),
        ({"name": "e", "data": "x", "channel": "a", "socket_id": 1.5}, "Invalid socket_id"),
        ({"name": "e", "data": "x", "channel": "a", "info": "a b"}, "Invalid info"),
    ],
)
def test_api_events_trigger_refusals(body: Any, words: str) -> None:
    status, text = refused(parse_trigger, body)
    assert status == 400 and words in text


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "batch to be an array"),
        ({"batch": {}}, "batch to be an array"),
        ({"batch": []}, "got 0"),
        ({"batch": ["x"]}, "JSON object"),
        ({"batch": [{"name": "e", "data": "x"}]}, "channel parameter"),
        ({"batch": [{"name": "e", "data": "x", "channel": "a:b"}]}, "Invalid channel name"),
    ],
)
def test_api_events_batch_refusals(body: Any, words: str) -> None:
    status, text = refused(parse_batch, body)
    assert status == 400 and words in text
