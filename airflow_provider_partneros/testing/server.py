"""A PartnerOS stand-in: a real HTTP server that answers like the PartnerOS API.

It exists so the provider's tests, the example DAGs, the benchmarks and users' own DAG tests can
exercise the real wire protocol (signed better-auth cookies, the Origin check, the sign-in rate
limit, both error body shapes, streamed AI answers) without a PartnerOS account. On top of the
production behaviours it can inject faults (proxy pages, dropped or reset connections, drips,
truncated or malformed bodies, redirects) and records what clients sent.

Only the standard library is used and Airflow is never imported: a pytest plugin imports this
module, so it must stay cheap. Nothing here writes request bodies or cookies to stdout/stderr.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import selectors
import socket
import ssl
import string
import struct
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = [
    "DEFAULT_CONN_ID",
    "DEMO_APPLICATION_SLUG",
    "DEMO_BROKEN_CONNECTION",
    "DEMO_EMAIL",
    "DEMO_HUBSPOT_CONNECTION",
    "DEMO_ORG_ID",
    "DEMO_ORG_NAME",
    "DEMO_PARTNER_IDS",
    "DEMO_PASSWORD",
    "DEMO_SALESFORCE_CONNECTION",
    "FAULT_KINDS",
    "NOORG_EMAIL",
    "OTHER_ORG_CONNECTION",
    "OTHER_ORG_ID",
    "OTHER_ORG_NAME",
    "OTHER_ORG_PARTNER_ID",
    "PARTNER_EMAIL",
    "UNVERIFIED_EMAIL",
    "Fault",
    "PartnerOSStandIn",
    "RequestRecord",
]

logger = logging.getLogger(__name__)

# --- demo data names (what seed_demo() creates) -----------------------------------------------------

DEFAULT_CONN_ID = "partneros_default"
DEMO_ORG_ID = "org-demo"
DEMO_ORG_NAME = "Demo Org"
OTHER_ORG_ID = "org-other"
OTHER_ORG_NAME = "Other Org"
DEMO_EMAIL = "demo@partneros.test"
DEMO_PASSWORD = "demo-Passw0rd!"
"""Every demo user shares this password."""
PARTNER_EMAIL = "partner@partneros.test"
NOORG_EMAIL = "noorg@partneros.test"
UNVERIFIED_EMAIL = "unverified@partneros.test"
DEMO_SALESFORCE_CONNECTION = "conn_salesforce_demo"
DEMO_HUBSPOT_CONNECTION = "conn_hubspot_demo"
DEMO_BROKEN_CONNECTION = "conn_broken_demo"
OTHER_ORG_CONNECTION = "conn_other_org"
DEMO_PARTNER_IDS = ("partner-1", "partner-2", "partner-3", "partner-4", "partner-5")
OTHER_ORG_PARTNER_ID = "partner-other-1"
DEMO_APPLICATION_SLUG = "demo-partner-program"

FaultKind = Literal["status", "delay", "drop", "reset", "drip", "short_body", "malformed_json", "redirect"]
FAULT_KINDS: frozenset[str] = frozenset(
    {"status", "delay", "drop", "reset", "drip", "short_body", "malformed_json", "redirect"}
)
ROLES = frozenset({"owner", "admin", "member", "partner"})
MAX_REQUEST_BODY = 32 * 1024 * 1024
REQUEST_LOG_SIZE = 10_000
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_UNSET: Any = object()
_T = TypeVar("_T")

# --- faults ------------------------------------------------------------------------------------------

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
            data, ctype = body.encode(), _TEXT
        else:
            data, ctype = json.dumps(body).encode(), _JSON
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
        body = json.dumps({"message": "Too many requests. Please try again later."})
        return cls(
            route,
            method,
            "status",
            status=429,
            body=body,
            content_type="text/plain;charset=UTF-8",
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


# --- observations ------------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """What one request looked like on the wire (cookie values are redacted, bodies never kept)."""

    method: str
    path: str
    query: dict[str, str]
    query_string: str
    headers: dict[str, str]
    """Lower-case names; a Cookie header's values are replaced by ``<redacted>`` (names are kept)."""
    client: str
    had_cookie: bool
    cookie_names: tuple[str, ...]
    origin: str | None
    route: str | None
    """The matched route template, e.g. ``"/api/integrations/{id}/status"``; None when unmatched."""
    status: int | None = None
    """The status sent; None while in flight or when no status line was sent (drop)."""
    fault: str | None = None
    """The kind of the fault applied to this request, if any."""
    authenticated: bool = False
    time: float = 0.0


# --- internal state ------------------------------------------------------------------------------------


@dataclass
class _Org:
    id: str
    name: str
    slug: str
    ai_quota: int | None
    created_at: datetime


@dataclass
class _User:
    id: str
    email: str
    password: str = field(repr=False)
    name: str
    role: str
    organizations: list[str]
    active_organization: str | None
    email_verified: bool
    created_at: datetime


@dataclass
class _Session:
    id: str
    token: str = field(repr=False)
    user_email: str
    created_at: float
    expires_at: float
    active_organization: str | None
    ip: str
    user_agent: str


@dataclass
class _Integration:
    id: str
    organization: str
    fields: dict[str, Any]
    script: deque[dict[str, Any]] = field(default_factory=deque)


@dataclass
class _Partner:
    id: str
    organization: str
    fields: dict[str, Any]


@dataclass
class _Form:
    slug: str
    organization: str
    required_fields: tuple[str, ...]
    agreements: tuple[str, ...]


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
    content_type: str | None = _JSON
    headers: list[tuple[str, str]] = field(default_factory=list)


class _Abort(Exception):
    """Raised by endpoint code to answer early (auth, validation, not found)."""

    def __init__(self, response: _Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> _Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return _Response(status, body, _JSON, list(headers or []))


def _api_error(status: int, message: str, code: str | None = None) -> _Abort:
    payload: dict[str, Any] = {"error": message}
    if code is not None:
        payload["code"] = code
    return _Abort(_json_response(status, payload))


def _auth_error(status: int, message: str, code: str) -> _Abort:
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


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


def _unique_pick(seq: Sequence[_T], seed: int, n: int) -> list[_T]:
    start = seed % len(seq)
    return [seq[(start + i * 3) % len(seq)] for i in range(min(n, len(seq)))]


# --- canned CRM schemas and AI content ------------------------------------------------------------------

_F = tuple[str, str, str, bool, bool]  # name, label, type, custom, required
_SCHEMAS: dict[str, dict[str, tuple[str, list[_F]]]] = {
    "salesforce": {
        "Account": (
            "Account",
            [
                ("Id", "Account ID", "id", False, True),
                ("Name", "Account Name", "string", False, True),
                ("Industry", "Industry", "picklist", False, False),
                ("AnnualRevenue", "Annual Revenue", "currency", False, False),
                ("NumberOfEmployees", "Employees", "int", False, False),
                ("BillingCountry", "Billing Country", "string", False, False),
                ("Website", "Website", "url", False, False),
                ("Partner_Tier__c", "Partner Tier", "picklist", True, False),
            ],
        ),
        "Opportunity": (
            "Opportunity",
            [
                ("Id", "Opportunity ID", "id", False, True),
                ("Name", "Opportunity Name", "string", False, True),
                ("StageName", "Stage", "picklist", False, True),
                ("Amount", "Amount", "currency", False, False),
                ("CloseDate", "Close Date", "date", False, True),
                ("AccountId", "Account ID", "reference", False, False),
                ("Partner_Source__c", "Partner Source", "reference", True, False),
            ],
        ),
        "Contact": (
            "Contact",
            [
                ("Id", "Contact ID", "id", False, True),
                ("FirstName", "First Name", "string", False, False),
                ("LastName", "Last Name", "string", False, True),
                ("Email", "Email", "email", False, False),
                ("Title", "Title", "string", False, False),
                ("AccountId", "Account ID", "reference", False, False),
            ],
        ),
        "Lead": (
            "Lead",
            [
                ("Id", "Lead ID", "id", False, True),
                ("Company", "Company", "string", False, True),
                ("Email", "Email", "email", False, False),
                ("Status", "Lead Status", "picklist", False, True),
                ("LeadSource", "Lead Source", "picklist", False, False),
                ("Partner_Referral__c", "Partner Referral", "boolean", True, False),
            ],
        ),
    },
    "hubspot": {
        "companies": (
            "Companies",
            [
                ("name", "Name", "string", False, True),
                ("domain", "Company Domain Name", "string", False, False),
                ("industry", "Industry", "enumeration", False, False),
                ("annualrevenue", "Annual Revenue", "number", False, False),
                ("numberofemployees", "Number of Employees", "number", False, False),
                ("partner_tier", "Partner Tier", "enumeration", True, False),
            ],
        ),
        "deals": (
            "Deals",
            [
                ("dealname", "Deal Name", "string", False, True),
                ("dealstage", "Deal Stage", "enumeration", False, True),
                ("amount", "Amount", "number", False, False),
                ("closedate", "Close Date", "datetime", False, False),
                ("partner_source", "Partner Source", "string", True, False),
            ],
        ),
        "contacts": (
            "Contacts",
            [
                ("firstname", "First Name", "string", False, False),
                ("lastname", "Last Name", "string", False, False),
                ("email", "Email", "string", False, True),
                ("jobtitle", "Job Title", "string", False, False),
            ],
        ),
    },
}

_INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Logistics",
    "Professional Services",
    "Telecommunications",
)
_REGIONS = (
    "North America",
    "DACH (Zürich, München, Wien)",
    "Nordics",
    "UK & Ireland",
    "Benelux",
    "LATAM (São Paulo, Ciudad de México)",
    "APAC",
    "France",
)
_LANGUAGES = ("English", "German", "French", "Spanish", "Portuguese", "Japanese", "Dutch")
_SERVICES = (
    "CRM implementation",
    "Data migration",
    "Managed services",
    "Systems integration",
    "Training",
    "Change management",
    "Custom development",
    "Analytics",
)
_TECH = ("Salesforce", "HubSpot", "Snowflake", "dbt", "Apache Airflow", "Segment", "Slack", "Zendesk")


def _schema_for(platform: str) -> dict[str, tuple[str, list[_F]]]:
    return _SCHEMAS.get(platform, _SCHEMAS["salesforce"])


def _schema_stats(platform: str, synced: Any) -> dict[str, Any]:
    objects = _schema_for(platform)
    return {
        "objectCount": len(objects),
        "fieldCount": sum(len(f) for _, f in objects.values()),
        "customFieldCount": sum(1 for _, f in objects.values() for x in f if x[3]),
        "lastDiscoveryAt": synced,
    }


def _icp_pieces(company: str, min_size: int) -> Iterator[bytes]:
    """The ICP JSON document, produced piece by piece so a huge one never sits in memory."""
    seed = _seed("icp", company)

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    head = {
        "industry": _INDUSTRIES[seed % len(_INDUSTRIES)],
        "verticals": _unique_pick(
            (
                "B2B SaaS",
                "Fintech",
                "Insurtech",
                "Healthtech",
                "E-commerce",
                "Industrial IoT",
                "Public sector",
            ),
            seed,
            3,
        ),
        "companySize": {"min": 200, "max": 5000, "label": "Mid-market to enterprise"},
        "revenue": {"min": 20_000_000, "max": 750_000_000, "currency": "USD"},
        "regions": _unique_pick(_REGIONS, seed >> 7, 4),
        "goals": [
            "Grow partner-sourced pipeline",
            "Shorten sales cycles with co-selling",
            f"Expand {company}'s footprint in new regions",
        ],
        "painPoints": [
            "Manual partner lead routing",
            "No shared view of co-sell opportunities",
            "Attribution disputes between direct and partner teams",
        ],
    }
    signals = [
        "Hiring partner managers",
        "Recently announced a partner program",
        "Evaluating PRM platforms",
        "CRM migration in progress",
    ]
    tail = {
        "technologies": _unique_pick(_TECH, seed >> 11, 5),
        "personas": [
            {"title": "VP Partnerships", "department": "Alliances", "seniority": "VP"},
            {"title": "Head of Revenue Operations", "department": "RevOps", "seniority": "Director"},
            {"title": "Chief Revenue Officer", "department": "Sales", "seniority": "C-level"},
        ],
    }
    size = 0
    for i, (key, value) in enumerate(head.items()):
        piece = ("{" if i == 0 else ",") + f"{dump(key)}:{dump(value)}"
        data = piece.encode()
        size += len(data)
        yield data
    data = (',"buyingSignals":[' + ",".join(dump(s) for s in signals)).encode()
    size += len(data)
    yield data
    tail_bytes = ("]" + "".join(f",{dump(k)}:{dump(v)}" for k, v in tail.items()) + "}").encode()
    escaped = dump(company)[1:-1]
    n = 0
    while size + len(tail_bytes) < min_size:
        n += 1
        data = (
            f',"Signal {n:07d}: {escaped} is evaluating partner-sourced pipeline expansion across EMEA '
            "and North America; procurement is reviewing integration partners for CRM, data and "
            'AI workflow automation this quarter, with budget approved by the revenue leadership."'
        ).encode()
        size += len(data)
        yield data
    yield tail_bytes


def _rechunk(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-cut a byte stream into ``size``-byte chunks (splitting UTF-8 characters like a real stream may)."""
    buf = bytearray()
    for piece in pieces:
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


# --- routing -------------------------------------------------------------------------------------------


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


# --- the HTTP layer --------------------------------------------------------------------------------------


class _BadRequest(Exception):
    pass


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that binds without DNS, tracks connections and can reset them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, app: PartnerOSStandIn) -> None:
        self.address_family = family
        self.app = app
        self.conns: set[socket.socket] = set()
        self.aborted: set[int] = set()
        self.conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can take seconds.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients vanishing mid-answer are routine here (faults, timeouts); stay quiet.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def shutdown_request(self, request: Any) -> None:
        with self.conns_lock:
            abort = id(request) in self.aborted
            self.aborted.discard(id(request))
        if abort:
            # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset".
            with contextlib.suppress(OSError):
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_request(request)
            return
        super().shutdown_request(request)

    def close_all(self) -> None:
        with self.conns_lock:
            conns = list(self.conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                # The plain-socket method: works on TLS sockets without tearing down their state.
                socket.socket.shutdown(conn, socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "PartnerOS-StandIn/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    """Headers and body go out in separate writes; with Nagle on, each answer waits ~40 ms for an ACK."""
    timeout = 120.0
    """Idle keep-alive connections are closed after this; also bounds a stuck client."""
    _tls_failed = False

    def setup(self) -> None:
        with self.server.conns_lock:
            self.server.conns.add(self.request)
        if isinstance(self.request, ssl.SSLSocket):
            # The handshake runs here, in the connection's thread, not in the accept loop.
            self.request.settimeout(10.0)
            try:
                self.request.do_handshake()
            except (OSError, ValueError):
                self._tls_failed = True
        super().setup()

    def handle(self) -> None:
        if self._tls_failed:
            self.close_connection = True
            return
        super().handle()

    def finish(self) -> None:
        with self.server.conns_lock:
            self.server.conns.discard(self.request)
        with contextlib.suppress(OSError):
            super().finish()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default writes request lines to stderr."""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._write(_json_response(400, {"error": str(exc)}), close=True)
            return
        self.server.app._serve_one(self, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("Malformed chunked request body.") from None
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_REQUEST_BODY:
                    raise _BadRequest("Request body too large.")
                out += self.rfile.read(size)
                self.rfile.readline(8)
        raw = self.headers.get("Content-Length")
        if not raw:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise _BadRequest("Invalid Content-Length.") from None
        if length < 0 or length > MAX_REQUEST_BODY:
            raise _BadRequest("Invalid Content-Length.")
        return self.rfile.read(length)

    def _head(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _write(self, resp: _Response, *, close: bool = False, stop: threading.Event | None = None) -> None:
        headers = list(resp.headers)
        if resp.content_type:
            headers.insert(0, ("Content-Type", resp.content_type))
        body = resp.body
        if isinstance(body, bytes):
            headers.append(("Content-Length", str(len(body))))
        else:
            headers.append(("Transfer-Encoding", "chunked"))
        if close:
            headers.append(("Connection", "close"))
        self._head(resp.status, headers)
        if self.command == "HEAD":
            return
        if isinstance(body, bytes):
            self.wfile.write(body)
            return
        for chunk in body:
            if stop is not None and stop.is_set():
                self.close_connection = True
                return
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _abort_connection(self) -> None:
        with self.server.conns_lock:
            self.server.aborted.add(id(self.request))
        self.close_connection = True


# --- the stand-in ---------------------------------------------------------------------------------------


class PartnerOSStandIn:
    """A running PartnerOS look-alike on loopback; see the module docstring.

    Data and counters are guarded by one lock, so tests may seed, inject faults and read
    counters from any thread while clients talk to the server.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: ssl.SSLContext | None = None,
        sign_in_rate_limit: tuple[int, float] | None = (3, 10.0),
        session_ttl: float = 7 * 24 * 3600,
        cookie_prefix: str = "better-auth",
        refresh_cookie_on_responses: bool = False,
        trusted_origins: Iterable[str] = (),
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.sign_in_rate_limit = sign_in_rate_limit
        """``(max attempts, window seconds)`` per client IP; None disables it. May be changed live."""
        self.session_ttl = session_ttl
        self.cookie_prefix = cookie_prefix
        self.refresh_cookie_on_responses = refresh_cookie_on_responses
        self.trusted_origins: set[str] = set(trusted_origins)
        """Origins accepted besides :attr:`origin` by the Origin check."""
        self.clock: Callable[[], float] = time.time
        """Wall clock (epoch seconds) for sessions, the rate limit and timestamps; replace it in tests."""
        self.analyze_delay: float = 0.0
        """Seconds ``POST /api/partners/{id}/analyze`` takes (the real one can take many seconds)."""
        self.icp_chunk_size: int | None = None
        """Bytes per streamed ICP chunk; None: small chunks for a normal document, 16 KiB for a big one."""
        self.icp_chunk_delay: float = 0.0
        """Pause between two ICP chunks, to look like tokens arriving."""
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(32)
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._bound_port: int | None = None
        self._clear()

    def _clear(self) -> None:
        self._orgs: dict[str, _Org] = {}
        self._users: dict[str, _User] = {}
        self._sessions: dict[str, _Session] = {}
        self._integrations: dict[str, _Integration] = {}
        self._partners: dict[str, _Partner] = {}
        self._forms: dict[str, _Form] = {}
        self._applications: list[dict[str, Any]] = []
        self._faults: list[_ArmedFault] = []
        self._rate: dict[str, deque[float]] = {}
        self._requests: Counter[str] = Counter()
        self._log: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_SIZE)
        self._sign_ins = 0
        self._sign_in_attempts = 0
        self._sign_outs = 0
        self._icp_size = 0
        self._issued_cookies: list[str] = []

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> PartnerOSStandIn:
        """Bind and serve in a daemon thread; returns self. Takes a few milliseconds."""
        if self._httpd is not None:
            raise RuntimeError("PartnerOSStandIn is already running.")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        httpd = _HTTPServer((self.host, self.port), family, self)
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._bound_port = int(httpd.server_address[1])
        self._stop.clear()
        self._wake = socket.socketpair()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=self._serve,
            args=(httpd, self._wake[0]),
            name=f"partneros-standin-{self._bound_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def _serve(self, httpd: _HTTPServer, wake: socket.socket) -> None:
        """Accept loop; a byte on ``wake`` ends it at once (serve_forever would poll every 0.5 s)."""
        with selectors.DefaultSelector() as sel:
            sel.register(httpd, selectors.EVENT_READ)
            sel.register(wake, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select():
                    if key.fileobj is wake:
                        return
                    httpd._handle_request_noblock()  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop accepting, cut open connections (ends drips and keep-alives) and free the port."""
        httpd, thread, wake = self._httpd, self._thread, self._wake
        if httpd is None:
            return
        self._stop.set()
        if wake is not None:
            with contextlib.suppress(OSError):
                wake[1].send(b"x")
        if thread is not None:
            thread.join(5)
        httpd.close_all()
        httpd.server_close()
        if wake is not None:
            for s in wake:
                s.close()
        self._httpd = self._thread = self._wake = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> PartnerOSStandIn:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._bound_port is not None else "not started"
        return f"<PartnerOSStandIn {where}>"

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def url_host(self) -> str:
        """The host part of :attr:`base_url` (a wildcard bind address maps to loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"[{host}]" if ":" in host else host

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` with no trailing slash; available once started."""
        if self._bound_port is None:
            raise RuntimeError("Start the PartnerOSStandIn first: the port is chosen when it binds.")
        return f"{self.scheme}://{self.url_host}:{self._bound_port}"

    @property
    def origin(self) -> str:
        """What the Origin header of a cookie-carrying POST must say."""
        return self.base_url

    @property
    def session_cookie_name(self) -> str:
        """``better-auth.session_token`` over http, ``__Secure-better-auth.session_token`` over TLS."""
        name = f"{self.cookie_prefix}.session_token"
        return f"__Secure-{name}" if self.tls is not None else name

    def connection_dict(
        self,
        *,
        login: str = DEMO_EMAIL,
        password: str = DEMO_PASSWORD,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An Airflow connection (JSON form) pointing at this server."""
        conn: dict[str, Any] = {
            "conn_type": "partneros",
            "host": self.base_url,
            "login": login,
            "password": password,
        }
        if extra is not None:
            conn["extra"] = dict(extra)
        return conn

    def connection_json(
        self,
        *,
        login: str = DEMO_EMAIL,
        password: str = DEMO_PASSWORD,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """The value for ``AIRFLOW_CONN_<ID>`` (Airflow's JSON connection form)."""
        return json.dumps(self.connection_dict(login=login, password=password, extra=extra))

    # --- data API -------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc)

    def reset(self) -> None:
        """Forget everything: data, sessions, counters, log, faults, rate-limit state, settings.

        The server keeps running on the same port; call :meth:`seed_demo` to get the demo data back.
        """
        with self._lock:
            self._clear()
            self.analyze_delay = 0.0
            self.icp_chunk_size = None
            self.icp_chunk_delay = 0.0

    def add_organization(self, org_id: str, name: str = "Organization", ai_quota: int | None = None) -> str:
        """Add an organization; ``ai_quota`` None is unlimited, else each /api/ai/* success uses one."""
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or org_id
        with self._lock:
            self._orgs[org_id] = _Org(org_id, name, slug, ai_quota, self._now())
        return org_id

    def set_ai_quota(self, org_id: str, ai_quota: int | None) -> None:
        """Set what is left of an organization's AI quota (0 -> 402 on /api/ai/*)."""
        with self._lock:
            self._org(org_id).ai_quota = ai_quota

    def ai_quota(self, org_id: str) -> int | None:
        """What is left of an organization's AI quota (None: unlimited)."""
        with self._lock:
            return self._org(org_id).ai_quota

    def _org(self, org_id: str) -> _Org:
        try:
            return self._orgs[org_id]
        except KeyError:
            raise ValueError(f"Unknown organization {org_id!r}: add_organization() it first.") from None

    def add_user(
        self,
        email: str,
        password: str,
        *,
        role: str = "admin",
        organizations: Iterable[str] | None = None,
        active_organization: str | None = _UNSET,
        email_verified: bool = True,
        name: str | None = None,
    ) -> str:
        """Add a user and return its id.

        ``organizations`` None means the first organization added (if any). ``active_organization``
        defaults to the first of ``organizations``; pass None for a user who must pick one first.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}, got {role!r}.")
        with self._lock:
            orgs = list(organizations) if organizations is not None else list(self._orgs)[:1]
            for org in orgs:
                self._org(org)
            active = (orgs[0] if orgs else None) if active_organization is _UNSET else active_organization
            if active is not None and active not in orgs:
                raise ValueError(f"active_organization {active!r} is not one of the user's organizations.")
            user = _User(
                str(uuid.uuid4()),
                email.lower(),
                password,
                name or email.split("@")[0].title(),
                role,
                orgs,
                active,
                email_verified,
                self._now(),
            )
            self._users[user.email] = user
        return user.id

    def add_integration(
        self,
        connection_id: str,
        *,
        organization: str,
        platform: str = "salesforce",
        status: str = "active",
        last_sync_at: datetime | str | None = _UNSET,
        last_error_at: datetime | str | None = None,
        last_error_message: str | None = None,
        instance_url: str | None = _UNSET,
        created_at: datetime | str | None = None,
    ) -> str:
        """Add a CRM connection; defaults: synced a minute ago, a Salesforce instance URL."""
        if not connection_id:
            raise ValueError("connection_id must be a non-empty string.")
        with self._lock:
            self._org(organization)
            now = self._now()
            if last_sync_at is _UNSET:
                last_sync_at = now - timedelta(minutes=1)
            if instance_url is _UNSET:
                instance_url = (
                    "https://partneros-demo.my.salesforce.com" if platform == "salesforce" else None
                )
            self._integrations[connection_id] = _Integration(
                connection_id,
                organization,
                {
                    "platform": platform,
                    "status": status,
                    "instanceUrl": instance_url,
                    "lastSyncAt": last_sync_at,
                    "lastErrorAt": last_error_at,
                    "lastErrorMessage": last_error_message,
                    "createdAt": created_at or now - timedelta(days=30),
                },
            )
        return connection_id

    def _integration(self, connection_id: str) -> _Integration:
        try:
            return self._integrations[connection_id]
        except KeyError:
            raise ValueError(f"Unknown integration {connection_id!r}.") from None

    def set_integration(self, connection_id: str, **fields: Any) -> None:
        """Change fields of a connection (snake_case or API camelCase names; unknown names are added).

        ``organization=`` moves it to another organization.
        """
        with self._lock:
            integ = self._integration(connection_id)
            if "organization" in fields:
                integ.organization = self._org(fields.pop("organization")).id
            integ.fields.update({_camel(k): v for k, v in fields.items()})

    def script_integration(self, connection_id: str, states: Sequence[Mapping[str, Any]]) -> None:
        """Each GET of the status answers the next state merged over the record; the last one sticks.

        An empty list removes the script.
        """
        with self._lock:
            integ = self._integration(connection_id)
            integ.script = deque({_camel(k): v for k, v in s.items()} for s in states)

    def add_partner(self, partner_id: str, *, organization: str, name: str, domain: str) -> str:
        """Add a partner record that ``POST /api/partners/{id}/analyze`` can enrich."""
        with self._lock:
            self._org(organization)
            self._partners[partner_id] = _Partner(
                partner_id,
                organization,
                {
                    "id": partner_id,
                    "name": name,
                    "domain": domain,
                    "organizationId": organization,
                    "createdAt": self._now() - timedelta(days=10),
                },
            )
        return partner_id

    def add_application_form(
        self,
        slug: str,
        *,
        organization: str,
        required_fields: Iterable[str] = ("company", "email"),
        agreements: Iterable[str] = ("terms",),
    ) -> str:
        """Publish an application form under a public slug."""
        with self._lock:
            self._org(organization)
            self._forms[slug] = _Form(slug, organization, tuple(required_fields), tuple(agreements))
        return slug

    def set_icp_size(self, n_bytes: int | None) -> None:
        """Make every ICP document at least ``n_bytes`` long (streamed, never held in memory)."""
        with self._lock:
            self._icp_size = max(0, int(n_bytes or 0))

    def expire_sessions(self) -> None:
        """End every current session: the next authenticated call answers 401."""
        with self._lock:
            self._sessions.clear()

    def inject(self, fault: Fault) -> Fault:
        """Arm a fault; faults apply in the order injected, before normal handling."""
        with self._lock:
            self._faults.append(_ArmedFault(fault, fault.times))
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        """Faults that are still armed."""
        with self._lock:
            return [a.fault for a in self._faults]

    def seed_demo(self) -> None:
        """Create the demo organizations, users, integrations, partners and application form."""
        now = self._now()
        self.add_organization(DEMO_ORG_ID, DEMO_ORG_NAME)
        self.add_organization(OTHER_ORG_ID, OTHER_ORG_NAME, ai_quota=0)
        self.add_user(DEMO_EMAIL, DEMO_PASSWORD, role="admin", organizations=[DEMO_ORG_ID], name="Demo Admin")
        self.add_user(
            PARTNER_EMAIL, DEMO_PASSWORD, role="partner", organizations=[DEMO_ORG_ID], name="Demo Partner"
        )
        self.add_user(
            NOORG_EMAIL,
            DEMO_PASSWORD,
            role="member",
            organizations=[DEMO_ORG_ID, OTHER_ORG_ID],
            active_organization=None,
            name="No Org Member",
        )
        self.add_user(
            UNVERIFIED_EMAIL,
            DEMO_PASSWORD,
            role="admin",
            organizations=[DEMO_ORG_ID],
            email_verified=False,
            name="Unverified Admin",
        )
        self.add_integration(
            DEMO_SALESFORCE_CONNECTION,
            organization=DEMO_ORG_ID,
            platform="salesforce",
            last_sync_at=now - timedelta(minutes=5),
            instance_url="https://partneros-demo.my.salesforce.com",
        )
        self.add_integration(
            DEMO_HUBSPOT_CONNECTION,
            organization=DEMO_ORG_ID,
            platform="hubspot",
            last_sync_at=now - timedelta(hours=1),
        )
        self.add_integration(
            DEMO_BROKEN_CONNECTION,
            organization=DEMO_ORG_ID,
            platform="salesforce",
            status="error",
            last_sync_at=now - timedelta(days=3),
            last_error_at=now - timedelta(minutes=10),
            last_error_message="INVALID_SESSION_ID: Session expired or invalid",
        )
        self.add_integration(OTHER_ORG_CONNECTION, organization=OTHER_ORG_ID, platform="salesforce")
        names = [
            ("Acme Consulting", "acme-consulting.example"),
            ("Globex Systems", "globex.example"),
            ("Initech Partners", "initech.example"),
            ("Umbrella Integrations", "umbrella.example"),
            ("Stark Solutions", "stark-solutions.example"),
        ]
        for pid, (name, domain) in zip(DEMO_PARTNER_IDS, names, strict=True):
            self.add_partner(pid, organization=DEMO_ORG_ID, name=name, domain=domain)
        self.add_partner(
            OTHER_ORG_PARTNER_ID, organization=OTHER_ORG_ID, name="Hooli", domain="hooli.example"
        )
        self.add_application_form(DEMO_APPLICATION_SLUG, organization=DEMO_ORG_ID)

    # --- observations ------------------------------------------------------------------------------------

    @property
    def sign_ins(self) -> int:
        """Successful sign-ins."""
        with self._lock:
            return self._sign_ins

    @property
    def sign_in_attempts(self) -> int:
        """Sign-in requests that reached the auth logic (rate-limited ones too; not those a fault took)."""
        with self._lock:
            return self._sign_in_attempts

    @property
    def sign_outs(self) -> int:
        """Sign-outs that ended a live session."""
        with self._lock:
            return self._sign_outs

    @property
    def issued_session_cookies(self) -> list[str]:
        """Every session cookie value this server has set, oldest first (signed out or expired too).

        For leak audits: a test can assert that none of these strings (nor their URL-decoded form)
        appears in logs, XComs or exception texts. Read-only; the server never prints them.
        """
        with self._lock:
            return list(self._issued_cookies)

    @property
    def active_sessions(self) -> int:
        """Sessions that are neither expired nor signed out."""
        with self._lock:
            now = self.clock()
            return sum(1 for s in self._sessions.values() if s.expires_at > now)

    @property
    def requests(self) -> Counter[str]:
        """A copy of the request counts keyed ``"METHOD /route/{template}"`` (raw path if unmatched)."""
        with self._lock:
            return Counter(self._requests)

    @property
    def request_log(self) -> list[RequestRecord]:
        """Copies of the last 10,000 request records, oldest first."""
        with self._lock:
            return [replace(r, headers=dict(r.headers), query=dict(r.query)) for r in self._log]

    @property
    def applications(self) -> list[dict[str, Any]]:
        """Accepted application submissions, oldest first."""
        with self._lock:
            return [dict(a) for a in self._applications]

    # --- serving one request --------------------------------------------------------------------------------

    def _serve_one(self, h: _Handler, body: bytes) -> None:
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
        req = _Request(h.command, path, query, headers, body, client, route, params)
        cookie_header = headers.get("cookie", "")
        cookie_names = tuple(n for n, _ in _parse_cookies(cookie_header))
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
            self._log.append(record)
            self._requests[f"{h.command} {template or path}"] += 1
            req.session = self._lookup_session(cookie_header)
            record.authenticated = req.session is not None
            fault = self._take_fault(h.command, path, template)
        status: int | None = None
        try:
            if fault is not None:
                record.fault = fault.kind
                if fault.kind != "delay":
                    status = self._apply_fault(h, fault)
                    return
                if self._stop.wait(fault.seconds):
                    h.close_connection = True
                    return
            try:
                resp = self._respond(req)
            except _Abort as abort:
                resp = abort.response
            except Exception:
                logger.exception("PartnerOS stand-in failed on %s %s", h.command, template or path)
                resp = _json_response(500, {"error": "Internal server error."})
            self._maybe_refresh_cookie(req, resp)
            status = resp.status
            h._write(resp, stop=self._stop)
        except OSError:
            h.close_connection = True
        finally:
            with self._lock:
                record.status = status

    def _take_fault(self, method: str, path: str, template: str | None) -> Fault | None:
        for armed in self._faults:
            if armed.fault.matches(method, path, template):
                if armed.remaining is not None:
                    armed.remaining -= 1
                    if armed.remaining <= 0:
                        self._faults.remove(armed)
                return armed.fault
        return None

    def _apply_fault(self, h: _Handler, f: Fault) -> int | None:
        """Misbehave at the socket level; returns the status sent (None if no status line was)."""
        if f.kind == "drop":
            h.close_connection = True
            return None
        if f.kind == "status":
            data, ctype = f.encoded_body()
            status = f.status or 500
            h._write(_Response(status, data, ctype, list((f.headers or {}).items())))
            return status
        if f.kind == "redirect":
            status = f.status if f.status is not None and 300 <= f.status < 400 else 302
            headers = [("Location", f.location or "/"), *(f.headers or {}).items()]
            h._write(_Response(status, b"", None, headers))
            return status
        if f.kind == "malformed_json":
            data, _ = f.encoded_body(b'{"id": "conn_salesforce_demo", "status": "act')
            h._write(
                _Response(f.status or 200, data, f.content_type or _JSON, list((f.headers or {}).items()))
            )
            return f.status or 200
        status = f.status or 200
        extra = list((f.headers or {}).items())
        if f.kind == "reset":
            data, _ = f.encoded_body(b'{"id": "conn_salesforce_demo", "platform": "salesforce", "sta')
            h._head(
                status,
                [
                    ("Content-Type", f.content_type or _JSON),
                    *extra,
                    ("Content-Length", str(len(data) + 4096)),
                ],
            )
            h.wfile.write(data)
            h._abort_connection()
            return status
        if f.kind == "short_body":
            data, _ = f.encoded_body(b'{"id": "conn_salesforce_demo", "status": "active"')
            h._head(
                status,
                [
                    ("Content-Type", f.content_type or _JSON),
                    *extra,
                    ("Content-Length", str(len(data) + 1024)),
                    ("Connection", "close"),
                ],
            )
            h.wfile.write(data)
            h.close_connection = True
            return status
        # drip: one byte at a time until done, the client leaves, or the server stops
        data, _ = f.encoded_body(b" " * 65534 + b"{}")
        h._head(
            status, [("Content-Type", f.content_type or _JSON), *extra, ("Content-Length", str(len(data)))]
        )
        for i in range(len(data)):
            if self._stop.wait(f.seconds):
                h.close_connection = True
                break
            h.wfile.write(data[i : i + 1])
        return status

    def _respond(self, req: _Request) -> _Response:
        route = req.route
        if route is None:
            raise _api_error(404, "Not found.")
        method = req.method
        endpoint = route.methods.get(method) or (route.methods.get("GET") if method == "HEAD" else None)
        if endpoint is None:
            allow = ", ".join(sorted(route.methods))
            return _json_response(405, {"error": "Method not allowed."}, [("Allow", allow)])
        if route.template == SIGN_IN_ROUTE:
            self._check_rate_limit(req)
        if method == "POST" and req.headers.get("cookie"):
            self._check_origin(req)
        handler: Callable[[_Request], _Response] = getattr(self, endpoint)
        return handler(req)

    def _check_rate_limit(self, req: _Request) -> None:
        with self._lock:
            self._sign_in_attempts += 1
            limit = self.sign_in_rate_limit
            if limit is None:
                return
            max_attempts, window = limit
            now = self.clock()
            hits = self._rate.setdefault(req.client, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= max_attempts:
                retry = max(1, math.ceil(hits[0] + window - now))
                body = json.dumps({"message": "Too many requests. Please try again later."}).encode()
                raise _Abort(
                    _Response(429, body, "text/plain;charset=UTF-8", [("X-Retry-After", str(retry))])
                )
            hits.append(now)

    def _check_origin(self, req: _Request) -> None:
        origin = req.headers.get("origin")
        if not origin or origin == "null":
            raise _auth_error(403, "Missing or null Origin", "MISSING_OR_NULL_ORIGIN")
        # The server's own origin is its base URL, or the address the client reached it by (Host), so
        # a stand-in behind docker-compose service names works without configuration.
        allowed = {self.origin, *self.trusted_origins}
        host = req.headers.get("host")
        if host:
            allowed.add(f"{self.scheme}://{host}")
        if origin.rstrip("/") not in allowed:
            raise _auth_error(403, "Invalid origin", "INVALID_ORIGIN")

    # --- sessions and cookies ---------------------------------------------------------------------------

    def _sign(self, token: str) -> str:
        mac = hmac.new(self._secret, token.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode()

    def _cookie_value(self, token: str) -> str:
        """better-auth's signed cookie: ``token.base64(hmac)``, URL-encoded (so %2B, %2F, %3D appear)."""
        return quote(f"{token}.{self._sign(token)}", safe="")

    def _set_cookie(self, value: str, max_age: int) -> tuple[str, str]:
        secure = "; Secure" if self.tls is not None else ""
        return (
            "Set-Cookie",
            f"{self.session_cookie_name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}",
        )

    def _lookup_session(self, cookie_header: str) -> _Session | None:
        if not cookie_header:
            return None
        now = self.clock()
        for name, value in _parse_cookies(cookie_header):
            if name != self.session_cookie_name:
                continue
            token, _, signature = unquote(value).rpartition(".")
            if not token or not hmac.compare_digest(signature.encode(), self._sign(token).encode()):
                continue
            session = self._sessions.get(token)
            if session is None:
                continue
            if session.expires_at <= now:
                del self._sessions[token]
                continue
            return session
        return None

    def _maybe_refresh_cookie(self, req: _Request, resp: _Response) -> None:
        session = req.session
        if not self.refresh_cookie_on_responses or session is None:
            return
        if any(name.lower() == "set-cookie" for name, _ in resp.headers):
            return  # sign-in / sign-out already set the cookie they mean
        with self._lock:
            if self._sessions.get(session.token) is not session:
                return
            session.expires_at = self.clock() + self.session_ttl
        resp.headers.append(self._set_cookie(self._cookie_value(session.token), int(self.session_ttl)))

    def _user_json(self, user: _User) -> dict[str, Any]:
        created = iso(user.created_at)
        return {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "emailVerified": user.email_verified,
            "image": None,
            "createdAt": created,
            "updatedAt": created,
        }

    def _org_json(self, org: _Org) -> dict[str, Any]:
        return {
            "id": org.id,
            "name": org.name,
            "slug": org.slug,
            "logo": None,
            "metadata": None,
            "createdAt": iso(org.created_at),
        }

    def _internal(self, req: _Request) -> tuple[_User, str]:
        """Session, role and active organization checks of the internal PartnerOS routes."""
        session = req.session
        if session is None:
            raise _api_error(401, "Unauthorized")
        with self._lock:
            user = self._users.get(session.user_email)
            if user is None:
                raise _api_error(401, "Unauthorized")
            if user.role == "partner":
                raise _api_error(403, "Forbidden")
            if session.active_organization is None:
                raise _api_error(400, "No active organization.")
            return user, session.active_organization

    # --- endpoints -------------------------------------------------------------------------------------

    def _ep_sign_in(self, req: _Request) -> _Response:
        body = _json_object(req.body)
        if body is None:
            raise _auth_error(400, "Invalid request body: expected a JSON object.", "VALIDATION_ERROR")
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise _auth_error(
                400, "Invalid body: [body.email] and [body.password] must be strings.", "VALIDATION_ERROR"
            )
        with self._lock:
            user = self._users.get(email.strip().lower())
            if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
                raise _auth_error(401, "Invalid email or password", "INVALID_EMAIL_OR_PASSWORD")
            if not user.email_verified:
                raise _auth_error(403, "Email not verified", "EMAIL_NOT_VERIFIED")
            now = self.clock()
            token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
            session = _Session(
                str(uuid.uuid4()),
                token,
                user.email,
                now,
                now + self.session_ttl,
                user.active_organization,
                req.client,
                req.headers.get("user-agent", ""),
            )
            self._sessions[token] = session
            self._sign_ins += 1
            self._issued_cookies.append(self._cookie_value(token))
            payload = {"redirect": False, "token": token, "url": None, "user": self._user_json(user)}
        return _json_response(
            200, payload, [self._set_cookie(self._cookie_value(token), int(self.session_ttl))]
        )

    def _ep_sign_out(self, req: _Request) -> _Response:
        with self._lock:
            session = req.session
            if session is not None and self._sessions.pop(session.token, None) is not None:
                self._sign_outs += 1
        req.session = None
        return _json_response(200, {"success": True}, [self._set_cookie("", 0)])

    def _ep_get_session(self, req: _Request) -> _Response:
        session = req.session
        if session is None:
            return _json_response(200, None)
        with self._lock:
            user = self._users[session.user_email]
            created = iso(datetime.fromtimestamp(session.created_at, tz=timezone.utc))
            payload = {
                "session": {
                    "id": session.id,
                    "token": session.token,
                    "userId": user.id,
                    "expiresAt": iso(datetime.fromtimestamp(session.expires_at, tz=timezone.utc)),
                    "createdAt": created,
                    "updatedAt": created,
                    "ipAddress": session.ip,
                    "userAgent": session.user_agent,
                    "activeOrganizationId": session.active_organization,
                },
                "user": self._user_json(user),
            }
        return _json_response(200, payload)

    def _ep_set_active(self, req: _Request) -> _Response:
        session = req.session
        if session is None:
            raise _auth_error(401, "Unauthorized", "UNAUTHORIZED")
        body = _json_object(req.body)
        if body is None or "organizationId" not in body:
            raise _auth_error(400, "Invalid body: [body.organizationId] is required.", "VALIDATION_ERROR")
        org_id = body["organizationId"]
        if org_id is not None and not isinstance(org_id, str):
            raise _auth_error(
                400, "Invalid body: [body.organizationId] must be a string.", "VALIDATION_ERROR"
            )
        with self._lock:
            if org_id is None:
                session.active_organization = None
                return _json_response(200, None)
            user = self._users[session.user_email]
            org = self._orgs.get(org_id)
            if org is None or org_id not in user.organizations:
                raise _auth_error(
                    403,
                    "You are not a member of this organization",
                    "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION",
                )
            session.active_organization = org_id
            return _json_response(200, self._org_json(org))

    def _find_integration(self, req: _Request, org_id: str) -> _Integration:
        integ = self._integrations.get(req.params["id"])
        if integ is None or integ.organization != org_id:
            raise _api_error(404, "Integration not found.", "not_found")
        return integ

    def _ep_integration_status(self, req: _Request) -> _Response:
        _, org_id = self._internal(req)
        with self._lock:
            integ = self._find_integration(req, org_id)
            fields = dict(integ.fields)
            if integ.script:
                fields.update(integ.script.popleft() if len(integ.script) > 1 else integ.script[0])
            payload = {"id": integ.id, **fields}
            payload.setdefault(
                "schemaStats", _schema_stats(str(fields.get("platform")), fields.get("lastSyncAt"))
            )
        return _json_response(200, _jsonable(payload))

    def _ep_integration_schema(self, req: _Request) -> _Response:
        _, org_id = self._internal(req)
        with self._lock:
            integ = self._find_integration(req, org_id)
            platform = str(integ.fields.get("platform"))
            discovered = iso(integ.fields.get("lastSyncAt"))
        schema = _schema_for(platform)
        cache = [("Cache-Control", "private, max-age=60")]
        object_type = req.query.get("objectType")
        if object_type is None:
            objects = [
                {
                    "name": name,
                    "label": label,
                    "fieldCount": len(fields),
                    "customFieldCount": sum(1 for f in fields if f[3]),
                    "queryable": True,
                }
                for name, (label, fields) in schema.items()
            ]
            return _json_response(
                200,
                {
                    "connectionId": integ.id,
                    "platform": platform,
                    "objects": objects,
                    "totalObjects": len(objects),
                    "discoveredAt": discovered,
                },
                cache,
            )
        if object_type not in schema:
            raise _api_error(404, "Object type not found.", "not_found")
        label, fields = schema[object_type]
        return _json_response(
            200,
            {
                "connectionId": integ.id,
                "platform": platform,
                "objectType": object_type,
                "label": label,
                "fields": [
                    {"name": n, "label": lb, "type": t, "custom": c, "required": r}
                    for n, lb, t, c, r in fields
                ],
                "discoveredAt": discovered,
            },
            cache,
        )

    def _ep_analyze_partner(self, req: _Request) -> _Response:
        _, org_id = self._internal(req)
        with self._lock:
            partner = self._partners.get(req.params["id"])
            if partner is None or partner.organization != org_id:
                raise _api_error(404, "Partner not found.", "not_found")
            delay = self.analyze_delay
        if delay and self._stop.wait(delay):
            raise _api_error(503, "Service shutting down.")
        with self._lock:
            record = partner.fields
            seed = _seed("partner", str(record["domain"]))
            now = self._now()
            record.update(
                {
                    "industry": _INDUSTRIES[seed % len(_INDUSTRIES)],
                    "description": f"{record['name']} is a partner specialising in "
                    f"{_SERVICES[seed % len(_SERVICES)].lower()} for mid-market companies.",
                    "employees": 50 + seed % 4950,
                    "companyRevenue": (seed % 200 + 5) * 1_000_000,
                    "regions": _unique_pick(_REGIONS, seed >> 3, 2),
                    "languages": _unique_pick(_LANGUAGES, seed >> 5, 2),
                    "services": _unique_pick(_SERVICES, seed >> 9, 3),
                    "analyzedAt": now,
                    "updatedAt": now,
                }
            )
            partner_json = _jsonable(dict(record))
        insights = {
            "summary": f"{partner_json['name']} is a good fit for co-selling in "
            f"{partner_json['regions'][0]}.",
            "fitScore": 50 + seed % 50,
            "strengths": ["Established delivery team", f"Experience with {_TECH[seed % len(_TECH)]}"],
            "risks": ["Limited presence outside core regions"],
            "recommendedNextSteps": ["Schedule an enablement session", "Agree on a joint account plan"],
            "cachedUntil": iso(now + timedelta(days=7)),
        }
        return _json_response(200, {"partner": partner_json, "aiInsights": insights})

    def _ep_ai_icp(self, req: _Request) -> _Response:
        _, org_id = self._internal(req)
        body = _json_object(req.body)
        if body is None:
            raise _api_error(400, "Invalid JSON body.")
        company = body.get("company")
        if not isinstance(company, str) or not company.strip():
            raise _api_error(400, "company is required and must be a non-empty string.")
        with self._lock:
            org = self._orgs[org_id]
            if org.ai_quota is not None:
                if org.ai_quota <= 0:
                    raise _api_error(402, "AI quota exhausted.", "quota_exceeded")
                org.ai_quota -= 1
            min_size = self._icp_size
            size = self.icp_chunk_size or (16 * 1024 if min_size > 64 * 1024 else 37)
            delay = self.icp_chunk_delay
        chunks = _rechunk(_icp_pieces(company.strip(), min_size), size)
        if delay:
            chunks = self._paced(chunks, delay)
        return _Response(200, chunks, _TEXT, [("Cache-Control", "no-cache")])

    def _paced(self, chunks: Iterator[bytes], delay: float) -> Iterator[bytes]:
        for chunk in chunks:
            if self._stop.wait(delay):
                return
            yield chunk

    def _ep_submit_application(self, req: _Request) -> _Response:
        body = _json_object(req.body)
        if body is None:
            raise _api_error(400, "Invalid JSON body.")
        slug = body.get("slug")
        if not isinstance(slug, str) or not slug:
            raise _api_error(400, "Missing required field: slug")
        with self._lock:
            form = self._forms.get(slug)
            if form is None:
                raise _api_error(404, "Application form not found.", "not_found")
            raw_data, raw_agreements = body.get("data"), body.get("agreements")
            data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
            agreements: dict[str, Any] = raw_agreements if isinstance(raw_agreements, dict) else {}
            for name in form.required_fields:
                value = data.get(name)
                if value is None or (isinstance(value, str) and not value.strip()):
                    raise _api_error(400, f"Missing required field: {name}")
            for name in form.agreements:
                if agreements.get(name) is not True:
                    raise _api_error(400, f"Missing required agreement: {name}")
            app_id = str(uuid.uuid4())
            self._applications.append(
                {
                    "applicationId": app_id,
                    "slug": slug,
                    "organizationId": form.organization,
                    "data": data,
                    "agreements": agreements,
                    "submittedAt": iso(self._now()),
                }
            )
        return _json_response(200, {"success": True, "applicationId": app_id})
