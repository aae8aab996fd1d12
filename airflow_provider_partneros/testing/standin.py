"""``PartnerOSStandIn``: a running PartnerOS look-alike on loopback, and how a test scripts and watches it.

It exists so the provider's tests, the example DAGs, the benchmarks and users' own DAG tests can
exercise the real wire protocol (signed better-auth cookies, the Origin check, the sign-in rate
limit, both error body shapes, streamed AI answers) without a PartnerOS account. On top of the
production behaviours it can inject faults (proxy pages, dropped or reset connections, drips,
truncated or malformed bodies, redirects) and records what clients sent.

This module is the facade users read: starting and stopping, the data a test seeds
(``add_organization``, ``add_user``, ``add_integration``...), faults (``inject``) and observations
(``sign_ins``, ``live_sessions_by_user()``, ``request_log``...). The parts behind it:

* :mod:`.faults`: ``Fault`` and the queue of armed faults;
* :mod:`._model`: the records (organizations, users, sessions, integrations, partners, forms,
  ``RequestRecord``); :mod:`._sessions`: the session store and the sign-in rate limiter;
* :mod:`._seed`: the demo data; :mod:`._content`: canned CRM schemas, enrichment and ICP documents;
* :mod:`._routes`: the route table and how one request is served; :mod:`._auth_routes` and
  :mod:`._api_routes`: the endpoints;
* :mod:`._http`: the threaded HTTP server and socket-level fault playing; :mod:`._wire`: requests,
  answers and JSON helpers.

Only the standard library is used and Airflow is never imported: a pytest plugin imports this
package, so it must stay cheap. Nothing here writes request bodies or cookies to stdout/stderr.
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from airflow_provider_partneros.testing import _seed
from airflow_provider_partneros.testing._api_routes import ApiEndpoints
from airflow_provider_partneros.testing._auth_routes import AuthEndpoints
from airflow_provider_partneros.testing._http import Listener
from airflow_provider_partneros.testing._model import (
    ROLES,
    Data,
    Form,
    Integration,
    Org,
    Partner,
    RequestLog,
    RequestRecord,
    User,
)
from airflow_provider_partneros.testing._routes import Dispatch
from airflow_provider_partneros.testing._seed import DEMO_EMAIL, DEMO_PASSWORD
from airflow_provider_partneros.testing._sessions import SessionStore, SignInLimiter
from airflow_provider_partneros.testing._wire import (
    camel,
)
from airflow_provider_partneros.testing.faults import Fault, FaultQueue

__all__ = ["PartnerOSStandIn"]

_UNSET: Any = object()


class PartnerOSStandIn(Dispatch, AuthEndpoints, ApiEndpoints):
    """A running PartnerOS look-alike on loopback; see the module docstring.

    Data and counters are guarded by one lock, so tests may seed, inject faults and read
    counters from any thread while clients talk to the server. How a request is served and the
    endpoints (``_ep_*``) come from the classes it inherits (:mod:`._routes` and the route groups).
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
        self._listener: Listener | None = None
        self._bound_port: int | None = None
        self._clear()

    def _clear(self) -> None:
        self._data = Data()
        self._sessions = SessionStore(self._secret)
        self._limiter = SignInLimiter()
        self._faults = FaultQueue()
        self._log = RequestLog()

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> PartnerOSStandIn:
        """Bind and serve in a daemon thread; returns self. Takes a few milliseconds."""
        if self._listener is not None:
            raise RuntimeError("PartnerOSStandIn is already running.")
        listener = Listener(self.host, self.port, self.tls, self._serve_one, self._stop)
        self._bound_port = listener.port
        self._stop.clear()
        self._listener = listener
        listener.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut open connections (ends drips and keep-alives) and free the port."""
        listener = self._listener
        if listener is None:
            return
        self._stop.set()
        listener.close()
        self._listener = None

    @property
    def running(self) -> bool:
        return self._listener is not None

    def __enter__(self) -> PartnerOSStandIn:
        if self._listener is None:
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
            self._data.orgs[org_id] = Org(org_id, name, slug, ai_quota, self._now())
        return org_id

    def set_ai_quota(self, org_id: str, ai_quota: int | None) -> None:
        """Set what is left of an organization's AI quota (0 -> 402 on /api/ai/*)."""
        with self._lock:
            self._data.org(org_id).ai_quota = ai_quota

    def ai_quota(self, org_id: str) -> int | None:
        """What is left of an organization's AI quota (None: unlimited)."""
        with self._lock:
            return self._data.org(org_id).ai_quota

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
            orgs = list(organizations) if organizations is not None else list(self._data.orgs)[:1]
            for org in orgs:
                self._data.org(org)
            active = (orgs[0] if orgs else None) if active_organization is _UNSET else active_organization
            if active is not None and active not in orgs:
                raise ValueError(f"active_organization {active!r} is not one of the user's organizations.")
            user = User(
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
            self._data.users[user.email] = user
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
            self._data.org(organization)
            now = self._now()
            if last_sync_at is _UNSET:
                last_sync_at = now - timedelta(minutes=1)
            if instance_url is _UNSET:
                instance_url = (
                    "https://partneros-demo.my.salesforce.com" if platform == "salesforce" else None
                )
            self._data.integrations[connection_id] = Integration(
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

    def set_integration(self, connection_id: str, **fields: Any) -> None:
        """Change fields of a connection (snake_case or API camelCase names; unknown names are added).

        ``organization=`` moves it to another organization.
        """
        with self._lock:
            integ = self._data.integration(connection_id)
            if "organization" in fields:
                integ.organization = self._data.org(fields.pop("organization")).id
            integ.fields.update({camel(k): v for k, v in fields.items()})

    def script_integration(self, connection_id: str, states: Sequence[Mapping[str, Any]]) -> None:
        """Each GET of the status answers the next state merged over the record; the last one sticks.

        An empty list removes the script.
        """
        with self._lock:
            integ = self._data.integration(connection_id)
            integ.script = deque({camel(k): v for k, v in s.items()} for s in states)

    def add_partner(self, partner_id: str, *, organization: str, name: str, domain: str) -> str:
        """Add a partner record that ``POST /api/partners/{id}/analyze`` can enrich."""
        with self._lock:
            self._data.org(organization)
            self._data.partners[partner_id] = Partner(
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
            self._data.org(organization)
            self._data.forms[slug] = Form(slug, organization, tuple(required_fields), tuple(agreements))
        return slug

    def set_icp_size(self, n_bytes: int | None) -> None:
        """Make every ICP document at least ``n_bytes`` long (streamed, never held in memory)."""
        with self._lock:
            self._data.icp_size = max(0, int(n_bytes or 0))

    def expire_sessions(self) -> None:
        """End every current session: the next authenticated call answers 401."""
        with self._lock:
            self._sessions.end_all()

    def inject(self, fault: Fault) -> Fault:
        """Arm a fault; faults apply in the order injected, before normal handling."""
        with self._lock:
            self._faults.arm(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        """Faults that are still armed."""
        with self._lock:
            return self._faults.pending

    def seed_demo(self) -> None:
        """Create the demo organizations, users, integrations, partners and application form."""
        _seed.seed_demo(self)

    # --- observations ------------------------------------------------------------------------------------

    @property
    def sign_ins(self) -> int:
        """Successful sign-ins."""
        with self._lock:
            return self._sessions.sign_ins

    @property
    def sign_in_attempts(self) -> int:
        """Sign-in requests that reached the auth logic (rate-limited ones too; not those a fault took)."""
        with self._lock:
            return self._limiter.attempts

    @property
    def sign_in_rate_limited(self) -> int:
        """Sign-in requests the rate limit answered 429 (not 429s injected as faults)."""
        with self._lock:
            return self._limiter.limited

    @property
    def sign_outs(self) -> int:
        """Sign-outs that ended a live session."""
        with self._lock:
            return self._sessions.sign_outs

    @property
    def issued_session_cookies(self) -> list[str]:
        """Every session cookie value this server has set, oldest first (signed out or expired too).

        For leak audits: a test can assert that none of these strings (nor their URL-decoded form)
        appears in logs, XComs or exception texts. Read-only; the server never prints them.
        """
        with self._lock:
            return list(self._sessions.issued_cookies)

    @property
    def active_sessions(self) -> int:
        """Sessions that are neither expired nor signed out."""
        with self._lock:
            return len(self._sessions.live(self.clock()))

    def live_sessions_by_user(self) -> dict[str, int]:
        """Live sessions (neither expired, signed out nor ended by :meth:`expire_sessions`) per user
        email; users without one are left out. What a "sessions per credential" audit counts."""
        with self._lock:
            return self._sessions.live_by_user(self.clock())

    def live_sessions_by_client(self) -> dict[str, list[str]]:
        """Ids of the live sessions per client IP that signed them in (better-auth records it). With
        several hosts on distinct addresses, what a "sessions per host" audit counts."""
        with self._lock:
            by_client: dict[str, list[str]] = {}
            for session in self._sessions.live(self.clock()):
                by_client.setdefault(session.ip, []).append(session.id)
            return by_client

    def oldest_live_session_age(self) -> float | None:
        """Seconds since the oldest live session was created, by :attr:`clock`; None if there is none.

        Checks a bound like "no session lives longer than ``session_max_age``"."""
        with self._lock:
            return self._sessions.oldest_live_age(self.clock())

    @property
    def requests(self) -> Counter[str]:
        """A copy of the request counts keyed ``"METHOD /route/{template}"`` (raw path if unmatched)."""
        with self._lock:
            return Counter(self._log.counts)

    @property
    def request_log(self) -> list[RequestRecord]:
        """Copies of the last 10,000 request records, oldest first."""
        with self._lock:
            return list(self._log.copies())

    @property
    def applications(self) -> list[dict[str, Any]]:
        """Accepted application submissions, oldest first."""
        with self._lock:
            return [dict(a) for a in self._data.applications]
