"""The I/O-free protocol and connection parsing: the decisions both transports rely on."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_partneros import _protocol as protocol
from airflow_provider_partneros._connection.settings import PartnerOSSettings, settings_from_connection
from airflow_provider_partneros._protocol import HttpReply, HttpRequest, Sleep, TransportFailure
from airflow_provider_partneros.exceptions import (
    PartnerOSConfigError,
    PartnerOSRedirectError,
    PartnerOSUnavailableError,
)


def settings(**extra: Any) -> PartnerOSSettings:
    return settings_from_connection(
        conn_id="c",
        host=extra.pop("host", "https://app.partneros.com"),
        login="me@example.com",
        password="Secret-Passw0rd",
        extra=extra,
    )


# --- connection parsing -------------------------------------------------------------------------


def test_host_without_scheme_means_https() -> None:
    assert settings(host="app.partneros.com").base_url == "https://app.partneros.com"


def test_schema_field_can_name_http_for_uri_form_local_testing() -> None:
    parsed = settings_from_connection(
        conn_id="c", host="127.0.0.1", login="a@b.c", password="x", schema="http", port=8765
    )

    assert parsed.base_url == "http://127.0.0.1:8765"
    assert parsed.warnings == ()


def test_empty_host_defaults_to_the_public_service() -> None:
    assert settings(host="").base_url == "https://app.partneros.com"


def test_plain_http_to_a_remote_host_is_warned_about() -> None:
    parsed = settings(host="http://partneros.example.com")

    assert any("unencrypted" in warning for warning in parsed.warnings)


def test_trailing_slash_and_api_suffix_are_tolerated() -> None:
    assert settings(host="https://app.partneros.com/api/").base_url == "https://app.partneros.com"


@pytest.mark.parametrize(
    "host", ["ftp://app.partneros.com", "https://", "https://user:pw@app.partneros.com", "http://[::1"]
)
def test_malformed_base_urls_are_configuration_errors(host: str) -> None:
    with pytest.raises(PartnerOSConfigError, match="base URL"):
        settings(host=host)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"retry_backoff": "x"}, "retry_backoff"),
        ({"verify": 3}, "verify"),
        ({"verify": "/no/such/ca.pem"}, "verify"),
        ({"organization_id": 42}, "organization_id"),
    ],
)
def test_wrong_types_in_extras_name_the_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(PartnerOSConfigError, match=field):
        settings(**extra)


def test_extras_given_as_strings_in_uri_form_are_converted() -> None:
    parsed = settings(timeout="3", max_retries="4", retry_backoff="0.5", verify="false")

    assert (parsed.timeout, parsed.max_retries, parsed.retry_backoff, parsed.verify) == (3.0, 4, 0.5, False)


def test_settings_repr_never_shows_the_password() -> None:
    assert "Secret-Passw0rd" not in repr(settings())
    assert "Secret-Passw0rd" not in settings().session_key


# --- building requests ------------------------------------------------------------------------------


def test_path_segments_are_encoded_so_ids_cannot_escape() -> None:
    assert protocol.path("api", "integrations", "a/b c", "status") == "/api/integrations/a%2Fb%20c/status"
    # "." and ".." are refused: requests would decode %2E%2E back to ".." on the wire.
    for dots in (".", ".."):
        with pytest.raises(PartnerOSConfigError):
            protocol.path("api", "partners", dots, "analyze")


def test_post_requests_carry_the_origin_and_gets_are_repeatable() -> None:
    post = protocol.api_request(settings(), "POST", "/api/x")
    get = protocol.api_request(settings(), "GET", "/api/x")

    assert post.headers["Origin"] == "https://app.partneros.com"
    assert (post.repeatable, get.repeatable) == (False, True)


def test_non_json_serializable_body_is_refused_before_sending() -> None:
    with pytest.raises(PartnerOSConfigError, match="JSON-serializable"):
        protocol.api_request(settings(), "POST", "/api/x", json_body={"when": object()})


def test_empty_company_is_refused_before_sending() -> None:
    with pytest.raises(PartnerOSConfigError, match="company"):
        protocol.icp_request(settings(), "  ")


# --- reading answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "message", "code"),
    [
        (
            b'{"error": "Partner not found.", "code": "not_found"}',
            "application/json",
            "Partner not found.",
            "not_found",
        ),
        (
            b'{"message": "Invalid email or password", "code": "INVALID_EMAIL_OR_PASSWORD"}',
            "application/json",
            "Invalid email or password",
            "INVALID_EMAIL_OR_PASSWORD",
        ),
        (b"", None, None, None),
        (b"upstream connect error", "text/plain", "upstream connect error", None),
    ],
)
def test_both_error_shapes_and_bare_bodies_are_read(
    body: bytes, content_type: str | None, message: str | None, code: str | None
) -> None:
    assert protocol.read_error_body(body, content_type) == protocol.ErrorBody(message, code)


def test_html_proxy_pages_become_a_short_readable_message() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>" + b"x" * 10_000 + b"</body></html>"

    err = protocol.read_error_body(page, "text/html")

    assert err.message is not None
    assert "502 Bad Gateway" in err.message
    assert len(err.message) < 200


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-retry-after": "4"}, 4.0),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_server_retry_after_reads_both_headers(headers: dict[str, str], expected: float | None) -> None:
    assert protocol.server_retry_after(headers) == expected


def test_retry_after_as_http_date_is_seconds_from_now() -> None:
    delay = protocol.server_retry_after(
        {"retry-after": "Sun, 29 Nov 2026 03:00:10 GMT"}, now=lambda: 1795921200.0
    )

    assert delay == pytest.approx(10.0)


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    s = settings(retry_backoff=1)

    assert protocol.backoff(s, 0, rng=lambda: 0.0) == 0.5
    assert protocol.backoff(s, 3, rng=lambda: 1.0) == 8.0
    assert protocol.backoff(s, 30, rng=lambda: 1.0) == protocol.MAX_RETRY_DELAY


def _drive(flow: Any, replies: list[Any]) -> tuple[list[Any], Any]:
    """Feed canned transport results to a flow; return the actions it took and its result."""
    actions: list[Any] = []
    result: Any = None
    try:
        while True:
            action = flow.send(result)
            actions.append(action)
            result = replies.pop(0) if isinstance(action, HttpRequest) else 1
    except StopIteration as stop:
        return actions, stop.value


def test_a_post_is_not_resent_after_a_timeout() -> None:
    request = protocol.api_request(settings(), "POST", "/api/ai/icp", json_body={"company": "a"})

    with pytest.raises(PartnerOSUnavailableError):
        _drive(protocol.call_flow(settings(), request), [TransportFailure("timeout", "read timed out")])


def test_a_get_is_resent_after_a_timeout() -> None:
    request = protocol.api_request(settings(), "GET", "/api/x")
    ok = HttpReply(200, {}, b"{}")

    actions, reply = _drive(protocol.call_flow(settings(), request), [TransportFailure("timeout", "t"), ok])

    assert reply is ok
    assert any(isinstance(a, Sleep) for a in actions)


def test_a_refused_connection_is_retried_even_for_a_post() -> None:
    request = protocol.api_request(settings(), "POST", "/api/x")
    ok = HttpReply(200, {}, b"{}")

    _, reply = _drive(protocol.call_flow(settings(), request), [TransportFailure("connect", "refused"), ok])

    assert reply is ok


def test_same_origin_redirects_are_followed_and_other_origins_refused() -> None:
    s = settings()
    request = protocol.api_request(s, "GET", "/api/a")

    moved = protocol.follow_redirect(s, request, HttpReply(302, {"location": "/api/b"}), 1)
    assert moved.url == "https://app.partneros.com/api/b"

    with pytest.raises(PartnerOSRedirectError, match="another origin"):
        protocol.follow_redirect(s, request, HttpReply(302, {"location": "https://evil.test/api/b"}), 1)


def test_a_429_names_the_sign_in_limit_only_when_the_sign_in_was_limited() -> None:
    s = settings()
    limited = HttpReply(429, {"x-retry-after": "4"}, b'{"message": "Too many requests."}')

    on_sign_in = protocol.error_for_reply(protocol.sign_in_request(s), limited)
    on_a_call = protocol.error_for_reply(protocol.integration_status_request(s, "conn_1"), limited)

    assert "sign-in allows 3 attempts per 10 s" in on_sign_in.message
    assert "sign-in" not in on_a_call.message
    assert on_sign_in.retry_after == on_a_call.retry_after == 4  # type: ignore[attr-defined]
    assert "Retry after 4 s." in on_a_call.message


# --- the patient sign-in ------------------------------------------------------------------------------


def _drive_sign_in(
    s: PartnerOSSettings, replies: list[HttpReply], clock: list[float]
) -> tuple[list[float], HttpReply | Exception]:
    """Run ``sign_in_flow`` against scripted replies; sleeps advance the fake clock."""
    flow = protocol.sign_in_flow(s, rng=lambda: 0.5, clock=lambda: clock[0])
    sleeps: list[float] = []
    answer: Any = None
    try:
        while True:
            action = flow.send(answer)
            if isinstance(action, Sleep):
                sleeps.append(action.seconds)
                clock[0] += action.seconds
                answer = None
            else:
                answer = replies.pop(0)
    except StopIteration as stop:
        return sleeps, stop.value
    except Exception as err:
        return sleeps, err


LIMITED = HttpReply(429, {"x-retry-after": "7"}, b'{"message": "Too many requests."}')
SIGNED_IN = HttpReply(200, {}, b"{}")


def test_a_rate_limited_sign_in_waits_out_the_limiter_past_max_retries() -> None:
    replies = [LIMITED] * 6 + [SIGNED_IN]
    sleeps, outcome = _drive_sign_in(settings(max_retries=1), replies, [0.0])

    assert not isinstance(outcome, Exception)
    assert replies == []  # signed in on the 7th attempt
    assert len(sleeps) == 6  # far more than max_retries=1
    assert all(7 < s <= 7 + protocol.SIGN_IN_JITTER for s in sleeps)  # the server's delay, spread


def test_a_rate_limited_sign_in_gives_up_at_its_deadline_with_a_rate_limit_error() -> None:
    s = settings(timeout=1, max_retries=0)
    sleeps, outcome = _drive_sign_in(s, [LIMITED] * 100, [0.0])

    assert type(outcome).__name__ == "PartnerOSRateLimitedError"
    assert sum(sleeps) <= protocol.sign_in_patience(s)
    assert sum(sleeps) > protocol.sign_in_patience(s) - 7 - protocol.SIGN_IN_JITTER


def test_the_sign_in_deadline_follows_the_connection_timeout() -> None:
    assert protocol.sign_in_patience(settings(timeout=60)) == 60 * protocol.SIGN_IN_PATIENCE_TIMEOUTS
    assert protocol.sign_in_patience(settings(timeout=1)) == protocol.SIGN_IN_PATIENCE_FLOOR


def test_the_connection_test_button_does_not_wait_out_the_limiter() -> None:
    s = settings(max_retries=0).with_overrides(patient_sign_in=False)
    sleeps, outcome = _drive_sign_in(s, [LIMITED], [0.0])

    assert sleeps == []
    assert type(outcome).__name__ == "PartnerOSRateLimitedError"
