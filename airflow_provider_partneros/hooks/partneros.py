"""PartnerOSHook: at most one sign-in per task, over ``requests``; safe to share between threads.

The hook is a thin transport around :mod:`airflow_provider_partneros._protocol`: it sends the
requests the protocol builds, sleeps when told, and signs in when asked. By default its session is
the host's shared one (:mod:`airflow_provider_partneros._session_store`): the tasks and triggers of
one host that use the same credentials sign in once between them. Use it as a context manager
(operators and sensors do) so the session is released (and signed out by its last user)::

    with PartnerOSHook("partneros_default") as hook:
        status = hook.get_integration_status("conn_123")
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_partneros import _batch, _session_steward
from airflow_provider_partneros import _protocol as protocol
from airflow_provider_partneros._config import (
    DEFAULT_CONN_ID,
    PartnerOSSettings,
    settings_from_airflow_connection,
)
from airflow_provider_partneros._protocol import (
    EnsureSession,
    Flow,
    HttpReply,
    HttpRequest,
    RenewSession,
    Sleep,
    TransportFailure,
)
from airflow_provider_partneros._session_store import (
    CookieRecord,
    Lease,
    LockEntry,
    Obtained,
    SignIn,
    SignOut,
    StartSteward,
    StoreEntry,
    StoreFlow,
    StoreRefused,
    configured_linger,
    cookie_records,
    install_cookies,
    lock_wait,
    obtain_flow,
    open_store,
    release_flow,
)
from airflow_provider_partneros.exceptions import PartnerOSError

if TYPE_CHECKING:
    import requests

CHUNK_SIZE = 64 * 1024
DEFAULT_POOL_SIZE = 32
"""Connections kept per host: enough for the threads of a typical batch (see ``reserve_connections``)."""
SIGN_OUT_TIMEOUT = 5.0
"""Sign-out is a courtesy (sessions expire on their own): it never holds a task up for long."""
_UNRESOLVED = object()
STREAM_TIMEOUT_FACTOR = 10
"""A streamed answer may take this many ``timeout``s in total; each read is still bounded by one."""


class PartnerOSHook(BaseHook):
    """Talk to PartnerOS with the credentials of an Airflow connection of type ``partneros``.

    :param partneros_conn_id: the Airflow connection (host = base URL, login = email, password).
    :param timeout: override the connection's per-request timeout (seconds).
    :param max_retries: override the connection's in-call retry count.
    """

    conn_name_attr = "partneros_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "partneros"
    hook_name = "PartnerOS"

    def __init__(
        self,
        partneros_conn_id: str = DEFAULT_CONN_ID,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        logger_name: str | None = None,
    ) -> None:
        super().__init__(logger_name=logger_name)
        self.partneros_conn_id = partneros_conn_id
        self._timeout_override = timeout
        self._max_retries_override = max_retries
        self._http: requests.Session | None = None
        self._public_http: requests.Session | None = None
        self._settings: PartnerOSSettings | None = None
        self._session_lock = threading.RLock()
        """Guards the session: one sign-in (or store visit) at a time, whatever the number of threads."""
        self._generation = 0
        """0 = no session; incremented whenever the cookie jar gets a new one."""
        self._lease: Lease | None = None
        self._store: StoreEntry | object | None = _UNRESOLVED
        self._pool_size = DEFAULT_POOL_SIZE
        self._linger = 0.0
        self.sign_in_count = 0
        """Sign-ins this hook made itself (joining the host's shared session is not one)."""

    # --- configuration ---------------------------------------------------------------------------

    @property
    def settings(self) -> PartnerOSSettings:
        """The connection's settings with this hook's overrides applied."""
        if self._settings is None:
            with self._session_lock:  # one connection lookup, however many threads start at once
                if self._settings is None:
                    self._settings = self.connection_settings.with_overrides(
                        timeout=self._timeout_override, max_retries=self._max_retries_override
                    )
        return self._settings

    @cached_property
    def connection_settings(self) -> PartnerOSSettings:
        """The validated connection; read once per hook (one secrets-backend lookup per task)."""
        conn = self.get_connection(self.partneros_conn_id)
        settings = settings_from_airflow_connection(self.partneros_conn_id, conn, conn.extra_dejson)
        _mask(settings.password)
        for warning in settings.warnings:
            self.log.warning("%s", warning)
        return settings

    # --- session lifecycle -------------------------------------------------------------------------

    def get_conn(self) -> requests.Session:
        """The signed-in ``requests.Session`` (signing in if needed), for calls this hook lacks."""
        self._run(iter_ensure_session())
        assert self._http is not None
        return self._http

    @property
    def signed_in(self) -> bool:
        return self._generation > 0

    @property
    def shares_session(self) -> bool:
        """True while this hook uses the host's shared session (the store), not one of its own."""
        return self._lease is not None

    def reserve_connections(self, threads: int) -> None:
        """Size the connection pool for ``threads`` threads calling through this hook at once
        (the default pool keeps :data:`DEFAULT_POOL_SIZE` connections to PartnerOS)."""
        with self._session_lock:
            if threads > self._pool_size:
                self._pool_size = threads
                if self._http is not None:
                    _size_pool(self._http, threads)

    def close(self) -> None:
        """Stop using the session: a session of its own is signed out; the host's shared session is
        signed out if this was its last user. Best effort: never raises. Releases connections."""
        with self._session_lock:
            http, self._http = self._http, None
            public, self._public_http = self._public_http, None
            lease, self._lease = self._lease, None
            generation, self._generation = self._generation, 0
            try:
                if lease is not None and isinstance(self._store, StoreEntry):
                    self._drive_store(release_flow(self._store, lease, linger=self._linger))
                elif http is not None and generation:
                    self._sign_out(cookie_records(http.cookies))
            except Exception as err:  # a failed sign-out must never fail the task
                self.log.warning(
                    "PartnerOS sign-out failed (%s); the session expires on its own.", type(err).__name__
                )
            finally:
                if lease is not None:
                    lease.drop()
            for session in (http, public):
                if session is not None:
                    session.close()

    def __enter__(self) -> PartnerOSHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- generic calls -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        public: bool = False,
    ) -> Any:
        """Call any endpoint and return its parsed JSON (``None`` for an empty body).

        :param idempotent: allow resending after an ambiguous failure; defaults to True for
            GET/HEAD/OPTIONS/PUT/DELETE and False for POST/PATCH.
        :param public: the endpoint needs no session (no sign-in, no cookie sent).
        """
        request, reply = self.request_raw(
            method, endpoint, params=params, json=json, idempotent=idempotent, public=public
        )
        return protocol.parse_json(request, reply)

    def request_raw(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        public: bool = False,
    ) -> tuple[HttpRequest, HttpReply]:
        """Like :meth:`request` but returns the raw answer (status, headers, body bytes)."""
        request = protocol.api_request(
            self.settings,
            method,
            endpoint,
            params=params,
            json_body=json,
            idempotent=idempotent,
            public=public,
        )
        return request, self._call(request)

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        public: bool = False,
    ) -> Iterator[Iterator[bytes]]:
        """Call any endpoint and iterate over its answer's bytes as they arrive (text streams, SSE).

        A context manager: leaving the block closes the answer::

            with hook.stream("POST", "/api/ai/chat", json={...}) as chunks:
                for chunk in chunks: ...
        """
        request = protocol.api_request(
            self.settings,
            method,
            endpoint,
            params=params,
            json_body=json,
            stream=True,
            idempotent=idempotent,
            public=public,
        )
        with self._open_stream(request) as chunks:
            yield chunks

    def stream_to_file(
        self, method: str, endpoint: str, destination: str | os.PathLike[str], **kwargs: Any
    ) -> int:
        """Write a (streamed) answer to ``destination`` chunk by chunk; return the bytes written."""
        written = 0
        with self.stream(method, endpoint, **kwargs) as chunks, open(destination, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        return written

    # --- typed endpoints ---------------------------------------------------------------------------

    def get_integration_status(self, connection_id: str) -> dict[str, Any]:
        """``GET /api/integrations/{id}/status``: the CRM connection's health document."""
        request = protocol.integration_status_request(self.settings, connection_id)
        return protocol.require_object(request, protocol.parse_json(request, self._call(request)), "status")

    def get_integration_schema(self, connection_id: str, object_type: str | None = None) -> Any:
        """``GET /api/integrations/{id}/schema``: the cached CRM schema, as the service sends it."""
        request = protocol.integration_schema_request(self.settings, connection_id, object_type)
        return protocol.parse_json(request, self._call(request))

    def analyze_partner(self, partner_id: str) -> dict[str, Any]:
        """``POST /api/partners/{id}/analyze``: AI enrichment; returns ``{"partner", "aiInsights"}``."""
        request = protocol.analyze_partner_request(self.settings, partner_id)
        return protocol.require_object(request, protocol.parse_json(request, self._call(request)), "partner")

    def generate_icp(self, company: str) -> dict[str, Any]:
        """``POST /api/ai/icp``: read the streamed profile incrementally and return it parsed.

        The stream's chunks concatenate to one JSON document. Each chunk is decoded as it arrives, so
        no raw byte buffer sits beside the text: peak memory stays near twice the document's size.
        """
        request = protocol.icp_request(self.settings, company)
        with self._open_stream(request) as chunks:
            text = protocol.assemble_text(request, chunks)
        return protocol.require_object(request, protocol.decode_json_document(request, text))

    def generate_icp_to_file(self, company: str, destination: str | os.PathLike[str]) -> int:
        """Stream the ICP document straight to a file (constant memory); return the bytes written."""
        request = protocol.icp_request(self.settings, company)
        written = 0
        with self._open_stream(request) as chunks, open(destination, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        return written

    def submit_partner_application(
        self,
        slug: str,
        form_data: Mapping[str, Any],
        *,
        agreements: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Any:
        """``POST /api/partners/applications/submit``: the public form; no sign-in happens."""
        request = protocol.application_request(self.settings, slug, form_data, agreements, extra_body)
        return protocol.parse_json(request, self._call(request))

    def get_session_info(self) -> Any:
        """``GET /api/auth/get-session``: the session (with ``activeOrganizationId``) or ``None``.

        The service includes the session's token; it is replaced by ``"***"`` so a task that returns
        this document (XCom) or logs it never exposes a credential.
        """
        request = protocol.get_session_request(self.settings)
        doc = protocol.parse_json(request, self._call(request))
        session = doc.get("session") if isinstance(doc, dict) else None
        if isinstance(session, dict) and "token" in session:
            doc = {**doc, "session": {**session, "token": "***"}}
        return doc

    def test_connection(self) -> tuple[bool, str]:
        """A real sign-in plus one authenticated read, with no retries and a short timeout.

        Used by Airflow's "Test" button. Counts against the sign-in rate limit like any sign-in.
        """
        try:
            # Always a real sign-in of its own: the button tests the credentials, not a shared session.
            quick = self.settings.with_overrides(
                timeout=min(self.settings.timeout, 10.0), max_retries=0, session_sharing=False
            )
            self._settings = quick
            session = self.get_session_info()
            if not isinstance(session, dict):
                return False, "Signed in, but PartnerOS did not recognise the session afterwards."
            org = (session.get("session") or {}).get("activeOrganizationId")
            where = f"active organization {org}" if org else "no active organization (set organization_id)"
            return True, f"Connected to {quick.base_url}: signed in, {where}."
        except PartnerOSError as err:
            return False, err.message
        except Exception as err:
            return False, f"{type(err).__name__}: {_safe_text(err)}"
        finally:
            self.close()
            self._settings = None

    def analyze_partners(
        self,
        partner_ids: Iterable[str],
        *,
        max_concurrency: int = _batch.DEFAULT_MAX_CONCURRENCY,
        cancel: threading.Event | None = None,
    ) -> _batch.BatchResult[dict[str, Any]]:
        """Enrich many partners through this hook's one session, ``max_concurrency`` calls at a time.

        Each partner gets exactly what :meth:`analyze_partner` does (in-call retries for 5xx and network
        trouble); a 429 pauses every worker for the server's delay (:class:`~._batch.RateGate`). Returns
        every partner's enrichment or error; nothing is raised for a failed partner. An error that
        would repeat for every partner (credentials, role, organization, quota, TLS) stops the batch.

        :param cancel: the task's kill switch (``on_kill`` sets it): no partner's call, retry or sign-in
            starts after it is set; calls in flight end within the connection's timeout.
        """
        from airflow_provider_partneros import exceptions as exc

        # Errors every other partner would meet too: one of them stops the batch.
        abort_on = (
            exc.PartnerOSInvalidCredentialsError,
            exc.PartnerOSForbiddenError,
            exc.PartnerOSNoActiveOrganizationError,
            exc.PartnerOSQuotaExceededError,
            exc.PartnerOSTLSError,
            exc.PartnerOSRedirectError,
        )
        ids = _batch.unique(partner_ids)
        self.reserve_connections(max_concurrency)
        gate = _batch.RateGate()
        finished = [0, 0]  # done, failed
        every = max(1, len(ids) // 10)

        def analyze(partner_id: str) -> dict[str, Any]:
            request = protocol.analyze_partner_request(self.settings, partner_id)
            reply = self._run(_batch.gated(protocol.call_flow(self.settings, request), gate, cancel))
            return protocol.require_object(request, protocol.parse_json(request, reply), "partner")

        def progress(partner_id: str, result: object, error: _batch.ItemError | None) -> None:
            finished[0] += 1
            finished[1] += error is not None
            if finished[0] % every == 0 or finished[0] == len(ids):
                self.log.info("Analyzed %d of %d partners (%d failed).", finished[0], len(ids), finished[1])

        return _batch.run_batch(
            ids, analyze, max_concurrency=max_concurrency, abort_on=abort_on, on_done=progress, cancel=cancel
        )

    # --- the transport -----------------------------------------------------------------------------

    def _call(self, request: HttpRequest) -> HttpReply:
        reply: HttpReply = self._run(protocol.call_flow(self.settings, request))
        return reply

    @contextlib.contextmanager
    def _open_stream(self, request: HttpRequest) -> Iterator[Iterator[bytes]]:
        reply = self._call(request)
        response: requests.Response = reply.stream
        deadline = time.monotonic() + self.settings.timeout * STREAM_TIMEOUT_FACTOR
        try:
            yield _read_chunks(response, request, deadline)
        finally:
            response.close()

    def _run(self, flow: Flow, *, http: requests.Session | None = None) -> Any:
        """Drive a protocol flow: the whole sync transport is this loop. Thread-safe: threads that
        share the hook run their flows at once and meet only in the session's single flight."""
        result: Any = None
        while True:
            try:
                action = flow.send(result)
            except StopIteration as stop:
                return stop.value
            if isinstance(action, HttpRequest):
                result = self._send(action, http=http)
            elif isinstance(action, Sleep):
                if not action.reason.startswith(_batch.CONTINUED_WAIT):  # a wait cut in slices: log once
                    self.log.info(
                        "PartnerOS: waiting %.1f s before retrying (%s).", action.seconds, action.reason
                    )
                time.sleep(action.seconds)
                result = None
            elif isinstance(action, EnsureSession):
                result = self._ensure_session()
            elif isinstance(action, RenewSession):
                result = self._renew_session(action.stale)
            else:  # pragma: no cover - a protocol bug, not a runtime condition
                raise TypeError(f"unknown protocol action {action!r}")

    # --- the session: one per hook, from the host's store when sharing ---------------------------------

    def _ensure_session(self) -> int:
        generation = self._generation
        if generation and not self._due_for_rotation():
            return generation
        with self._session_lock:  # single flight: the other threads wait here and reuse the result
            if self._generation and not self._due_for_rotation():
                return self._generation
            return self._replace_session(refused=False)

    def _renew_session(self, stale: int) -> int:
        with self._session_lock:
            if self._generation != stale:  # another thread already replaced it
                return self._generation
            self.log.info("PartnerOS session expired; signing in again.")
            return self._replace_session(refused=True)

    def _due_for_rotation(self) -> bool:
        lease = self._lease
        return lease is not None and lease.session.age(time.time()) >= self.settings.session_max_age

    def _replace_session(self, *, refused: bool) -> int:
        """Put a usable session in the cookie jar (caller holds ``_session_lock``): the host's shared
        one, or, without sharing (or if the store is unusable), a sign-in of this hook's own."""
        old = self._lease
        got: Obtained = self._drive_store(
            obtain_flow(
                self._store_entry(),
                old=old,
                refused=refused,
                max_age=self.settings.session_max_age,
                linger=self._linger,
                wait=lock_wait(self.settings),
            )
        )
        if got.store_failed is not None:
            self.log.warning(
                "PartnerOS session store unusable (%s); this task signs in on its own.", got.store_failed
            )
            self._store = None
        if got.joined_age is not None:
            self.log.info(
                "Using this host's shared PartnerOS session (signed in %.0f s ago).", got.joined_age
            )
        self._lease = got.lease
        for record in got.cookies:
            _mask(record.value)
        install_cookies(self._session().cookies, got.cookies)
        self._generation += 1
        if old is not None and old is not self._lease:
            self._release(old)
        return self._generation

    def _release(self, lease: Lease) -> None:
        try:
            if isinstance(self._store, StoreEntry):
                self._drive_store(release_flow(self._store, lease, linger=self._linger))
        except Exception as err:  # releasing an old session must never fail a call
            self.log.warning("PartnerOS: could not release a replaced session (%s).", type(err).__name__)
        finally:
            lease.drop()

    def _store_entry(self) -> StoreEntry | None:
        if not self.settings.session_sharing:
            return None
        if self._store is _UNRESOLVED:
            try:
                self._store = open_store(self.settings)
                self._linger = configured_linger()
            except StoreRefused as err:
                self.log.warning("PartnerOS session store refused: %s This task signs in on its own.", err)
                self._store = None
        return self._store if isinstance(self._store, StoreEntry) else None

    def _drive_store(self, flow: StoreFlow) -> Any:
        """Drive a store flow (``_session_store``): wait for the entry lock, sign in or out as asked."""
        result: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    action = flow.throw(error) if error is not None else flow.send(result)
                except StopIteration as stop:
                    return stop.value
                result, error = None, None
                try:
                    if isinstance(action, LockEntry):
                        result = action.entry.lock(action.deadline)
                    elif isinstance(action, SignIn):
                        result = self._sign_in_fresh(shared=action.shared)
                    elif isinstance(action, SignOut):
                        self._sign_out(action.cookies)
                    elif isinstance(action, StartSteward):
                        _session_steward.start(action.entry, self.settings, self._linger)
                    else:  # pragma: no cover - a store bug, not a runtime condition
                        raise TypeError(f"unknown store action {action!r}")
                except Exception as err:
                    error = err
        finally:
            flow.close()

    def _sign_in_fresh(self, *, shared: bool = False) -> tuple[CookieRecord, ...]:
        """Sign in with a new, empty cookie jar and return its cookies; the jar other threads use is
        only ever replaced cookie by cookie (see ``install_cookies``)."""
        http = _new_session()
        try:
            self._run(protocol.sign_in_flow(self.settings), http=http)
            records = cookie_records(http.cookies)
        finally:
            http.close()
        self.sign_in_count += 1
        self.log.info(
            "Signed in to %s (%s, sign-in %d of this task).",
            self.settings.base_url,
            "shared by this host's tasks" if shared else "a session of this task's own",
            self.sign_in_count,
        )
        return records

    def _sign_out(self, cookies: tuple[CookieRecord, ...]) -> None:
        """Sign out the session these cookies carry: once, bounded, and only logged if it fails."""
        http = _new_session()
        try:
            install_cookies(http.cookies, cookies)
            settings = self.settings.with_overrides(
                timeout=min(self.settings.timeout, SIGN_OUT_TIMEOUT), max_retries=0
            )
            reply = self._send(protocol.sign_out_request(settings), http=http, settings=settings)
        finally:
            http.close()
        if isinstance(reply, TransportFailure) or reply.status >= 300:
            status = reply.kind if isinstance(reply, TransportFailure) else reply.status
            self.log.warning(
                "PartnerOS sign-out did not succeed (%s); the session expires on its own.", status
            )
        else:
            self.log.info("Signed out of PartnerOS.")

    def _session(self) -> requests.Session:
        if self._http is None:
            with self._session_lock:
                if self._http is None:
                    self._http = _new_session(self._pool_size)
        return self._http

    def _send(
        self,
        request: HttpRequest,
        *,
        http: requests.Session | None = None,
        settings: PartnerOSSettings | None = None,
    ) -> HttpReply | TransportFailure:
        import requests

        settings = settings or self.settings
        if http is None:
            if request.send_cookies:
                http = self._session()
            else:
                with self._session_lock:
                    if self._public_http is None:
                        self._public_http = _new_session(self._pool_size)
                    http = self._public_http
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
                verify=_requests_verify(settings.verify),
            )
        except requests.exceptions.RequestException as err:
            return _failure(err)
        headers = {key.lower(): value for key, value in response.headers.items()}
        if "set-cookie" in headers:
            self._mask_cookies(http)
        if request.stream and 200 <= response.status_code < 300:
            return HttpReply(response.status_code, headers, stream=response)
        limit = None if 200 <= response.status_code < 300 else protocol.MAX_ERROR_BODY
        try:
            body = b"".join(_read_chunks(response, request, deadline, limit=limit, raw_errors=True))
        except _ReadFailure as failure:
            return failure.failure
        finally:
            response.close()
        return HttpReply(response.status_code, headers, body)

    @staticmethod
    def _mask_cookies(http: requests.Session) -> None:
        # "session"/"cookie" names are not masked by Airflow automatically: register every value.
        for cookie in http.cookies:
            if cookie.value:
                _mask(cookie.value)


def iter_ensure_session() -> Flow:
    """A flow that only makes sure a session exists (for :meth:`PartnerOSHook.get_conn`)."""
    yield EnsureSession()


class _ReadFailure(Exception):
    def __init__(self, failure: TransportFailure) -> None:
        self.failure = failure


def _read_chunks(
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
                raise _ReadFailure(TransportFailure("timeout", "the answer did not finish in time"))
            chunk = raw.read1(CHUNK_SIZE, decode_content=True)
            if not chunk:
                if not raw.closed and raw.length_remaining:
                    raise _ReadFailure(
                        TransportFailure("interrupted", "body shorter than its Content-Length")
                    )
                return
            total += len(chunk)
            yield chunk
            if limit is not None and total >= limit:
                return
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as err:
        failure = _failure(err)
        if raw_errors:
            raise _ReadFailure(failure) from None
        raise protocol.transport_error(request, failure) from None
    except _ReadFailure as failure:
        if raw_errors:
            raise
        raise protocol.transport_error(request, failure.failure) from None


def _failure(err: BaseException) -> TransportFailure:
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
    if any(
        issubclass(
            k,
            (
                requests.exceptions.ConnectTimeout,
                urllib3.exceptions.NewConnectionError,
                ConnectionRefusedError,
            ),
        )
        for k in kinds
    ):
        return TransportFailure("connect", names)
    if any(
        issubclass(k, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError))
        for k in kinds
    ):
        return TransportFailure("timeout", "read timed out")
    return TransportFailure("interrupted", names)


def _new_session(pool_size: int = 1) -> requests.Session:
    # Redirects are decided by the protocol (same origin only); proxies from the environment still apply.
    session = _no_redirect_session_class()()
    if pool_size > 1:
        _size_pool(session, pool_size)
    return session


def _size_pool(session: requests.Session, size: int) -> None:
    """Keep up to ``size`` connections per host, so threads sharing a hook do not open and discard
    connections (requests keeps 10 by default and warns "Connection pool is full")."""
    from requests.adapters import HTTPAdapter

    for prefix in ("https://", "http://"):
        session.mount(prefix, HTTPAdapter(pool_connections=4, pool_maxsize=size))


@functools.cache
def _no_redirect_session_class() -> type[requests.Session]:
    import requests

    class _NoRedirectSession(requests.Session):
        """Never resolves redirects. Even with ``allow_redirects=False``, ``requests`` runs its redirect
        resolver on a 3xx to prepare ``response.next``: that reads the whole body outside our deadline
        and, with ``max_redirects = 0``, raised TooManyRedirects, so no 3xx ever reached the protocol."""

        def get_redirect_target(self, resp: requests.Response) -> str | None:
            return None

    return _NoRedirectSession


def _requests_verify(verify: bool | str) -> bool | str:
    """Pass an explicit bundle for ``True`` so REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE cannot override it."""
    if verify is True:
        import certifi

        return str(certifi.where())
    return verify


def _mask(secret: str | None) -> None:
    if not secret:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - defensive: masking must never break a call
        return
    mask_secret(secret)


def _safe_text(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]


__all__ = ["PartnerOSHook"]
