"""PartnerOSHook against the stand-in over loopback HTTP: sessions, errors, endpoints.

The fault catalogue (timeouts, drips, TLS, redirects...) lives in test_faults.py; this file specifies
the session contract and what each documented answer turns into.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_partneros import _protocol as protocol
from airflow_provider_partneros import testing as demo
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
    PartnerOSSessionExpiredError,
    PartnerOSUnavailableError,
)
from airflow_provider_partneros.hooks.partneros import PartnerOSHook
from airflow_provider_partneros.testing import Fault, PartnerOSStandIn

STATUS = demo.DEMO_SALESFORCE_CONNECTION


def use_connection(
    monkeypatch: pytest.MonkeyPatch,
    standin: PartnerOSStandIn,
    *,
    login: str = demo.DEMO_EMAIL,
    password: str = demo.DEMO_PASSWORD,
    **extra: Any,
) -> None:
    extra = {"timeout": 5, "retry_backoff": 0.01, **extra}
    monkeypatch.setenv(
        "AIRFLOW_CONN_PARTNEROS_DEFAULT", standin.connection_json(login=login, password=password, extra=extra)
    )


@pytest.fixture
def hook(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> Any:
    use_connection(monkeypatch, standin)
    with PartnerOSHook() as h:
        yield h


# --- the session contract -------------------------------------------------------------------------


def test_many_calls_share_one_sign_in(hook: PartnerOSHook, standin: PartnerOSStandIn) -> None:
    for _ in range(25):
        hook.get_integration_status(STATUS)
    hook.analyze_partner("partner-1")

    assert standin.sign_ins == 1
    assert standin.requests["GET /api/integrations/{id}/status"] == 25


def test_no_sign_in_happens_before_the_first_call(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin)
    with PartnerOSHook():
        pass

    assert standin.sign_in_attempts == 0
    assert standin.sign_outs == 0


def test_close_signs_out_the_session(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, standin)
    with PartnerOSHook() as hook:
        hook.get_integration_status(STATUS)
        assert standin.active_sessions == 1

    assert standin.sign_outs == 1
    assert standin.active_sessions == 0


def test_expired_session_signs_in_again_once_and_repeats_the_call(
    hook: PartnerOSHook, standin: PartnerOSStandIn
) -> None:
    hook.get_integration_status(STATUS)
    standin.expire_sessions()

    assert hook.get_integration_status(STATUS)["status"] == "active"
    assert standin.sign_ins == 2


def test_second_401_right_after_a_fresh_sign_in_is_a_retryable_session_error(
    hook: PartnerOSHook, standin: PartnerOSStandIn
) -> None:
    standin.inject(Fault.unauthorized("/api/integrations/*/status", times=2))

    with pytest.raises(PartnerOSSessionExpiredError) as err:
        hook.get_integration_status(STATUS)

    assert not isinstance(err.value, AirflowFailException)
    assert "/api/integrations/conn_salesforce_demo/status" in str(err.value)
    assert standin.sign_ins == 2


def test_cookie_is_sent_exactly_as_the_server_set_it(hook: PartnerOSHook, standin: PartnerOSStandIn) -> None:
    hook.get_integration_status(STATUS)

    call = [r for r in standin.request_log if r.route == "/api/integrations/{id}/status"][-1]
    assert call.cookie_names == (standin.session_cookie_name,)
    assert call.authenticated


def test_state_changing_requests_carry_the_service_origin(
    hook: PartnerOSHook, standin: PartnerOSStandIn
) -> None:
    hook.analyze_partner("partner-2")

    posts = [r for r in standin.request_log if r.method == "POST"]
    assert posts, "expected at least the sign-in and the analyze POST"
    assert {r.origin for r in posts} == {standin.origin}


def test_session_cookie_is_registered_with_the_secret_masker(hook: PartnerOSHook) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    session = hook.get_conn()
    values = [cookie.value for cookie in session.cookies if cookie.value]

    assert values
    for value in values:
        assert redact(f"cookie={value}") == "cookie=***"


def test_failed_sign_out_never_fails_the_task_nor_logs_the_cookie(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_connection(monkeypatch, standin)
    hook = PartnerOSHook()
    hook.get_integration_status(STATUS)
    cookie = next(c.value for c in hook.get_conn().cookies)
    standin.inject(Fault.html_bad_gateway("/api/auth/sign-out"))

    hook.close()  # must not raise

    logged = capsys.readouterr()
    assert "sign-out did not succeed" in logged.out + logged.err
    assert cookie not in logged.out + logged.err


def test_organization_id_becomes_the_active_organization(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin, login=demo.NOORG_EMAIL, organization_id=demo.DEMO_ORG_ID)
    with PartnerOSHook() as hook:
        assert hook.get_integration_status(STATUS)["status"] == "active"
        assert hook.get_session_info()["session"]["activeOrganizationId"] == demo.DEMO_ORG_ID


def test_no_active_organization_fails_and_says_to_set_organization_id(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin, login=demo.NOORG_EMAIL)
    with PartnerOSHook() as hook, pytest.raises(PartnerOSNoActiveOrganizationError) as err:
        hook.get_integration_status(STATUS)

    assert isinstance(err.value, AirflowFailException)
    assert "organization_id" in str(err.value)


def test_organization_the_user_is_not_a_member_of_fails_at_sign_in(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin, organization_id="org-nobody-knows")
    with PartnerOSHook() as hook, pytest.raises(PartnerOSNoActiveOrganizationError) as err:
        hook.get_integration_status(STATUS)

    assert "organization_id" in str(err.value)


# --- sign-in failures ------------------------------------------------------------------------------


def test_wrong_password_fails_without_retry_and_without_the_password(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin, password="not-the-Passw0rd-123")
    with PartnerOSHook() as hook, pytest.raises(PartnerOSInvalidCredentialsError) as err:
        hook.get_integration_status(STATUS)

    assert isinstance(err.value, AirflowFailException)
    assert "email and password" in str(err.value)
    assert "not-the-Passw0rd-123" not in str(err.value)
    assert standin.sign_in_attempts == 1


def test_unverified_email_fails_and_says_to_verify_it(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin, login=demo.UNVERIFIED_EMAIL)
    with PartnerOSHook() as hook, pytest.raises(PartnerOSInvalidCredentialsError) as err:
        hook.get_integration_status(STATUS)

    assert "verify the user's email" in str(err.value).lower()


def test_missing_password_is_a_configuration_error_before_any_request(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin, password="")
    with PartnerOSHook() as hook, pytest.raises(PartnerOSConfigError, match="no password"):
        hook.get_integration_status(STATUS)

    assert standin.request_log == []


def test_sign_in_rate_limit_is_waited_out_using_x_retry_after(
    hook: PartnerOSHook, standin: PartnerOSStandIn
) -> None:
    standin.inject(Fault.rate_limited(retry_after=1, route="/api/auth/sign-in/email"))

    assert hook.get_integration_status(STATUS)["status"] == "active"
    assert standin.requests["POST /api/auth/sign-in/email"] == 2
    assert standin.sign_ins == 1


def test_a_rate_limited_sign_in_is_waited_out_beyond_max_retries_and_the_call_succeeds(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin, max_retries=0)
    standin.inject(Fault.rate_limited(retry_after=1, route="/api/auth/sign-in/email", times=3))
    with PartnerOSHook() as hook:
        assert hook.get_integration_status(STATUS)["status"] == "active"

    assert standin.requests["POST /api/auth/sign-in/email"] == 4  # three 429s waited out, then in


def test_rate_limit_that_outlasts_the_sign_in_deadline_is_retryable_with_the_server_delay(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch, mocker: Any
) -> None:
    use_connection(monkeypatch, standin, max_retries=0)
    mocker.patch.object(protocol.flows, "sign_in_patience", return_value=5.0)  # the seam: the deadline
    standin.inject(Fault.rate_limited(retry_after=7, route="/api/auth/sign-in/email", times=None))
    with PartnerOSHook() as hook, pytest.raises(PartnerOSRateLimitedError) as err:
        hook.get_integration_status(STATUS)

    assert not isinstance(err.value, AirflowFailException)
    assert err.value.retry_after == 7
    # A wait past the deadline is not begun: one sign-in attempt, not one per 7 s until the deadline.
    assert standin.requests["POST /api/auth/sign-in/email"] == 1


# --- each documented answer maps to the outcome a user handles ---------------------------------------

ERROR_CASES = [
    pytest.param(
        Fault.json_error(400, "Invalid objectType.", "bad_request"), PartnerOSBadRequestError, True, id="400"
    ),
    pytest.param(
        Fault.json_error(402, "AI quota exhausted.", "quota_exceeded"),
        PartnerOSQuotaExceededError,
        True,
        id="402",
    ),
    pytest.param(Fault.json_error(403, "Forbidden", None), PartnerOSForbiddenError, True, id="403-role"),
    pytest.param(
        Fault.auth_error(403, "Invalid origin", "INVALID_ORIGIN"),
        PartnerOSForbiddenError,
        True,
        id="403-origin",
    ),
    pytest.param(
        Fault.json_error(404, "Integration not found.", "not_found"), PartnerOSNotFoundError, True, id="404"
    ),
    pytest.param(
        Fault.json_error(409, "Already exists.", "conflict"), PartnerOSConflictError, True, id="409"
    ),
    pytest.param(Fault.json_error(500, "Internal error", None), PartnerOSUnavailableError, False, id="500"),
    pytest.param(Fault.empty(500), PartnerOSUnavailableError, False, id="500-empty-body"),
]


@pytest.mark.parametrize(("fault", "error", "fatal"), ERROR_CASES)
def test_error_answers_map_to_the_outcome_a_user_handles(
    hook: PartnerOSHook, standin: PartnerOSStandIn, fault: Fault, error: type[PartnerOSError], fatal: bool
) -> None:
    fault.route = "/api/integrations/*/status"
    standin.inject(fault)

    with pytest.raises(error) as err:
        hook.get_integration_status(STATUS)

    assert isinstance(err.value, AirflowFailException) is fatal
    assert err.value.status == fault.status
    assert "GET /api/integrations/conn_salesforce_demo/status" in str(err.value)


def test_another_organizations_integration_is_not_found(hook: PartnerOSHook) -> None:
    with pytest.raises(PartnerOSNotFoundError, match="another organization"):
        hook.get_integration_status(demo.OTHER_ORG_CONNECTION)


def test_partner_role_may_not_use_internal_endpoints(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin, login=demo.PARTNER_EMAIL)
    with PartnerOSHook() as hook, pytest.raises(PartnerOSForbiddenError, match="role"):
        hook.get_integration_status(STATUS)


def test_quota_exhausted_icp_fails_without_retry(standin: PartnerOSStandIn, hook: PartnerOSHook) -> None:
    standin.set_ai_quota(demo.DEMO_ORG_ID, 0)

    with pytest.raises(PartnerOSQuotaExceededError) as err:
        hook.generate_icp("acme.com")

    assert isinstance(err.value, AirflowFailException)
    assert standin.requests["POST /api/ai/icp"] == 1


# --- endpoints --------------------------------------------------------------------------------------


def test_integration_status_returns_the_documented_fields(hook: PartnerOSHook) -> None:
    status = hook.get_integration_status(STATUS)

    assert {"id", "platform", "status", "lastSyncAt", "lastErrorMessage"} <= set(status)
    assert status["id"] == STATUS


def test_schema_for_one_object_type_passes_object_type_as_query(
    hook: PartnerOSHook, standin: PartnerOSStandIn
) -> None:
    schema = hook.get_integration_schema(STATUS, object_type="Account")

    assert schema["objectType"] == "Account"
    assert standin.request_log[-1].query == {"objectType": ["Account"]} or "objectType=Account" in (
        standin.request_log[-1].query_string
    )


def test_analyze_partner_returns_partner_and_insights(hook: PartnerOSHook) -> None:
    result = hook.analyze_partner("partner-3")

    assert set(result) >= {"partner", "aiInsights"}


def test_generate_icp_reads_the_stream_and_returns_the_parsed_profile(hook: PartnerOSHook) -> None:
    profile = hook.generate_icp("acme.com")

    assert {"industry", "verticals", "companySize", "revenue"} <= set(profile)


def test_generate_icp_to_file_writes_the_whole_document(hook: PartnerOSHook, tmp_path: Any) -> None:
    target = tmp_path / "icp.json"

    written = hook.generate_icp_to_file("acme.com", target)

    assert written == target.stat().st_size
    assert "industry" in json.loads(target.read_text())


def test_generic_request_reaches_any_endpoint(hook: PartnerOSHook) -> None:
    session = hook.request("GET", "/api/auth/get-session")

    assert session["session"]["activeOrganizationId"] == demo.DEMO_ORG_ID


def test_generic_stream_yields_chunks_as_they_arrive(hook: PartnerOSHook) -> None:
    with hook.stream("POST", "/api/ai/icp", json={"company": "acme.com"}) as chunks:
        parts = list(chunks)

    assert len(parts) > 1
    assert "industry" in json.loads(b"".join(parts))


def test_public_application_submit_never_signs_in(standin: PartnerOSStandIn, hook: PartnerOSHook) -> None:
    answer = hook.submit_partner_application(
        demo.DEMO_APPLICATION_SLUG, {"company": "Acme", "email": "a@acme.test"}, agreements={"terms": True}
    )

    assert answer["success"] is True
    assert standin.sign_in_attempts == 0
    assert not standin.request_log[-1].had_cookie


def test_ids_are_url_encoded_and_cannot_change_the_path(
    hook: PartnerOSHook, standin: PartnerOSStandIn
) -> None:
    with pytest.raises(PartnerOSNotFoundError):
        hook.get_integration_status("../../auth/sign-out")

    assert standin.request_log[-1].route == "/api/integrations/{id}/status"
    assert standin.sign_outs == 0


@pytest.mark.parametrize("endpoint", ["https://evil.test/api/x", "//evil.test/api/x", ""])
def test_generic_request_refuses_endpoints_off_the_partneros_host(hook: PartnerOSHook, endpoint: str) -> None:
    with pytest.raises(PartnerOSConfigError):
        hook.request("GET", endpoint)


# --- test_connection ---------------------------------------------------------------------------------


def test_test_connection_signs_in_reads_and_signs_out(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin)

    ok, message = PartnerOSHook().test_connection()

    assert ok, message
    assert demo.DEMO_ORG_ID in message
    assert (standin.sign_ins, standin.sign_outs) == (1, 1)


def test_test_connection_reports_a_wrong_password_without_it(
    standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, standin, password="Wrong-Passw0rd-xyz")

    ok, message = PartnerOSHook().test_connection()

    assert not ok
    assert "Sign-in refused" in message
    assert "Wrong-Passw0rd-xyz" not in message


# --- in real Airflow -----------------------------------------------------------------------------------


def _dag(dag_id: str, fn: Any, **task_kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        task(task_id="work", **task_kwargs)(fn)()
    return dag


def test_a_task_with_many_calls_signs_in_once_and_out_at_the_end(
    run_dag: Any, partneros_connection: str, standin: PartnerOSStandIn
) -> None:
    def work() -> list[str]:
        with PartnerOSHook() as hook:
            statuses = [hook.get_integration_status(STATUS)["status"] for _ in range(10)]
            hook.analyze_partner("partner-1")
            return statuses

    result = run_dag(_dag("hook_many_calls", work))

    assert result.state == "success"
    assert result["work"].xcom == ["active"] * 10
    assert (standin.sign_ins, standin.sign_outs) == (1, 1)


def test_a_fatal_error_fails_the_task_without_using_its_retries(
    run_dag: Any, partneros_connection: str, standin: PartnerOSStandIn
) -> None:
    def work() -> None:
        with PartnerOSHook() as hook:
            hook.get_integration_status("no-such-integration")

    result = run_dag(_dag("hook_fatal", work, retries=1, retry_delay=timedelta(0)))

    assert result["work"].state == "failed"
    assert result["work"].try_number == 1
    assert (standin.sign_ins, standin.sign_outs) == (1, 1)


def test_a_transient_error_lets_airflow_retry_the_task(
    run_dag: Any, partneros_connection: str, standin: PartnerOSStandIn
) -> None:
    standin.inject(Fault.json_error(500, "boom", None, "/api/integrations/*/status", times=1))

    def work() -> str:
        with PartnerOSHook() as hook:
            return str(hook.get_integration_status(STATUS)["status"])

    result = run_dag(_dag("hook_transient", work, retries=1, retry_delay=timedelta(0)))

    assert result["work"].state == "success"
    assert result["work"].try_number == 2
    assert result["work"].xcom == "active"
    assert (standin.sign_ins, standin.sign_outs) == (2, 2)
