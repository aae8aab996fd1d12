"""``requests``, once: one exchange bounded in time, failures classified, and a bounded sign-out.

The sync transport (:class:`~.sync_transport.SyncSession`) and the steward both send through here.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_partneros import _protocol as protocol
from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._protocol import HttpReply, HttpRequest, TransportFailure
from airflow_provider_partneros._sessions.records import CookieRecord, install_cookies

if TYPE_CHECKING:
    import requests

CHUNK_SIZE = 64 * 1024
SIGN_OUT_TIMEOUT = 5.0
"""Sign-out is a courtesy (sessions expire on their own): it never holds a task up for long."""


class Log(Protocol):
    """What a transport needs of a logger (stdlib or Airflow's structlog-based one)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


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


__all__ = ["Log", "mask", "new_session", "read_chunks", "send", "sign_out_once", "size_pool"]
