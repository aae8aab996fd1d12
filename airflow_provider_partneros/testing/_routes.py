"""URL routing and dispatch: which endpoint answers which method and path, what every endpoint
shares, and how one request is served.

The endpoints themselves are methods of the stand-in, grouped by concern in :mod:`._auth_routes`
(better-auth: sign-in, sign-out, sessions, organizations) and :mod:`._api_routes` (the PartnerOS
API). They are looked up by name on the stand-in for each request, so a test may wrap one on its
instance (``server._ep_integration_status = wrapped``) to act at a precise moment.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow_provider_partneros.testing._http import Handler
from airflow_provider_partneros.testing._model import Data, RequestLog, RequestRecord
from airflow_provider_partneros.testing._sessions import SessionStore, SignInLimiter
from airflow_provider_partneros.testing._wire import (
    RATE_LIMITED_BODY,
    RATE_LIMITED_CONTENT_TYPE,
    Abort,
    Request,
    Response,
    Route,
    api_error,
    auth_error,
    json_response,
    logger,
    parse_cookies,
)
from airflow_provider_partneros.testing.faults import FaultQueue


def _route(template: str, **methods: str) -> Route:
    regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
    return Route(template, re.compile(regex), methods)


SIGN_IN_ROUTE = "/api/auth/sign-in/email"
_ROUTES = (
    _route(SIGN_IN_ROUTE, POST="_ep_sign_in"),
    _route("/api/auth/sign-out", POST="_ep_sign_out"),
    _route("/api/auth/get-session", GET="_ep_get_session"),
    _route("/api/auth/organization/set-active", POST="_ep_set_active"),
    _route("/api/integrations/{id}/status", GET="_ep_integration_status"),
    _route("/api/integrations/{id}/schema", GET="_ep_integration_schema"),
    _route("/api/partners/applications/submit", POST="_ep_submit_application"),
    _route("/api/partners/{id}/analyze", POST="_ep_analyze_partner"),
    _route("/api/ai/icp", POST="_ep_ai_icp"),
)


def _match(path: str) -> tuple[Route | None, dict[str, str]]:
    for route in _ROUTES:
        m = route.pattern.match(path)
        if m:
            return route, {k: unquote(v) for k, v in m.groupdict().items()}
    return None, {}


class EndpointBase:
    """What the endpoint groups share of the stand-in: its state (set by ``PartnerOSStandIn``) and
    the helpers more than one group needs."""

    _lock: threading.RLock
    _stop: threading.Event
    """Set while the server stops: long answers (delays, paced streams) end early."""
    _data: Data
    _sessions: SessionStore
    tls: ssl.SSLContext | None
    cookie_prefix: str
    session_ttl: float
    clock: Callable[[], float]

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    @property
    def session_cookie_name(self) -> str:
        """``better-auth.session_token`` over http, ``__Secure-better-auth.session_token`` over TLS."""
        name = f"{self.cookie_prefix}.session_token"
        return f"__Secure-{name}" if self.tls is not None else name

    def _set_cookie(self, value: str, max_age: int) -> tuple[str, str]:
        secure = "; Secure" if self.tls is not None else ""
        return (
            "Set-Cookie",
            f"{self.session_cookie_name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}",
        )


class Dispatch(EndpointBase):
    """Serving one request: record it, apply an armed fault or the checks every route shares (the
    sign-in rate limit, the Origin check), then call the endpoint its route names."""

    _log: RequestLog
    _faults: FaultQueue
    _limiter: SignInLimiter
    sign_in_rate_limit: tuple[int, float] | None
    trusted_origins: set[str]
    refresh_cookie_on_responses: bool

    if TYPE_CHECKING:

        @property
        def origin(self) -> str: ...

        @property
        def scheme(self) -> str: ...

    def _serve_one(self, h: Handler, body: bytes) -> None:
        split = urlsplit(h.path)
        path = split.path or "/"
        route, params = _match(path)
        headers: dict[str, str] = {}
        for name, value in h.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        xff = headers.get("x-forwarded-for", "").split(",")[0].strip()
        client = xff or str(h.client_address[0])
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        req = Request(h.command, path, query, headers, body, client, route, params)
        cookie_header = headers.get("cookie", "")
        cookie_names = tuple(n for n, _ in parse_cookies(cookie_header))
        logged = dict(headers)
        if cookie_header:
            logged["cookie"] = "; ".join(f"{n}=<redacted>" for n in cookie_names) or "<redacted>"
        template = route.template if route else None
        record = RequestRecord(
            method=h.command,
            path=path,
            query=query,
            query_string=split.query,
            headers=logged,
            client=client,
            had_cookie=bool(cookie_header),
            cookie_names=cookie_names,
            origin=headers.get("origin"),
            route=template,
            time=self.clock(),
        )
        with self._lock:
            self._log.add(record)
            req.session = self._sessions.lookup(cookie_header, self.session_cookie_name, self.clock())
            record.authenticated = req.session is not None
            fault = self._faults.take(h.command, path, template)
        status: int | None = None
        try:
            if fault is not None:
                record.fault = fault.kind
                if fault.kind != "delay":
                    status = h.play_fault(fault, self._stop)
                    return
                if self._stop.wait(fault.seconds):
                    h.close_connection = True
                    return
            try:
                resp = self._respond(req)
            except Abort as abort:
                resp = abort.response
            except Exception:
                logger.exception("PartnerOS stand-in failed on %s %s", h.command, template or path)
                resp = json_response(500, {"error": "Internal server error."})
            self._maybe_refresh_cookie(req, resp)
            status = resp.status
            h._write(resp, stop=self._stop)
        except OSError:
            h.close_connection = True
        finally:
            with self._lock:
                record.status = status

    def _respond(self, req: Request) -> Response:
        route = req.route
        if route is None:
            raise api_error(404, "Not found.")
        method = req.method
        endpoint = route.methods.get(method) or (route.methods.get("GET") if method == "HEAD" else None)
        if endpoint is None:
            allow = ", ".join(sorted(route.methods))
            return json_response(405, {"error": "Method not allowed."}, [("Allow", allow)])
        if route.template == SIGN_IN_ROUTE:
            self._check_rate_limit(req)
        if method == "POST" and req.headers.get("cookie"):
            self._check_origin(req)
        handler: Callable[[Request], Response] = getattr(self, endpoint)
        return handler(req)

    def _check_rate_limit(self, req: Request) -> None:
        with self._lock:
            retry = self._limiter.admit(req.client, self.sign_in_rate_limit, self.clock())
        if retry is not None:
            headers = [("X-Retry-After", str(retry))]
            raise Abort(Response(429, RATE_LIMITED_BODY.encode(), RATE_LIMITED_CONTENT_TYPE, headers))

    def _check_origin(self, req: Request) -> None:
        origin = req.headers.get("origin")
        if not origin or origin == "null":
            raise auth_error(403, "Missing or null Origin", "MISSING_OR_NULL_ORIGIN")
        # The server's own origin is its base URL, or the address the client reached it by (Host), so
        # a stand-in behind docker-compose service names works without configuration.
        allowed = {self.origin, *self.trusted_origins}
        host = req.headers.get("host")
        if host:
            allowed.add(f"{self.scheme}://{host}")
        if origin.rstrip("/") not in allowed:
            raise auth_error(403, "Invalid origin", "INVALID_ORIGIN")

    def _maybe_refresh_cookie(self, req: Request, resp: Response) -> None:
        session = req.session
        if not self.refresh_cookie_on_responses or session is None:
            return
        if any(name.lower() == "set-cookie" for name, _ in resp.headers):
            return  # sign-in / sign-out already set the cookie they mean
        with self._lock:
            if not self._sessions.is_current(session):
                return
            session.expires_at = self.clock() + self.session_ttl
        resp.headers.append(
            self._set_cookie(self._sessions.cookie_value(session.token), int(self.session_ttl))
        )
