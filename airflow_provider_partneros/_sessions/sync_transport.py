"""The sync transport: drives ``_protocol`` flows and the session lifecycle over ``requests``.

:class:`SyncSession` is what a :class:`~airflow_provider_partneros.hooks.partneros.PartnerOSHook` talks
through. It is thread-safe: threads sharing it run their calls at once and meet only in the
session's single flight (one sign-in or store visit at a time, under a lock). Nothing here decides
what a request means or when a session is replaced: that is ``_protocol``'s and
:class:`~.lifecycle.SessionLifecycle`'s job.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_partneros import _protocol as protocol
from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._protocol import (
    EnsureSession,
    Flow,
    HttpReply,
    HttpRequest,
    RenewSession,
    Sleep,
    TransportFailure,
)
from airflow_provider_partneros._sessions.flows import (
    LockEntry,
    SignIn,
    SignOut,
    StartSteward,
    StoreIO,
    drive,
)
from airflow_provider_partneros._sessions.lifecycle import (
    LifecycleFlow,
    Note,
    OpenStores,
    SessionLifecycle,
    UseCookies,
)
from airflow_provider_partneros._sessions.records import CookieRecord, cookie_records, install_cookies

if TYPE_CHECKING:
    import requests

CHUNK_SIZE = 64 * 1024
DEFAULT_POOL_SIZE = 32
"""Connections kept per host: enough for the threads of a typical batch (see ``reserve_connections``)."""
SIGN_OUT_TIMEOUT = 5.0
"""Sign-out is a courtesy (sessions expire on their own): it never holds a task up for long."""
STREAM_TIMEOUT_FACTOR = 10
"""A streamed answer may take this many ``timeout``s in total; each read is still bounded by one."""


class Log(Protocol):
    """What a transport needs of a logger (stdlib or Airflow's structlog-based one)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


class SyncSession:
    """One signed-in PartnerOS session (the store's shared one, or its own) usable from many threads."""

    def __init__(self, settings: PartnerOSSettings, log: Log, *, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.settings = settings
        self.log = log
        self.lifecycle = SessionLifecycle(settings)
        self._lock = threading.RLock()
        self._http: requests.Session | None = None
        self._public_http: requests.Session | None = None
        self._pool_size = pool_size
        self.sign_in_count = 0
        """Sign-ins this session made itself (joining a store's shared session is not one)."""

    # --- the protocol driver ---------------------------------------------------------------------------

    def run(self, flow: Flow, *, http: requests.Session | None = None) -> Any:
        """Drive a protocol flow: the whole sync transport is this loop."""
        result: Any = None
        while True:
            try:
                action = flow.send(result)
            except StopIteration as stop:
                return stop.value
            if isinstance(action, HttpRequest):
                result = self.send(action, http=http)
            elif isinstance(action, Sleep):
                self.log.info(
                    "PartnerOS: waiting %.1f s before retrying (%s).", action.seconds, action.reason
                )
                time.sleep(action.seconds)
                result = None
            elif isinstance(action, EnsureSession):
                result = self._ensure()
            elif isinstance(action, RenewSession):
                with self._lock:
                    result = self._drive(self.lifecycle.obtain(stale=action.stale))
            else:  # pragma: no cover - a protocol bug, not a runtime condition
                raise TypeError(f"unknown protocol action {action!r}")

    def _ensure(self) -> int:
        generation = self.lifecycle.usable()
        if generation:
            return generation
        with self._lock:  # single flight: the other threads wait here and reuse the result
            result: int = self._drive(self.lifecycle.obtain())
            return result

    # --- the lifecycle driver ----------------------------------------------------------------------------

    def _drive(self, flow: LifecycleFlow) -> Any:
        return drive(flow, self._perform)

    def _perform(self, action: object) -> Any:
        if isinstance(action, StoreIO):
            return action.function(*action.args)
        if isinstance(action, LockEntry):
            return action.entry.lock(action.deadline)
        if isinstance(action, SignIn):
            return self._sign_in_fresh(action.scope)
        if isinstance(action, SignOut):
            return sign_out_once(self.settings, action.cookies, self.log)
        if isinstance(action, UseCookies):
            for record in action.cookies:
                mask(record.value)
            install_cookies(self.http_session().cookies, action.cookies)
            return None
        if isinstance(action, Note):
            (self.log.warning if action.level == "warning" else self.log.info)("%s", action.message)
            return None
        if isinstance(action, OpenStores):
            from airflow_provider_partneros._sessions.config import deployment_store_connection, open_entries

            return open_entries(action.settings, deployment_store_connection())
        if isinstance(action, StartSteward):
            from airflow_provider_partneros._sessions import steward

            return steward.start(action.entry, self.settings, self.lifecycle.linger)
        raise TypeError(f"unknown session action {action!r}")  # pragma: no cover - a lifecycle bug

    def _sign_in_fresh(self, scope: str | None) -> tuple[CookieRecord, ...]:
        """Sign in with a new, empty cookie jar and return its cookies; the jar other threads use is
        only ever replaced cookie by cookie (see ``install_cookies``)."""
        http = new_session()
        try:
            self.run(protocol.sign_in_flow(self.settings), http=http)
            records = cookie_records(http.cookies)
        finally:
            http.close()
        self.sign_in_count += 1
        self.log.info(
            "Signed in to %s (%s, sign-in %d of this task).",
            self.settings.base_url,
            f"shared by this {scope}'s tasks" if scope else "a session of this task's own",
            self.sign_in_count,
        )
        return records

    # --- HTTP -------------------------------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return self.lifecycle.generation > 0

    def http_session(self) -> requests.Session:
        if self._http is None:
            with self._lock:
                if self._http is None:
                    self._http = new_session(self._pool_size)
        return self._http

    def reserve_connections(self, threads: int) -> None:
        """Size the connection pool for ``threads`` threads calling at once."""
        with self._lock:
            if threads > self._pool_size:
                self._pool_size = threads
                if self._http is not None:
                    size_pool(self._http, threads)

    def send(
        self, request: HttpRequest, *, http: requests.Session | None = None
    ) -> HttpReply | TransportFailure:
        if http is None:
            if request.send_cookies:
                http = self.http_session()
            else:
                with self._lock:
                    if self._public_http is None:
                        self._public_http = new_session(self._pool_size)
                    http = self._public_http
        return send(http, request, self.settings)

    @contextlib.contextmanager
    def open_stream(self, request: HttpRequest) -> Iterator[Iterator[bytes]]:
        """Call and iterate over the answer's bytes as they arrive, bounded in total time."""
        reply: HttpReply = self.run(protocol.call_flow(self.settings, request))
        response: requests.Response = reply.stream
        deadline = time.monotonic() + self.settings.timeout * STREAM_TIMEOUT_FACTOR
        try:
            yield read_chunks(response, request, deadline)
        finally:
            response.close()

    def close(self) -> None:
        """Let the session go (see :meth:`SessionLifecycle.close`) and release connections. Never raises."""
        with self._lock:
            try:
                self._drive(self.lifecycle.close())
            except Exception as err:  # a failed sign-out must never fail the task
                self.log.warning(
                    "PartnerOS sign-out failed (%s); the session expires on its own.", type(err).__name__
                )
            http, self._http = self._http, None
            public, self._public_http = self._public_http, None
            for session in (http, public):
                if session is not None:
                    session.close()


# --- requests, once ------------------------------------------------------------------------------------


def sign_out_once(settings: PartnerOSSettings, cookies: tuple[CookieRecord, ...], log: Log | None) -> None:
    """Sign out the session these cookies carry: once, bounded, and only logged if it fails."""
    settings = settings.with_overrides(timeout=min(settings.timeout, SIGN_OUT_TIMEOUT), max_retries=0)
    http = new_session()
    try:
        install_cookies(http.cookies, cookies)
        reply = send(http, protocol.sign_out_request(settings), settings)
    finally:
        http.close()
    if log is None:
        return
    if isinstance(reply, TransportFailure) or reply.status >= 300:
        status = reply.kind if isinstance(reply, TransportFailure) else reply.status
        log.warning("PartnerOS sign-out did not succeed (%s); the session expires on its own.", status)
    else:
        log.info("Signed out of PartnerOS.")


def send(
    http: requests.Session, request: HttpRequest, settings: PartnerOSSettings
) -> HttpReply | TransportFailure:
    """One exchange; the body is read within the timeout (a slow drip cannot hang a worker)."""
    import requests

    timeout = settings.timeout
    deadline = time.monotonic() + timeout
    try:
        response = http.request(
            request.method,
            request.url,
            params=request.params,
            json=request.json,
            headers=dict(request.headers),
            timeout=(timeout, timeout),
            stream=True,
            allow_redirects=False,
            verify=requests_verify(settings.verify),
        )
    except requests.exceptions.RequestException as err:
        return classify_failure(err)
    headers = {key.lower(): value for key, value in response.headers.items()}
    if "set-cookie" in headers:
        # "session"/"cookie" names are not masked by Airflow automatically: register every value.
        for cookie in http.cookies:
            mask(cookie.value)
    if request.stream and 200 <= response.status_code < 300:
        return HttpReply(response.status_code, headers, stream=response)
    limit = None if 200 <= response.status_code < 300 else protocol.MAX_ERROR_BODY
    try:
        body = b"".join(read_chunks(response, request, deadline, limit=limit, raw_errors=True))
    except ReadFailure as failure:
        return failure.failure
    finally:
        response.close()
    return HttpReply(response.status_code, headers, body)


class ReadFailure(Exception):
    """A body read failed; carries the classified failure."""

    def __init__(self, failure: TransportFailure) -> None:
        self.failure = failure


def read_chunks(
    response: requests.Response,
    request: HttpRequest,
    deadline: float,
    *,
    limit: int | None = None,
    raw_errors: bool = False,
) -> Iterator[bytes]:
    """Yield the body as it arrives, bounded by ``deadline`` so a slow drip cannot hang a worker.

    ``read1`` returns whatever one receive gave, so the deadline is checked between small reads.
    """
    import requests
    import urllib3.exceptions

    raw = response.raw
    total = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise ReadFailure(TransportFailure("timeout", "the answer did not finish in time"))
            chunk = raw.read1(CHUNK_SIZE, decode_content=True)
            if not chunk:
                if not raw.closed and raw.length_remaining:
                    raise ReadFailure(TransportFailure("interrupted", "body shorter than its Content-Length"))
                return
            total += len(chunk)
            yield chunk
            if limit is not None and total >= limit:
                return
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as err:
        failure = classify_failure(err)
        if raw_errors:
            raise ReadFailure(failure) from None
        raise protocol.transport_error(request, failure) from None
    except ReadFailure as failure:
        if raw_errors:
            raise
        raise protocol.transport_error(request, failure.failure) from None


def classify_failure(err: BaseException) -> TransportFailure:
    """Classify a requests/urllib3 error; the detail names the error class, never a URL or header."""
    import requests
    import urllib3.exceptions

    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and len(chain) < 10:
        chain.append(current)
        nxt = getattr(current, "reason", None) or (current.args[0] if current.args else None)
        current = nxt if isinstance(nxt, BaseException) else (current.__cause__ or current.__context__)
    kinds = tuple(type(e) for e in chain)
    names = type(chain[-1]).__name__
    if any(issubclass(k, (requests.exceptions.SSLError, urllib3.exceptions.SSLError)) for k in kinds):
        return TransportFailure("tls", "certificate verify failed or TLS handshake error")
    connect_errors = (
        requests.exceptions.ConnectTimeout,
        urllib3.exceptions.NewConnectionError,
        ConnectionRefusedError,
    )
    if any(issubclass(k, connect_errors) for k in kinds):
        return TransportFailure("connect", names)
    read_timeouts = (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)
    if any(issubclass(k, read_timeouts) for k in kinds):
        return TransportFailure("timeout", "read timed out")
    return TransportFailure("interrupted", names)


def new_session(pool_size: int = 1) -> requests.Session:
    # Redirects are decided by the protocol (same origin only); proxies from the environment still apply.
    session = _no_redirect_session_class()()
    if pool_size > 1:
        size_pool(session, pool_size)
    return session


def size_pool(session: requests.Session, size: int) -> None:
    """Keep up to ``size`` connections per host, so threads sharing a session do not open and discard
    connections (requests keeps 10 by default and warns "Connection pool is full")."""
    from requests.adapters import HTTPAdapter

    for prefix in ("https://", "http://"):
        session.mount(prefix, HTTPAdapter(pool_connections=4, pool_maxsize=size))


@functools.cache
def _no_redirect_session_class() -> type[requests.Session]:
    import requests

    class NoRedirectSession(requests.Session):
        """Never resolves redirects. Even with ``allow_redirects=False``, ``requests`` runs its redirect
        resolver on a 3xx to prepare ``response.next``: that reads the whole body outside our deadline
        and, with ``max_redirects = 0``, raised TooManyRedirects, so no 3xx ever reached the protocol."""

        def get_redirect_target(self, resp: requests.Response) -> str | None:
            return None

    return NoRedirectSession


def requests_verify(verify: bool | str) -> bool | str:
    """Pass an explicit bundle for ``True`` so REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE cannot override it."""
    if verify is True:
        import certifi

        return str(certifi.where())
    return verify


def mask(secret: str | None) -> None:
    """Register a secret with Airflow's log masker (never fails a call)."""
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - defensive: masking must never break a call
        return
    mask_secret(secret)


__all__ = ["SyncSession", "mask", "read_chunks", "send", "sign_out_once"]
