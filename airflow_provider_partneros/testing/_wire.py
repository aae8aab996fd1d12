"""What a request and an answer look like inside the stand-in, and the JSON helpers every part uses.

The endpoints take a :class:`_Request` and return a :class:`_Response` (or raise :class:`_Abort`
with one); the HTTP layer (:mod:`._http`) turns a response into bytes. Standard library only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_partneros.testing._model import _Session
    from airflow_provider_partneros.testing._routes import _Route

logger = logging.getLogger("airflow_provider_partneros.testing.server")
"""One logger for the whole stand-in, under the name it had when it was a single module."""

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
RATE_LIMITED_BODY = '{"message": "Too many requests. Please try again later."}'
"""better-auth's 429 body: JSON-looking, but served as :data:`RATE_LIMITED_CONTENT_TYPE`."""
RATE_LIMITED_CONTENT_TYPE = "text/plain;charset=UTF-8"


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client: str
    route: _Route | None
    params: dict[str, str]
    session: _Session | None = None


@dataclass
class _Response:
    status: int
    body: bytes | Iterator[bytes] = b""
    """Bytes are sent with a Content-Length; an iterator is streamed chunked."""
    content_type: str | None = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)


class _Abort(Exception):
    """Raised by endpoint code to answer early (auth, validation, not found)."""

    def __init__(self, response: _Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> _Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return _Response(status, body, JSON, list(headers or []))


def _api_error(status: int, message: str, code: str | None = None) -> _Abort:
    """A PartnerOS route's error: ``{"error": message, "code": code}``."""
    payload: dict[str, Any] = {"error": message}
    if code is not None:
        payload["code"] = code
    return _Abort(_json_response(status, payload))


def _auth_error(status: int, message: str, code: str) -> _Abort:
    """An auth route's error: ``{"message": message, "code": code}`` (better-auth's shape)."""
    return _Abort(_json_response(status, {"message": message, "code": code}))


def iso(value: datetime | str | None) -> str | None:
    """ISO 8601 with milliseconds and ``Z``, the way PartnerOS writes timestamps (strings pass through)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _parse_cookies(header: str) -> list[tuple[str, str]]:
    """Split a Cookie header leniently (http.cookies rejects many real-world values)."""
    out = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out.append((name.strip(), value.strip()))
    return out


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
