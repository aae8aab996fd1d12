"""The operators in real Airflow (``dag.test()``) against the PartnerOS stand-in.

Every DAG runs with ``retries=1, retry_delay=0``: a fatal error tries once, a retryable one twice. The
stand-in counts sign-ins and sign-outs, so each test also checks that every task try ended its session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from airflow.sdk import DAG, task

from airflow_provider_partneros.exceptions import PartnerOSConfigError
from airflow_provider_partneros.hooks.partneros import PartnerOSHook
from airflow_provider_partneros.operators import (
    AnalyzePartnerOperator,
    BasePartnerOSOperator,
    GenerateIcpOperator,
    GetIntegrationSchemaOperator,
    PartnerOSApiOperator,
    SubmitPartnerApplicationOperator,
)
from airflow_provider_partneros.operators.partneros import REDACTED, redact_secrets
from airflow_provider_partneros.testing import (
    DEMO_APPLICATION_SLUG,
    DEMO_ORG_ID,
    DEMO_PARTNER_IDS,
    DEMO_SALESFORCE_CONNECTION,
    NOORG_EMAIL,
    OTHER_ORG_CONNECTION,
    OTHER_ORG_PARTNER_ID,
    PARTNER_EMAIL,
    Fault,
    PartnerOSStandIn,
)

pytestmark = pytest.mark.airflow_run

RunDag = Callable[..., Any]
APPLICATION = {"company": "Acme Consulting", "email": "alliances@acme.example"}

ANALYZE_ROUTE = "/api/partners/{id}/analyze"
SCHEMA_ROUTE = "/api/integrations/{id}/schema"
ICP_ROUTE = "/api/ai/icp"
SUBMIT_ROUTE = "/api/partners/applications/submit"


@pytest.fixture(autouse=True)
def connections(standin: PartnerOSStandIn, monkeypatch: pytest.MonkeyPatch) -> PartnerOSStandIn:
    """``partneros_default`` (admin), ``partneros_partner`` (partner role), ``partneros_noorg``.

    The sign-in rate limit (3 per 10 s per IP) is off so retries do not wait for it; in-call retry
    backoff is tiny so retryable faults exhaust the hook's retries at once.
    """
    standin.sign_in_rate_limit = None
    extra = {"timeout": 5, "retry_backoff": 0.01}
    for conn_id, login in (
        ("PARTNEROS_DEFAULT", None),
        ("PARTNEROS_PARTNER", PARTNER_EMAIL),
        ("PARTNEROS_NOORG", NOORG_EMAIL),
    ):
        value = standin.connection_json(extra=extra, **({"login": login} if login else {}))
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", value)
    return standin


def make_dag(request: pytest.FixtureRequest, **kwargs: Any) -> DAG:
    dag_id = "test_ops_" + re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:180]
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        default_args={"retries": 1, "retry_delay": timedelta(0)},
        **kwargs,
    )


def bad(value: Any) -> Any:
    """Pass a deliberately wrong (or lazy) argument past the type checker."""
    return value


# --- success -------------------------------------------------------------------------------------------


def test_typed_operators_succeed_with_json_xcom(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:
        AnalyzePartnerOperator(task_id="analyze", partner_id="partner-1")
        GetIntegrationSchemaOperator(
            task_id="account_schema", connection_id=DEMO_SALESFORCE_CONNECTION, object_type="Account"
        )
        GetIntegrationSchemaOperator(task_id="schema_summary", connection_id=DEMO_SALESFORCE_CONNECTION)
        GenerateIcpOperator(task_id="icp", company="acme-consulting.example")

    result = run_dag(dag)

    assert result.state == "success"
    analyzed = result["analyze"].xcom
    assert set(analyzed) == {"partner", "aiInsights"}
    assert analyzed["partner"]["id"] == "partner-1"
    account = result["account_schema"].xcom
    assert "Account" in json.dumps(account)
    assert result["schema_summary"].xcom
    assert result["schema_summary"].xcom != account
    assert {"industry", "verticals", "companySize", "revenue"} <= set(result["icp"].xcom)
    for task_id in ("analyze", "account_schema", "schema_summary", "icp"):
        assert result[task_id].state == "success"
        assert result[task_id].try_number == 1
        json.dumps(result[task_id].xcom)  # JSON-serializable
    assert standin.sign_ins == standin.sign_outs == 4  # one session per task, each signed out


def test_templated_ids_are_rendered(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request, params={"partner": "partner-2", "crm": DEMO_SALESFORCE_CONNECTION}) as dag:
        AnalyzePartnerOperator(task_id="analyze", partner_id="{{ params.partner }}")
        GetIntegrationSchemaOperator(
            task_id="schema", connection_id="{{ params.crm }}", object_type="{{ 'Opp' ~ 'ortunity' }}"
        )

    result = run_dag(dag)

    assert result.state == "success"
    assert result["analyze"].xcom["partner"]["id"] == "partner-2"
    assert "Opportunity" in json.dumps(result["schema"].xcom)
    assert standin.requests["GET " + SCHEMA_ROUTE] == 1


def test_analyze_maps_over_partner_ids(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:
        AnalyzePartnerOperator.partial(task_id="analyze").expand(partner_id=list(DEMO_PARTNER_IDS))

    result = run_dag(dag)

    assert result.state == "success"
    ids = [result[f"analyze[{i}]"].xcom["partner"]["id"] for i in range(len(DEMO_PARTNER_IDS))]
    assert ids == list(DEMO_PARTNER_IDS)
    assert standin.sign_ins == standin.sign_outs == len(DEMO_PARTNER_IDS)


def test_submit_application_is_public(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request, params={"company": "Acme Consulting"}) as dag:
        SubmitPartnerApplicationOperator(
            task_id="apply",
            slug=DEMO_APPLICATION_SLUG,
            form_data={"company": "{{ params.company }}", "email": "alliances@acme.example"},
            agreements={"terms": True},
        )

    result = run_dag(dag)

    assert result["apply"].state == "success"
    assert result["apply"].xcom["success"] is True
    assert result["apply"].xcom["applicationId"]
    assert standin.applications[0]["data"]["company"] == "Acme Consulting"
    assert standin.sign_ins == 0
    assert standin.sign_in_attempts == 0
    assert not any(r.had_cookie for r in standin.request_log)


def test_generate_icp_to_file_keeps_xcom_small(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn, tmp_path: Path
) -> None:
    standin.set_icp_size(3 * 1024 * 1024)
    with make_dag(request) as dag:
        GenerateIcpOperator(
            task_id="icp", company="Globex", output_path=str(tmp_path / "icp" / "globex.json")
        )

    result = run_dag(dag)

    target = tmp_path / "icp" / "globex.json"
    assert result["icp"].state == "success"
    assert result["icp"].xcom == {"path": str(target), "size_bytes": target.stat().st_size}
    assert target.stat().st_size >= 3 * 1024 * 1024
    assert "industry" in json.loads(target.read_text())
    assert [p.name for p in target.parent.iterdir()] == ["globex.json"]  # no partial file left


def test_generate_icp_to_file_leaves_no_file_when_the_stream_breaks(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn, tmp_path: Path
) -> None:
    standin.inject(Fault.reset_connection(ICP_ROUTE, times=None))
    with make_dag(request) as dag:
        GenerateIcpOperator(task_id="icp", company="Globex", output_path=str(tmp_path / "icp.json"))

    result = run_dag(dag)

    assert result["icp"].state == "failed"
    assert result["icp"].try_number == 2  # a cut-off answer is retryable
    assert list(tmp_path.iterdir()) == []
    assert standin.sign_ins == standin.sign_outs == 2


# --- documented error statuses -------------------------------------------------------------------------


def _analyze(**kw: Any) -> BasePartnerOSOperator:
    return AnalyzePartnerOperator(task_id="op", partner_id=kw.pop("partner_id", "partner-1"), **kw)


def _schema(**kw: Any) -> BasePartnerOSOperator:
    return GetIntegrationSchemaOperator(
        task_id="op", connection_id=kw.pop("connection_id", DEMO_SALESFORCE_CONNECTION), **kw
    )


def _icp(**kw: Any) -> BasePartnerOSOperator:
    return GenerateIcpOperator(task_id="op", company="Acme", **kw)


def _submit(**kw: Any) -> BasePartnerOSOperator:
    return SubmitPartnerApplicationOperator(
        task_id="op", slug=DEMO_APPLICATION_SLUG, form_data=kw.pop("form_data", APPLICATION), **kw
    )


def _api(**kw: Any) -> BasePartnerOSOperator:
    return PartnerOSApiOperator(task_id="op", method="POST", endpoint="/api/partners/partner-1/analyze", **kw)


def _quota_exhausted(s: PartnerOSStandIn) -> None:
    s.set_ai_quota(DEMO_ORG_ID, 0)


def _fault(fault: Fault) -> Callable[[PartnerOSStandIn], None]:
    def setup(s: PartnerOSStandIn) -> None:
        s.inject(fault)

    return setup


def _nothing(s: PartnerOSStandIn) -> None:
    return None


# (id, operator factory, stand-in setup, expected tries, sign-ins, sign-outs)
ERROR_CASES = [
    pytest.param(
        _analyze, _nothing, 1, 1, 1, {"partneros_conn_id": "partneros_noorg"}, id="400-no-active-org"
    ),
    pytest.param(_submit, _nothing, 1, 0, 0, {"form_data": {"company": "Acme"}}, id="400-missing-form-field"),
    # 401 on every call: one re-sign-in per try, then a retryable failure. Only the newest session of a try
    # is live when it ends, so one sign-out per try.
    pytest.param(
        _analyze, _fault(Fault.unauthorized(ANALYZE_ROUTE, times=None)), 2, 4, 2, {}, id="401-twice"
    ),
    pytest.param(_icp, _quota_exhausted, 1, 1, 1, {}, id="402-quota"),
    pytest.param(
        _schema, _nothing, 1, 1, 1, {"partneros_conn_id": "partneros_partner"}, id="403-partner-role"
    ),
    pytest.param(_api, _nothing, 1, 1, 1, {"partneros_conn_id": "partneros_partner"}, id="403-api-operator"),
    pytest.param(_analyze, _nothing, 1, 1, 1, {"partner_id": "no-such-partner"}, id="404-unknown-partner"),
    pytest.param(_analyze, _nothing, 1, 1, 1, {"partner_id": OTHER_ORG_PARTNER_ID}, id="404-other-org"),
    pytest.param(_schema, _nothing, 1, 1, 1, {"connection_id": OTHER_ORG_CONNECTION}, id="404-schema"),
    pytest.param(
        _submit,
        _fault(Fault.json_error(409, "Application already submitted.", "conflict", SUBMIT_ROUTE)),
        1,
        0,
        0,
        {},
        id="409-duplicate-application",
    ),
    pytest.param(
        _analyze,
        _fault(Fault.rate_limited(60, ANALYZE_ROUTE, times=None)),
        2,
        2,
        2,
        {},
        id="429-rate-limited",
    ),
    pytest.param(
        _schema,
        _fault(Fault.json_error(500, "Internal error", None, SCHEMA_ROUTE, times=None)),
        2,
        2,
        2,
        {},
        id="500",
    ),
    pytest.param(_icp, _fault(Fault.html_bad_gateway(ICP_ROUTE, times=None)), 2, 2, 2, {}, id="502-html"),
    pytest.param(
        _schema, _fault(Fault.html_service_unavailable(SCHEMA_ROUTE, times=None)), 2, 2, 2, {}, id="503-html"
    ),
    pytest.param(
        _api, _fault(Fault.html_gateway_timeout(ANALYZE_ROUTE, times=None)), 2, 2, 2, {}, id="504-api"
    ),
]


@pytest.mark.parametrize(("factory", "setup", "tries", "sign_ins", "sign_outs", "kwargs"), ERROR_CASES)
def test_error_status_outcome(
    request: pytest.FixtureRequest,
    run_dag: RunDag,
    standin: PartnerOSStandIn,
    factory: Callable[..., BasePartnerOSOperator],
    setup: Callable[[PartnerOSStandIn], None],
    tries: int,
    sign_ins: int,
    sign_outs: int,
    kwargs: dict[str, Any],
) -> None:
    """Fatal statuses fail on the first try despite ``retries=1``; retryable ones use the retry."""
    setup(standin)
    with make_dag(request) as dag:
        factory(**kwargs)

    result = run_dag(dag)

    assert result.state == "failed"
    assert result["op"].state == "failed"
    assert result["op"].try_number == tries
    assert result["op"].xcom is None
    assert standin.sign_ins == sign_ins
    assert standin.sign_outs == sign_outs
    assert standin.active_sessions == sign_ins - sign_outs


def test_session_expired_once_signs_in_again_and_succeeds(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    standin.inject(Fault.unauthorized(ANALYZE_ROUTE, times=1))
    with make_dag(request) as dag:
        _analyze()

    result = run_dag(dag)

    assert result["op"].state == "success"
    assert result["op"].try_number == 1
    assert result["op"].xcom["partner"]["id"] == "partner-1"
    assert standin.sign_ins == 2
    assert standin.sign_outs == 1


# --- the generic operator ------------------------------------------------------------------------------


def test_api_operator_get_with_templated_endpoint_and_query(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request, params={"crm": DEMO_SALESFORCE_CONNECTION, "object": "Contact"}) as dag:
        PartnerOSApiOperator(
            task_id="schema",
            endpoint="/api/integrations/{{ params.crm }}/schema",
            query={"objectType": "{{ params.object }}"},
        )

    result = run_dag(dag)

    assert result["schema"].state == "success"
    assert "Contact" in json.dumps(result["schema"].xcom)
    assert [r.query for r in standin.request_log if r.route == SCHEMA_ROUTE] == [{"objectType": "Contact"}]
    assert standin.sign_ins == standin.sign_outs == 1


def test_api_operator_202_returns_what_the_service_sent(
    request: pytest.FixtureRequest,
    run_dag: RunDag,
    standin: PartnerOSStandIn,
    capfd: pytest.CaptureFixture[str],
) -> None:
    accepted = {"jobId": "job-123", "status": "queued"}
    standin.inject(Fault(route="/api/ai/executive-summary", method="POST", status=202, body=accepted))
    with make_dag(request) as dag:
        PartnerOSApiOperator(
            task_id="summary", method="POST", endpoint="/api/ai/executive-summary", json={"period": "2026-Q1"}
        )

    result = run_dag(dag)

    assert result["summary"].state == "success"
    assert result["summary"].xcom == accepted
    out, err = capfd.readouterr()
    assert "accepted POST /api/ai/executive-summary for asynchronous processing (202)" in out + err
    assert standin.sign_ins == standin.sign_outs == 1


def test_api_operator_reads_a_streamed_answer_as_text(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:
        raw = PartnerOSApiOperator(
            task_id="raw", method="POST", endpoint="/api/ai/icp", json={"company": "Initech"}, stream=True
        )
        PartnerOSApiOperator(
            task_id="parsed",
            method="POST",
            endpoint="/api/ai/icp",
            json={"company": "Initech"},
            stream=True,
            response_filter=json.loads,
        )

        @task
        def type_name(value: Any) -> str:
            return type(value).__name__

        type_name(raw.output)

    result = run_dag(dag)

    assert result.state == "success"
    assert result["type_name"].xcom == "str"  # what a downstream task receives
    assert result["raw"].xcom == result["parsed"].xcom  # (the test helper json-loads stored strings)
    assert "industry" in result["parsed"].xcom
    assert standin.sign_ins == standin.sign_outs == 2


def test_api_operator_response_filter_shapes_the_xcom(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:
        PartnerOSApiOperator(
            task_id="op",
            method="POST",
            endpoint="/api/partners/partner-3/analyze",
            response_filter=lambda r: {"id": r["partner"]["id"], "industry": r["partner"].get("industry")},
        )

    result = run_dag(dag)

    assert result["op"].state == "success"
    assert set(result["op"].xcom) == {"id", "industry"}
    assert result["op"].xcom["id"] == "partner-3"


def test_api_operator_response_check_false_fails_without_retry(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:
        PartnerOSApiOperator(
            task_id="op",
            endpoint=f"/api/integrations/{DEMO_SALESFORCE_CONNECTION}/status",
            response_check=lambda status: status["status"] == "error",
        )

    result = run_dag(dag)

    assert result["op"].state == "failed"
    assert result["op"].try_number == 1
    assert result["op"].xcom is None
    assert standin.sign_ins == standin.sign_outs == 1


def test_api_operator_public_call_does_not_sign_in(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:
        PartnerOSApiOperator(
            task_id="op",
            method="POST",
            endpoint="/api/partners/applications/submit",
            json={"slug": DEMO_APPLICATION_SLUG, "data": APPLICATION, "agreements": {"terms": True}},
            public=True,
        )

    result = run_dag(dag)

    assert result["op"].state == "success"
    assert result["op"].xcom["success"] is True
    assert standin.sign_in_attempts == 0


def test_api_operator_never_puts_a_session_token_in_xcom(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:
        PartnerOSApiOperator(task_id="session", endpoint="/api/auth/get-session")

    result = run_dag(dag)

    assert result["session"].state == "success"
    session = result["session"].xcom["session"]
    assert session["token"] == REDACTED
    assert session["activeOrganizationId"] == DEMO_ORG_ID
    stored = json.dumps(result["session"].xcom)
    issued = standin.issued_session_cookies
    assert issued
    for cookie in issued:  # neither the cookie nor the raw token inside it
        assert cookie not in stored
        assert unquote(cookie).split(".")[0] not in stored


# --- argument mistakes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: AnalyzePartnerOperator(task_id="t", partner_id=""), id="empty-partner-id"),
        pytest.param(lambda: AnalyzePartnerOperator(task_id="t", partner_id=bad(None)), id="none-partner-id"),
        pytest.param(lambda: AnalyzePartnerOperator(task_id="t", partner_id=bad(42)), id="int-partner-id"),
        pytest.param(lambda: GetIntegrationSchemaOperator(task_id="t", connection_id=" "), id="blank-conn"),
        pytest.param(
            lambda: GetIntegrationSchemaOperator(task_id="t", connection_id="c", object_type=""),
            id="empty-obj",
        ),
        pytest.param(lambda: GenerateIcpOperator(task_id="t", company=bad(123)), id="int-company"),
        pytest.param(lambda: GenerateIcpOperator(task_id="t", company="  "), id="blank-company"),
        pytest.param(
            lambda: GenerateIcpOperator(task_id="t", company="a", output_path="/tmp/"), id="dir-path"
        ),
        pytest.param(
            lambda: SubmitPartnerApplicationOperator(task_id="t", slug="", form_data={}), id="empty-slug"
        ),
        pytest.param(
            lambda: SubmitPartnerApplicationOperator(task_id="t", slug="s", form_data=bad(["a"])),
            id="list-form",
        ),
        pytest.param(
            lambda: SubmitPartnerApplicationOperator(task_id="t", slug="s", form_data={"at": datetime.now()}),
            id="form-not-json",
        ),
        pytest.param(
            lambda: PartnerOSApiOperator(task_id="t", endpoint="/api/x", method="POST", json={"a": object()}),
            id="body-not-json",
        ),
        pytest.param(
            lambda: PartnerOSApiOperator(task_id="t", endpoint="/api/x", json={"n": float("nan")}), id="nan"
        ),
        pytest.param(
            lambda: PartnerOSApiOperator(task_id="t", endpoint="/api/x", method="FETCH"), id="method"
        ),
        pytest.param(
            lambda: PartnerOSApiOperator(task_id="t", endpoint="https://evil.example/api"), id="url"
        ),
        pytest.param(lambda: PartnerOSApiOperator(task_id="t", endpoint=""), id="empty-endpoint"),
        pytest.param(
            lambda: PartnerOSApiOperator(task_id="t", endpoint="/api/auth/sign-in/email", method="POST"),
            id="sign-in-endpoint",
        ),
        pytest.param(
            lambda: PartnerOSApiOperator(task_id="t", endpoint="/api/x", query=bad(["a"])), id="query"
        ),
        pytest.param(
            lambda: PartnerOSApiOperator(task_id="t", endpoint="/api/x", response_check=bad("yes")),
            id="check",
        ),
        pytest.param(
            lambda: AnalyzePartnerOperator(task_id="t", partner_id="p", partneros_conn_id=""), id="conn"
        ),
    ],
)
def test_literal_argument_mistakes_fail_at_dag_parse(
    build: Callable[[], BasePartnerOSOperator], standin: PartnerOSStandIn
) -> None:
    with pytest.raises(PartnerOSConfigError):
        build()
    assert standin.request_log == []


def test_omitted_required_argument_fails_at_dag_parse(standin: PartnerOSStandIn) -> None:
    cases: list[tuple[Any, dict[str, Any]]] = [
        (AnalyzePartnerOperator, {}),
        (GetIntegrationSchemaOperator, {}),
        (GenerateIcpOperator, {}),
        (SubmitPartnerApplicationOperator, {"slug": "s"}),
        (PartnerOSApiOperator, {}),
    ]
    for operator_class, kwargs in cases:
        with pytest.raises(TypeError, match="missing"):
            operator_class(task_id="t", **kwargs)
    assert standin.request_log == []


def test_lazy_arguments_are_not_checked_at_parse() -> None:
    with DAG(dag_id="lazy_args", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):
        upstream = PartnerOSApiOperator(task_id="up", endpoint="/api/x")
        AnalyzePartnerOperator(task_id="a", partner_id=bad(upstream.output))
        GenerateIcpOperator(task_id="b", company=bad(upstream.output)["name"])
        PartnerOSApiOperator(task_id="c", endpoint="/api/x", method="POST", json={"ids": upstream.output})
        SubmitPartnerApplicationOperator(task_id="d", slug="s", form_data=bad(upstream.output))


@pytest.mark.parametrize(
    ("factory", "params"),
    [
        pytest.param(
            lambda: AnalyzePartnerOperator(task_id="op", partner_id="{{ params.v }}"), "", id="empty-id"
        ),
        pytest.param(
            lambda: GenerateIcpOperator(task_id="op", company="{{ params.v }}"), 42, id="int-company"
        ),
        pytest.param(
            lambda: PartnerOSApiOperator(
                task_id="op", method="POST", endpoint="/api/x", json="{{ make_body() }}"
            ),
            None,
            id="body-not-json",
        ),
        pytest.param(
            lambda: SubmitPartnerApplicationOperator(task_id="op", slug="s", form_data=bad("{{ params.v }}")),
            "not-a-mapping",
            id="form-not-mapping",
        ),
    ],
)
def test_rendered_argument_mistakes_fail_before_any_request(
    request: pytest.FixtureRequest,
    run_dag: RunDag,
    standin: PartnerOSStandIn,
    factory: Callable[[], BasePartnerOSOperator],
    params: Any,
) -> None:
    """Templates render to bad values: the task fails at once (no retry) and PartnerOS sees nothing."""
    with make_dag(
        request,
        params={"v": params},
        render_template_as_native_obj=True,
        user_defined_macros={"make_body": lambda: {"at": {1, 2}}},
    ) as dag:
        factory()

    result = run_dag(dag)

    assert result["op"].state == "failed"
    assert result["op"].try_number == 1
    assert standin.request_log == []


def test_mapped_bad_partner_id_fails_only_that_index(
    request: pytest.FixtureRequest, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    with make_dag(request) as dag:
        AnalyzePartnerOperator.partial(task_id="analyze").expand(partner_id=["partner-1", ""])

    result = run_dag(dag)

    assert result["analyze[0]"].state == "success"
    assert result["analyze[1]"].state == "failed"
    assert result["analyze[1]"].try_number == 1
    assert standin.requests["POST " + ANALYZE_ROUTE] == 1
    assert standin.sign_ins == standin.sign_outs == 1


# --- session lifecycle and XCom hygiene ----------------------------------------------------------------


def test_on_kill_signs_out(standin: PartnerOSStandIn) -> None:
    op = AnalyzePartnerOperator(task_id="op", partner_id="partner-1")
    hook = PartnerOSHook()
    hook.get_conn()  # signed in, as in the middle of execute()
    op._hook = hook
    assert standin.active_sessions == 1

    op.on_kill()

    assert standin.sign_outs == 1
    assert standin.active_sessions == 0
    op.on_kill()  # a second kill (or one after execute ended) is harmless
    assert standin.sign_outs == 1


def test_redact_secrets_covers_nested_keys() -> None:
    doc = {
        "session": {"token": "t", "Session_Token": "s", "id": "1"},
        "items": [{"password": "p", "cookie": "c", "name": "ok"}],
        "count": 2,
    }
    assert redact_secrets(doc) == {
        "session": {"token": REDACTED, "Session_Token": REDACTED, "id": "1"},
        "items": [{"password": REDACTED, "cookie": REDACTED, "name": "ok"}],
        "count": 2,
    }


def test_every_operator_has_json_renderers_for_bodies() -> None:
    assert PartnerOSApiOperator.template_fields_renderers == {"json": "json", "query": "json"}
    assert {"form_data", "agreements", "extra_body"} <= set(SubmitPartnerApplicationOperator.template_fields)
    for op in (
        AnalyzePartnerOperator,
        GetIntegrationSchemaOperator,
        GenerateIcpOperator,
        PartnerOSApiOperator,
    ):
        assert "partneros_conn_id" in op.template_fields


# --- the example pipeline ------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "example_dags" / "partneros_partner_pipeline.py"


def load_example(monkeypatch: pytest.MonkeyPatch) -> DAG:
    """Import the example DAG file as the DAG processor would, with every network connection refused."""
    import importlib.util
    import socket

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("parsing the example DAG must not touch the network")

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", no_network)
        spec = importlib.util.spec_from_file_location("partneros_partner_pipeline_example", EXAMPLE)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    dag: DAG = module.dag
    return dag


def test_example_pipeline_parses_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load_example(monkeypatch)

    assert dag.dag_id == "partneros_partner_pipeline"
    assert set(dag.task_ids) == {
        "wait_for_crm",
        "partner_batch",
        "analyze_partner",
        "generate_icp",
        "crm_account_schema",
        "summarize",
    }
    assert dag.get_task("wait_for_crm").downstream_task_ids == {
        "partner_batch",
        "generate_icp",
        "crm_account_schema",
    }


def test_example_pipeline_runs_against_the_stand_in(
    monkeypatch: pytest.MonkeyPatch, run_dag: RunDag, standin: PartnerOSStandIn
) -> None:
    dag = load_example(monkeypatch)

    result = run_dag(dag)

    assert result.state == "success"
    assert all(task.state == "success" for task in result.tasks.values())
    report = result["summarize"].xcom
    assert report["partners_enriched"] == len(DEMO_PARTNER_IDS)
    assert [p["id"] for p in report["partners"]] == list(DEMO_PARTNER_IDS)
    assert report["icp"]["industry"]
    # sensor + 5 analyses + ICP + schema: one session each, all ended
    assert standin.sign_ins == standin.sign_outs == 8
