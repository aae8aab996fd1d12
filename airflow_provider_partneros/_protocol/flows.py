"""The PartnerOS conversation, with no I/O.

Everything that decides *what* to send and *what an answer means* lives here, once, for both the
sync hook (requests) and the deferrable trigger (httpx): building requests and URLs, the sign-in
and organization steps, reading both error body shapes, mapping statuses to exceptions, and the
retry / re-sign-in / redirect policy.

A call is a generator ("flow") that yields *actions* and receives their results:

* :class:`HttpRequest` -> the transport sends it and replies with :class:`HttpReply` or
  :class:`TransportFailure`;
* :class:`Sleep` -> the transport waits (``time.sleep`` or ``asyncio.sleep``);
* :class:`EnsureSession` / :class:`RenewSession` -> the transport makes sure a session exists (or
  replaces the one the failed call used) and replies with the session's generation number. The
  transport runs :func:`sign_in_flow` for that, which lets the async side share one session
  between many triggers under a lock.

Transports stay thin loops around these flows; see ``_sessions/sync_transport.py`` and
``_sessions/async_transport.py``.
"""

from __future__ import annotations

import codecs
import email.utils
import json
import math
import random
import re
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote, urljoin, urlsplit

from airflow_provider_partneros import __version__
from airflow_provider_partneros._connection.settings import PartnerOSSettings
from airflow_provider_partneros._protocol.endpoints import (
    ALLOWED_METHODS,
    GET_SESSION_PATH,
    IDEMPOTENT_METHODS,
    SET_ACTIVE_ORG_PATH,
    SIGN_IN_PATH,
    SIGN_OUT_PATH,
    STATE_CHANGING_METHODS,
    check_json_serializable,
    normalize_endpoint,
    path,
    require_id,
)
from airflow_provider_partneros.exceptions import (
    PartnerOSBadRequestError,
    PartnerOSConfigError,
    PartnerOSConflictError,
    PartnerOSError,
    PartnerOSForbiddenError,
    PartnerOSInvalidCredentialsError,
    PartnerOSNoActiveOrganizationError,
    PartnerOSNotFoundError,
    PartnerOSQuotaExceededError,
    PartnerOSRateLimitedError,
    PartnerOSRedirectError,
    PartnerOSSessionExpiredError,
    PartnerOSTLSError,
    PartnerOSUnavailableError,
    PartnerOSUnexpectedResponseError,
)

USER_AGENT = f"airflow-provider-partneros/{__version__}"

MAX_RETRY_DELAY = 30.0
"""Longest single wait inside one call; a server asking for longer gets a task-level retry instead."""
SIGN_IN_PATIENCE_FLOOR = 120.0
SIGN_IN_PATIENCE_TIMEOUTS = 20
"""A sign-in waits out the rate limit for up to this many connection timeouts (at least the floor)."""
SIGN_IN_JITTER = 2.0
"""Seconds of random spread added to the server's delay, so hosts told the same delay do not all come
back at the same instant (the limiter lets 3 through; the rest would be refused together again)."""
MAX_REDIRECTS = 5
MAX_ERROR_BODY = 64 * 1024
"""Error bodies are read up to this size: enough for any message, bounded against a drip or a flood."""
_ERROR_TEXT_LIMIT = 300

# --- actions exchanged between flows and transports ----------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP exchange for the transport to perform (it never follows redirects itself)."""

    method: str
    url: str
    endpoint: str
    """Path shown in logs and errors (no host, no query)."""
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stream: bool = False
    """On a 2xx, hand the open body to the caller instead of reading it."""
    repeatable: bool = True
    """Safe to resend after an ambiguous failure (timeout, cut-off answer, 502/504)."""
    needs_session: bool = True
    send_cookies: bool = True
    """Go through the session's cookie jar; False for public endpoints, which never see the cookie."""


@dataclass(frozen=True)
class HttpReply:
    """What came back. ``headers`` keys are lower-case; ``stream`` is the transport's open body."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    stream: Any = None


TransportFailureKind = Literal["connect", "timeout", "interrupted", "tls"]


@dataclass(frozen=True)
class TransportFailure:
    """No usable answer. ``detail`` must be safe to show (the transport strips URLs with secrets)."""

    kind: TransportFailureKind
    detail: str

    @property
    def request_never_sent(self) -> bool:
        return self.kind in ("connect", "tls")


@dataclass(frozen=True)
class Sleep:
    seconds: float
    reason: str


@dataclass(frozen=True)
class EnsureSession:
    """Reply with the current session generation, signing in first if there is none."""


@dataclass(frozen=True)
class RenewSession:
    """The session of generation ``stale`` was refused; reply with a newer generation."""

    stale: int


Action = HttpRequest | Sleep | EnsureSession | RenewSession
Flow = Generator[Action, Any, Any]

# --- building requests ------------------------------------------------------------------------------


def api_request(
    settings: PartnerOSSettings,
    method: str,
    endpoint: str,
    *,
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
    stream: bool = False,
    idempotent: bool | None = None,
    public: bool = False,
) -> HttpRequest:
    """Build the request for one API call; validates before anything is sent."""
    method = (method or "").upper()
    if method not in ALLOWED_METHODS:
        raise PartnerOSConfigError(f"method must be one of {sorted(ALLOWED_METHODS)}, got {method!r}.")
    endpoint = normalize_endpoint(endpoint)
    if json_body is not None:
        check_json_serializable("json body", json_body)
    if params is not None and not isinstance(params, Mapping):
        raise PartnerOSConfigError(f"query parameters must be a mapping, got {type(params).__name__}.")
    headers = {"Accept": "application/json, text/plain;q=0.9, */*;q=0.1", "User-Agent": USER_AGENT}
    if method in STATE_CHANGING_METHODS:
        # The service rejects any cookie-carrying POST whose Origin is not its own.
        headers["Origin"] = settings.origin
    return HttpRequest(
        method=method,
        url=settings.base_url + endpoint,
        endpoint=endpoint.split("?")[0],
        params=_clean_params(params),
        json=json_body,
        headers=headers,
        stream=stream,
        repeatable=(method in IDEMPOTENT_METHODS) if idempotent is None else idempotent,
        needs_session=not public,
        send_cookies=not public,
    )


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[str(key)] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
    return out or None


def sign_in_request(settings: PartnerOSSettings) -> HttpRequest:
    email, password = settings.require_credentials()
    return HttpRequest(
        method="POST",
        url=settings.base_url + SIGN_IN_PATH,
        endpoint=SIGN_IN_PATH,
        json={"email": email, "password": password},
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, "Origin": settings.origin},
        repeatable=True,  # a repeated sign-in only creates another session, which we never use
        needs_session=False,
        # Uses the session's own cookie jar (emptied by the transport first) so the new cookie lands there.
    )


def sign_out_request(settings: PartnerOSSettings) -> HttpRequest:
    return HttpRequest(
        method="POST",
        url=settings.base_url + SIGN_OUT_PATH,
        endpoint=SIGN_OUT_PATH,
        json={},
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, "Origin": settings.origin},
        repeatable=False,
        needs_session=False,
    )


def set_active_organization_request(settings: PartnerOSSettings, organization_id: str) -> HttpRequest:
    return HttpRequest(
        method="POST",
        url=settings.base_url + SET_ACTIVE_ORG_PATH,
        endpoint=SET_ACTIVE_ORG_PATH,
        json={"organizationId": organization_id},
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, "Origin": settings.origin},
        repeatable=True,
        needs_session=False,
    )


# --- flows ---------------------------------------------------------------------------------------


def sign_in_patience(settings: PartnerOSSettings) -> float:
    """Seconds a sign-in keeps waiting out the per-IP sign-in limit (3 per 10 s): N hosts behind one
    IP need about ceil(N/3) x 10 s to all sign in, and none of them should fail meanwhile. It follows
    the connection's timeout; a task's ``execution_timeout`` still bounds it."""
    if not settings.patient_sign_in:
        return 0.0
    return max(SIGN_IN_PATIENCE_FLOOR, SIGN_IN_PATIENCE_TIMEOUTS * settings.timeout)


def sign_in_flow(
    settings: PartnerOSSettings,
    rng: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.monotonic,
) -> Flow:
    """Sign in, then make ``organization_id`` the active organization if one is configured.

    A sign-in refused by the rate limit (429) is tried again after the server's ``X-Retry-After``
    plus jitter, for as long as :func:`sign_in_patience` allows, not just ``max_retries`` times: with
    many hosts behind one IP, waiting is the only way every task gets in. The transport keeps the
    cookie in its jar exactly as the server set it; nothing here reads the cookie or the JSON
    ``token`` (which is not a valid cookie value).
    """
    patience = sign_in_patience(settings)
    deadline = clock() + patience if patience > 0 else None
    yield from exchange(
        settings, sign_in_request(settings), rng=rng, wait_out_429_until=deadline, clock=clock
    )
    if settings.organization_id:
        yield from exchange(
            settings, set_active_organization_request(settings, settings.organization_id), rng=rng
        )


def call_flow(
    settings: PartnerOSSettings, request: HttpRequest, rng: Callable[[], float] = random.random
) -> Flow:
    """One API call: session first, retries for transient trouble, one re-sign-in after a 401."""
    generation = (yield EnsureSession()) if request.needs_session else None
    renewed = False
    while True:
        try:
            return (yield from exchange(settings, request, rng=rng))
        except _SessionRefused:
            if generation is None or renewed:
                raise PartnerOSSessionExpiredError(
                    f"PartnerOS {request.method} {request.endpoint} answered 401 Unauthorized even right "
                    "after a fresh sign-in. The session is being revoked as soon as it is made (check the "
                    "user in PartnerOS); the task will retry.",
                    method=request.method,
                    endpoint=request.endpoint,
                    status=401,
                ) from None
            renewed = True
            generation = yield RenewSession(generation)


class _SessionRefused(Exception):
    """Internal: a 401 on a session call; :func:`call_flow` decides whether to sign in again."""


def exchange(
    settings: PartnerOSSettings,
    request: HttpRequest,
    *,
    rng: Callable[[], float] = random.random,
    wait_out_429_until: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Flow:
    """Send ``request`` until it gives a usable 2xx, following same-origin redirects and retrying
    transient failures within ``settings.max_retries``; raise the mapped exception otherwise.

    ``wait_out_429_until`` (a ``clock`` time): until then a 429 is waited out at the server's delay
    without counting against ``max_retries`` (the patient sign-in)."""
    attempt = 0
    redirects = 0
    current = request
    while True:
        result = yield current
        if isinstance(result, TransportFailure):
            retry = _retry_transport_failure(settings, current, result, attempt, rng)
            if retry is None:
                raise transport_error(current, result)
            attempt += 1
            yield retry
            continue
        reply: HttpReply = result
        if 200 <= reply.status < 300:
            return reply
        if reply.status in (301, 302, 303, 307, 308):
            redirects += 1
            current = follow_redirect(settings, current, reply, redirects)
            continue
        if reply.status == 401 and current.needs_session:
            raise _SessionRefused()
        if reply.status == 429 and wait_out_429_until is not None:
            wait = rate_limit_wait(reply.headers, rng)
            if clock() + wait <= wait_out_429_until:
                yield Sleep(wait, "sign-in rate limit: HTTP 429")
                continue
        delay = retry_delay(settings, current, reply, attempt, rng)
        if delay is not None:
            attempt += 1
            yield Sleep(delay, f"HTTP {reply.status}")
            continue
        raise scrub_password(settings, error_for_reply(current, reply))


def scrub_password(settings: PartnerOSSettings, err: PartnerOSError) -> PartnerOSError:
    """Replace the password in an error text built from the server's words: a proxy or a validation
    error may echo the sign-in body back, and error texts end up in the UI and in task logs."""
    password = settings.password
    if not password:
        return err
    forms = {password, json.dumps(password)[1:-1], quote(password, safe="")}
    message = err.message
    for form in sorted(forms, key=len, reverse=True):
        if form:
            message = message.replace(form, "***")
    if message != err.message:
        err.message = message
        err.args = (message,)
    return err


def _retry_transport_failure(
    settings: PartnerOSSettings,
    request: HttpRequest,
    failure: TransportFailure,
    attempt: int,
    rng: Callable[[], float],
) -> Sleep | None:
    if failure.kind == "tls" or attempt >= settings.max_retries:
        return None
    if not (failure.request_never_sent or request.repeatable):
        return None  # the service may have acted on it: do not repeat a POST blindly
    return Sleep(backoff(settings, attempt, rng), failure.kind)


def backoff(settings: PartnerOSSettings, attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped."""
    ceiling = min(MAX_RETRY_DELAY, settings.retry_backoff * float(2**attempt))
    return ceiling / 2 + rng() * ceiling / 2


def retry_delay(
    settings: PartnerOSSettings,
    request: HttpRequest,
    reply: HttpReply,
    attempt: int,
    rng: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before resending after this answer, or None to give up on it now."""
    if attempt >= settings.max_retries:
        return None
    if reply.status == 429:
        wanted = server_retry_after(reply.headers)
        if wanted is None:
            return backoff(settings, attempt, rng)
        # A small jitter keeps many clients that were told the same delay from returning together.
        return wanted + rng() * 0.25 if wanted <= MAX_RETRY_DELAY else None
    if reply.status == 503 or (reply.status in (502, 504) and request.repeatable):
        wanted = server_retry_after(reply.headers)
        if wanted is not None and wanted > MAX_RETRY_DELAY:
            return None
        return max(wanted or 0.0, backoff(settings, attempt, rng))
    return None


def rate_limit_wait(headers: Mapping[str, str], rng: Callable[[], float] = random.random) -> float:
    """How long to wait after a 429 that is being waited out: the server's delay (10 s when it says
    none), plus :data:`SIGN_IN_JITTER` of random spread."""
    wanted = server_retry_after(headers)
    return (10.0 if wanted is None else wanted) + rng() * SIGN_IN_JITTER


def server_retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """PartnerOS's sign-in limiter says ``X-Retry-After``; proxies say the standard ``Retry-After``
    (seconds or an HTTP date). Unreadable values count as absent."""
    for name in ("x-retry-after", "retry-after"):
        raw = headers.get(name)
        if raw is None:
            continue
        raw = raw.strip()
        try:
            seconds = float(raw)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError, IndexError):
                continue
            seconds = when.timestamp() - now()
        if math.isfinite(seconds):  # "inf" and "nan" parse as floats but say nothing
            return max(0.0, seconds)
    return None


def follow_redirect(
    settings: PartnerOSSettings, request: HttpRequest, reply: HttpReply, count: int
) -> HttpRequest:
    """Follow a redirect only within the PartnerOS origin: the cookie must never reach another host."""
    location = reply.headers.get("location")
    if not location:
        raise error_for_reply(request, reply)
    target = urljoin(request.url, location)
    target_parts = urlsplit(target)
    target_origin = f"{target_parts.scheme}://{target_parts.netloc}"
    if target_origin != settings.origin:
        raise PartnerOSRedirectError(
            f"PartnerOS {request.method} {request.endpoint} redirected to another origin "
            f"({target_origin}); not followed, so the session cookie stays with {settings.origin}. "
            "Check the connection's base URL (e.g. http vs https, or an old host name).",
            method=request.method,
            endpoint=request.endpoint,
            status=reply.status,
        )
    if count > MAX_REDIRECTS:
        raise PartnerOSUnexpectedResponseError(
            f"PartnerOS {request.method} {request.endpoint} redirected more than {MAX_REDIRECTS} times.",
            method=request.method,
            endpoint=request.endpoint,
            status=reply.status,
        )
    keeps_method = reply.status in (307, 308) or request.method in ("GET", "HEAD")
    return replace(
        request,
        url=target,
        endpoint=target_parts.path or "/",
        params=None if target_parts.query else request.params,
        method=request.method if keeps_method else "GET",
        json=request.json if keeps_method else None,
    )


# --- reading answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorBody:
    """The service's error text and code, whichever of its two shapes (or neither) it used."""

    message: str | None
    code: str | None


def read_error_body(body: bytes, content_type: str | None) -> ErrorBody:
    """PartnerOS routes say ``{"error", "code"}``, auth routes ``{"message", "code"}``; proxies send
    HTML; some errors have no body at all. All of them give a readable, bounded text."""
    text = body[:MAX_ERROR_BODY].decode("utf-8", errors="replace").strip()
    if not text:
        return ErrorBody(None, None)
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        message = doc.get("error") or doc.get("message")
        code = doc.get("code")
        return ErrorBody(
            _short(message) if isinstance(message, str) else None,
            code if isinstance(code, str) else None,
        )
    if "html" in (content_type or "").lower() or text.lstrip().startswith("<"):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        page = f"an HTML page ({_short(title.group(1))})" if title else "an HTML page"
        return ErrorBody(f"{page}, likely from a proxy or load balancer in front of PartnerOS", None)
    return ErrorBody(_short(text), None)


def _short(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _ERROR_TEXT_LIMIT else one_line[: _ERROR_TEXT_LIMIT - 1] + "…"


_SIMPLE_STATUS_ERRORS: dict[int, tuple[type[PartnerOSError], str]] = {
    401: (PartnerOSSessionExpiredError, "The session is missing or expired."),
    402: (
        PartnerOSQuotaExceededError,
        "The organization's AI quota is exhausted; retrying will not help until it is raised or renewed.",
    ),
    403: (
        PartnerOSForbiddenError,
        "The user's role may not do this (users with the 'partner' role cannot use internal endpoints): "
        "use a connection whose user has an internal role.",
    ),
    404: (
        PartnerOSNotFoundError,
        "The id does not exist, or belongs to another organization than the session's active one.",
    ),
    409: (PartnerOSConflictError, "It conflicts with an existing resource."),
}
"""Statuses whose meaning depends on nothing but the status (the special codes are checked first)."""


def error_for_reply(request: HttpRequest, reply: HttpReply) -> PartnerOSError:
    """Map a non-2xx answer to the exception whose class tells the task what to do."""
    status = reply.status
    err = read_error_body(reply.body, reply.headers.get("content-type"))
    what = f"PartnerOS {request.method} {request.endpoint} answered {status}"
    # The service's messages end with a period ("Partner not found."); ours follow after one.
    text = (err.message or "").rstrip(" .") or None
    said = f": {text}" + (f" ({err.code})" if err.code else "") if text or err.code else ""
    if err.code and not text:
        said = f": {err.code}"
    kwargs: dict[str, Any] = {
        "method": request.method,
        "endpoint": request.endpoint,
        "status": status,
        "code": err.code,
    }
    is_sign_in = request.endpoint == SIGN_IN_PATH
    code = (err.code or "").upper()
    message_lower = (err.message or "").lower()

    if is_sign_in and status in (400, 401, 403):
        hint = {
            "EMAIL_NOT_VERIFIED": "verify the user's email address in PartnerOS first",
            "VALIDATION_ERROR": "check that the connection's login is a valid email address",
        }.get(code, "check the Airflow connection's email and password")
        return PartnerOSInvalidCredentialsError(
            f"Sign-in refused{said}. {hint[0].upper()}{hint[1:]}.", **kwargs
        )
    if status == 403 and code in ("MISSING_OR_NULL_ORIGIN", "INVALID_ORIGIN"):
        return PartnerOSForbiddenError(
            f"{what}{said}. The service's Origin check refused the request: the connection's base URL "
            "must be the exact origin PartnerOS serves (scheme, host and port).",
            **kwargs,
        )
    if status == 403 and code == "USER_IS_NOT_A_MEMBER_OF_THE_ORGANIZATION":
        return PartnerOSNoActiveOrganizationError(
            f"{what}{said}. The user is not a member of the connection's organization_id; fix the "
            "extra 'organization_id' or add the user to that organization.",
            **kwargs,
        )
    if status == 400 and "no active organization" in message_lower:
        return PartnerOSNoActiveOrganizationError(
            f"{what}{said}. The session has no active organization: set the connection's extra "
            "'organization_id' to the organization to work in.",
            **kwargs,
        )
    simple = _SIMPLE_STATUS_ERRORS.get(status)
    if simple is not None:
        error_class, advice = simple
        return error_class(f"{what}{said}. {advice}", **kwargs)
    if status == 429:
        retry_after = server_retry_after(reply.headers)
        later = f" Retry after {retry_after:.0f} s." if retry_after is not None else ""
        limit = " (sign-in allows 3 attempts per 10 s per IP)" if is_sign_in else ""
        return PartnerOSRateLimitedError(
            f"{what}{said}. Rate limited by PartnerOS{limit}; the task will retry.{later}",
            retry_after=retry_after,
            **kwargs,
        )
    if status >= 500:
        return PartnerOSUnavailableError(
            f"{what}{said}. PartnerOS (or a proxy in front of it) is failing; the task will retry.",
            **kwargs,
        )
    if 400 <= status < 500:
        return PartnerOSBadRequestError(f"{what}{said}. Check the request's ids, query and body.", **kwargs)
    return PartnerOSUnexpectedResponseError(f"{what}{said}, which the API does not promise.", **kwargs)


def transport_error(request: HttpRequest, failure: TransportFailure) -> PartnerOSError:
    where = f"PartnerOS {request.method} {request.endpoint}"
    kwargs: dict[str, Any] = {"method": request.method, "endpoint": request.endpoint}
    if failure.kind == "tls":
        return PartnerOSTLSError(
            f"{where}: TLS verification failed ({failure.detail}). Set the connection's extra 'verify' "
            "to the CA bundle that signed the server's certificate.",
            **kwargs,
        )
    if failure.kind == "connect":
        return PartnerOSUnavailableError(
            f"{where}: could not connect ({failure.detail}); the task will retry.", **kwargs
        )
    if failure.kind == "timeout":
        return PartnerOSUnavailableError(
            f"{where}: no complete answer within the timeout ({failure.detail}); the task will retry. "
            "Raise the connection's extra 'timeout' if the endpoint is slow.",
            **kwargs,
        )
    return PartnerOSUnexpectedResponseError(
        f"{where}: the answer was cut off ({failure.detail}); the task will retry.", **kwargs
    )


def parse_json(request: HttpRequest, reply: HttpReply) -> Any:
    """Parse a 2xx JSON answer; an empty body (204, or 202 with nothing) is ``None``."""
    if not reply.body.strip():
        return None
    return decode_json_document(request, reply.body)


def decode_json_document(request: HttpRequest, data: bytes | bytearray | str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise PartnerOSUnexpectedResponseError(
            f"PartnerOS {request.method} {request.endpoint} answered {type(err).__name__} instead of the "
            f"JSON the API promises ({_short(str(err))}); the task will retry.",
            method=request.method,
            endpoint=request.endpoint,
        ) from None


def assemble_text(request: HttpRequest, chunks: Iterable[bytes]) -> str:
    """Decode a streamed UTF-8 answer chunk by chunk (a character may span two chunks) and join it."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    parts: list[str] = []
    try:
        parts.extend(decoder.decode(chunk) for chunk in chunks)
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError as err:
        raise PartnerOSUnexpectedResponseError(
            f"PartnerOS {request.method} {request.endpoint} streamed bytes that are not UTF-8 "
            f"({err.reason}); the task will retry.",
            method=request.method,
            endpoint=request.endpoint,
        ) from None
    text = "".join(parts)
    parts.clear()
    return text


def require_object(request: HttpRequest, doc: Any, *keys: str) -> dict[str, Any]:
    """Check the documented shape so a wrong answer fails here, not three tasks downstream."""
    if not isinstance(doc, dict) or any(key not in doc for key in keys):
        shape = type(doc).__name__ if not isinstance(doc, dict) else f"keys {sorted(doc)[:10]}"
        raise PartnerOSUnexpectedResponseError(
            f"PartnerOS {request.method} {request.endpoint} answered {shape}; expected an object with "
            f"{', '.join(repr(k) for k in keys)}.",
            method=request.method,
            endpoint=request.endpoint,
        )
    return doc


# --- typed endpoints -------------------------------------------------------------------------------


def integration_status_request(settings: PartnerOSSettings, connection_id: str) -> HttpRequest:
    cid = require_id("connection_id", connection_id)
    return api_request(settings, "GET", path("api", "integrations", cid, "status"))


def integration_schema_request(
    settings: PartnerOSSettings, connection_id: str, object_type: str | None = None
) -> HttpRequest:
    cid = require_id("connection_id", connection_id)
    if object_type is not None:
        require_id("object_type", object_type)
    return api_request(
        settings,
        "GET",
        path("api", "integrations", cid, "schema"),
        params={"objectType": object_type} if object_type else None,
    )


def analyze_partner_request(settings: PartnerOSSettings, partner_id: str) -> HttpRequest:
    pid = require_id("partner_id", partner_id)
    # Results are cached per domain server-side for 7 days, so a resend cannot enrich twice.
    return api_request(settings, "POST", path("api", "partners", pid, "analyze"), idempotent=True)


def icp_request(settings: PartnerOSSettings, company: str) -> HttpRequest:
    if not isinstance(company, str) or not company.strip():
        raise PartnerOSConfigError(f"company must be a non-empty string (a name or domain), got {company!r}.")
    # Not repeatable: every generation spends AI quota.
    return api_request(settings, "POST", "/api/ai/icp", json_body={"company": company.strip()}, stream=True)


def application_request(
    settings: PartnerOSSettings,
    slug: str,
    form_data: Mapping[str, Any],
    agreements: Mapping[str, Any] | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> HttpRequest:
    """The public application submit. Its JSON keys are not documented: ``{"slug", "data",
    "agreements"}`` is what the stand-in accepts; ``extra_body`` passes anything else through."""
    require_id("slug", slug)
    if not isinstance(form_data, Mapping):
        raise PartnerOSConfigError(
            f"form_data must be a mapping of field -> value, got {type(form_data).__name__}."
        )
    body: dict[str, Any] = {"slug": slug, "data": dict(form_data)}
    if agreements is not None:
        if not isinstance(agreements, Mapping):
            raise PartnerOSConfigError(f"agreements must be a mapping, got {type(agreements).__name__}.")
        body["agreements"] = dict(agreements)
    body.update(extra_body or {})
    return api_request(
        settings, "POST", "/api/partners/applications/submit", json_body=body, idempotent=False, public=True
    )


def get_session_request(settings: PartnerOSSettings) -> HttpRequest:
    return api_request(settings, "GET", GET_SESSION_PATH)
