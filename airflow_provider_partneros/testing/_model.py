"""The stand-in's records: organizations, users, sessions, CRM connections, partners, application
forms, and what it observed of each request. Plain data; the stand-in guards it with its lock.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

__all__ = ["ROLES", "RequestRecord"]

ROLES = frozenset({"owner", "admin", "member", "partner"})
REQUEST_LOG_SIZE = 10_000


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
class Org:
    id: str
    name: str
    slug: str
    ai_quota: int | None
    created_at: datetime


@dataclass
class User:
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
class Session:
    id: str
    token: str = field(repr=False)
    user_email: str
    created_at: float
    expires_at: float
    active_organization: str | None
    ip: str
    user_agent: str


@dataclass
class Integration:
    id: str
    organization: str
    fields: dict[str, Any]
    script: deque[dict[str, Any]] = field(default_factory=deque)


@dataclass
class Partner:
    id: str
    organization: str
    fields: dict[str, Any]


@dataclass
class Form:
    slug: str
    organization: str
    required_fields: tuple[str, ...]
    agreements: tuple[str, ...]


@dataclass
class Data:
    """Everything a test seeds or scripts (sessions live in :class:`._sessions.SessionStore`)."""

    orgs: dict[str, Org] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    """Keyed by lower-case email."""
    integrations: dict[str, Integration] = field(default_factory=dict)
    partners: dict[str, Partner] = field(default_factory=dict)
    forms: dict[str, Form] = field(default_factory=dict)
    applications: list[dict[str, Any]] = field(default_factory=list)
    icp_size: int = 0

    def org(self, org_id: str) -> Org:
        try:
            return self.orgs[org_id]
        except KeyError:
            raise ValueError(f"Unknown organization {org_id!r}: add_organization() it first.") from None

    def integration(self, connection_id: str) -> Integration:
        try:
            return self.integrations[connection_id]
        except KeyError:
            raise ValueError(f"Unknown integration {connection_id!r}.") from None


class RequestLog:
    """The last :data:`REQUEST_LOG_SIZE` request records and a count per route (ever)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._records: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_SIZE)

    def add(self, record: RequestRecord) -> None:
        self._records.append(record)
        self.counts[f"{record.method} {record.route or record.path}"] += 1

    def copies(self) -> Iterator[RequestRecord]:
        return (replace(r, headers=dict(r.headers), query=dict(r.query)) for r in self._records)
