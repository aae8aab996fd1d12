"""What a request and an answer look like inside the stand-in, and the JSON helpers every part uses.

The endpoints take a :class:`Request` and return a :class:`Response` (or raise :class:`Abort`
with one); the HTTP layer (:mod:`._http`) turns a response into bytes. Standard library only.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_partneros.testing._model import Session

logger = logging.getLogger("airflow_provider_partneros.testing.server")
"""One logger for the whole stand-in, under the name it had when it was a single module."""

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
RATE_LIMITED_BODY = '{"message": "Too many requests. Please try again later."}'
"""better-auth's 429 body: JSON-looking, but served as :data:`RATE_LIMITED_CONTENT_TYPE`."""
RATE_LIMITED_CONTENT_TYPE = "text/plain;charset=UTF-8"


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]
    methods: Mapping[str, str]
    """HTTP method -> name of the PartnerOSStandIn method that answers it."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    client: str
    route: Route | None
    params: dict[str, str]
    session: Session | None = None


@dataclass
class Response:
    status: int
    body: bytes | Iterator[bytes] = b""
    """Bytes are sent with a Content-Length; an iterator is streamed chunked."""
    content_type: str | None = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)


class Abort(Exception):
    """Raised by endpoint code to answer early (auth, validation, not found)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body, JSON, list(headers or []))


def api_error(status: int, message: str, code: str | None = None) -> Abort:
    """A PartnerOS route's error: ``{"error": message, "code": code}``."""
    payload: dict[str, Any] = {"error": message}
    if code is not None:
        payload["code"] = code
    return Abort(json_response(status, payload))


def auth_error(status: int, message: str, code: str) -> Abort:
    """An auth route's error: ``{"message": message, "code": code}`` (better-auth's shape)."""
    return Abort(json_response(status, {"message": message, "code": code}))


def iso(value: datetime | str | None) -> str | None:
    """ISO 8601 with milliseconds and ``Z``, the way PartnerOS writes timestamps (strings pass through)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def parse_cookies(header: str) -> list[tuple[str, str]]:
    """Split a Cookie header leniently (http.cookies rejects many real-world values)."""
    out = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out.append((name.strip(), value.strip()))
    return out


def json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
