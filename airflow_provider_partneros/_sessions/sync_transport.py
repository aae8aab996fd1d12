"""The sync transport: drives ``_protocol`` flows and the session lifecycle over ``requests``.

:class:`SyncSession` is what a :class:`~airflow_provider_partneros.hooks.partneros.PartnerOSHook` talks
through. It is thread-safe: threads sharing it run their calls at once and meet only in the
session's single flight (one sign-in or store visit at a time, under a lock). Nothing here decides
what a request means or when a session is replaced: that is ``_protocol``'s and
:class:`~.lifecycle.SessionLifecycle`'s job.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

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
from airflow_provider_partneros._sessions.sync_http import (
    Log,
    mask,
    new_session,
    read_chunks,
    send,
    sign_out_once,
    size_pool,
)

if TYPE_CHECKING:
    import requests

DEFAULT_POOL_SIZE = 32
"""Connections kept per host: enough for the threads of a typical batch (see ``reserve_connections``)."""
STREAM_TIMEOUT_FACTOR = 10
"""A streamed answer may take this many ``timeout``s in total; each read is still bounded by one."""


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


__all__ = ["DEFAULT_POOL_SIZE", "STREAM_TIMEOUT_FACTOR", "SyncSession", "mask"]
