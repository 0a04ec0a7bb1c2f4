"""Request parsing and response shapes shared by every route: bodies, queries, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from leadrelay.errors import (
    ApiError,
    BadRequest,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    UnsupportedMedia,
    ValidationFailed,
    refuse_nul,
)
from leadrelay.store.base import MAX_ID

MAX_JSON_DEPTH = 32


class JSON(JSONResponse):
    """Compact UTF-8 JSON, as Pusher and most clients expect."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_headers(err: ApiError) -> dict[str, str]:
    """The headers an error's answer carries besides its body: Retry-After on a 429 or a
    503."""
    if isinstance(err, RateLimited | Unavailable):
        return {"Retry-After": str(err.retry_after)}
    return {}


def error_response(err: ApiError) -> Response:
    return JSON(err.body(), status_code=err.status, headers=error_headers(err))


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is over the limit of {max_bytes} bytes")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `max_bytes`."""
    check_length(request.headers.get("content-length"), max_bytes)
    return await collect_body(request.stream(), max_bytes)


def check_length(declared: str | None, max_bytes: int) -> None:
    """A Content-Length that is not a number is a 400; one over `max_bytes` is a 413 before
    a byte of the body is read."""
    if declared is None:
        return
    declared = declared.strip()
    if not (declared.isascii() and declared.isdigit()):
        raise BadRequest("Content-Length must be a number", code="bad_content_length")
    # a 20-digit length is a number too, only a large one
    if len(declared) > 19 or int(declared) > max_bytes:
        raise too_large(max_bytes)


async def collect_body(chunks: AsyncIterator[bytes], max_bytes: int) -> bytes:
    """Join the chunks, refusing with 413 once they pass `max_bytes` (whatever the length said)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        parts.append(chunk)
    return b"".join(parts)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> Any:
    """Strict UTF-8 JSON, no NaN or Infinity, nested at most MAX_JSON_DEPTH deep."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8", code="invalid_utf8") from None
    try:
        # orjson is strict RFC 8259 and fast; what it refuses, the json module decides and
        # words (it accepts a little more, e.g. 1e400 and lone surrogate escapes)
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = _decode_slowly(text)
        _check_tree(data)
        return data
    # orjson refuses lone surrogates, so only the depth is left to check, and no text with
    # fewer brackets than the limit can be nested past it (the usual lead has one)
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH:
        _check_tree(data)
    return data


def _decode_slowly(text: str) -> Any:
    if not text.strip():
        raise BadRequest("the body is empty; send a JSON object", code="invalid_json")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest(
            f"the JSON is nested too deep (at most {MAX_JSON_DEPTH} levels)", code="json_too_deep"
        ) from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from None


def _check_tree(data: Any) -> None:
    """Depth, and strings UTF-8 can carry: JSON's `\\ud800` escapes decode to lone surrogates,
    which SQLite and every response would fail to encode later, after the lead was checked."""
    level, depth = [data], 0
    while level:
        depth += 1
        children: list[Any] = []
        for item in level:
            if isinstance(item, dict | list) and depth > MAX_JSON_DEPTH:
                raise BadRequest(
                    f"the JSON is nested too deep (at most {MAX_JSON_DEPTH} levels)",
                    code="json_too_deep",
                )
            if isinstance(item, dict):
                children.extend(item.values())
                strings: Any = item.keys()
            elif isinstance(item, list):
                children.extend(item)
                continue
            elif isinstance(item, str):
                strings = (item,)
            else:
                continue
            for text in strings:
                if not text.isascii():
                    _check_encodable(text)
        level = children


def _check_encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "the JSON holds a lone UTF-16 surrogate escape (like \\ud800); send real characters",
            code="invalid_unicode",
        ) from None


def media_type(content_type: str) -> str:
    """`application/json; charset=utf-8` → `application/json`."""
    return content_type.split(";")[0].strip().lower()


def require_json(content_type: str) -> None:
    if media_type(content_type) != "application/json":
        raise UnsupportedMedia(
            "send the body as JSON with 'Content-Type: application/json'",
            code="unsupported_media_type",
        )


async def read_json(request: Request, max_bytes: int, body: bytes | None = None) -> Any:
    require_json(request.headers.get("content-type", ""))
    if body is None:
        body = await read_body(request, max_bytes)
    return decode_json(body)


async def read_form_or_json(request: Request, max_bytes: int) -> dict[str, Any]:
    """A urlencoded form (what pusher-js sends) or a JSON object."""
    media = media_type(request.headers.get("content-type", ""))
    if media == "application/x-www-form-urlencoded":
        body = await read_body(request, max_bytes)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the body is not valid UTF-8", code="invalid_utf8") from None
        return {key: values[-1] for key, values in parse_qs(text).items()}
    data = await read_json(request, max_bytes)
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", code="invalid_body")
    return data


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 19


def query_text(request: Request, name: str) -> str | None:
    """A query parameter given at most once; absent or empty is None."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ValidationFailed(
            f"query parameter '{name}' is given {len(values)} times; give it once",
            code="invalid_query",
        )
    if values:
        refuse_nul(f"query parameter '{name}'", values[0], code="invalid_query")
    return values[0] if values and values[0] else None


def query_int(
    request: Request, name: str, default: int, *, low: int = 0, high: int = MAX_ID
) -> int:
    raw = query_text(request, name)
    if raw is None:
        return default
    if not _is_number(raw) or not low <= int(raw) <= high:
        raise ValidationFailed(
            f"query parameter '{name}' must be a whole number from {low} to {high}",
            code="invalid_query",
        )
    return int(raw)


def path_id(request: Request, name: str = "lead_id") -> int:
    raw = request.path_params[name]
    if not _is_number(raw) or not 1 <= int(raw) <= MAX_ID:
        raise ValidationFailed(f"'{raw}' is not a valid id", code="invalid_id")
    return int(raw)


def socket_id(value: str | None) -> str | None:
    """X-Socket-ID, when it has Pusher's socket id shape (`123.456`); anything else is ignored."""
    if value and len(value) <= 64:
        left, dot, right = value.partition(".")
        if dot and left.isascii() and left.isdigit() and right.isascii() and right.isdigit():
            return value
    return None
