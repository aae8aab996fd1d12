"""The fault catalogue (issue 5): every misbehaviour the stand-in can inject, and bad input.

Each case asserts what a user sees:

* ``ok``: the call succeeds after in-call retries (the task never notices);
* ``retryable``: a :class:`PartnerOSError` that is *not* an ``AirflowFailException``, so the task's
  own ``retries`` apply;
* ``fatal``: an ``AirflowFailException`` (the task fails at once, skipping its retries);

that the message names the endpoint and says what to do, and the invariants: every session is
signed out when the hook closes, one sign-in per task (plus one per 401), no secret in the error
text, and nothing hangs (each case's wall time is bounded by the configured ``timeout`` and
``retry_backoff``, deliberately short here; the bound is a hang guard, not a benchmark).

The ids of the parametrized cases are the rows of ``docs/faults.md``; a test below keeps them in step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

import pendulum
import pytest
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from standin_helpers import on_status_call

from airflow_provider_partneros._protocol import MAX_REDIRECTS
from airflow_provider_partneros._sessions.sync_transport import STREAM_TIMEOUT_FACTOR
from airflow_provider_partneros.exceptions import (
    PartnerOSBadRequestError,
    PartnerOSConfigError,
    PartnerOSError,
    PartnerOSForbiddenError,
    PartnerOSInvalidCredentialsError,
    PartnerOSNotFoundError,
    PartnerOSRateLimitedError,
    PartnerOSRedirectError,
    PartnerOSSessionExpiredError,
    PartnerOSTLSError,
    PartnerOSUnavailableError,
    PartnerOSUnexpectedResponseError,
)
from airflow_provider_partneros.hooks.partneros import PartnerOSHook
from airflow_provider_partneros.testing import (
    DEMO_APPLICATION_SLUG,
    DEMO_PASSWORD,
    DEMO_SALESFORCE_CONNECTION,
    Fault,
    PartnerOSStandIn,
    make_self_signed,
)

TIMEOUT = 1.0
CALM_TIMEOUT = 5.0
"""The connection timeout of cases that are not about timeouts. On a loaded CI machine a loopback
answer once took over 1 s: a sign-in whose answer the client gave up on leaves a session it cannot
sign out (or a second sign-in), and the counts no longer match."""
BACKOFF = 0.01
RETRIES = 2
CONN_ID = "partneros_default"
CONN_ENV = "AIRFLOW_CONN_PARTNEROS_DEFAULT"
STATUS_ROUTE = "/api/integrations/{id}/status"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "faults.md"

Outcome = Literal["ok", "retryable", "fatal"]


def hang_bound(
    calls: int = 1, server_wait: float = 0.0, stream: bool = False, timeout: float = TIMEOUT
) -> float:
    """Longest a case may take: every attempt bounded by the timeout (connect + read; a streamed body
    by ``STREAM_TIMEOUT_FACTOR`` timeouts), backoff sleeps, waits the server asked for, and slack."""
    per_attempt = 2 * timeout + (STREAM_TIMEOUT_FACTOR * timeout if stream else 0.0)
    sleeps = sum(BACKOFF * 2**i for i in range(RETRIES))
    return calls * (RETRIES + 1) * per_attempt + sleeps + server_wait + 3.0


def _timeout_for(fault: Fault | None) -> float:
    """``TIMEOUT`` when the case is about a timeout (a slow or dripping answer), else ``CALM_TIMEOUT``."""
    return TIMEOUT if fault is not None and fault.kind in ("delay", "drip") else CALM_TIMEOUT


def use_connection(
    monkeypatch: pytest.MonkeyPatch, standin: PartnerOSStandIn, *, password: str = DEMO_PASSWORD, **extra: Any
) -> None:
    extra = {"timeout": TIMEOUT, "retry_backoff": BACKOFF, "max_retries": RETRIES, **extra}
    monkeypatch.setenv(CONN_ENV, standin.connection_json(password=password, extra=extra))


@pytest.fixture
def conn(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> str:
    use_connection(monkeypatch, standin)
    return CONN_ID


def secrets_of(standin: PartnerOSStandIn) -> list[str]:
    """The password and every form of every session cookie the stand-in issued."""
    out = [DEMO_PASSWORD]
    for cookie in standin.issued_session_cookies:
        raw = unquote(cookie)
        out += [cookie, raw, raw.rpartition(".")[0]]
    return out


def assert_no_secret(text: str, standin: PartnerOSStandIn) -> None:
    for secret in secrets_of(standin):
        assert secret not in text, "a secret leaked into a user-visible text"


def assert_outcome(err: BaseException | None, outcome: Outcome, error: type[PartnerOSError] | None) -> None:
    if outcome == "ok":
        assert err is None, f"expected success, got {err!r}"
        return
    assert err is not None, "expected a failure"
    if error is not None:
        assert isinstance(err, error), f"expected {error.__name__}, got {type(err).__name__}: {err}"
    if outcome == "fatal":
        assert isinstance(err, AirflowFailException), f"{type(err).__name__} must fail the task at once"
    else:
        assert isinstance(err, AirflowException)
        assert not isinstance(err, AirflowFailException), f"{type(err).__name__} must let Airflow retry"


def assert_sessions_closed(standin: PartnerOSStandIn) -> None:
    """Every session the hook made is signed out (or was ended by the server) once it closed."""
    assert standin.active_sessions == 0


# --- the calls a case drives ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    run: Callable[[PartnerOSHook], Any]
    key: str
    """The stand-in's request counter key for this call's endpoint."""
    path: str
    """A raw path for faults that must hit only this call."""
    stream: bool = False
    public: bool = False


CALLS: dict[str, Call] = {
    "status": Call(
        lambda h: h.get_integration_status(DEMO_SALESFORCE_CONNECTION),
        f"GET {STATUS_ROUTE}",
        f"/api/integrations/{DEMO_SALESFORCE_CONNECTION}/status",
    ),
    "analyze": Call(
        lambda h: h.analyze_partner("partner-1"),
        "POST /api/partners/{id}/analyze",
        "/api/partners/partner-1/analyze",
    ),
    "icp": Call(lambda h: h.generate_icp("acme.example"), "POST /api/ai/icp", "/api/ai/icp", stream=True),
    "submit": Call(
        lambda h: h.submit_partner_application(
            DEMO_APPLICATION_SLUG,
            {"company": "Acme", "email": "a@acme.example"},
            agreements={"terms": True},
        ),
        "POST /api/partners/applications/submit",
        "/api/partners/applications/submit",
        public=True,
    ),
}

SIGN_IN = "/api/auth/sign-in/email"


def _status(status: int, body: Any, headers: dict[str, str] | None = None, times: int | None = 1) -> Fault:
    return Fault(kind="status", status=status, body=body, headers=headers, times=times)


def _rate_limited(header: str | None, seconds: str = "1", times: int | None = 1) -> Fault:
    return _status(
        429,
        '{"message": "Too many requests. Please try again later."}',
        {header: seconds} if header else None,
        times,
    )


def _html(status: int, times: int | None = 1) -> Fault:
    return Fault.html_error(status, times=times)


def _json(status: int, times: int | None = 1) -> Fault:
    return Fault.json_error(status, "Internal error while handling the request.", None, times=times)


@dataclass(frozen=True)
class Case:
    id: str
    fault: Fault | None
    call: str = "status"
    outcome: Outcome = "ok"
    error: type[PartnerOSError] | None = None
    says: tuple[str, ...] = ()
    requests: int | None = None
    """How many requests the call's endpoint received (resends included)."""
    server_wait: float = 0.0
    on_sign_in: bool = False
    """Apply the fault to the sign-in request instead of the call's endpoint."""
    check: Callable[[PartnerOSError], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def timeout(self) -> float:
        """The connection timeout the case runs with (see ``_timeout_for``)."""
        return float(self.extra.get("timeout", _timeout_for(self.fault)))

    @property
    def connection_extra(self) -> dict[str, Any]:
        """The case's connection extras, its timeout included."""
        return {**self.extra, "timeout": self.timeout}


def _retry_after(expected: float) -> Callable[[PartnerOSError], None]:
    def check(err: PartnerOSError) -> None:
        assert isinstance(err, PartnerOSRateLimitedError)
        assert err.retry_after == expected

    return check


_STATUS_PATH = CALLS["status"].path
_ENDPOINT_SAYS = ("GET /api/integrations/conn_salesforce_demo/status",)

CASES: list[Case] = [
    # --- 5xx, JSON and HTML bodies ---
    Case("http-500-json", _json(500), outcome="retryable", error=PartnerOSUnavailableError,
         says=(*_ENDPOINT_SAYS, "500", "Internal error while handling", "will retry"), requests=1),
    Case("http-500-html", _html(500), outcome="retryable", error=PartnerOSUnavailableError,
         says=("500", "HTML page (500 Internal Server Error)", "proxy"), requests=1),
    *[
        Case(f"http-{code}-{kind}-once", (_json if kind == "json" else _html)(code), requests=2)
        for code in (502, 503, 504)
        for kind in ("json", "html")
    ],
    *[
        Case(f"http-{code}-{kind}-persistent", (_json if kind == "json" else _html)(code, times=None),
             outcome="retryable", error=PartnerOSUnavailableError,
             says=(*_ENDPOINT_SAYS, str(code), "will retry"), requests=RETRIES + 1)
        for code in (502, 503, 504)
        for kind in ("json", "html")
    ],
    Case("http-503-retry-after-too-long", Fault.html_service_unavailable(retry_after=3600),
         outcome="retryable", error=PartnerOSUnavailableError, says=("503",), requests=1),
    Case("http-502-on-icp-not-resent", _html(502), call="icp", outcome="retryable",
         error=PartnerOSUnavailableError, says=("POST /api/ai/icp", "502"), requests=1),
    Case("http-503-on-icp-resent", _html(503), call="icp", requests=2),
    Case("http-502-on-analyze-resent", _html(502), call="analyze", requests=2),
    # --- 429 ---
    Case("http-429-x-retry-after", _rate_limited("X-Retry-After"), requests=2, server_wait=1.25),
    Case("http-429-retry-after", _rate_limited("Retry-After"), requests=2, server_wait=1.25),
    Case("http-429-no-header", _rate_limited(None), requests=2),
    Case("http-429-on-sign-in", _rate_limited("X-Retry-After"), on_sign_in=True, requests=1,
         server_wait=1.25),
    Case("http-429-persistent", _rate_limited("X-Retry-After", "1", times=None), outcome="retryable",
         error=PartnerOSRateLimitedError, says=(*_ENDPOINT_SAYS, "429", "will retry", "Retry after 1 s"),
         requests=RETRIES + 1, server_wait=3 * 1.25, check=_retry_after(1.0)),
    Case("http-429-retry-after-too-long", _rate_limited("X-Retry-After", "120"), outcome="retryable",
         error=PartnerOSRateLimitedError, says=("429", "Retry after 120 s"), requests=1,
         check=_retry_after(120.0)),
    # --- the connection misbehaves ---
    Case("reset-mid-response-once", Fault.reset_connection(), requests=2),
    Case("reset-mid-response-persistent", Fault.reset_connection(times=None), outcome="retryable",
         error=PartnerOSUnexpectedResponseError, says=(*_ENDPOINT_SAYS, "cut off", "will retry"),
         requests=RETRIES + 1),
    Case("reset-on-icp-not-resent", Fault.reset_connection(), call="icp", outcome="retryable",
         error=PartnerOSUnexpectedResponseError, says=("POST /api/ai/icp", "cut off"), requests=1),
    Case("drop-connection-once", Fault.drop_connection(), requests=2),
    Case("read-timeout-once", Fault.slow(TIMEOUT * 3), requests=2),
    Case("read-timeout-persistent", Fault.slow(TIMEOUT * 3, times=None), outcome="retryable",
         error=PartnerOSUnavailableError, says=(*_ENDPOINT_SAYS, "timeout", "'timeout'"),
         requests=RETRIES + 1),
    Case("read-timeout-on-icp-not-resent", Fault.slow(TIMEOUT * 3), call="icp", outcome="retryable",
         error=PartnerOSUnavailableError, says=("POST /api/ai/icp", "timeout"), requests=1),
    Case("read-timeout-on-analyze-resent", Fault.slow(TIMEOUT * 3), call="analyze", requests=2),
    Case("read-timeout-on-submit-not-resent", Fault.slow(TIMEOUT * 3), call="submit", outcome="retryable",
         error=PartnerOSUnavailableError, says=("POST /api/partners/applications/submit", "timeout"),
         requests=1),
    Case("drop-on-sign-in", Fault.drop_connection(), on_sign_in=True, requests=1),
    Case("drip-never-finishes", Fault.drip_feed(TIMEOUT / 20, times=None), outcome="retryable",
         error=PartnerOSUnavailableError, says=(*_ENDPOINT_SAYS, "did not finish in time"),
         requests=RETRIES + 1),
    Case("drip-on-icp-stream", Fault.drip_feed(TIMEOUT / 20), call="icp", outcome="retryable",
         error=PartnerOSUnavailableError, says=("POST /api/ai/icp", "did not finish in time"), requests=1),
    Case("short-body-once", Fault.truncated_body(), requests=2),
    Case("short-body-persistent", Fault.truncated_body(times=None), outcome="retryable",
         error=PartnerOSUnexpectedResponseError, says=(*_ENDPOINT_SAYS, "cut off"), requests=RETRIES + 1),
    Case("short-body-on-icp-not-resent", Fault.truncated_body(), call="icp", outcome="retryable",
         error=PartnerOSUnexpectedResponseError, says=("POST /api/ai/icp", "cut off"), requests=1),
    Case("malformed-json-on-200", Fault.invalid_json(), outcome="retryable",
         error=PartnerOSUnexpectedResponseError, says=(*_ENDPOINT_SAYS, "JSON"), requests=1),
    # --- empty bodies on errors ---
    Case("empty-body-500", Fault.empty(500), outcome="retryable", error=PartnerOSUnavailableError,
         says=(*_ENDPOINT_SAYS, "answered 500"), requests=1),
    Case("empty-body-502-persistent", Fault.empty(502, times=None), outcome="retryable",
         error=PartnerOSUnavailableError, says=("answered 502",), requests=RETRIES + 1),
    Case("empty-body-400", Fault.empty(400), outcome="fatal", error=PartnerOSBadRequestError,
         says=(*_ENDPOINT_SAYS, "answered 400", "Check the request"), requests=1),
    Case("empty-body-403", Fault.empty(403), outcome="fatal", error=PartnerOSForbiddenError,
         says=(*_ENDPOINT_SAYS, "answered 403", "role"), requests=1),
    Case("empty-body-404", Fault.empty(404), outcome="fatal", error=PartnerOSNotFoundError,
         says=(*_ENDPOINT_SAYS, "answered 404", "does not exist"), requests=1),
    Case("empty-body-401-on-sign-in", Fault.empty(401), on_sign_in=True, outcome="fatal",
         error=PartnerOSInvalidCredentialsError, says=("Sign-in refused", "password"), requests=0),
    Case("sign-in-error-echoes-password",
         Fault.auth_error(400, f"Invalid body: password {DEMO_PASSWORD!r} is bad", "VALIDATION_ERROR"),
         on_sign_in=True, outcome="fatal", error=PartnerOSInvalidCredentialsError,
         says=("Sign-in refused", "VALIDATION_ERROR", "***"), requests=0),
    Case("error-echoes-password", Fault.json_error(500, f"upstream said {DEMO_PASSWORD}"),
         outcome="retryable", error=PartnerOSUnavailableError, says=("***",), requests=1),
    # --- 403 from the Origin check ---
    Case("http-403-invalid-origin", Fault.auth_error(403, "Invalid origin", "INVALID_ORIGIN"), call="analyze",
         outcome="fatal", error=PartnerOSForbiddenError,
         says=("POST /api/partners/partner-1/analyze", "INVALID_ORIGIN", "Origin check", "base URL"),
         requests=1),
    Case("http-403-missing-origin",
         Fault.auth_error(403, "Missing or null Origin", "MISSING_OR_NULL_ORIGIN"), call="icp",
         outcome="fatal", error=PartnerOSForbiddenError, says=("Origin check", "base URL"), requests=1),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, standin, **case.connection_extra)
    call = CALLS[case.call]
    if case.fault is not None:
        target = SIGN_IN if case.on_sign_in else call.path
        standin.inject(Fault(**{**case.fault.__dict__, "route": target}))

    err: PartnerOSError | None = None
    started = time.monotonic()
    with PartnerOSHook(CONN_ID) as hook:
        try:
            call.run(hook)
        except PartnerOSError as exc:
            err = exc
    elapsed = time.monotonic() - started

    assert_outcome(err, case.outcome, case.error)
    if err is not None:
        for fragment in case.says:
            assert fragment in err.message, f"{fragment!r} missing from: {err.message}"
        assert_no_secret(err.message, standin)
        if case.check is not None:
            case.check(err)
    if case.requests is not None:
        assert standin.requests[call.key] == case.requests
    assert elapsed < hang_bound(server_wait=case.server_wait, stream=call.stream, timeout=case.timeout)
    # Invariants: one sign-in (none for the public endpoint), and it was signed out.
    sign_ins_expected = 0 if call.public or (case.on_sign_in and case.outcome == "fatal") else 1
    assert standin.sign_ins == sign_ins_expected
    assert standin.sign_outs == standin.sign_ins
    assert_sessions_closed(standin)


def test_connection_refused_is_retryable_and_quick(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = PartnerOSStandIn().start()
    base_url = closed.base_url
    closed.stop()  # nothing listens on that port any more
    monkeypatch.setenv(
        CONN_ENV,
        standin.connection_json(extra={"timeout": TIMEOUT, "retry_backoff": BACKOFF}).replace(
            standin.base_url, base_url
        ),
    )
    started = time.monotonic()
    with PartnerOSHook(CONN_ID) as hook, pytest.raises(PartnerOSUnavailableError) as info:
        hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
    assert_outcome(info.value, "retryable", PartnerOSUnavailableError)
    assert "POST /api/auth/sign-in/email" in info.value.message
    assert "could not connect" in info.value.message
    assert DEMO_PASSWORD not in str(info.value)
    assert time.monotonic() - started < hang_bound()


# --- sessions: 401, cookie refresh ------------------------------------------------------------------


def test_401_mid_task_signs_in_once_more_and_repeats_the_call(conn: str, standin: PartnerOSStandIn) -> None:
    with PartnerOSHook(conn) as hook:
        assert hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)["status"] == "active"
        standin.expire_sessions()  # the session expires between two calls of the task
        assert hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)["status"] == "active"
        assert hook.sign_in_count == 2
    assert standin.sign_ins == 2
    assert standin.requests[f"GET {STATUS_ROUTE}"] == 3  # the refused call was repeated exactly once
    assert standin.sign_outs == 1  # the expired session needs none
    assert_sessions_closed(standin)


def test_401_right_after_a_fresh_sign_in_is_retryable_not_a_loop(
    conn: str, standin: PartnerOSStandIn
) -> None:
    standin.inject(Fault.unauthorized(_STATUS_PATH, times=None))
    with PartnerOSHook(conn) as hook, pytest.raises(PartnerOSSessionExpiredError) as info:
        hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
    assert_outcome(info.value, "retryable", PartnerOSSessionExpiredError)
    assert "401" in info.value.message
    assert _STATUS_PATH in info.value.message
    assert standin.sign_ins == 2  # one re-sign-in, never more
    assert standin.requests[f"GET {STATUS_ROUTE}"] == 2


def test_set_cookie_on_ordinary_responses_refreshes_the_session(conn: str, standin: PartnerOSStandIn) -> None:
    standin.refresh_cookie_on_responses = True
    with PartnerOSHook(conn) as hook:
        for _ in range(3):
            hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
        hook.analyze_partner("partner-1")
    calls = [r for r in standin.request_log if r.route != SIGN_IN and r.path != "/api/auth/sign-out"]
    assert calls
    assert all(r.authenticated for r in calls)
    assert standin.sign_ins == 1 == standin.sign_outs
    assert len(set(standin.issued_session_cookies)) == 1
    assert_sessions_closed(standin)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.drip_feed(TIMEOUT / 20), id="sign-out-drips"),
        pytest.param(Fault.html_bad_gateway(), id="sign-out-502"),
        pytest.param(Fault.drop_connection(), id="sign-out-dropped"),
    ],
)
def test_failed_sign_out_never_fails_the_task_nor_hangs(
    conn: str, standin: PartnerOSStandIn, fault: Fault
) -> None:
    standin.inject(Fault(**{**fault.__dict__, "route": "/api/auth/sign-out"}))
    hook = PartnerOSHook(conn)
    hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
    started = time.monotonic()
    hook.close()  # best effort: never raises
    assert time.monotonic() - started < 2 * TIMEOUT + 1.0  # one attempt, no retries
    assert standin.requests["POST /api/auth/sign-out"] == 1
    assert not hook.signed_in


# --- redirects ------------------------------------------------------------------------------------


@pytest.fixture
def other_host() -> Iterator[PartnerOSStandIn]:
    """A second stand-in on another loopback address: "another host" for the cookie."""
    other = PartnerOSStandIn(host="127.0.0.2")
    other.seed_demo()
    try:
        other.start()
    except OSError as err:  # pragma: no cover - loopback aliases exist on Linux
        pytest.skip(f"cannot bind 127.0.0.2: {err}")
    yield other
    other.stop()


@pytest.mark.parametrize(
    ("location", "status"),
    [
        pytest.param("absolute", 302, id="redirect-same-host-absolute"),
        pytest.param("relative", 301, id="redirect-same-host-relative"),
        pytest.param("absolute", 308, id="redirect-same-host-308"),
    ],
)
def test_redirect_to_the_same_host_is_followed(
    conn: str, standin: PartnerOSStandIn, location: str, status: int
) -> None:
    target = _STATUS_PATH if location == "relative" else standin.base_url + _STATUS_PATH
    standin.inject(Fault.redirect_to(target, status, "/api/old/status"))
    with PartnerOSHook(conn) as hook:
        doc = hook.request("GET", "/api/old/status")
    assert doc["status"] == "active"
    followed = [r for r in standin.request_log if r.path == _STATUS_PATH]
    assert len(followed) == 1
    assert followed[0].had_cookie
    assert standin.sign_ins == 1 == standin.sign_outs


def test_post_redirect_307_keeps_method_origin_and_body(conn: str, standin: PartnerOSStandIn) -> None:
    standin.inject(Fault.redirect_to("/api/partners/partner-1/analyze", 307, "/api/partners/moved/analyze"))
    with PartnerOSHook(conn) as hook:
        doc = hook.request("POST", "/api/partners/moved/analyze", idempotent=True)
    assert "partner" in doc
    moved = [r for r in standin.request_log if r.path == "/api/partners/partner-1/analyze"]
    assert [(r.method, r.origin) for r in moved] == [("POST", standin.origin)]


@pytest.mark.parametrize(
    "on_sign_in", [False, True], ids=["redirect-other-host", "redirect-other-host-sign-in"]
)
def test_redirect_to_another_host_is_not_followed_and_never_gets_the_cookie(
    conn: str, standin: PartnerOSStandIn, other_host: PartnerOSStandIn, on_sign_in: bool
) -> None:
    route = SIGN_IN if on_sign_in else _STATUS_PATH
    path = SIGN_IN if on_sign_in else _STATUS_PATH
    standin.inject(Fault.redirect_to(other_host.base_url + path, 307, route))
    started = time.monotonic()
    with PartnerOSHook(conn) as hook, pytest.raises(PartnerOSRedirectError) as info:
        hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
    assert_outcome(info.value, "fatal", PartnerOSRedirectError)
    assert other_host.base_url in info.value.message
    assert "not followed" in info.value.message
    assert "base URL" in info.value.message
    # The other host saw nothing at all: no cookie, no password, not even a request.
    assert other_host.request_log == []
    assert not any(r.had_cookie for r in other_host.request_log)
    assert standin.sign_outs == standin.sign_ins
    assert time.monotonic() - started < hang_bound()


def test_redirect_to_https_on_the_same_host_is_another_origin(conn: str, standin: PartnerOSStandIn) -> None:
    https_url = standin.base_url.replace("http://", "https://") + _STATUS_PATH
    standin.inject(Fault.redirect_to(https_url, 301, _STATUS_PATH))
    with PartnerOSHook(conn) as hook, pytest.raises(PartnerOSRedirectError) as info:
        hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
    assert "http vs https" in info.value.message


def test_redirect_loop_stops(conn: str, standin: PartnerOSStandIn) -> None:
    standin.inject(Fault.redirect_to(_STATUS_PATH, 302, _STATUS_PATH, times=None))
    with PartnerOSHook(conn) as hook, pytest.raises(PartnerOSUnexpectedResponseError) as info:
        hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
    assert f"more than {MAX_REDIRECTS} times" in info.value.message
    assert standin.requests[f"GET {STATUS_ROUTE}"] == MAX_REDIRECTS + 1


# --- TLS ---------------------------------------------------------------------------------------------


@pytest.fixture
def tls_standin(tmp_path: Path) -> Iterator[tuple[PartnerOSStandIn, str]]:
    files = make_self_signed(tmp_path / "tls")
    server = PartnerOSStandIn(tls=files.server_context())
    server.seed_demo()
    server.start()
    yield server, files.ca_path
    server.stop()


@pytest.mark.parametrize(
    "verify",
    [
        pytest.param("ca", id="tls-custom-ca-bundle"),
        pytest.param(None, id="tls-self-signed-default-verify"),
        pytest.param(True, id="tls-self-signed-verify-true"),
        pytest.param("true", id="tls-self-signed-verify-string-true"),
        pytest.param("env", id="tls-self-signed-env-bundle-ignored"),
    ],
)
def test_tls(tls_standin: tuple[PartnerOSStandIn, str], monkeypatch: pytest.MonkeyPatch, verify: Any) -> None:
    server, ca_path = tls_standin
    extra: dict[str, Any] = {"timeout": TIMEOUT, "retry_backoff": BACKOFF}
    if verify == "ca":
        extra["verify"] = ca_path
    elif verify == "env":
        # REQUESTS_CA_BUNDLE must not silently widen what verify=True trusts.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_path)
        monkeypatch.setenv("CURL_CA_BUNDLE", ca_path)
    elif verify is not None:
        extra["verify"] = verify
    monkeypatch.setenv(CONN_ENV, server.connection_json(extra=extra))
    started = time.monotonic()
    with PartnerOSHook(CONN_ID) as hook:
        if verify == "ca":
            assert hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)["status"] == "active"
        else:
            with pytest.raises(PartnerOSTLSError) as info:
                hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
    if verify == "ca":
        assert server.sign_ins == 1 == server.sign_outs
        return
    assert_outcome(info.value, "fatal", PartnerOSTLSError)
    assert "TLS verification failed" in info.value.message
    assert "'verify'" in info.value.message
    assert server.sign_ins == 0
    assert time.monotonic() - started < hang_bound()


# --- bad input ----------------------------------------------------------------------------------------


BAD_CONNECTIONS: list[Any] = [
    pytest.param({"password": None}, "no password", id="missing-password"),
    pytest.param({"login": None}, "no login", id="missing-login"),
    pytest.param({"host": "ftp://partneros.example"}, "not a valid base URL", id="base-url-bad-scheme"),
    pytest.param({"host": "https://[::1"}, "not a valid base URL", id="base-url-malformed"),
    pytest.param({"host": "https://host:99999"}, "not a valid base URL", id="base-url-bad-port"),
    pytest.param(
        {"host": "https://user:pw@app.partneros.com"}, "must not carry credentials", id="base-url-credentials"
    ),
    pytest.param({"extra": {"timeout": "soon"}}, "'timeout' must be a number", id="extra-timeout-not-number"),
    pytest.param({"extra": {"timeout": 0}}, "'timeout' must be at least", id="extra-timeout-zero"),
    pytest.param(
        {"extra": {"max_retries": 1.5}}, "'max_retries' must be a whole", id="extra-max-retries-float"
    ),
    pytest.param(
        {"extra": {"max_retries": True}}, "'max_retries' must be a whole", id="extra-max-retries-bool"
    ),
    pytest.param({"extra": {"verify": 5}}, "'verify' must be true, false", id="extra-verify-number"),
    pytest.param({"extra": {"verify": "/no/such/ca.pem"}}, "does not exist", id="extra-verify-missing-file"),
    pytest.param(
        {"extra": {"organization_id": 7}}, "'organization_id' must be a string", id="extra-org-id-not-string"
    ),
    pytest.param(
        {"extra": {"retry_backoff": -1}}, "'retry_backoff' must be at least", id="extra-backoff-neg"
    ),
]


@pytest.mark.parametrize(("change", "says"), BAD_CONNECTIONS)
def test_bad_connection_fails_fatally_before_any_request(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], says: str
) -> None:
    import json

    conn = standin.connection_dict(extra={"timeout": TIMEOUT})
    for key, value in change.items():
        if key == "extra":
            conn["extra"] = {**conn["extra"], **value}
        elif value is None:
            conn.pop(key)
        else:
            conn[key] = value
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    with PartnerOSHook(CONN_ID) as hook, pytest.raises(PartnerOSConfigError) as info:
        hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
    assert_outcome(info.value, "fatal", PartnerOSConfigError)
    assert says in info.value.message
    assert repr(CONN_ID) in info.value.message  # names the Airflow connection to fix
    assert DEMO_PASSWORD not in str(info.value)
    assert standin.request_log == []


def test_http_base_url_for_a_non_local_host_is_warned(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        CONN_ENV,
        '{"conn_type": "partneros", "host": "http://partneros.example.com", "login": "a@b.example", '
        f'"password": "{DEMO_PASSWORD}"}}',
    )
    hook = PartnerOSHook(CONN_ID)
    assert hook.settings.base_url == "http://partneros.example.com"
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "plain http:// for a non-local host" in logged
    assert "Use https://" in logged
    assert DEMO_PASSWORD not in logged


def test_http_base_url_for_loopback_is_not_warned(conn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert PartnerOSHook(conn).settings.warnings == ()
    out = capsys.readouterr()
    assert "plain http://" not in out.out + out.err


def test_unknown_airflow_connection_id_names_it(standin: PartnerOSStandIn) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    with PartnerOSHook("partneros_no_such_conn") as hook, pytest.raises(AirflowNotFoundException) as info:
        hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)
    assert "partneros_no_such_conn" in str(info.value)
    assert standin.request_log == []


@pytest.mark.parametrize(
    "company", [pytest.param("", id="empty-company"), pytest.param("   ", id="blank-company")]
)
def test_empty_company_is_refused_before_any_request(
    conn: str, standin: PartnerOSStandIn, company: str
) -> None:
    with PartnerOSHook(conn) as hook, pytest.raises(PartnerOSConfigError) as info:
        hook.generate_icp(company)
    assert_outcome(info.value, "fatal", PartnerOSConfigError)
    assert "company must be a non-empty string" in info.value.message
    assert standin.request_log == []


@pytest.mark.parametrize(
    "bad_id",
    [pytest.param("", id="empty-id"), pytest.param(None, id="none-id"), pytest.param(7, id="int-id")],
)
def test_empty_or_non_string_id_is_refused(conn: str, standin: PartnerOSStandIn, bad_id: Any) -> None:
    with PartnerOSHook(conn) as hook, pytest.raises(PartnerOSConfigError) as info:
        hook.get_integration_status(bad_id)
    assert "connection_id must be a non-empty string" in info.value.message
    assert standin.request_log == []


ODD_IDS = [
    pytest.param("conn with spaces", id="id-spaces"),
    pytest.param("a/b", id="id-slash"),
    pytest.param("../../auth/sign-out", id="id-dot-dot-slash"),
    pytest.param("x?objectType=Account#frag", id="id-query-fragment"),
    pytest.param("%2F..%2F", id="id-pre-encoded"),
    pytest.param("naïve\u00a0ünïcode", id="id-unicode"),
]


@pytest.mark.parametrize("odd_id", ODD_IDS)
def test_ids_are_url_encoded_and_never_change_the_path(
    conn: str, standin: PartnerOSStandIn, odd_id: str
) -> None:
    with PartnerOSHook(conn) as hook, pytest.raises(PartnerOSNotFoundError) as info:
        hook.get_integration_status(odd_id)
    assert_outcome(info.value, "fatal", PartnerOSNotFoundError)
    (record,) = [r for r in standin.request_log if r.route == STATUS_ROUTE]
    encoded = quote(odd_id, safe="")
    assert record.path == f"/api/integrations/{encoded}/status"
    assert record.query_string == ""
    assert standin.requests["POST /api/auth/sign-out"] == 1  # only the hook's own sign-out at close
    assert standin.sign_outs == 1


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        pytest.param("status", "..", id="id-dot-dot"),
        pytest.param("status", ".", id="id-dot"),
        pytest.param("analyze", "..", id="id-dot-dot-analyze"),
        pytest.param(
            "endpoint", "/api/integrations/%2E%2E/%2E%2E/auth/get-session", id="endpoint-encoded-dots"
        ),
        pytest.param("endpoint", "/api/./integrations", id="endpoint-dot"),
    ],
)
def test_dot_segments_are_refused_before_any_request(
    conn: str, standin: PartnerOSStandIn, call: str, arg: str
) -> None:
    """``requests`` decodes ``%2E`` back to ``.``, so a dot segment cannot be sent safely at all."""
    run: Callable[[PartnerOSHook], Any] = {
        "status": lambda h: h.get_integration_status(arg),
        "analyze": lambda h: h.analyze_partner(arg),
        "endpoint": lambda h: h.request("GET", arg),
    }[call]
    with PartnerOSHook(conn) as hook, pytest.raises(PartnerOSConfigError) as info:
        run(hook)
    assert_outcome(info.value, "fatal", PartnerOSConfigError)
    assert "'.'" in info.value.message or "'..'" in info.value.message
    assert standin.request_log == []


# --- real Airflow: the outcome a user sees in the UI --------------------------------------------------------


def _dag(dag_id: str, fn: Callable[[], Any], **task_kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        task(task_id="work", **task_kwargs)(fn)()
    return dag


def _status_task() -> str:
    with PartnerOSHook(CONN_ID) as hook:
        return str(hook.get_integration_status(DEMO_SALESFORCE_CONNECTION)["status"])


DAG_CASES = [
    # (id, fault, task state, try number): retries=2 on every task
    pytest.param(_html(502), "success", 1, id="dag-502-once-retried-in-call"),
    pytest.param(_json(500), "success", 2, id="dag-500-once-task-retry"),
    pytest.param(Fault.empty(404, times=None), "failed", 1, id="dag-404-fails-at-once"),
    pytest.param(_rate_limited("X-Retry-After", "120", times=None), "failed", 3, id="dag-429-long-retried"),
]


@pytest.mark.parametrize(("fault", "state", "tries"), DAG_CASES)
def test_task_outcome_in_airflow(
    run_dag: Any,
    standin: PartnerOSStandIn,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    fault: Fault,
    state: str,
    tries: int,
) -> None:
    use_connection(monkeypatch, standin, timeout=_timeout_for(fault))
    standin.inject(Fault(**{**fault.__dict__, "route": _STATUS_PATH}))
    dag_id = "faults_" + re.sub(r"\W", "_", request.node.callspec.id)
    started = time.monotonic()
    result = run_dag(_dag(dag_id, _status_task, retries=2, retry_delay=timedelta(0)))
    assert result["work"].state == state
    assert result["work"].try_number == tries
    assert standin.sign_ins == standin.sign_outs == tries
    assert_sessions_closed(standin)
    # Generous: dag.test() itself takes seconds (tens on a loaded machine); this only catches a hang.
    assert time.monotonic() - started < 240 + tries * hang_bound()


# --- the same faults through the async transport (the trigger's session) ----------------------------------

ASYNC_CASES = [c for c in CASES if c.call == "status"]


def _async_settings(standin: PartnerOSStandIn, **extra: Any) -> Any:
    from airflow_provider_partneros._connection.settings import settings_from_connection

    return settings_from_connection(
        conn_id=CONN_ID,
        host=standin.base_url,
        login="demo@partneros.test",
        password=DEMO_PASSWORD,
        extra={"timeout": TIMEOUT, "retry_backoff": BACKOFF, "max_retries": RETRIES, **extra},
    )


def _run_async_status(
    settings: Any, connection_id: str = DEMO_SALESFORCE_CONNECTION
) -> PartnerOSError | None:
    import asyncio

    from airflow_provider_partneros._sessions.async_transport import shared_session

    async def go() -> PartnerOSError | None:
        async with shared_session(settings) as session:
            try:
                await session.get_integration_status(connection_id)
            except PartnerOSError as exc:
                return exc
        return None

    return asyncio.run(go())


@pytest.mark.parametrize("case", ASYNC_CASES, ids=[f"async-{c.id}" for c in ASYNC_CASES])
def test_fault_async_transport(case: Case, standin: PartnerOSStandIn) -> None:
    """The trigger's httpx transport drives the same protocol: same outcomes, same invariants."""
    if case.fault is not None:
        standin.inject(
            Fault(**{**case.fault.__dict__, "route": SIGN_IN if case.on_sign_in else _STATUS_PATH})
        )
    started = time.monotonic()
    err = _run_async_status(_async_settings(standin, **case.connection_extra))
    elapsed = time.monotonic() - started
    assert_outcome(err, case.outcome, case.error)
    if err is not None:
        assert err.endpoint is not None
        named = "Sign-in" if err.endpoint == SIGN_IN else err.endpoint
        assert named in err.message
        assert_no_secret(err.message, standin)
        if case.check is not None:
            case.check(err)
    if case.requests is not None:
        assert standin.requests[f"GET {STATUS_ROUTE}"] == case.requests
    assert elapsed < hang_bound(server_wait=case.server_wait, timeout=case.timeout)
    assert standin.sign_ins == (0 if case.on_sign_in and case.outcome == "fatal" else 1)
    assert standin.sign_outs == standin.sign_ins
    assert_sessions_closed(standin)


def test_async_redirect_to_another_host_is_not_followed(
    standin: PartnerOSStandIn, other_host: PartnerOSStandIn
) -> None:
    standin.inject(Fault.redirect_to(other_host.base_url + _STATUS_PATH, 302, _STATUS_PATH))
    err = _run_async_status(_async_settings(standin))
    assert_outcome(err, "fatal", PartnerOSRedirectError)
    assert other_host.request_log == []


def test_async_redirect_to_the_same_host_is_followed(standin: PartnerOSStandIn) -> None:
    standin.inject(Fault.redirect_to(_STATUS_PATH, 302, "/api/integrations/old-name/status"))
    assert _run_async_status(_async_settings(standin), "old-name") is None


@pytest.mark.parametrize(
    "verify", [pytest.param("ca", id="async-tls-ca"), pytest.param(True, id="async-tls-default")]
)
def test_async_tls(tls_standin: tuple[PartnerOSStandIn, str], verify: Any) -> None:
    server, ca_path = tls_standin
    err = _run_async_status(_async_settings(server, verify=ca_path if verify == "ca" else True))
    if verify == "ca":
        assert err is None
    else:
        assert_outcome(err, "fatal", PartnerOSTLSError)
        assert server.sign_ins == 0


# --- the sensor in all three modes, the trigger, the operators -------------------------------------------

SENSOR_CID = "conn_faults_sensor"
SENSOR_PATH = f"/api/integrations/{SENSOR_CID}/status"


def _sensor_dag(dag_id: str, mode: str, **kwargs: Any) -> DAG:
    from airflow_provider_partneros.sensors.integration import IntegrationStatusSensor

    args: dict[str, Any] = {
        "task_id": "gate",
        "connection_id": SENSOR_CID,
        "poke_interval": 0.1,
        "timeout": 30,
        "retries": 0,
        "failure_statuses": ["reauth_required"],
        **kwargs,
    }
    args.update({"deferrable": True} if mode == "deferrable" else {"mode": mode, "deferrable": False})
    with DAG(f"{dag_id}_{mode}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        IntegrationStatusSensor(**args)
    return dag


MODES = ("poke", "reschedule", "deferrable")


SENSOR_SCENARIOS = [
    pytest.param("502-once", "success", id="sensor-502-once"),
    pytest.param("401-during-wait", "success", id="sensor-401-during-wait"),
    pytest.param("drip-persistent", "failed", id="sensor-drip-persistent"),
    pytest.param("malformed-json-once", "success", id="sensor-malformed-json-once"),
    pytest.param("404", "failed", id="sensor-404"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("scenario", "state"), SENSOR_SCENARIOS)
def test_sensor_faults(
    run_dag: Any,
    standin: PartnerOSStandIn,
    monkeypatch: pytest.MonkeyPatch,
    scenario: str,
    state: str,
    mode: str,
) -> None:
    """The sensor (poke, reschedule, deferrable) through faults: transient trouble is waited out, a 401
    during the (deferred) wait signs in again, a fault that never ends fails within bounded time."""
    # A drip never ends, so the timeout only sets how long the case takes; 1 s (TIMEOUT) once let a
    # loaded CI machine time out the sign-in's own answer, leaving a session the client never learnt of.
    timeout = 3.0 if scenario == "drip-persistent" else CALM_TIMEOUT
    use_connection(monkeypatch, standin, max_retries=0, timeout=timeout)
    standin.add_integration(SENSOR_CID, organization="org-demo", status="disconnected")
    # Not ready for two polls, then ready ("disconnected" is not a failure status in these sensors).
    standin.script_integration(SENSOR_CID, [{"status": "disconnected"}] * 2 + [{"status": "active"}])
    kwargs: dict[str, Any] = {"max_transient_errors": 2}
    if mode == "reschedule":
        # Reschedule signs in on every poke (docs/sensor.md); at this test's 0.1 s poke interval that
        # trips the stand-in's real 3-per-10-s sign-in limit, which a 60 s poke interval never does.
        standin.sign_in_rate_limit = None
    if scenario == "502-once":
        standin.inject(Fault.html_bad_gateway(SENSOR_PATH))
    elif scenario == "401-during-wait":
        on_status_call(standin, 2, lambda _req: standin.expire_sessions())
    elif scenario == "drip-persistent":
        standin.inject(Fault.drip_feed(TIMEOUT / 20, SENSOR_PATH, times=None))
        kwargs["timeout"] = 8  # bounds reschedule mode, where each poke is a fresh process
    elif scenario == "malformed-json-once":
        standin.inject(Fault.invalid_json(SENSOR_PATH))
    elif scenario == "404":
        kwargs["connection_id"] = "no-such-integration"
    started = time.monotonic()
    result = run_dag(_sensor_dag(f"faults_sensor_{scenario.replace('-', '_')}", mode, **kwargs))
    elapsed = time.monotonic() - started
    assert result["gate"].state == state
    if state == "success":
        assert result["gate"].xcom["status"] == "active"
    if scenario == "404":
        assert standin.requests[f"GET {STATUS_ROUTE}"] == 1  # failed at once
    if scenario == "401-during-wait" and mode != "reschedule":
        assert standin.sign_ins == 2  # one wait, one re-sign-in after the 401
    if mode != "reschedule" and scenario != "401-during-wait":
        assert standin.sign_ins == 1  # one sign-in for the whole wait
    assert_sessions_closed(standin)
    assert elapsed < 240  # dag.test overhead dominates; this only catches a hang


OPERATOR_CASES = [
    pytest.param("icp", Fault.slow(TIMEOUT * 3), "failed", 1, id="operator-icp-read-timeout-not-resent"),
    pytest.param("icp", _html(502), "failed", 1, id="operator-icp-502-not-resent"),
    pytest.param("submit", Fault.reset_connection(), "failed", 1, id="operator-submit-reset-not-resent"),
    pytest.param("analyze", Fault.slow(TIMEOUT * 3), "success", 2, id="operator-analyze-timeout-resent"),
    pytest.param("api", _rate_limited("X-Retry-After"), "success", 2, id="operator-api-429-waited"),
    pytest.param("schema", Fault.invalid_json(times=None), "failed", 1, id="operator-schema-malformed-json"),
    pytest.param("analyze", Fault.empty(404), "failed", 1, id="operator-analyze-404-fatal"),
]


@pytest.mark.parametrize(("op", "fault", "state", "sent"), OPERATOR_CASES)
def test_operator_faults(
    run_dag: Any,
    standin: PartnerOSStandIn,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    op: str,
    fault: Fault,
    state: str,
    sent: int,
) -> None:
    """Each operator through a fault: what reaches the service (a non-idempotent POST exactly once)."""
    from airflow_provider_partneros.operators.partneros import (
        AnalyzePartnerOperator,
        GenerateIcpOperator,
        GetIntegrationSchemaOperator,
        PartnerOSApiOperator,
        SubmitPartnerApplicationOperator,
    )

    use_connection(monkeypatch, standin, timeout=_timeout_for(fault))
    path, key, make = {
        "icp": ("/api/ai/icp", "POST /api/ai/icp", lambda: GenerateIcpOperator(task_id="op", company="acme")),
        "submit": (
            CALLS["submit"].path,
            CALLS["submit"].key,
            lambda: SubmitPartnerApplicationOperator(
                task_id="op",
                slug=DEMO_APPLICATION_SLUG,
                form_data={"company": "Acme", "email": "a@acme.example"},
                agreements={"terms": True},
            ),
        ),
        "analyze": (
            CALLS["analyze"].path,
            CALLS["analyze"].key,
            lambda: AnalyzePartnerOperator(task_id="op", partner_id="partner-1"),
        ),
        "api": (
            _STATUS_PATH,
            f"GET {STATUS_ROUTE}",
            lambda: PartnerOSApiOperator(task_id="op", endpoint=_STATUS_PATH),
        ),
        "schema": (
            f"/api/integrations/{DEMO_SALESFORCE_CONNECTION}/schema",
            "GET /api/integrations/{id}/schema",
            lambda: GetIntegrationSchemaOperator(task_id="op", connection_id=DEMO_SALESFORCE_CONNECTION),
        ),
    }[op]
    standin.inject(Fault(**{**fault.__dict__, "route": path}))
    dag_id = "faults_" + re.sub(r"\W", "_", request.node.callspec.id)
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        make()
    result = run_dag(dag)
    assert result["op"].state == state
    assert result["op"].try_number == 1
    assert standin.requests[key] == sent
    assert standin.sign_ins <= 1
    assert standin.sign_ins == standin.sign_outs
    assert_sessions_closed(standin)


# --- docs/faults.md is kept in step -------------------------------------------------------------------------


def _all_case_ids() -> set[str]:
    ids = {c.id for c in CASES} | {f"async-{c.id}" for c in ASYNC_CASES}
    for params in (BAD_CONNECTIONS, ODD_IDS, DAG_CASES, OPERATOR_CASES, SENSOR_SCENARIOS):
        ids |= {p.id for p in params}
    return ids


def test_docs_fault_table_names_only_existing_test_ids() -> None:
    text = DOCS.read_text()
    documented = set(re.findall(r"`([a-z0-9][a-z0-9-]+)`", text))
    in_tests = _all_case_ids()
    listed = {i for i in documented if i in in_tests or re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", i)}
    row_ids = [c.id for c in CASES] + [
        p.id for ps in (OPERATOR_CASES, SENSOR_SCENARIOS, DAG_CASES) for p in ps if p.id is not None
    ]
    missing = sorted(i for i in row_ids if i not in documented)
    assert not missing, f"docs/faults.md has no row for: {missing}"
    source = Path(__file__).read_text()
    unknown = sorted(i for i in listed if i not in in_tests and i not in source)
    assert not unknown, f"docs/faults.md names test ids that do not exist: {unknown}"
