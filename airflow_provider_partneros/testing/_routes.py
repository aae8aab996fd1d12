"""URL routing: which endpoint answers which method and path, and what every endpoint shares.

The endpoints themselves are methods of the stand-in, grouped by concern in :mod:`._auth_routes`
(better-auth: sign-in, sign-out, sessions, organizations) and :mod:`._api_routes` (the PartnerOS
API). They are looked up by name on the stand-in for each request, so a test may wrap one on its
instance (``server._ep_integration_status = wrapped``) to act at a precise moment.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import unquote

from airflow_provider_partneros.testing._model import _Data
from airflow_provider_partneros.testing._sessions import SessionStore


@dataclass(frozen=True)
class _Route:
    template: str
    pattern: re.Pattern[str]
    methods: Mapping[str, str]
    """HTTP method -> name of the PartnerOSStandIn method that answers it."""


def _route(template: str, **methods: str) -> _Route:
    regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
    return _Route(template, re.compile(regex), methods)


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


def _match(path: str) -> tuple[_Route | None, dict[str, str]]:
    for route in _ROUTES:
        m = route.pattern.match(path)
        if m:
            return route, {k: unquote(v) for k, v in m.groupdict().items()}
    return None, {}


class _EndpointBase:
    """What the endpoint groups share of the stand-in: its state (set by ``PartnerOSStandIn``) and
    the helpers more than one group needs."""

    _lock: threading.RLock
    _stop: threading.Event
    """Set while the server stops: long answers (delays, paced streams) end early."""
    _data: _Data
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
