"""PartnerOSHook: at most one sign-in per task, over ``requests``; safe to share between threads.

The hook is thin: it reads the connection, builds requests with
:mod:`airflow_provider_partneros._protocol`, and sends them through a
:class:`~airflow_provider_partneros._sessions.sync_transport.SyncSession`, whose session is by default
the one shared by every task and trigger of the same identity on this host (or, with a deployment
store, the whole deployment). Use it as a context manager (operators and sensors do) so the session
is released (and signed out once no one uses it)::

    with PartnerOSHook("partneros_default") as hook:
        status = hook.get_integration_status("conn_123")
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_partneros import _batch
from airflow_provider_partneros import _protocol as protocol
from airflow_provider_partneros._connection.settings import (
    DEFAULT_CONN_ID,
    PartnerOSSettings,
    settings_from_airflow_connection,
)
from airflow_provider_partneros._protocol import EnsureSession, Flow, HttpReply, HttpRequest
from airflow_provider_partneros._sessions.sync_transport import DEFAULT_POOL_SIZE, SyncSession, mask
from airflow_provider_partneros.exceptions import PartnerOSError


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
        self._settings: PartnerOSSettings | None = None
        self._lock = threading.RLock()
        self._transport: SyncSession | None = None
        self._pool_size = DEFAULT_POOL_SIZE
        self._closed_sign_ins = 0

    # --- configuration ---------------------------------------------------------------------------

    @property
    def settings(self) -> PartnerOSSettings:
        """The connection's settings with this hook's overrides applied."""
        if self._settings is None:
            with self._lock:  # one connection lookup, however many threads start at once
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
        mask(settings.password)
        for warning in settings.warnings:
            self.log.warning("%s", warning)
        return settings

    # --- the session ------------------------------------------------------------------------------

    @property
    def session(self) -> SyncSession:
        """The transport and its session (made on first use, with this hook's settings)."""
        if self._transport is None:
            with self._lock:
                if self._transport is None:
                    self._transport = SyncSession(self.settings, self.log, pool_size=self._pool_size)
        return self._transport

    def get_conn(self) -> Any:
        """The signed-in ``requests.Session`` (signing in if needed), for calls this hook lacks."""
        self._run(iter_ensure_session())
        return self.session.http_session()

    @property
    def signed_in(self) -> bool:
        return self._transport is not None and self._transport.signed_in

    @property
    def shares_session(self) -> bool:
        """True while this hook uses a store's shared session, not one of its own."""
        return self._transport is not None and self._transport.lifecycle.shares_session

    @property
    def sign_in_count(self) -> int:
        """Sign-ins this hook made itself (joining a shared session is not one)."""
        transport = self._transport
        return self._closed_sign_ins + (transport.sign_in_count if transport is not None else 0)

    def reserve_connections(self, threads: int) -> None:
        """Size the connection pool for ``threads`` threads calling through this hook at once
        (the default pool keeps :data:`DEFAULT_POOL_SIZE` connections to PartnerOS)."""
        with self._lock:
            self._pool_size = max(self._pool_size, threads)
            if self._transport is not None:
                self._transport.reserve_connections(threads)

    def close(self) -> None:
        """Stop using the session: a session of its own is signed out; a shared one is released (and
        signed out once no one uses it). Best effort: never raises. Releases connections."""
        with self._lock:
            transport, self._transport = self._transport, None
            if transport is not None:
                self._closed_sign_ins += transport.sign_in_count
        if transport is not None:
            transport.close()

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
                timeout=min(self.settings.timeout, 10.0),
                max_retries=0,
                session_sharing=False,
                patient_sign_in=False,
            )
            self.close()
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

    def batch_analyze_partners(
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

    # --- the transport ------------------------------------------------------------------------------

    def _call(self, request: HttpRequest) -> HttpReply:
        reply: HttpReply = self._run(protocol.call_flow(self.settings, request))
        return reply

    def _open_stream(self, request: HttpRequest) -> contextlib.AbstractContextManager[Iterator[bytes]]:
        return self.session.open_stream(request)

    def _run(self, flow: Flow) -> Any:
        return self.session.run(flow)


def iter_ensure_session() -> Flow:
    """A flow that only makes sure a session exists (for :meth:`PartnerOSHook.get_conn`)."""
    yield EnsureSession()


def _safe_text(err: BaseException) -> str:
    return " ".join(str(err).split())[:200]


__all__ = ["PartnerOSHook"]
