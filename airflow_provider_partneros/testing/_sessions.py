"""Auth state: server-side sessions behind better-auth's signed cookie, and the sign-in rate limiter.

Neither object locks: the stand-in calls them under its own lock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import string
import uuid
from collections import Counter, deque
from urllib.parse import quote, unquote

from airflow_provider_partneros.testing._model import Session, User
from airflow_provider_partneros.testing._wire import parse_cookies


class SessionStore:
    """Live sessions by token, and what happened to them (sign-ins, sign-outs, every cookie issued)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._by_token: dict[str, Session] = {}
        self.sign_ins = 0
        self.sign_outs = 0
        """Sign-outs that ended a live session."""
        self.issued_cookies: list[str] = []

    def _sign(self, token: str) -> str:
        mac = hmac.new(self._secret, token.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode()

    def cookie_value(self, token: str) -> str:
        """better-auth's signed cookie: ``token.base64(hmac)``, URL-encoded (so %2B, %2F, %3D appear)."""
        return quote(f"{token}.{self._sign(token)}", safe="")

    def create(self, user: User, *, ip: str, user_agent: str, now: float, ttl: float) -> Session:
        """A new session for a successful sign-in (earlier sessions of the user stay valid)."""
        token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        session = Session(
            str(uuid.uuid4()), token, user.email, now, now + ttl, user.active_organization, ip, user_agent
        )
        self._by_token[token] = session
        self.sign_ins += 1
        self.issued_cookies.append(self.cookie_value(token))
        return session

    def lookup(self, cookie_header: str, cookie_name: str, now: float) -> Session | None:
        """The live session a Cookie header names; expired ones found on the way are forgotten."""
        if not cookie_header:
            return None
        for name, value in parse_cookies(cookie_header):
            if name != cookie_name:
                continue
            token, _, signature = unquote(value).rpartition(".")
            if not token or not hmac.compare_digest(signature.encode(), self._sign(token).encode()):
                continue
            session = self._by_token.get(token)
            if session is None:
                continue
            if session.expires_at <= now:
                del self._by_token[token]
                continue
            return session
        return None

    def is_current(self, session: Session) -> bool:
        """Whether ``session`` is still the one stored under its token (not signed out or expired)."""
        return self._by_token.get(session.token) is session

    def end(self, session: Session) -> None:
        """Sign out: forget the session (counted once, however often it is signed out)."""
        if self._by_token.pop(session.token, None) is not None:
            self.sign_outs += 1

    def end_all(self) -> None:
        """Forget every session, as if all expired at once (not counted as sign-outs)."""
        self._by_token.clear()

    def live(self, now: float) -> list[Session]:
        """Sessions neither expired nor signed out."""
        return [s for s in self._by_token.values() if s.expires_at > now]

    def live_by_user(self, now: float) -> dict[str, int]:
        return dict(Counter(s.user_email for s in self.live(now)))

    def oldest_live_age(self, now: float) -> float | None:
        created = [s.created_at for s in self.live(now)]
        return now - min(created) if created else None


class SignInLimiter:
    """better-auth's sign-in limit: at most N attempts per client IP in a sliding window, all counted."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}
        self.attempts = 0
        """Sign-in requests that reached the auth logic (rate-limited ones too)."""
        self.limited = 0
        """Sign-in requests answered 429 by the limit."""

    def admit(self, client: str, limit: tuple[int, float] | None, now: float) -> int | None:
        """Count one attempt; None if it may proceed, else the seconds to wait (``X-Retry-After``)."""
        self.attempts += 1
        if limit is None:
            return None
        max_attempts, window = limit
        hits = self._hits.setdefault(client, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= max_attempts:
            self.limited += 1
            return max(1, math.ceil(hits[0] + window - now))
        hits.append(now)
        return None

    def forget_windows(self) -> None:
        """Forget past attempts (the counters stay): the next sign-ins start a fresh window."""
        self._hits.clear()
