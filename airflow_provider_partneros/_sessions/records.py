"""What a session store keeps: cookies exactly as the server set them, sessions, and the last failure.

Plain data with a JSON form, shared by every store backend. Never the password.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

STATE_VERSION = 1


@dataclass(frozen=True)
class CookieRecord:
    """One cookie with every attribute ``http.cookiejar`` keeps, so it goes back exactly as set."""

    name: str
    value: str
    domain: str
    path: str
    secure: bool = False
    expires: int | None = None
    port: str | None = None
    domain_specified: bool = False
    domain_initial_dot: bool = False
    path_specified: bool = True
    rest: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print a cookie value
        return f"CookieRecord(name={self.name!r}, domain={self.domain!r}, value='***')"


def cookie_records(jar: http.cookiejar.CookieJar) -> tuple[CookieRecord, ...]:
    """The cookies of a ``requests`` or ``httpx`` jar (both are ``http.cookiejar`` underneath)."""
    return tuple(
        CookieRecord(
            name=c.name,
            value=c.value or "",
            domain=c.domain,
            path=c.path,
            secure=bool(c.secure),
            expires=c.expires,
            port=c.port,
            domain_specified=bool(c.domain_specified),
            domain_initial_dot=bool(c.domain_initial_dot),
            path_specified=bool(c.path_specified),
            rest={k: v for k, v in getattr(c, "_rest", {}).items() if isinstance(v, (str, type(None)))},
        )
        for c in jar
    )


def install_cookies(jar: http.cookiejar.CookieJar, records: Sequence[CookieRecord]) -> None:
    """Make ``jar`` hold exactly ``records``, replacing cookie by cookie: a request running on another
    thread meanwhile sees the old session or the new one, never an empty jar."""
    keep = {(r.domain, r.path, r.name) for r in records}
    for record in records:
        jar.set_cookie(
            http.cookiejar.Cookie(
                version=0,
                name=record.name,
                value=record.value,
                port=record.port,
                port_specified=record.port is not None,
                domain=record.domain,
                domain_specified=record.domain_specified,
                domain_initial_dot=record.domain_initial_dot,
                path=record.path,
                path_specified=record.path_specified,
                secure=record.secure,
                expires=record.expires,
                discard=record.expires is None,
                comment=None,
                comment_url=None,
                rest=dict(record.rest),
            )
        )
    for cookie in list(jar):
        if (cookie.domain, cookie.path, cookie.name) not in keep:
            with contextlib.suppress(KeyError):
                jar.clear(cookie.domain, cookie.path, cookie.name)


@dataclass(frozen=True)
class StoredSession:
    """A session in the store. ``sid`` names it in the store only; it is not the server's token."""

    sid: str
    created: float
    cookies: tuple[CookieRecord, ...]
    dead: bool = False
    """Refused by the server (401): it needs no sign-out, only forgetting."""

    def age(self, now: float) -> float:
        return now - self.created


@dataclass
class StoreState:
    """One identity's record: the current session, replaced ones not yet signed out, the last failure."""

    current: StoredSession | None = None
    retired: list[StoredSession] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    idle_since: float | None = None
    """When the last process stopped using the current session (None while one uses it)."""
    steward_started: float | None = None
    """When a steward was last started for this entry (one starting up does not hold its guard yet)."""

    def to_json(self) -> str:
        def session(s: StoredSession) -> dict[str, Any]:
            return {**asdict(s), "cookies": [asdict(c) for c in s.cookies]}

        return json.dumps(
            {
                "version": STATE_VERSION,
                "current": session(self.current) if self.current else None,
                "retired": [session(s) for s in self.retired],
                "failure": self.failure,
                "idle_since": self.idle_since,
                "steward_started": self.steward_started,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> StoreState:
        """Parse a record; anything unreadable or of another version is an empty state (a damaged
        record only costs a sign-in)."""
        try:
            doc = json.loads(text) if text.strip() else {}
            if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
                return cls()

            def session(d: dict[str, Any]) -> StoredSession:
                cookies = tuple(CookieRecord(**c) for c in d["cookies"])
                return StoredSession(str(d["sid"]), float(d["created"]), cookies, bool(d.get("dead")))

            return cls(
                current=session(doc["current"]) if doc.get("current") else None,
                retired=[session(d) for d in doc.get("retired") or []],
                failure=doc.get("failure"),
                idle_since=float(doc["idle_since"]) if doc.get("idle_since") is not None else None,
                steward_started=float(doc["steward_started"]) if doc.get("steward_started") else None,
            )
        except (ValueError, KeyError, TypeError):
            return cls()


__all__ = ["CookieRecord", "StoreState", "StoredSession", "cookie_records", "install_cookies"]
