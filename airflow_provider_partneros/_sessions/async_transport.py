"""The async transport: drives ``_protocol`` flows and the session lifecycle over ``httpx``.

One :class:`AsyncSession` is shared by every trigger of one event loop that uses the same PartnerOS
identity (see :func:`shared_session`): a triggerer runs one loop for all its triggers, so 200 deferred
sensors sign in once, and when the session expires the first one to meet the 401 signs in again while
the others wait on the lock and then reuse the new session. That session is in turn the store's shared
one (:class:`~.lifecycle.SessionLifecycle`), so a host or deployment running workers and triggerers
signs in once for all of them. Every store operation runs in a worker thread: a slow store (Redis)
never blocks the triggerer's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_partneros import _protocol as protocol
from airflow_provider_partneros._connection.settings import (
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
from airflow_provider_partneros._sessions.flows import LockEntry, SignIn, SignOut, StartSteward, StoreIO
from airflow_provider_partneros._sessions.lifecycle import (
    LifecycleFlow,
    Note,
    OpenStores,
    SessionLifecycle,
    UseCookies,
)
from airflow_provider_partneros._sessions.records import CookieRecord, cookie_records, install_cookies
from airflow_provider_partneros._sessions.store import Held, StoreEntry
from airflow_provider_partneros._sessions.sync_http import Log

if TYPE_CHECKING:
    import httpx

_T = TypeVar("_T")


async def sleep(seconds: float) -> None:
    """How the transport waits when a flow says so (a module function: the seam for tests' clocks)."""
    await asyncio.sleep(seconds)


SIGN_OUT_TIMEOUT = 5.0
"""Sign-out is a courtesy (sessions expire on their own): never let it hold up a trigger for long."""
MAX_CONNECTIONS = 20
"""Upper bound of parallel HTTP connections per shared session, however many triggers share it."""


async def load_settings(conn_id: str, log: Log | None = None) -> PartnerOSSettings:
    """Read the Airflow connection without blocking the event loop (``aget_connection``)."""
    from airflow.sdk import BaseHook

    from airflow_provider_partneros.version_compat import aconnection_extra

    conn = await BaseHook.aget_connection(conn_id)
    settings = settings_from_airflow_connection(conn_id, conn, await aconnection_extra(conn))
    await amask(settings.password)
    if log is not None:
        for warning in settings.warnings:
            log.warning("%s", warning)
    return settings


class AsyncSession:
    """One signed-in PartnerOS session usable by many coroutines at once."""

    def __init__(self, settings: PartnerOSSettings, log: Log | None = None) -> None:
        self.settings = settings
        self.log = log
        self.lifecycle = SessionLifecycle(settings)
        self._client: httpx.AsyncClient | None = None
        self._public_client: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self.sign_in_count = 0
        """Sign-ins this session made itself (joining a store's shared session is not one)."""

    # --- public calls -----------------------------------------------------------------------------

    async def get_integration_status(self, connection_id: str) -> dict[str, Any]:
        """``GET /api/integrations/{id}/status``, exactly as :meth:`PartnerOSHook.get_integration_status`."""
        request = protocol.integration_status_request(self.settings, connection_id)
        reply: HttpReply = await self.run(protocol.call_flow(self.settings, request))
        return protocol.require_object(request, protocol.parse_json(request, reply), "status")

    async def request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """Any endpoint, parsed as JSON (``None`` for an empty body); see ``_protocol.api_request``."""
        request = protocol.api_request(self.settings, method, endpoint, **kwargs)
        reply: HttpReply = await self.run(protocol.call_flow(self.settings, request))
        return protocol.parse_json(request, reply)

    @property
    def generation(self) -> int:
        return self.lifecycle.generation

    @property
    def shares_session(self) -> bool:
        """True while the session is a store's shared one, not one of its own."""
        return self.lifecycle.shares_session

    # --- the protocol driver -----------------------------------------------------------------------

    async def run(self, flow: Flow, *, client: httpx.AsyncClient | None = None) -> Any:
        """Drive a protocol flow: the async twin of :meth:`.sync_transport.SyncSession.run`."""
        result: Any = None
        while True:
            try:
                action = flow.send(result)
            except StopIteration as stop:
                return stop.value
            if isinstance(action, HttpRequest):
                result = await self._send(action, client=client)
            elif isinstance(action, Sleep):
                if self.log is not None:
                    self.log.info(
                        "PartnerOS: waiting %.1f s before retrying (%s).", action.seconds, action.reason
                    )
                await sleep(action.seconds)
                result = None
            elif isinstance(action, EnsureSession):
                result = self.lifecycle.usable()
                if not result:
                    async with self._lock:
                        result = await self._drive(self.lifecycle.obtain())
            elif isinstance(action, RenewSession):
                async with self._lock:
                    result = await self._drive(self.lifecycle.obtain(stale=action.stale))
            else:  # pragma: no cover - a protocol bug, not a runtime condition
                raise TypeError(f"unknown protocol action {action!r}")

    # --- the lifecycle driver ----------------------------------------------------------------------

    async def _drive(self, flow: LifecycleFlow) -> Any:
        """Perform a lifecycle flow's actions; store I/O runs in worker threads, never in the loop."""
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
                    result = await self._perform(action)
                except Exception as err:
                    error = err
        finally:
            flow.close()

    async def _perform(self, action: object) -> Any:
        if isinstance(action, StoreIO):
            return await asyncio.to_thread(action.function, *action.args)
        if isinstance(action, LockEntry):
            return await _lock_in_thread(action.entry, action.deadline)
        if isinstance(action, SignIn):
            return await self._sign_in_fresh(action.scope)
        if isinstance(action, SignOut):
            return await self._sign_out(action.cookies)
        if isinstance(action, UseCookies):
            for record in action.cookies:
                await amask(record.value)
            install_cookies(self._session_client().cookies.jar, action.cookies)
            return None
        if isinstance(action, Note):
            if self.log is not None:
                (self.log.warning if action.level == "warning" else self.log.info)("%s", action.message)
            return None
        if isinstance(action, OpenStores):
            from airflow_provider_partneros._sessions.config import adeployment_store_connection, open_entries

            deployment = await adeployment_store_connection()
            return await asyncio.to_thread(open_entries, action.settings, deployment)
        if isinstance(action, StartSteward):
            from airflow_provider_partneros._sessions import steward

            return await asyncio.to_thread(steward.start, action.entry, self.settings, self.lifecycle.linger)
        raise TypeError(f"unknown session action {action!r}")  # pragma: no cover - a lifecycle bug

    async def _sign_in_fresh(self, scope: str | None) -> tuple[CookieRecord, ...]:
        """Sign in with a new, empty cookie jar and return its cookies; the jar the triggers use is only
        ever replaced cookie by cookie, so no poll in flight sees it empty."""
        client = _new_client(self.settings)
        try:
            await self.run(protocol.sign_in_flow(self.settings), client=client)
            records = cookie_records(client.cookies.jar)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        self.sign_in_count += 1
        if self.log is not None:
            self.log.info(
                "Signed in to %s (%s, sign-in %d).",
                self.settings.base_url,
                f"shared session of this {scope}" if scope else "shared session of this triggerer",
                self.sign_in_count,
            )
        return records

    # --- HTTP ----------------------------------------------------------------------------------------

    def _session_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = _new_client(self.settings)
        return self._client

    def _client_for(self, request: HttpRequest) -> httpx.AsyncClient:
        if request.send_cookies:
            return self._session_client()
        if self._public_client is None:
            self._public_client = _new_client(self.settings)
        return self._public_client

    async def _send(
        self,
        request: HttpRequest,
        *,
        settings: PartnerOSSettings | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> HttpReply | TransportFailure:
        """One exchange, bounded in total by the settings' timeout (a drip cannot hold it open)."""
        import httpx

        settings = settings or self.settings
        client = client or self._client_for(request)
        try:
            # Queue here rather than inside httpx's pool: waiting polls cost nothing, and the
            # timeout below measures the exchange itself, not the time spent behind other triggers.
            async with self._slots:
                reply = await bounded(self._exchange(client, request), settings.timeout)
        except asyncio.TimeoutError:
            return TransportFailure("timeout", f"no complete answer within {settings.timeout:g} s")
        except httpx.HTTPError as err:
            return _failure(err)
        except ssl.SSLError:
            return TransportFailure("tls", "certificate verify failed or TLS handshake error")
        except OSError as err:
            return TransportFailure("interrupted", type(err).__name__)
        if "set-cookie" in reply.headers:
            await self._mask_cookies(client)
        return reply

    @staticmethod
    async def _exchange(client: httpx.AsyncClient, request: HttpRequest) -> HttpReply:
        built = client.build_request(
            request.method,
            request.url,
            params=request.params,
            json=request.json,
            headers=dict(request.headers),
        )
        response = await client.send(built, stream=True, follow_redirects=False)
        try:
            headers = {key.lower(): value for key, value in response.headers.items()}
            limit = None if 200 <= response.status_code < 300 else protocol.MAX_ERROR_BODY
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if limit is not None and len(body) >= limit:
                    break
            return HttpReply(response.status_code, headers, bytes(body))
        finally:
            await response.aclose()

    async def _mask_cookies(self, client: httpx.AsyncClient) -> None:
        # "session"/"cookie" names are not masked by Airflow automatically: register every value.
        for cookie in client.cookies.jar:
            if cookie.value:
                await amask(cookie.value)

    # --- lifecycle -----------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Let the session go (see :meth:`SessionLifecycle.close`) and close the HTTP clients."""
        try:
            async with self._lock:
                await self._drive(self.lifecycle.close())
        except Exception as err:  # releasing must never fail a trigger
            if self.log is not None:
                self.log.warning("PartnerOS: could not release the session (%s).", type(err).__name__)
        finally:
            client, self._client = self._client, None
            public, self._public_client = self._public_client, None
            for c in (client, public):
                if c is not None:
                    with contextlib.suppress(Exception):
                        await c.aclose()

    async def _sign_out(self, cookies: tuple[CookieRecord, ...]) -> None:
        """Sign out the session these cookies carry: once, bounded, never raising."""
        settings = self.settings.with_overrides(
            timeout=min(self.settings.timeout, SIGN_OUT_TIMEOUT), max_retries=0
        )
        client = _new_client(settings)
        try:
            install_cookies(client.cookies.jar, cookies)
            reply = await self._send(protocol.sign_out_request(settings), settings=settings, client=client)
        except Exception as err:  # a failed sign-out must never fail a trigger
            reply = TransportFailure("interrupted", type(err).__name__)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()
        if self.log is None:
            return
        if isinstance(reply, TransportFailure) or reply.status >= 300:
            status = reply.kind if isinstance(reply, TransportFailure) else reply.status
            self.log.warning(
                "PartnerOS sign-out did not succeed (%s); the session expires on its own.", status
            )
        else:
            self.log.info("Signed out of PartnerOS (shared session).")


# --- one shared session per event loop and identity ------------------------------------------------


@dataclass
class _Entry:
    session: AsyncSession
    loop: asyncio.AbstractEventLoop
    users: int = 0


_REGISTRY: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Entry]] = (
    weakref.WeakKeyDictionary()
)
_STRONG_REGISTRY: dict[int, dict[str, _Entry]] = {}
"""Fallback for loops that cannot be weakly referenced; entries are removed when their last user leaves."""


@contextlib.asynccontextmanager
async def shared_session(settings: PartnerOSSettings, log: Log | None = None) -> AsyncIterator[AsyncSession]:
    """Borrow this loop's session for ``settings.session_key``; the last user out signs it out.

    Keyed per event loop because an ``asyncio.Lock`` and an ``httpx.AsyncClient`` belong to the loop
    that made them (``dag.test()`` runs each trigger in a fresh loop; a triggerer runs one).
    """
    loop = asyncio.get_running_loop()
    sessions = _sessions_of(loop)
    key = settings.session_key
    entry = sessions.get(key)
    if entry is None or entry.loop is not loop:
        entry = sessions[key] = _Entry(AsyncSession(settings, log), loop)
    entry.users += 1
    try:
        yield entry.session
    finally:
        entry.users -= 1
        if entry.users == 0:
            if sessions.get(key) is entry:
                del sessions[key]
            await entry.session.aclose()


def _sessions_of(loop: asyncio.AbstractEventLoop) -> dict[str, _Entry]:
    try:
        return _REGISTRY.setdefault(loop, {})
    except TypeError:  # a loop type without weak references (e.g. some uvloop builds)
        return _STRONG_REGISTRY.setdefault(id(loop), {})


def active_sessions() -> int:
    """Shared sessions alive in the running loop (for tests and diagnostics)."""
    return len(_sessions_of(asyncio.get_running_loop()))


# --- helpers ---------------------------------------------------------------------------------------


async def _lock_in_thread(entry: StoreEntry, deadline: float) -> Held | None:
    """Wait for the store entry's lock in a worker thread, never in the event loop. If the waiting
    trigger is cancelled, the thread stops waiting, and a lock it got anyway is released."""
    cancelled = threading.Event()
    waiter = asyncio.ensure_future(asyncio.to_thread(entry.lock, deadline, cancelled))
    try:
        return await asyncio.shield(waiter)
    except asyncio.CancelledError:
        cancelled.set()
        waiter.add_done_callback(_release_unwanted_lock)
        raise


def _release_unwanted_lock(waiter: asyncio.Future[Held | None]) -> None:
    if not waiter.cancelled() and waiter.exception() is None:
        lock = waiter.result()
        if lock is not None:
            lock.release()


async def bounded(awaitable: Awaitable[_T], seconds: float) -> _T:
    """Await with a total deadline without losing a cancellation.

    ``asyncio.wait_for`` before Python 3.12 can swallow a cancellation that arrives as the inner
    call completes (CPython gh-86296), which would leave a cancelled trigger polling forever;
    ``asyncio.timeout`` (3.11+) does not, and Python 3.10 gets the same design in miniature.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await bounded_py310(awaitable, seconds)  # pragma: no cover - Python 3.10


async def bounded_py310(awaitable: Awaitable[_T], seconds: float) -> _T:
    """Cancel this task at the deadline and turn only that cancellation into ``TimeoutError``.

    The task is suspended inside ``await awaitable`` whenever the deadline callback runs, so the
    cancellation it asks for lands in this ``try``; any other cancellation passes through untouched.
    """
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - always called from a task
        raise RuntimeError("_bounded must run inside an asyncio task")
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    deadline = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if expired:
            raise asyncio.TimeoutError from None
        raise
    finally:
        deadline.cancel()


def _new_client(settings: PartnerOSSettings) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(
        verify=_ssl_verify(settings.verify),
        timeout=httpx.Timeout(settings.timeout),
        follow_redirects=False,  # the protocol decides (same origin only)
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
    )


def _ssl_verify(verify: bool | str) -> ssl.SSLContext | bool:
    """Like the sync hook: an explicit bundle for True, so SSL_CERT_FILE and friends cannot change it."""
    if verify is False:
        return False
    if verify is True:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def _failure(err: BaseException) -> TransportFailure:
    """Classify an httpx error; the detail names the error class, never a URL or header."""
    import httpx

    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    name = type(err).__name__
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return TransportFailure("tls", "certificate verify failed or TLS handshake error")
    if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransportFailure("connect", name)
    if isinstance(err, httpx.TimeoutException):
        return TransportFailure("timeout", "read timed out")
    return TransportFailure("interrupted", name)


async def amask(secret: str | None) -> None:
    """Register a secret with Airflow's log masker without blocking the event loop."""
    if secret:
        from airflow_provider_partneros.version_compat import amask_secret

        await amask_secret(secret)


__all__ = ["AsyncSession", "amask", "load_settings", "shared_session"]
