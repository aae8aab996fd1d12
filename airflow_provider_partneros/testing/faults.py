"""Faults the stand-in can inject: the misbehaviours a PartnerOS client meets on the wire.

:class:`Fault` describes one (and has presets for the common ones: proxy HTML pages, 401, 429, drops,
resets, drips, truncated or malformed bodies, redirects); :class:`FaultQueue` holds the armed ones in
the order injected. How a fault is played on the socket lives in :mod:`._http`.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, get_args

from airflow_provider_partneros.testing._wire import JSON, RATE_LIMITED_BODY, RATE_LIMITED_CONTENT_TYPE, TEXT

__all__ = ["FAULT_KINDS", "Fault", "FaultKind", "FaultQueue"]

FaultKind = Literal["status", "delay", "drop", "reset", "drip", "short_body", "malformed_json", "redirect"]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))

_HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
    "<body><center><h1>{status} {reason}</h1></center><hr><center>nginx</center></body></html>\n"
)


@dataclass
class Fault:
    """One misbehaviour to inject, as a client would meet it on the wire.

    Kinds: ``"status"`` answers ``status`` with ``body`` (str, bytes, or dict/list sent as JSON),
    ``content_type`` and extra ``headers``; ``"delay"`` waits ``seconds`` then answers normally;
    ``"drop"`` closes the connection without a byte; ``"reset"`` sends headers and part of the body,
    then a TCP RST; ``"drip"`` sends headers then one byte every ``seconds`` (until done, the client
    leaves or the server stops); ``"short_body"`` announces more Content-Length than it sends, then
    closes; ``"malformed_json"`` is a 200 application/json that does not parse; ``"redirect"``
    answers ``status`` (302 default) with ``Location: location``.

    ``route`` is an fnmatch pattern matched against the raw request path (no query) or the route
    template (e.g. ``"/api/integrations/{id}/status"``); ``None`` matches every path. ``times`` is
    how many matching requests it applies to (``None``: forever).
    """

    route: str | None = None
    method: str | None = None
    kind: FaultKind = "status"
    status: int | None = None
    """For "status" (default 500), "redirect" (default 302), "reset"/"drip"/"short_body" (default 200)."""
    body: str | bytes | dict[str, Any] | list[Any] | None = None
    content_type: str | None = None
    headers: Mapping[str, str] | None = None
    seconds: float = 0.0
    """"delay": how long to wait; "drip": the pause between two bytes."""
    location: str | None = None
    times: int | None = 1

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Fault kind must be one of {sorted(FAULT_KINDS)}, got {self.kind!r}.")
        if self.times is not None and self.times < 1:
            raise ValueError("Fault.times must be >= 1 or None (forever).")
        if self.seconds < 0:
            raise ValueError("Fault.seconds must be >= 0.")
        if self.method is not None:
            self.method = self.method.upper()

    def matches(self, method: str, path: str, template: str | None) -> bool:
        """Whether this fault applies to a request (method and path or route template)."""
        if self.method is not None and self.method != method:
            return False
        if self.route is None:
            return True
        return fnmatch.fnmatchcase(path, self.route) or (
            template is not None and fnmatch.fnmatchcase(template, self.route)
        )

    def encoded_body(self, default: bytes = b"") -> tuple[bytes, str | None]:
        """The body as bytes and the content type it implies (an explicit content_type wins)."""
        body = self.body
        if body is None:
            data, ctype = default, None
        elif isinstance(body, bytes):
            data, ctype = body, "application/octet-stream"
        elif isinstance(body, str):
            data, ctype = body.encode(), TEXT
        else:
            data, ctype = json.dumps(body).encode(), JSON
        return data, self.content_type or (ctype if data else None)

    # Presets: the misbehaviours a client meets in practice. All take (route, *, method, times).

    @classmethod
    def html_error(
        cls,
        status: int,
        route: str | None = None,
        *,
        method: str | None = None,
        times: int | None = 1,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """A proxy's HTML error page (what a load balancer answers when the app is down)."""
        reason = HTTPStatus(status).phrase
        page = _HTML_PAGE.format(status=status, reason=reason)
        return cls(
            route,
            method,
            "status",
            status=status,
            body=page,
            content_type="text/html",
            headers=headers,
            times=times,
        )

    @classmethod
    def html_bad_gateway(
        cls, route: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """502 with an nginx HTML page."""
        return cls.html_error(502, route, method=method, times=times)

    @classmethod
    def html_service_unavailable(
        cls,
        route: str | None = None,
        *,
        method: str | None = None,
        times: int | None = 1,
        retry_after: int | None = None,
    ) -> Fault:
        """503 with an HTML page and optionally a standard ``Retry-After`` header."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return cls.html_error(503, route, method=method, times=times, headers=headers)

    @classmethod
    def html_gateway_timeout(
        cls, route: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """504 with an HTML page (the proxy gave up waiting on the app)."""
        return cls.html_error(504, route, method=method, times=times)

    @classmethod
    def json_error(
        cls,
        status: int,
        message: str,
        code: str | None = None,
        route: str | None = None,
        *,
        method: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """A PartnerOS-shaped error: ``{"error": message, "code": code}``."""
        body: dict[str, Any] = {"error": message}
        if code is not None:
            body["code"] = code
        return cls(route, method, "status", status=status, body=body, times=times)

    @classmethod
    def auth_error(
        cls,
        status: int,
        message: str,
        code: str,
        route: str | None = None,
        *,
        method: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """An auth-route-shaped error: ``{"message": message, "code": code}``."""
        return cls(
            route, method, "status", status=status, body={"message": message, "code": code}, times=times
        )

    @classmethod
    def empty(
        cls, status: int, route: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """A status with an empty body (no Content-Type)."""
        return cls(route, method, "status", status=status, body=b"", times=times)

    @classmethod
    def unauthorized(
        cls, route: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """401 ``{"error": "Unauthorized"}`` once, as if the session just expired."""
        return cls.json_error(401, "Unauthorized", None, route, method=method, times=times)

    @classmethod
    def rate_limited(
        cls,
        retry_after: int = 1,
        route: str | None = None,
        *,
        method: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """429 like the auth rate limiter: ``X-Retry-After`` and a JSON-looking text/plain body."""
        return cls(
            route,
            method,
            "status",
            status=429,
            body=RATE_LIMITED_BODY,
            content_type=RATE_LIMITED_CONTENT_TYPE,
            headers={"X-Retry-After": str(retry_after)},
            times=times,
        )

    @classmethod
    def slow(
        cls, seconds: float, route: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """Wait ``seconds``, then answer normally."""
        return cls(route, method, "delay", seconds=seconds, times=times)

    @classmethod
    def drop_connection(
        cls, route: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """Close the connection without sending anything."""
        return cls(route, method, "drop", times=times)

    @classmethod
    def reset_connection(
        cls, route: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """Send headers and part of the body, then reset the TCP connection."""
        return cls(route, method, "reset", times=times)

    @classmethod
    def drip_feed(
        cls,
        seconds: float = 0.5,
        route: str | None = None,
        *,
        method: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Send headers, then one byte every ``seconds`` (defeats per-read timeouts)."""
        return cls(route, method, "drip", seconds=seconds, times=times)

    @classmethod
    def truncated_body(
        cls, route: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """Announce a longer Content-Length than is sent, then close."""
        return cls(route, method, "short_body", times=times)

    @classmethod
    def invalid_json(
        cls, route: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> Fault:
        """200 application/json whose body does not parse."""
        return cls(route, method, "malformed_json", times=times)

    @classmethod
    def redirect_to(
        cls,
        location: str,
        status: int = 302,
        route: str | None = None,
        *,
        method: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Answer a redirect to ``location`` (e.g. a login page, or another host)."""
        return cls(route, method, "redirect", status=status, location=location, times=times)


@dataclass
class _ArmedFault:
    fault: Fault
    remaining: int | None


class FaultQueue:
    """The armed faults, first injected first matched; each is dropped once its ``times`` are used.

    Not locked: the stand-in calls it under its own lock.
    """

    def __init__(self) -> None:
        self._armed: list[_ArmedFault] = []

    def arm(self, fault: Fault) -> None:
        self._armed.append(_ArmedFault(fault, fault.times))

    def take(self, method: str, path: str, template: str | None) -> Fault | None:
        """The first armed fault matching a request, counting one use of it; None if none matches."""
        for armed in self._armed:
            if armed.fault.matches(method, path, template):
                if armed.remaining is not None:
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        self._armed.remove(armed)
                return armed.fault
        return None

    def clear(self) -> None:
        self._armed.clear()

    @property
    def pending(self) -> list[Fault]:
        return [a.fault for a in self._armed]
